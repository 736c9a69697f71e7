"""Paths: what people do after (or before) a chosen event.

Every occurrence of the start event opens a path: the next ``max_len`` events of the same
session (``window=None``) or of the same person within ``window`` of the start, in time
order (ties broken by ``event_id``).  With ``direction="before"`` the path runs backwards:
step 1 is the event just before the start.  A path that ends before ``max_len`` steps ends
in ``(end)``: the session (or window) ended there.

From the path table the engine derives the most frequent paths, Sankey links
``(source, target, value)`` between ``"<position>:<event>"`` nodes, the top exits (the last
event before ``(end)``) and loops (an event directly followed by itself, and paths that
return to the start event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from loupe.analytics.people import Tables, event_person_keys, is_given
from loupe.analytics.spec import parse_duration, parse_step, step_condition
from loupe.errors import LoupeError
from loupe.warehouse.functions import hash64

Direction = Literal["after", "before"]
END = "(end)"
SESSIONLESS = 0x2545F491
"""XORed into the key of a person's events outside any session (see :func:`path_table`)."""


@dataclass(frozen=True)
class PathSpec:
    """Where paths start and how far they go.

    Parameters
    ----------
    start
        The start event, optionally with filters: ``Product Viewed[category=美妆]``.
    direction
        ``after`` or ``before`` the start event.
    max_len
        Steps per path (1..10).
    window
        ``None`` to stay within the session; else a duration (``30m``) around the start,
        across sessions of the same person.
    """

    start: str
    direction: Direction = "after"
    max_len: int = 4
    window: timedelta | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("after", "before"):
            raise LoupeError(
                f"direction must be after or before, not {self.direction!r}",
                where="--direction",
            )
        if not 1 <= self.max_len <= 10:
            raise LoupeError(
                f"max_len must be between 1 and 10, not {self.max_len}", where="--max-len"
            )
        if self.window is not None:
            object.__setattr__(self, "window", parse_duration(self.window))


def path_table(tables: Tables, spec: PathSpec, backend: str = "duckdb") -> ir.Table:
    """``(person_id, ts, s1 … s<max_len>)``: one row per start occurrence.

    What keeps it fast:

    * only the columns a path reads are taken from ``events`` (identifiers, time, name, id,
      session, and what the start filter reads), since the window that looks ahead sorts
      whole rows and ``properties`` alone is most of an event's width;
    * only the sessions (or people) with a start event enter that window;
    * the window's sort key and payload are integers where they can be: people are resolved
      as 64-bit keys (:func:`~loupe.identity.attach.event_person_keys`), a session is
      partitioned by the hash of its id and an event outside any session by its person's
      key (XORed with :data:`SESSIONLESS`), event names travel as their hashes and are read
      back from the distinct names at the end, and the person's id is kept on the start
      rows only.  Against string partitions (``session_id``, else ``'p:' || person_id``)
      and string names, 69-73 → 62 CPU s on the 50M-event bench (docs/analytics.md).
      Ties are still broken by ``event_id`` itself, so they are ordered the same on Spark.

    At 5M events the first two cuts took the three summaries of :func:`paths` from 11.8 s to
    3.3 s.
    """
    step = parse_step(spec.start, "--start")
    events = tables["events"]
    read = {"anonymous_id", "user_id", "ts", "event", "event_id", "session_id"}
    for c in step.where:
        read.add(c.key if c.key in events.columns else "properties")
    e = events.select(*sorted(read))
    e = event_person_keys(e, tables["identity_links"], backend, person_id=True)
    # Event names travel through the window as their 64-bit hashes (see the docstring), and
    # are read back from the distinct names at the end.
    names = events.filter(events.event.notnull()).select(_name=events.event).distinct()
    names = names.mutate(_code=hash64(names._name, backend))
    e = e.mutate(_code=hash64(e.event, backend))
    # An event with neither identifier has no person.  (The filter also closes the join
    # chain, so the semi-join below is a join of its own; DuckDB pushes it below the joins.)
    given = is_given(e.anonymous_id) | is_given(e.user_id)
    e = e.filter(e.ts.notnull() & e.event.notnull() & given)
    start = step_condition(e, step, backend).fill_null(False)
    if spec.window is None:
        # A session's events, or a person's events outside any session.  The person's key is
        # XORed with a constant so that a session whose id equals a person's id string is
        # still a group of its own; otherwise the two meet only by a 64-bit hash collision
        # (:func:`~loupe.warehouse.functions.hash64`).
        key = ibis.ifelse(
            e.session_id.notnull(),
            hash64(e.session_id, backend),
            e.pk ^ ibis.literal(SESSIONLESS, type=e.pk.type()),
        )
    else:
        key = e.pk
    e = e.select(
        "ts",
        "_code",
        "event_id",
        _is_start=start,
        _pid=ibis.ifelse(start, e.person_id, ibis.null("string")),
        _key=key,
    )
    opened = e.filter(e._is_start).select("_key").distinct()
    e = e.semi_join(opened, "_key").select("ts", "_code", "event_id", "_is_start", "_pid", "_key")
    w = ibis.window(group_by=e._key, order_by=[e.ts, e.event_id])
    shift = (
        (lambda col, j: col.lead(j)) if spec.direction == "after" else (lambda col, j: col.lag(j))
    )
    cols: dict[str, Any] = {}
    for j in range(1, spec.max_len + 1):
        code = shift(e._code, j).over(w)
        if spec.window is not None:
            secs = spec.window.total_seconds()
            gap = (shift(e.ts, j).over(w).epoch_seconds() - e.ts.epoch_seconds()).abs()
            code = ibis.ifelse(gap <= secs, code, ibis.null(code.type()))
        cols[f"_s{j}"] = code
    p = e.mutate(**cols).filter(lambda t: t._is_start)
    for j in range(1, spec.max_len + 1):  # codes back to names (NULL: no step)
        d = names.view()
        d = d.select(**{f"_c{j}": d._code, f"s{j}": d._name})
        p = p.left_join(d, p[f"_s{j}"] == d[f"_c{j}"]).drop(f"_s{j}", f"_c{j}")
    # the first missing step is the end of the path; later ones stay empty
    out: dict[str, Any] = {}
    ended = ibis.literal(False)
    for j in range(1, spec.max_len + 1):
        s = p[f"s{j}"]
        out[f"s{j}"] = ibis.cases((ended, ibis.null("string")), (s.isnull(), END), else_=s)
        ended = ended | s.isnull()
    return p.select(person_id=p._pid, ts=p.ts, **out)


