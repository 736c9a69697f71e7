"""Funnels: how many people go through ordered steps within a conversion window.

Semantics (``order="strict"``, the default): a person reaches step *k* when some step-1
event at ``t1`` is followed by step-2..k events at strictly increasing times
``t1 < t2 < … < tk`` with ``tk - t1 <= window``.  A tie in time is not "after".

How the engine finds it, without a loop over events: every step-1 event is a candidate
start; for each next step, the earliest matching event strictly after the candidate's last
step time is the best continuation (choosing it never makes a later step harder), so one
join per step advances every candidate at once: on DuckDB an ASOF join (the first event
of the person after the candidate's time), elsewhere (Spark has no ASOF join)
``min(event time) over (partition by person order by time rows between current row and
unbounded following)`` on the union of candidates and that step's events.  Candidates past
the window are dropped, and of two candidates at the same step time the later start is kept
(it dominates).

What keeps it fast (each was measured on the 50M-event bench, ``bench/bench_analytics.py``):
the person key of every event is read from ``event_persons``, which the identity stage
writes after each run (:func:`loupe.identity.attach.event_person_index`; a funnel with a
property filter or a breakdown, or run while the table is missing, resolves people as
below): 11.3-15 s became 7.0-10 s, and level 1 keeps each starter once rather than each
start, and the last regrouping no longer groups on the constant breakdown (medians of 8.9
and 8.3 s, three alternating runs each).  Otherwise: only the step events and the columns
the steps read are scanned, and people are resolved on those rows only; the steps partition
and join on ``pk``, a 64-bit hash of the person's id, not on the id string (on the bench the
string keys took 12.5 s of ASOF joins, the hash 7 s; two people share a hash with
probability about 3e-8 per million people, see :func:`loupe.warehouse.functions.hash64`),
and the identifiers meet the identity links as hashes too
(:func:`loupe.identity.attach.event_person_keys`); the ids themselves are resolved and
carried on the step-1 rows only, and only when a segment breakdown, a first-touch breakdown
or a drop-off list reads them; the step events are chosen and numbered by looking the event
name up in an array of the step names, which DuckDB does once per distinct name of the
column's dictionary (``IN`` became a join with the list, and a ``CASE`` compared every row:
1.1-1.5 s against 0.6 s over the 50M events); one filtered copy per step was slower still
(DuckDB turned the union of copies into a slow OR-chain over every event); the breakdown
column travels through the steps only when it is read per start; and a later step only reads
the events of people who still have a live candidate.  Together, the funnel of the bench
went from 21.6-23.7 s to 12-14.6 s (same machine, back to back), and with the array lookups
and hashed links from a median of 13.8 s to 12.8 s (12 and 14 runs, old and new alternating
in fresh processes on a noisy machine: 12.7-16.1 s and 11.0-14.5 s).  A single sort with
nested windows was tried and is not cheaper: DuckDB re-sorts for each nested window.

``order="any"``: steps 2..k may happen in any order (ties allowed), each at or after a
step-1 event at ``t1`` and no later than ``t1 + window``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from loupe.analytics.people import (
    Tables,
    event_person_keys,
    first_touch,
    is_given,
    is_segment_split,
    segment_split,
)
from loupe.analytics.spec import Step, event_value, parse_duration, step_condition
from loupe.errors import LoupeError

Order = Literal["strict", "any"]

#: Backends whose strict funnels advance by ASOF join (the others by a window).
ASOF_BACKENDS = frozenset({"duckdb"})

#: Upper edges (seconds) of the time-to-convert histogram.
TIME_BUCKETS: tuple[tuple[str, int], ...] = (
    ("<1m", 60),
    ("1-5m", 300),
    ("5-15m", 900),
    ("15-60m", 3600),
    ("1-6h", 6 * 3600),
    ("6-24h", 86400),
    ("1-3d", 3 * 86400),
    ("3-7d", 7 * 86400),
    ("7-30d", 30 * 86400),
)


@dataclass(frozen=True)
class FunnelSpec:
    """What to count.

    Parameters
    ----------
    steps
        The ordered steps (at least two).
    window
        Conversion window from the step-1 event.
    order
        ``"strict"`` (strictly increasing times) or ``"any"`` (steps 2..k in any order).
    breakdown
        ``None``; an event column (``utm_source``, ``url`` …) or a ``properties`` key, read
        on the step-1 event; ``"first_touch"``: the ``utm_source`` of the person's first
        event ever (``(direct)`` when empty); ``"segment"``: each saved segment the person
        is in (latest members; ``(none)`` for people in none, anonymous visitors included);
        or ``"segment:NAME"``: ``NAME`` for its members, ``not NAME`` for everyone else.
        A person whose starts (or segments) carry several values counts once in each group.
    """

    steps: tuple[Step, ...]
    window: timedelta = field(default_factory=lambda: timedelta(days=7))
    order: Order = "strict"
    breakdown: str | None = None

    def __post_init__(self) -> None:
        if len(self.steps) < 2:
            raise LoupeError("a funnel needs at least two steps", where="--steps")
        if self.order not in ("strict", "any"):
            raise LoupeError(f"order must be strict or any, not {self.order!r}", where="--order")
        object.__setattr__(self, "window", parse_duration(self.window))


def _start_breakdown(spec: FunnelSpec) -> bool:
    """Whether the breakdown is read on the step-1 event (so each start carries it)."""
    return spec.breakdown is not None and not is_segment_split(spec.breakdown)


def _breakdown(people: ir.Table, spec: FunnelSpec, backend: str) -> ir.StringValue:
    if spec.breakdown is None or is_segment_split(spec.breakdown):
        return ibis.literal("(all)")
    if spec.breakdown == "first_touch":
        return people._first_touch
    return event_value(people, spec.breakdown, backend).fill_null("(none)")


def _step_columns(events: ir.Table, spec: FunnelSpec) -> list[str]:
    """The event columns the steps and the breakdown read (the rest is never scanned)."""
    keys = {c.key for s in spec.steps for c in s.where}
    if spec.breakdown not in (None, "first_touch") and not is_segment_split(spec.breakdown):
        keys.add(spec.breakdown)
    cols = {"event", "ts", "anonymous_id", "user_id"}
    for key in keys:
        cols.add(
            key if key in events.columns and key not in ("properties", "traits") else "properties"
        )
    return sorted(cols)


def _step_matches(tables: Tables, spec: FunnelSpec, backend: str, *, ids: bool = True) -> ir.Table:
    """``(pk, [person_id,] ts, step[, bd])``: one row per (event, step it matches).

    ``pk`` is a 64-bit hash of the person's id (see :func:`loupe.warehouse.functions.hash64`):
    the steps partition, sort and join on it rather than on the id string.  ``person_id`` is
    kept on the step-1 rows only (the people a funnel reports are those who started it), and
    only with ``ids`` (counts do not need it; carrying it cost 1.7 s of 10 on the bench).
    ``bd`` (the step-1 event's breakdown value) is there only for a per-start breakdown.
    """
    events = tables["events"]
    names = sorted({s.event for s in spec.steps})
    plain = [(i, s.event) for i, s in enumerate(spec.steps) if not s.where]
    first: dict[str, int] = {}
    for i, ev_name in plain:  # the first step each plain event name stands for …
        first.setdefault(ev_name, i)
    # Filter to the step events and the columns read *before* resolving people, so the
    # identity joins touch only those rows.  The name tests are array lookups: DuckDB runs
    # them once per distinct name of the scanned column (its dictionary), where ``IN`` became
    # a join with the list (1.1-1.5 s against 0.6 s over the 50M events of the bench) and a
    # ``CASE`` compared every row.
    index = tables.get("event_persons") if _index_serves(spec, ids) else None
    if index is not None:  # the identity stage's person key of every event: no joins
        events = index
    e = events.filter(_one_of(events.event, names) & events.ts.notnull())
    # … numbered here, on the scan: ``_pos`` is the position of the event among them
    pos = {"_pos": ibis.array(list(first)).index(e.event).cast("int8")} if first else {}
    cols = ["event", "ts", "pk"] if index is not None else _step_columns(events, spec)
    e = e.select(*cols, **pos)
    first_touch = spec.breakdown == "first_touch"
    if index is None:  # (the index holds only events with a person)
        # An event with neither identifier has no person.  Tested on the identifiers, the
        # filter is pushed below the identity joins.
        e = e.filter(is_given(e.anonymous_id) | is_given(e.user_id))
        # People are keyed by ``pk``; their id string is resolved only where it is read.
        e = event_person_keys(e, tables["identity_links"], backend, person_id=ids or first_touch)
    if first_touch:
        ft = _first_touch(tables)
        e = e.view()  # a new join, not one more link of the identity joins' chain
        e = e.left_join(ft, e.person_id == ft._fp).drop("_fp")
    no_id = ibis.null("string")
    parts = []
    if first:  # … and read with one lookup over the step events, not one filtered copy per step
        # (no second filter when the plain steps are all the step names)
        m = e if set(first) == set(names) else e.filter(e._pos >= 0)
        if list(first.values()) == list(range(len(first))):
            step_no = m._pos
        else:
            step_no = ibis.cases(*[(m._pos == j, i) for j, i in enumerate(first.values())])
            step_no = step_no.cast("int8")
        start = step_no == 0
        bd = ibis.ifelse(start, _breakdown(m, spec, backend), ibis.null("string"))
        person = ibis.ifelse(start, m.person_id, no_id) if ids and 0 in first.values() else no_id
        parts.append(m.select("pk", "ts", **_id(ids, person), step=step_no, **_bd(spec, bd)))
    for i, ev_name in plain:  # a name repeated in later steps (A,B,A,C) adds its rows again
        if first[ev_name] != i:
            m = e.filter(e.event == ev_name)
            parts.append(
                m.select(
                    "pk",
                    "ts",
                    **_id(ids, no_id),
                    step=ibis.literal(i, "int8"),
                    **_bd(spec, ibis.null("string")),
                )
            )
    for i, step in enumerate(spec.steps):
        if step.where:
            m = e.filter(step_condition(e, step, backend))
            bd = _breakdown(m, spec, backend) if i == 0 else ibis.null("string")
            person = m.person_id if ids and i == 0 else no_id
            parts.append(
                m.select(
                    "pk", "ts", **_id(ids, person), step=ibis.literal(i, "int8"), **_bd(spec, bd)
                )
            )
    return parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)


def _index_serves(spec: FunnelSpec, ids: bool) -> bool:
    """Whether ``event_persons`` (event, time and person key only) holds all the steps read:
    no person ids, no breakdown and no property filter."""
    return not ids and spec.breakdown is None and not any(s.where for s in spec.steps)


def _one_of(col: ir.StringValue, values: list[str]) -> ir.BooleanValue:
    """``col`` is one of ``values``, as an array lookup (see :func:`_step_matches`)."""
    return ibis.array(values).contains(col)


def _id(ids: bool, value: ir.Value | None) -> dict[str, ir.Value]:
    """``person_id=value`` where the person's id is carried (``value`` is unused otherwise)."""
    return {"person_id": value} if ids and value is not None else {}


def _bd(spec: FunnelSpec, value: ir.StringValue) -> dict[str, ir.StringValue]:
    return {"bd": value} if _start_breakdown(spec) else {}


def _first_touch(tables: Tables) -> ir.Table:
    """``(_fp, _first_touch)``: the ``utm_source`` of each person's first event ever."""
    ft = first_touch(tables)
    return ft.select(_fp=ft.person_id, _first_touch=ft.channel)


def funnel_people(tables: Tables, spec: FunnelSpec, backend: str = "duckdb") -> ir.Table:
    """One row per (person, breakdown group) that did step 1.

    Columns: ``person_id``, ``breakdown``, ``reached`` (1..n, the furthest step reached) and
    ``seconds_to_convert`` (last step time minus step-1 time over the fastest start that
    reached the last step; NULL for people who did not).
    """
    matches = _step_matches(tables, spec, backend)
    return _split_people(_people_from_matches(matches, spec, backend), tables, spec).drop("pk")


def _split_people(people: ir.Table, tables: Tables, spec: FunnelSpec) -> ir.Table:
    """Per-person results regrouped by segment (a ``segment`` breakdown is per person)."""
    if not is_segment_split(spec.breakdown):
        return people
    assert spec.breakdown is not None
    if "segment_members" not in tables:
        raise LoupeError("a segment breakdown needs the segment_members table", where="--breakdown")
    groups, other = segment_split(tables["segment_members"], spec.breakdown)
    j = people.left_join(groups, people.person_id == groups._sp)
    return j.select(
        "pk",
        "person_id",
        breakdown=j._sv.fill_null(other),
        reached=j.reached,
        seconds_to_convert=j.seconds_to_convert,
    )


def _people_from_matches(matches: ir.Table, spec: FunnelSpec, backend: str) -> ir.Table:
    window_s = spec.window.total_seconds()
    strict = spec.order == "strict"
    # Without a per-start breakdown the group column is not carried through the steps.
    keys = ["pk", "bd"] if _start_breakdown(spec) else ["pk"]
    starts = matches.filter(matches.step == 0)
    # Duplicate starts are harmless (the final aggregate is a max/min), so no DISTINCT here.
    cands = starts.select(*keys, t1=starts.ts, t=starts.ts)
    if not strict:
        cands = cands.distinct()
    # Only the starts carry the person's id; the later levels are matched on ``pk``.
    ids = "person_id" in matches.columns
    # Level 1 is every starter once (not every start: 6.3M rows to regroup on the bench).
    if ids:
        first = starts.group_by(*keys).agg(person_id=starts.person_id.max())
    else:
        first = starts.select(*keys).distinct()
    levels = [
        first.select(
            *keys,
            **_id(ids, first.person_id if ids else None),
            k=ibis.literal(1, "int8"),
            secs=ibis.null("float64"),
        )
    ]
    n = len(spec.steps)
    for k in range(1, n):
        ev = matches.filter(matches.step == k)
        if k > 1:  # only people with a live candidate can move on (drops most rows late)
            live = cands.select(_lp=cands.pk).distinct()
            ev = ev.semi_join(live, ev.pk == live._lp)
        if strict and backend in ASOF_BACKENDS:
            adv = _next_by_asof(cands, ev, keys)
        else:
            adv = _next_by_window(cands, ev, keys, strict)
        adv = adv.filter(adv.nxt.notnull() & (adv.nxt <= adv.t1 + ibis.interval(seconds=window_s)))
        new_t = adv.nxt if strict else ibis.greatest(adv.last, adv.nxt)
        cands = adv.select(*keys, "t1", t=new_t)
        if strict:  # of two starts now at the same time, the later one dominates
            cands = cands.group_by(*keys, "t").agg(t1=cands.t1.max())
        secs = (
            (cands.t.epoch_seconds() - cands.t1.epoch_seconds()).cast("float64")
            if k == n - 1
            else ibis.null("float64")
        )
        levels.append(
            cands.select(
                *keys, **_id(ids, ibis.null("string")), k=ibis.literal(k + 1, "int8"), secs=secs
            )
        )
    allv = ibis.union(*levels, distinct=False)
    aggs = {
        **_id(ids, allv.person_id.max() if ids else None),
        "reached": allv.k.max().cast("int64"),
        "seconds_to_convert": allv.secs.min(),
    }
    if len(keys) == 2:
        return allv.group_by(pk=allv.pk, breakdown=allv.bd).agg(**aggs)
    # without a per-start breakdown, grouping on the constant too cost a string key per row
    out = allv.group_by("pk").agg(**aggs)
    return out.select("pk", breakdown=ibis.literal("(all)"), **{c: out[c] for c in aggs})


def _next_by_asof(cands: ir.Table, ev: ir.Table, keys: list[str]) -> ir.Table:
    """Strict order: each candidate with ``nxt``, the first step event after its ``t``.

    DuckDB's ASOF join sorts candidates and events once per step; on the 50M-event bench it
    took about half the time of the window below (Spark has no ASOF join).
    """
    e = ev.select(_pk=ev.pk, _t=ev.ts)
    j = cands.asof_join(e, on=cands.t < e._t, predicates=[cands.pk == e._pk])
    return j.select(*keys, "t1", nxt=j._t)


def _next_by_window(cands: ir.Table, ev: ir.Table, keys: list[str], strict: bool) -> ir.Table:
    """Each candidate with ``nxt``, the first step event after its ``t`` (strict) or at or
    after its start (any order, with ``last``, the latest step time so far), by one window
    over the union of candidates and events per person."""
    ts_type = cands.t.type()
    pad = {"bd": ibis.null("string")} if len(keys) == 2 else {}
    ev = ev.select(pk=ev.pk, **pad, t1=ibis.null(ts_type), t=ev.ts)
    # Strict: events order before candidates at the same time, so a tie is not "after".
    c_rank, e_rank = (1, 0) if strict else (0, 1)
    if strict:
        u = ibis.union(
            cands.select(*keys, "t1", "t", c=ibis.literal(c_rank, "int8")),
            ev.select(*keys, "t1", "t", c=ibis.literal(e_rank, "int8")),
            distinct=False,
        )
    else:  # ordered on the start; ``last`` is the latest step time so far
        u = ibis.union(
            cands.select(*keys, "t1", last=cands.t, t=cands.t1, c=ibis.literal(c_rank, "int8")),
            ev.select(*keys, "t1", last=ev.t, t=ev.t, c=ibis.literal(e_rank, "int8")),
            distinct=False,
        )
    w = ibis.window(group_by=u.pk, order_by=[u.t, u.c], preceding=0, following=None)
    nxt = ibis.ifelse(u.c == e_rank, u.t, ibis.null(ts_type)).min().over(w)
    adv = u.mutate(nxt=nxt)
    return adv.filter(adv.c == c_rank)


def funnel_counts(tables: Tables, spec: FunnelSpec, backend: str = "duckdb") -> ir.Table:
    """``(breakdown, step, event, count)``: people reaching each step, per breakdown group."""
    people = funnel_people(tables, spec, backend)
    agg = people.group_by("breakdown").agg(
        **{
            f"s{k}": (people.reached >= k).cast("int64").sum()
            for k in range(1, len(spec.steps) + 1)
        }
    )
    parts = [
        agg.select(
            "breakdown",
            step=ibis.literal(k),
            event=ibis.literal(spec.steps[k - 1].label),
            count=agg[f"s{k}"],
        )
        for k in range(1, len(spec.steps) + 1)
    ]
    return ibis.union(*parts, distinct=False).order_by("breakdown", "step")


def funnel_dropoff(
    tables: Tables, spec: FunnelSpec, step: int, backend: str = "duckdb"
) -> ir.Table:
    """People who reached step ``step`` (1-based) but not ``step + 1``.

    Columns ``person_id``, ``breakdown`` and ``identified`` (the person is a resolved
    customer, not an anonymous visitor; only those can join a segment).
    """
    if not 1 <= step < len(spec.steps):
        raise LoupeError(
            f"the drop-off step must be between 1 and {len(spec.steps) - 1}, not {step}",
            where="--dropoff",
        )
    people = funnel_people(tables, spec, backend)
    out = people.filter(people.reached == step).select("person_id", "breakdown")
    cids = tables["identity_links"].select("customer_id").distinct()
    return out.mutate(identified=out.person_id.isin(cids.customer_id))


def time_to_convert(tables: Tables, spec: FunnelSpec, backend: str = "duckdb") -> ir.Table:
    """``(breakdown, bucket, count, median_seconds)`` over people who reached the last step."""
    return _time_to_convert(funnel_people(tables, spec, backend), spec)


def _time_to_convert(people: ir.Table, spec: FunnelSpec) -> ir.Table:
    done = people.filter(people.reached == len(spec.steps))
    s = done.seconds_to_convert
    cases = [(s < edge, label) for label, edge in TIME_BUCKETS]
    done = done.mutate(bucket=ibis.cases(*cases, else_=">30d"))
    counts = done.group_by("breakdown", "bucket").agg(count=done.count())
    med = done.group_by("breakdown").agg(
        median_seconds=done.seconds_to_convert.median(),
        mean_seconds=done.seconds_to_convert.mean(),
    )
    return counts.join(med, "breakdown")


# -- running ------------------------------------------------------------------------------------


@dataclass
class FunnelResult:
    """Counts per step (overall and per breakdown group) and time to convert.

    ``steps`` counts distinct people overall; ``groups`` (only with a breakdown) maps each
    breakdown value to its steps; ``time_to_convert`` maps a group (``(all)`` without a
    breakdown) to its median, mean and histogram.
    """

    spec: FunnelSpec
    steps: list[dict[str, Any]]
    groups: dict[str, list[dict[str, Any]]]
    time_to_convert: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "steps": self.steps,
            "window_seconds": self.spec.window.total_seconds(),
            "order": self.spec.order,
        }
        if self.spec.breakdown is None:
            doc["time_to_convert"] = self.time_to_convert.get("(all)", _empty_ttc())
        else:
            doc["breakdown"] = self.spec.breakdown
            doc["groups"] = [
                {"value": k, "steps": v, "time_to_convert": self.time_to_convert.get(k)}
                for k, v in sorted(self.groups.items(), key=lambda kv: -kv[1][0]["count"])
            ]
        return doc


