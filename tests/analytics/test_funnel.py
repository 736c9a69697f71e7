"""Funnels: the engine against a brute-force reference on random small event sets."""

from __future__ import annotations

import importlib
import itertools
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loupe.analytics import FunnelSpec, funnel, funnel_dropoff, funnel_people
from loupe.analytics.funnel import funnel_tables
from loupe.analytics.spec import parse_step, parse_steps
from loupe.errors import LoupeError
from loupe.identity.attach import store_event_persons
from tests.analytics.conftest import canonical, links, put

T0 = datetime(2024, 3, 1)
#: The module (``loupe.analytics.funnel`` is also the name of the function).
funnel_module = importlib.import_module("loupe.analytics.funnel")
LINKS = {("anonymous_id", "a1"): "c1", ("user_id", "u1"): "c1", ("anonymous_id", "a2"): "c2"}


def _person(anon: str, user: str | None) -> str:
    if user is not None and ("user_id", user) in LINKS:
        return LINKS[("user_id", user)]
    return LINKS.get(("anonymous_id", anon), anon)


def brute_force(rows, steps, window, order):
    """{person: (reached, seconds_to_convert)} by trying every chain of events."""
    by_person: dict[str, list] = {}
    for r in rows:
        by_person.setdefault(_person(r["anonymous_id"], r["user_id"]), []).append(r)
    out = {}
    n = len(steps)
    for person, evs in by_person.items():
        matching = [[e["ts"] for e in evs if e["event"] == s] for s in steps]
        if not matching[0]:
            continue
        best, fastest = 1, None
        for t1 in matching[0]:
            if order == "strict":
                # every strictly increasing chain t1 < t2 < … within the window
                for k in range(2, n + 1):
                    for chain in itertools.product(*matching[1:k]):
                        times = [t1, *chain]
                        if all(a < b for a, b in itertools.pairwise(times)) and (
                            times[-1] - t1 <= window
                        ):
                            best = max(best, k)
                            if k == n:
                                secs = (times[-1] - t1).total_seconds()
                                fastest = secs if fastest is None else min(fastest, secs)
            else:
                firsts = []
                for k in range(2, n + 1):
                    ok = [t for t in matching[k - 1] if t1 <= t <= t1 + window]
                    if not ok:
                        break
                    firsts.append(min(ok))
                    best = max(best, k)
                    if k == n:
                        secs = (max(firsts) - t1).total_seconds()
                        fastest = secs if fastest is None else min(fastest, secs)
        out[person] = (best, fastest)
    return out


def _events(rows):
    return canonical(
        "events", [{**r, "event_id": str(i), "type": "track"} for i, r in enumerate(rows)]
    )


event_rows = st.lists(
    st.fixed_dictionaries(
        {
            "anonymous_id": st.sampled_from(["a1", "a2", "a3", "a4"]),
            "user_id": st.sampled_from([None, None, "u1", "u9"]),
            "event": st.sampled_from(["A", "B", "C"]),
            "ts": st.integers(0, 8).map(lambda m: T0 + timedelta(minutes=m)),
        }
    ),
    min_size=0,
    max_size=14,
)


#: A funnel on those events: its steps, window (minutes) and order.
funnel_specs = {
    "steps": st.lists(st.sampled_from(["A", "B", "C"]), min_size=2, max_size=4),
    "window_min": st.integers(0, 6),
    "order": st.sampled_from(["strict", "any"]),
}
#: Hypothesis settings for tests that write to the function-scoped warehouse fixture.
on_warehouse = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(on_warehouse, max_examples=40)
@given(rows=event_rows, asof=st.booleans(), **funnel_specs)
def test_funnel_matches_brute_force(wh, monkeypatch, rows, steps, window_min, order, asof):
    """Strict funnels advance by ASOF join on DuckDB and by a window on Spark: both ways
    are checked here (``asof=False`` takes the window on DuckDB)."""
    monkeypatch.setattr(funnel_module, "ASOF_BACKENDS", frozenset({"duckdb"} if asof else ()))
    window = timedelta(minutes=window_min)
    spec = FunnelSpec(tuple(parse_step(s) for s in steps), window=window, order=order)
    tables = {"events": _events(rows), "identity_links": links(LINKS)}
    got = wh.to_pandas(funnel_people(tables, spec))
    engine = {
        r.person_id: (
            int(r.reached),
            None if r.seconds_to_convert != r.seconds_to_convert else r.seconds_to_convert,
        )
        for r in got.itertuples()
    }
    assert engine == brute_force(rows, steps, window, order)