def top_paths(tables: Tables, spec: PathSpec, backend: str = "duckdb") -> ir.Table:
    """``(path, steps, count, people)``: the paths by number of occurrences."""
    return _top_paths(path_table(tables, spec, backend), spec)


def _top_paths(p: ir.Table, spec: PathSpec) -> ir.Table:
    steps = [p[f"s{j}"] for j in range(1, spec.max_len + 1)]
    p = p.mutate(
        path=ibis.literal(" > ").join([s.fill_null("") for s in steps]).re_replace(r"( > )+$", "")
    )
    return (
        p.group_by("path")
        .agg(count=p.count(), people=p.person_id.nunique())
        .order_by(ibis.desc("count"), "path")
    )


def sankey(tables: Tables, spec: PathSpec, backend: str = "duckdb") -> ir.Table:
    """``(source, target, value)`` links between ``"<position>:<event>"`` nodes (0 = start)."""
    return _sankey(path_table(tables, spec, backend), spec)


def _sankey(p: ir.Table, spec: PathSpec) -> ir.Table:
    sign = "" if spec.direction == "after" else "-"
    parts = []
    prev = ibis.literal(f"0:{spec.start}")
    for j in range(1, spec.max_len + 1):
        s = p[f"s{j}"]
        link = p.filter(s.notnull()).select(
            source=prev if j == 1 else ibis.literal(f"{sign}{j - 1}:").concat(p[f"s{j - 1}"]),
            target=ibis.literal(f"{sign}{j}:").concat(s),
        )
        parts.append(link)
    u = ibis.union(*parts, distinct=False)
    return u.group_by("source", "target").agg(value=u.count()).order_by(ibis.desc("value"))


def exits_and_loops(tables: Tables, spec: PathSpec, backend: str = "duckdb") -> ir.Table:
    """``(kind, event, count)``: ``exit`` = last event before ``(end)``; ``loop`` = an event
    directly repeated; ``return`` = the path comes back to the start event."""
    return _exits_and_loops(path_table(tables, spec, backend), spec)


def _exits_and_loops(p: ir.Table, spec: PathSpec) -> ir.Table:
    start_event = parse_step(spec.start, "--start").event
    parts = []
    for j in range(1, spec.max_len + 1):
        s, before = p[f"s{j}"], (p[f"s{j - 1}"] if j > 1 else ibis.literal(start_event))
        parts.append(p.filter(s == END).select(kind=ibis.literal("exit"), event=before))
        nxt = p[f"s{j + 1}"] if j < spec.max_len else ibis.null("string")
        parts.append(p.filter((s == nxt) & (s != END)).select(kind=ibis.literal("loop"), event=s))
    returns = ibis.literal(False)
    for j in range(1, spec.max_len + 1):
        returns |= (p[f"s{j}"] == start_event).fill_null(False)
    parts.append(
        p.filter(returns).select(kind=ibis.literal("return"), event=ibis.literal(start_event))
    )
    u = ibis.union(*parts, distinct=False)
    return u.group_by("kind", "event").agg(count=u.count()).order_by("kind", ibis.desc("count"))


def paths(wh: Any, spec: PathSpec, top: int = 20) -> dict[str, Any]:
    """Run the path analyses on ``wh``: top paths, Sankey links, exits and loops."""
    tables = {"events": wh.table("events"), "identity_links": wh.table("identity_links")}
    # The three summaries read one path table, materialised once (a temporary table).
    p = path_table(tables, spec, wh.backend).cache()
    try:
        tp = wh.to_pandas(_top_paths(p, spec).limit(top))
        sk = wh.to_pandas(_sankey(p, spec))
        el = wh.to_pandas(_exits_and_loops(p, spec))
    finally:
        p.release()
    starts = int(tp["count"].sum()) if len(tp) else 0
    return {
        "start": spec.start,
        "direction": spec.direction,
        "max_len": spec.max_len,
        "within": "session" if spec.window is None else spec.window.total_seconds(),
        "paths": tp.to_dict("records"),
        "sankey": sk.to_dict("records"),
        "exits": el[el["kind"] == "exit"].drop(columns="kind").head(top).to_dict("records"),
        "loops": el[el["kind"] != "exit"].head(top).to_dict("records"),
        "shown_occurrences": starts,
    }
