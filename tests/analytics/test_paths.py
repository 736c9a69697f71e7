"""Paths after / before an event, Sankey links, exits and loops on a small fixed journey."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from loupe.analytics import PathSpec, paths
from tests.analytics.conftest import canonical, links, put

T0 = datetime(2024, 5, 1, 10)


def _journeys(wh):
    sessions = {
        ("a", "s1"): ["Home", "View", "Cart", "Cart", "Buy"],
        ("a", "s2"): ["View", "Home"],
        ("b", "s3"): ["View", "Cart", "View"],
        ("c", "s4"): ["Search", "View"],
    }
    rows, n = [], 0
    for (anon, sess), evs in sessions.items():
        for k, ev in enumerate(evs):
            n += 1
            rows.append({"event_id": f"e{n:03d}", "anonymous_id": anon, "session_id": sess,
                         "event": ev, "ts": T0 + timedelta(minutes=k + 6 * (sess == "s2"))})  # fmt: skip
    put(wh, events=canonical("events", rows))


def test_paths_after_within_session(wh):
    _journeys(wh)
    doc = paths(wh, PathSpec("View", max_len=3))
    got = {p["path"]: p["count"] for p in doc["paths"]}
    assert got == {
        "Cart > Cart > Buy": 1,
        "Home > (end)": 1,
        "Cart > View > (end)": 1,
        "(end)": 2,  # the last View of s3 and of s4
    }
    links = {(s["source"], s["target"]): s["value"] for s in doc["sankey"]}
    assert links[("0:View", "1:Cart")] == 2
    assert links[("1:Cart", "2:Cart")] == 1
    exits = {e["event"]: e["count"] for e in doc["exits"]}
    assert exits == {"Home": 1, "View": 3}
    loops = {(x["kind"], x["event"]): x["count"] for x in doc["loops"]}
    assert loops == {("loop", "Cart"): 1, ("return", "View"): 1}


def test_paths_before_and_time_window(wh):
    _journeys(wh)
    doc = paths(wh, PathSpec("Buy", direction="before", max_len=2))
    assert [p["path"] for p in doc["paths"]] == ["Cart > Cart"]
    # across sessions within 10 minutes: s1 and s2 of person a are one timeline
    doc = paths(wh, PathSpec("Buy", max_len=2, window=timedelta(minutes=10)))
    assert [p["path"] for p in doc["paths"]] == ["View > Home"]
    doc = paths(wh, PathSpec("Buy", max_len=2, window=timedelta(seconds=30)))
    assert [p["path"] for p in doc["paths"]] == ["(end)"]


def test_start_filter_on_a_property_and_a_person_across_identifiers(wh):
    """Only starts matching the filter open paths (``properties`` is read for it), and with
    a time window one person's web and app events form one timeline."""
    rows = [
        ("e1", "w1", None, "View", 0, {"category": "shoes"}),
        ("e2", None, "u1", "Cart", 1, {}),  # the same person, logged in on the app
        ("e3", "w1", None, "View", 2, {"category": "bags"}),
        ("e4", None, "u1", "Buy", 3, {}),
        ("e5", "w2", None, "View", 0, {"category": "shoes"}),  # someone else, no next event
    ]
    events = [
        {"event_id": i, "anonymous_id": a, "user_id": u, "session_id": None, "event": ev,
         "ts": T0 + timedelta(minutes=m), "properties": json.dumps(props)}
        for i, a, u, ev, m, props in rows
    ]  # fmt: skip
    lk = {("anonymous_id", "w1"): "c1", ("user_id", "u1"): "c1"}
    put(wh, events=canonical("events", events), identity_links=links(lk))
    doc = paths(wh, PathSpec("View[category=shoes]", max_len=3, window=timedelta(hours=1)))
    assert {p["path"]: p["count"] for p in doc["paths"]} == {
        "Cart > View > Buy": 1,
        "(end)": 1,
    }
    assert doc["shown_occurrences"] == 2


def test_a_session_never_shares_a_timeline_with_a_person_outside_sessions(wh):
    """Events without a session form their person's timeline, apart from every session, even
    a session whose id is the same string as that person's id (the keys are hashes)."""
    rows = [
        ("e1", "x", None, "View", 0),  # person x, outside any session
        ("e2", "x", None, "Cart", 1),
        ("e3", "y", "x", "View", 0),  # person y, in a session named "x"
        ("e4", "y", "x", "Buy", 2),
    ]
    events = [
        {"event_id": i, "anonymous_id": a, "session_id": s, "event": ev,
         "ts": T0 + timedelta(minutes=m)}
        for i, a, s, ev, m in rows
    ]  # fmt: skip
    put(wh, events=canonical("events", events))
    doc = paths(wh, PathSpec("View", max_len=2))
    assert {p["path"]: p["count"] for p in doc["paths"]} == {
        "Cart > (end)": 1,
        "Buy > (end)": 1,
    }


def test_events_at_the_same_time_follow_their_event_id(wh):
    """Ties in time are broken by ``event_id``, whatever the order the rows were stored in
    (and so the same on every engine)."""
    ids = ["t3", "t1", "t5", "t0", "t4", "t2"]
    names = {i: f"E{i[1]}" for i in ids}
    for order in (ids, ids[::-1]):
        events = [{"event_id": "s0", "anonymous_id": "a", "session_id": "s", "event": "Start",
                   "ts": T0}]  # fmt: skip
        events += [
            {"event_id": i, "anonymous_id": "a", "session_id": "s", "event": names[i],
             "ts": T0 + timedelta(minutes=1)}
            for i in order
        ]  # fmt: skip
        put(wh, events=canonical("events", events))
        doc = paths(wh, PathSpec("Start", max_len=6))
        assert [p["path"] for p in doc["paths"]] == ["E0 > E1 > E2 > E3 > E4 > E5"]