@settings(on_warehouse, max_examples=25)
@given(rows=event_rows, **funnel_specs)
def test_person_index_gives_what_the_joins_give(wh, rows, steps, window_min, order):
    """With the identity stage's ``event_persons``, a funnel reads each event's person from
    it instead of joining the events to the links: same counts and times, which are the
    brute force's."""
    window = timedelta(minutes=window_min)
    spec = FunnelSpec(tuple(parse_step(s) for s in steps), window=window, order=order)
    put(wh, events=_events(rows), identity_links=links(LINKS))
    assert "event_persons" not in funnel_tables(wh, spec)
    joined = funnel(wh, spec).to_dict()
    store_event_persons(wh)  # as the identity stage does after a run
    assert "event_persons" in funnel_tables(wh, spec)
    indexed = funnel(wh, spec).to_dict()
    assert indexed == joined
    truth = brute_force(rows, steps, window, order)
    want = [sum(r >= k for r, _ in truth.values()) for k in range(1, len(steps) + 1)]
    assert [s["count"] for s in indexed["steps"]] == want


def test_funnel_reads_the_person_index_unless_a_step_needs_more(wh):
    """Planted: an index that puts every event on one person.  A plain funnel counts that one
    person; a property filter or a breakdown reads columns the index does not hold, so those
    funnels join the events to the links and count the real people."""
    rows = [
        {"anonymous_id": a, "user_id": None, "event": e, "ts": T0 + timedelta(minutes=k)}
        for a, e, k in [("a3", "A", 0), ("a3", "B", 1), ("a4", "A", 0), ("a4", "B", 2)]
    ]
    put(wh, events=_events(rows), identity_links=links(LINKS))
    plain = FunnelSpec(parse_steps("A,B"))
    assert [s["count"] for s in funnel(wh, plain).steps] == [2, 2]
    store_event_persons(wh)  # as the identity stage does after a run
    one = wh.table("event_persons")
    wh.replace("event_persons", one.mutate(pk=one.pk.min().over()))
    assert [s["count"] for s in funnel(wh, plain).steps] == [1, 1]
    filtered = FunnelSpec(parse_steps("A[category=x],B"))
    assert [s["count"] for s in funnel(wh, filtered).steps] == [0, 0]
    by = funnel(wh, FunnelSpec(parse_steps("A,B"), breakdown="utm_source")).to_dict()
    assert [s["count"] for s in by["steps"]] == [2, 2]


def test_repeated_steps_and_ties(wh):
    m = lambda k: T0 + timedelta(minutes=k)  # noqa: E731
    rows = [
        {"anonymous_id": "x", "user_id": None, "event": e, "ts": m(k)}
        for e, k in [("A", 0), ("B", 0), ("A", 1), ("C", 2), ("B", 3), ("A", 3), ("C", 5)]
    ]
    put(wh, events=_events(rows))
    # A@0 B@0 is a tie (not after); A@1 → B@3 → A@3 is a tie again; no A after B@3 … except none.
    res = funnel(wh, FunnelSpec(parse_steps("A,B,A,C"), window=timedelta(hours=1)))
    assert [s["count"] for s in res.steps] == [1, 1, 0, 0]
    rows.append({"anonymous_id": "x", "user_id": None, "event": "A", "ts": m(4)})
    put(wh, events=_events(rows))
    res = funnel(wh, FunnelSpec(parse_steps("A,B,A,C"), window=timedelta(hours=1)))
    assert [s["count"] for s in res.steps] == [1, 1, 1, 1]
    assert res.to_dict()["time_to_convert"]["median_seconds"] == 4 * 60  # A@1 … C@5