def _empty_ttc() -> dict[str, Any]:
    return {"median_seconds": None, "mean_seconds": None, "buckets": []}


def _with_rates(spec: FunnelSpec, counts: dict[int, int]) -> list[dict[str, Any]]:
    rows, first, prev = [], counts.get(1, 0), None
    for k, step in enumerate(spec.steps, start=1):
        c = int(counts.get(k, 0))
        rows.append(
            {
                "event": step.label,
                "count": c,
                "conversion_from_previous": (c / prev if prev else None) if k > 1 else 1.0,
                "conversion_from_start": c / first if first else None,
            }
        )
        prev = c
    return rows


def funnel_tables(wh: Any, spec: FunnelSpec) -> dict[str, ir.Table]:
    """The tables a funnel reads from ``wh`` (``event_persons`` when the identity stage left
    one: the warehouse drops it as soon as ``events`` or ``identity_links`` changes)."""
    names = ["events", "identity_links"]
    if is_segment_split(spec.breakdown):
        names.append("segment_members")
    if wh.exists("event_persons"):
        names.append("event_persons")
    return {t: wh.table(t) for t in names}


def save_dropoff(
    wh: Any,
    spec: FunnelSpec,
    step: int,
    name: str,
    *,
    replace: bool = False,
    dropoff: Any = None,
) -> dict[str, Any]:
    """Save the identified people who reached ``step`` but not the next as a static segment.

    ``dropoff`` is the result of :func:`funnel_dropoff` already run (a DataFrame), to avoid
    running the funnel again.  Returns ``{"segment", "size", "anonymous_skipped"}``:
    anonymous visitors have no ``customer_id`` and cannot be in a segment, so they are
    counted and left out.
    """
    from loupe.analytics.audiences import save_static_segment

    if dropoff is None:
        dropoff = wh.to_pandas(funnel_dropoff(funnel_tables(wh, spec), spec, step, wh.backend))
    people = dropoff[["person_id", "identified"]].drop_duplicates()
    known = sorted(str(p) for p in people.loc[people["identified"].astype(bool), "person_id"])
    members = ibis.memtable({"customer_id": known}, schema={"customer_id": "string"})
    labels = ", ".join(s.label for s in spec.steps)
    description = f"funnel drop-off after step {step} ({spec.steps[step - 1].label}) of {labels}"
    save_static_segment(wh, name, members, description, replace=replace)
    return {
        "segment": name,
        "size": len(known),
        "anonymous_skipped": int(people["person_id"].nunique() - len(set(known))),
    }


