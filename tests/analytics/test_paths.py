"""Paths after / before an event, Sankey links, exits and loops on a small fixed journey."""

from __future__ import annotations

from datetime import datetime, timedelta

from loupe.analytics import PathSpec, paths
from tests.analytics.conftest import canonical, put

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