def test_window_is_inclusive_and_anchored_on_step_one(wh):
    rows = [
        {"anonymous_id": "x", "user_id": None, "event": "A", "ts": T0},
        {"anonymous_id": "x", "user_id": None, "event": "B", "ts": T0 + timedelta(days=7)},
        {"anonymous_id": "y", "user_id": None, "event": "A", "ts": T0},
        {
            "anonymous_id": "y",
            "user_id": None,
            "event": "B",
            "ts": T0 + timedelta(days=7, seconds=1),
        },
    ]
    put(wh, events=_events(rows))
    res = funnel(wh, FunnelSpec(parse_steps("A,B"), window="7d"))
    assert [s["count"] for s in res.steps] == [2, 1]


def test_property_filters_breakdown_and_dropoff(wh):
    rows = [
        ("p1", "View", '{"category": "美妆"}', "wechat", 0),
        ("p1", "Buy", "{}", None, 5),
        ("p2", "View", '{"category": "服装"}', "baidu", 0),
        ("p2", "Buy", "{}", None, 5),
        ("p3", "View", '{"category": "美妆"}', "baidu", 0),
        ("p3", "View", "not json", "baidu", 1),
    ]
    ev = [
        {
            "anonymous_id": a,
            "event": e,
            "properties": p,
            "utm_source": u,
            "ts": T0 + timedelta(minutes=k),
        }
        for a, e, p, u, k in rows
    ]
    put(wh, events=_events(ev))
    spec = FunnelSpec(parse_steps("View[category=美妆],Buy"))
    assert [s["count"] for s in funnel(wh, spec).steps] == [2, 1]
    json_spec = parse_steps('[{"event": "View", "where": {"category": "美妆"}}, "Buy"]')
    assert json_spec == spec.steps
    by = funnel(wh, FunnelSpec(parse_steps("View,Buy"), breakdown="utm_source")).to_dict()
    groups = {g["value"]: [s["count"] for s in g["steps"]] for g in by["groups"]}
    assert groups == {"wechat": [1, 1], "baidu": [2, 1]}
    assert [s["count"] for s in by["steps"]] == [3, 2]
    by_cat = funnel(wh, FunnelSpec(parse_steps("View,Buy"), breakdown="category")).to_dict()
    groups = {g["value"]: [s["count"] for s in g["steps"]] for g in by_cat["groups"]}
    assert groups == {"美妆": [2, 1], "服装": [1, 1], "(none)": [1, 0]}
    tables = {"events": wh.table("events"), "identity_links": wh.table("identity_links")}
    drop = wh.to_pandas(funnel_dropoff(tables, FunnelSpec(parse_steps("View,Buy")), 1))
    assert sorted(drop["person_id"]) == ["p3"]


def test_first_touch_breakdown(wh):
    ev = [
        {"anonymous_id": "a1", "event": "Land", "utm_source": "douyin", "ts": T0},
        {"anonymous_id": "a1", "event": "View", "utm_source": "baidu", "ts": T0 + timedelta(1)},
        {"anonymous_id": "a1", "event": "Buy", "ts": T0 + timedelta(2)},
        {"anonymous_id": "a2", "event": "View", "ts": T0},
    ]
    put(wh, events=_events(ev), identity_links=links(LINKS))
    res = funnel(wh, FunnelSpec(parse_steps("View,Buy"), breakdown="first_touch")).to_dict()
    groups = {g["value"]: [s["count"] for s in g["steps"]] for g in res["groups"]}
    assert groups == {"douyin": [1, 1], "(direct)": [1, 0]}


def test_bad_specs_say_what_to_do():
    with pytest.raises(LoupeError, match="at least two"):
        FunnelSpec(parse_steps("A"))
    with pytest.raises(LoupeError, match="duration"):
        FunnelSpec(parse_steps("A,B"), window="soon")  # type: ignore[arg-type]
    with pytest.raises(LoupeError, match="step filter"):
        parse_steps("A[category],B")
    with pytest.raises(LoupeError, match="unbalanced"):
        parse_steps("A[category=x,B")
    with pytest.raises(LoupeError, match="the event is missing"):
        parse_step("--json", "--start")  # `loupe paths --start --json`