def funnel(wh: Any, spec: FunnelSpec) -> FunnelResult:
    """Run a funnel on the warehouse ``wh`` (tables ``events`` and ``identity_links``)."""
    tables = funnel_tables(wh, spec)
    # Materialise the step matches and the per-person result once (temporary tables).
    ids = is_segment_split(spec.breakdown)  # only a segment breakdown reads the person's id
    matches = _step_matches(tables, spec, wh.backend, ids=ids).cache()
    people = _split_people(_people_from_matches(matches, spec, wh.backend), tables, spec).cache()
    n = len(spec.steps)
    counts = wh.to_pandas(
        people.group_by("breakdown").agg(
            **{f"s{k}": (people.reached >= k).cast("int64").sum() for k in range(1, n + 1)}
        )
    )
    groups = {
        str(r["breakdown"]): _with_rates(spec, {k: r[f"s{k}"] for k in range(1, n + 1)})
        for _, r in counts.iterrows()
    }
    if spec.breakdown is None:
        steps = groups.get("(all)") or _with_rates(spec, {})
        groups = {}
    else:
        per_person = people.group_by("pk").agg(reached=people.reached.max())
        tot = wh.to_pandas(
            per_person.agg(
                **{f"s{k}": (per_person.reached >= k).cast("int64").sum() for k in range(1, n + 1)}
            )
        )
        steps = _with_rates(spec, {k: int(tot[f"s{k}"].iloc[0] or 0) for k in range(1, n + 1)})
    ttc_df = wh.to_pandas(_time_to_convert(people, spec))
    ttc: dict[str, dict[str, Any]] = {}
    order = {label: i for i, (label, _) in enumerate(TIME_BUCKETS)}
    for value, g in ttc_df.groupby("breakdown"):
        g = g.assign(_o=g["bucket"].map(lambda b: order.get(b, len(order)))).sort_values("_o")
        ttc[str(value)] = {
            "median_seconds": float(g["median_seconds"].iloc[0]),
            "mean_seconds": float(g["mean_seconds"].iloc[0]),
            "buckets": [
                {"bucket": b, "count": int(c)} for b, c in zip(g["bucket"], g["count"], strict=True)
            ],
        }
    for cached in (people, matches):
        cached.release()
    return FunnelResult(spec, steps, groups, ttc)
