"""Funnels by segment, and drop-off lists saved as static segments (through the CLI)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import ibis
import pandas as pd
import pytest
from typer.testing import CliRunner

from loupe.analytics import FunnelSpec, funnel, parse_steps, save_dropoff
from loupe.errors import LoupeError
from loupe.segments import current_members, definitions
from loupe.warehouse import Warehouse
from tests.analytics.conftest import analytics_app, canonical, links, put

T0 = datetime(2024, 3, 1)
LINKS = {("anonymous_id", f"a{i}"): f"c{i}" for i in (1, 2, 4)}
# a1 converts, a2 and a4 stop after View, a3 (anonymous) converts, a5 (anonymous) stops
JOURNEYS = {"a1": ["View", "Buy"], "a2": ["View"], "a3": ["View", "Buy"], "a4": ["View"],
            "a5": ["View"]}  # fmt: skip


def _events():
    rows = [
        {"event_id": f"{a}-{k}", "anonymous_id": a, "event": e, "ts": T0 + timedelta(minutes=k)}
        for a, evs in JOURNEYS.items()
        for k, e in enumerate(evs)
    ]
    return canonical("events", rows)


def _members():
    now, old = datetime(2024, 6, 1), datetime(2024, 5, 1)
    rows = [("vip", "c1", now), ("vip", "c2", now), ("new", "c2", now), ("vip", "c4", old)]
    return ibis.memtable(
        pd.DataFrame(rows, columns=["segment", "customer_id", "computed_at"]),
        schema={"segment": "string", "customer_id": "string", "computed_at": "timestamp"},
    )


def _groups(doc):
    return {g["value"]: [s["count"] for s in g["steps"]] for g in doc["groups"]}


def test_breakdown_by_segment(wh):
    put(wh, events=_events(), identity_links=links(LINKS), segment_members=_members())
    steps = parse_steps("View,Buy")
    doc = funnel(wh, FunnelSpec(steps, breakdown="segment")).to_dict()
    # c4 is only in an older snapshot of vip: it counts as in no segment
    assert _groups(doc) == {"vip": [2, 1], "new": [1, 0], "(none)": [3, 1]}
    assert [s["count"] for s in doc["steps"]] == [5, 2]  # each person once overall
    doc = funnel(wh, FunnelSpec(steps, breakdown="segment:vip")).to_dict()
    assert _groups(doc) == {"vip": [2, 1], "not vip": [3, 1]}
    # the Python API saves the same drop-off list (running the funnel itself)
    saved = save_dropoff(wh, FunnelSpec(steps), 1, "lost")
    assert saved == {"segment": "lost", "size": 2, "anonymous_skipped": 1}
    assert sorted(wh.to_pandas(current_members(wh, ["lost"]))["customer_id"]) == ["c2", "c4"]


@pytest.fixture
def app(settings, monkeypatch):
    return analytics_app(settings, monkeypatch, events=_events(), identity_links=links(LINKS))


def _run(app, *args, code=0):
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == code, res.output
    return json.loads(res.stdout) if code == 0 else res


def test_dropoff_saved_as_static_segment(app, settings):
    args = ["funnel", "--steps", "View,Buy", "--drop-off", "1", "--json"]
    doc = _run(app, *args)
    assert doc["dropoff"]["people"] == ["a5", "c2", "c4"]
    doc = _run(app, *args, "--save-segment", "stopped at view")
    saved = doc["dropoff"]["saved"]
    assert saved == {"segment": "stopped at view", "size": 2, "anonymous_skipped": 1}
    with Warehouse.open(settings) as wh:
        members = wh.to_pandas(current_members(wh, ["stopped at view"]))
        assert sorted(members["customer_id"]) == ["c2", "c4"]
        (seg,) = [d for d in definitions(wh) if d.name == "stopped at view"]
        assert seg.expr == "" and "drop-off after step 1" in seg.description
    res = _run(app, *args, "--save-segment", "stopped at view", code=1)
    assert isinstance(res.exception, LoupeError) and "already exists" in str(res.exception)
    _run(app, *args, "--save-segment", "stopped at view", "--replace")
    res = _run(app, "funnel", "--steps", "View,Buy", "--save-segment", "x", code=1)
    assert isinstance(res.exception, LoupeError) and "--drop-off" in str(res.exception)


def test_segment_breakdown_needs_a_member_table():
    spec = FunnelSpec(parse_steps("View,Buy"), breakdown="segment")
    from loupe.analytics import funnel_people

    with pytest.raises(LoupeError, match="segment_members"):
        funnel_people({"events": _events(), "identity_links": links(LINKS)}, spec)
