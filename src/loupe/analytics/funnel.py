"""Funnels: how many people go through ordered steps within a conversion window.

Semantics (``order="strict"``, the default): a person reaches step *k* when some step-1
event at ``t1`` is followed by step-2..k events at strictly increasing times
``t1 < t2 < … < tk`` with ``tk - t1 <= window``.  A tie in time is not "after".

How the engine finds it, without a loop over events: every step-1 event is a candidate
start; for each next step, the earliest matching event strictly after the candidate's last
step time is the best continuation (choosing it never makes a later step harder), so one
window function per step — ``min(event time) over (partition by person order by time
rows between current row and unbounded following)`` on the union of candidates and that
step's events — advances every candidate at once.  Candidates past the window are dropped,
and of two candidates at the same step time the later start is kept (it dominates).

``order="any"``: steps 2..k may happen in any order (ties allowed), each at or after a
step-1 event at ``t1`` and no later than ``t1 + window``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from loupe.analytics.people import Tables, event_people
from loupe.analytics.spec import Step, event_value, parse_duration, step_condition
from loupe.errors import LoupeError

Order = Literal["strict", "any"]

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
        on the step-1 event; or ``"first_touch"``: the ``utm_source`` of the person's first
        event ever (``(direct)`` when empty).  A person whose starts carry several values
        counts once in each group.
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


def _breakdown(people: ir.Table, spec: FunnelSpec, backend: str) -> ir.StringValue:
    if spec.breakdown is None:
        return ibis.literal("(all)")
    if spec.breakdown == "first_touch":
        return people._first_touch
    return event_value(people, spec.breakdown, backend).fill_null("(none)")


def _step_matches(tables: Tables, spec: FunnelSpec, backend: str) -> ir.Table:
    """``(person_id, ts, step, bd)``: one row per (event, step it matches)."""
    e = event_people(tables["events"], tables["identity_links"])
    e = e.filter(e.person_id.notnull() & e.ts.notnull())
    if spec.breakdown == "first_touch":
        w = ibis.window(group_by=e.person_id, order_by=[e.ts, e.event_id])
        src = ibis.ifelse(e.utm_source == "", ibis.null("string"), e.utm_source)
        first = e.mutate(_rn=ibis.row_number().over(w), _src=src)
        first = first.filter(first._rn == 0).select(
            _fp=first.person_id, _first_touch=first._src.fill_null("(direct)")
        )
        e = e.left_join(first, e.person_id == first._fp).drop("_fp")
    names = sorted({s.event for s in spec.steps})
    e = e.filter(e.event.isin(names))
    parts = []
    for i, step in enumerate(spec.steps):
        m = e.filter(step_condition(e, step, backend))
        bd = _breakdown(m, spec, backend) if i == 0 else ibis.null("string")
        parts.append(m.select("person_id", "ts", step=ibis.literal(i), bd=bd))
    return ibis.union(*parts, distinct=False)


def funnel_people(tables: Tables, spec: FunnelSpec, backend: str = "duckdb") -> ir.Table:
    """One row per (person, breakdown group) that did step 1.

    Columns: ``person_id``, ``breakdown``, ``reached`` (1..n, the furthest step reached) and
    ``seconds_to_convert`` (last step time minus step-1 time over the fastest start that
    reached the last step; NULL for people who did not).
    """
    return _people_from_matches(_step_matches(tables, spec, backend), spec)


def _people_from_matches(matches: ir.Table, spec: FunnelSpec) -> ir.Table:
    window_s = spec.window.total_seconds()
    strict = spec.order == "strict"
    ts_type = matches.ts.type()
    starts = matches.filter(matches.step == 0)
    cands = starts.select(person_id=starts.person_id, bd=starts.bd, t1=starts.ts, t=starts.ts)
    cands = cands.distinct()
    levels = [cands.select("person_id", "bd", k=ibis.literal(1), secs=ibis.null("float64"))]
    n = len(spec.steps)
    for k in range(1, n):
        ev = matches.filter(matches.step == k)
        ev = ev.select(
            person_id=ev.person_id, bd=ibis.null("string"), t1=ibis.null(ts_type), t=ev.ts
        ).distinct()
        anchor = cands.t if strict else cands.t1
        # Strict: events order before candidates at the same time, so a tie is not "after".
        c_rank, e_rank = (1, 0) if strict else (0, 1)
        u = ibis.union(
            cands.select("person_id", "bd", "t1", last=cands.t, t=anchor, c=ibis.literal(c_rank)),
            ev.select("person_id", "bd", "t1", last=ev.t, t=ev.t, c=ibis.literal(e_rank)),
            distinct=False,
        )
        w = ibis.window(group_by=u.person_id, order_by=[u.t, u.c], preceding=0, following=None)
        nxt = ibis.ifelse(u.c == e_rank, u.t, ibis.null(ts_type)).min().over(w)
        adv = u.mutate(nxt=nxt)
        adv = adv.filter(adv.c == c_rank)
        adv = adv.filter(adv.nxt.notnull() & (adv.nxt <= adv.t1 + ibis.interval(seconds=window_s)))
        new_t = adv.nxt if strict else ibis.greatest(adv.last, adv.nxt)
        cands = adv.select("person_id", "bd", "t1", t=new_t)
        if strict:  # of two starts now at the same time, the later one dominates
            cands = cands.group_by("person_id", "bd", "t").agg(t1=cands.t1.max())
        secs = (
            (cands.t.epoch_seconds() - cands.t1.epoch_seconds()).cast("float64")
            if k == n - 1
            else ibis.null("float64")
        )
        levels.append(cands.select("person_id", "bd", k=ibis.literal(k + 1), secs=secs))
    allv = ibis.union(*levels, distinct=False)
    return allv.group_by(person_id=allv.person_id, breakdown=allv.bd).agg(
        reached=allv.k.max(), seconds_to_convert=allv.secs.min()
    )


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
    """People who reached step ``step`` (1-based) but not ``step + 1``: ``(person_id, breakdown)``."""
    if not 1 <= step < len(spec.steps):
        raise LoupeError(
            f"the drop-off step must be between 1 and {len(spec.steps) - 1}, not {step}",
            where="--dropoff",
        )
    people = funnel_people(tables, spec, backend)
    return people.filter(people.reached == step).select("person_id", "breakdown")


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


def funnel(wh: Any, spec: FunnelSpec) -> FunnelResult:
    """Run a funnel on the warehouse ``wh`` (tables ``events`` and ``identity_links``)."""
    tables = {"events": wh.table("events"), "identity_links": wh.table("identity_links")}
    # Materialise the step matches and the per-person result once (temporary tables).
    matches = _step_matches(tables, spec, wh.backend).cache()
    people = _people_from_matches(matches, spec).cache()
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
        per_person = people.group_by("person_id").agg(reached=people.reached.max())
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
