"""Retention: the engine matrix against a brute-force pandas reference."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import numpy as np
import pandas as pd
import pytest

from loupe.analytics import RetentionSpec, retention, retention_doc
from loupe.errors import LoupeError
from tests.analytics.conftest import canonical, links, put

T0 = datetime(2024, 1, 3, 15, 0)  # a Wednesday


def generated(seed: int = 3, people: int = 40):
    rng = np.random.default_rng(seed)
    events, orders = [], []
    for i in range(people):
        start = T0 + timedelta(hours=float(rng.integers(0, 24 * 60)))
        src = rng.choice(["wechat", "baidu", ""])
        for j in range(int(rng.integers(1, 8))):
            ts = start + timedelta(hours=float(rng.integers(0, 24 * 70))) if j else start
            ev = rng.choice(["Page Viewed", "Product Viewed", "Order Completed"])
            events.append(
                {"event_id": f"e{i}-{j}", "anonymous_id": f"a{i}", "event": ev, "ts": ts,
                 "utm_source": src if j == 0 else None}
            )  # fmt: skip
        for j in range(int(rng.integers(0, 4))):
            ts = start + timedelta(hours=float(rng.integers(-48, 24 * 70)))
            orders.append(
                {"order_id": f"o{i}-{j}", "source": "shop", "user_id": f"u{i}", "ordered_at": ts,
                 "amount": float(rng.integers(10, 100)), "channel": rng.choice(["app", "store"])}
            )  # fmt: skip
    lk = {("anonymous_id", f"a{i}"): f"c{i}" for i in range(people) if i % 3}
    lk.update({("user_id", f"u{i}"): f"c{i}" for i in range(people) if i % 3})
    return events, orders, lk


def _idx(ts: pd.Timestamp, period: str) -> int:
    if period == "day":
        return (ts.normalize() - pd.Timestamp(0)).days
    if period == "week":
        return ((ts.normalize() - pd.Timestamp(0)).days + 3) // 7
    return ts.year * 12 + ts.month - 1


SHANGHAI = pd.Timedelta(hours=8)


def _local(rows: list[dict], col: str) -> list[dict]:
    return [{**r, col: r[col] + SHANGHAI} for r in rows]


MEMBERS = {"c1": ["vip"], "c2": ["vip", "new"], "c4": ["vip"], "c5": ["vip"], "c8": ["new"]}


def _groups(person: str, channel: str, spec: RetentionSpec) -> list[str]:
    """The split values a person's cohort row falls in (segments from MEMBERS)."""
    if spec.split == "channel":
        return [channel]
    if spec.split == "segment":
        return MEMBERS.get(person) or ["(none)"]
    if spec.split:
        name = spec.split.split(":", 1)[1]
        return [name] if name in MEMBERS.get(person, []) else [f"not {name}"]
    return ["(all)"]


def _segment_members():
    now, old = datetime(2024, 6, 1), datetime(2024, 5, 1)
    rows = [(seg, c, now) for c, segs in MEMBERS.items() for seg in segs]
    rows += [("vip", "c10", old), ("vip", "c11", old)]  # an older snapshot: ignored
    return ibis.memtable(
        pd.DataFrame(rows, columns=["segment", "customer_id", "computed_at"]),
        schema={"segment": "string", "customer_id": "string", "computed_at": "timestamp"},
    )


def reference(events, orders, lk, spec: RetentionSpec) -> pd.DataFrame:
    ev = pd.DataFrame(events)
    ev["person"] = [lk.get(("anonymous_id", a), a) for a in ev["anonymous_id"]]
    od = pd.DataFrame(orders)
    od["person"] = od["user_id"].map(lambda u: lk.get(("user_id", u)))
    od = od.dropna(subset=["person"])
    if spec.acquisition == "event":
        first = ev.sort_values(["ts", "event_id"]).groupby("person").head(1)
        acq = {r.person: (r.ts, r.utm_source or "(direct)") for r in first.itertuples()}
    else:
        first = od.sort_values(["ordered_at", "order_id"]).groupby("person").head(1)
        acq = {r.person: (r.ordered_at, r.channel) for r in first.itertuples()}
    if spec.action == "purchase":
        acts = od.rename(columns={"ordered_at": "ts"})[["person", "ts"]]
    elif spec.action == "any":
        acts = ev[["person", "ts"]]
    else:
        acts = ev[ev["event"] == spec.action][["person", "ts"]]
    seen = [*acts["ts"], *[t for t, _ in acq.values()]]
    if spec.acquisition == "event" or spec.action != "purchase":
        seen += list(ev["ts"])
    last = _idx(max(seen), spec.period)
    act_by: dict = {}
    for person, ts in zip(acts["person"], acts["ts"], strict=True):
        act_by.setdefault(person, []).append(_idx(ts, spec.period))
    rev_by: dict = {}
    for person, ts, amt in zip(od["person"], od["ordered_at"], od["amount"], strict=True):
        rev_by.setdefault(person, []).append((_idx(ts, spec.period), amt))
    rows = []
    cohorts: dict = {}
    for person, (at, ch) in acq.items():
        for group in _groups(person, ch, spec):
            cohorts.setdefault((_idx(at, spec.period), group), []).append(person)
    for (c_idx, ch), members in cohorts.items():
        for p in range(spec.max_periods + 1):
            if p > last - c_idx:
                break
            kept, rev = 0, 0.0
            for person in members:
                offs = [i - c_idx for i in act_by.get(person, []) if i >= c_idx]
                if (p in offs) if spec.mode == "exact" else any(o >= p for o in offs):
                    kept += 1
                rev += sum(a for i, a in rev_by.get(person, []) if i - c_idx == p)
            rows.append((c_idx, ch, p, len(members), kept, rev))
    return pd.DataFrame(rows, columns=["c_idx", "channel", "period", "size", "kept", "rev"])


@pytest.mark.parametrize(
    "spec",
    [
        RetentionSpec(period="week"),
        RetentionSpec(period="day", action="Product Viewed", max_periods=20),
        RetentionSpec(period="month", mode="unbounded", split="channel"),
        RetentionSpec(period="week", acquisition="order", action="purchase", split="channel"),
        RetentionSpec(period="week", action="purchase", mode="unbounded"),
        RetentionSpec(period="week", split="segment"),
        RetentionSpec(period="month", acquisition="order", action="purchase", split="segment:vip"),
        # more than 63 periods: the masks span several words, and so does a cohort's row
        RetentionSpec(period="day", max_periods=100),
        RetentionSpec(period="day", action="Product Viewed", mode="unbounded", max_periods=80),
        RetentionSpec(period="week", action="purchase"),
        RetentionSpec(period="day", acquisition="order", action="Order Completed", max_periods=90),
    ],
    ids=[
        "week-any",
        "day-event",
        "month-unbounded-channel",
        "order-purchase",
        "purchase-unb",
        "week-segments",
        "order-segment-vip",
        "day-any-wide",
        "day-event-unbounded",
        "purchase-exact",
        "order-then-event",
    ],
)
def test_matrix_matches_reference(wh, spec):
    events, orders, lk = generated()
    put(wh, events=canonical("events", events), orders=canonical("orders", orders),
        identity_links=links(lk), segment_members=_segment_members())  # fmt: skip
    got = retention(wh, spec)
    # periods are the project's calendar (the test project is in Asia/Shanghai, UTC+8)
    ref = reference(_local(events, "ts"), _local(orders, "ordered_at"), lk, spec)
    got["c_idx"] = [_idx(pd.Timestamp(c), spec.period) for c in got["cohort"]]
    a = got.set_index(["c_idx", "channel", "period"]).sort_index()
    b = ref.set_index(["c_idx", "channel", "period"]).sort_index()
    assert list(a.index) == list(b.index)
    assert list(a["cohort_size"]) == list(b["size"])
    assert list(a["retained"]) == list(b["kept"])
    np.testing.assert_allclose(a["revenue"], b["rev"])
    np.testing.assert_allclose(a["retention"], b["kept"] / b["size"])
    if spec.split and spec.split.startswith("segment"):  # the split is not trivially one group
        assert {"vip", "(none)" if spec.split == "segment" else "not vip"} <= set(a.index.levels[1])
    doc = retention_doc(got, spec)
    assert doc["cohorts"] and len(doc["cohorts"][0]["retention"]) >= 1


def test_bad_period_and_split():
    with pytest.raises(LoupeError, match="period"):
        RetentionSpec(period="year")  # type: ignore[arg-type]
    with pytest.raises(LoupeError, match="segment:NAME"):
        RetentionSpec(split="city")


def test_channel_of_a_person_seen_under_two_identifiers(wh):
    """The first event across a person's identifiers wins; a tie in time goes to the smaller
    event_id, and an empty utm_source is ``(direct)``."""
    rows = [
        ("b2", "a1", None, T0, "baidu"),  # web visit …
        ("a9", None, "u1", T0, "wechat"),  # … and app login at the same second: a9 < b2
        ("c1", "a1", None, T0 + timedelta(days=8), "baidu"),
        ("d1", "a2", None, T0 + timedelta(hours=1), ""),
        ("d2", "a2", None, T0 + timedelta(hours=2), "baidu"),
    ]
    events = [
        {"event_id": i, "anonymous_id": a, "user_id": u, "event": "Page Viewed", "ts": ts,
         "utm_source": src}
        for i, a, u, ts, src in rows
    ]  # fmt: skip
    lk = {("anonymous_id", "a1"): "c1", ("user_id", "u1"): "c1"}
    put(wh, events=canonical("events", events), orders=canonical("orders", []),
        identity_links=links(lk))  # fmt: skip
    got = retention(wh, RetentionSpec(period="week", split="channel", max_periods=1))
    sizes = got[got["period"] == 0].set_index("channel")["cohort_size"].to_dict()
    assert sizes == {"wechat": 1, "(direct)": 1}
    kept = got[got["period"] == 1].set_index("channel")["retained"].to_dict()
    assert kept == {"wechat": 1, "(direct)": 0}


@pytest.mark.parametrize(
    "spec", [RetentionSpec(), RetentionSpec(action="purchase", mode="unbounded")]
)
def test_no_events_or_orders_give_an_empty_matrix(wh, spec):
    put(wh, events=canonical("events", []), orders=canonical("orders", []),
        identity_links=links({}))  # fmt: skip
    got = retention(wh, spec)
    assert got.empty
    assert retention_doc(got, spec)["cohorts"] == []


def test_periods_are_the_project_calendar_not_utc(wh):
    """Times are stored in UTC; a Shanghai shop's visit at 04:00 on 1 February is 20:00 on
    31 January in UTC. Cohorts and periods follow the project's timezone (the test project is
    Asia/Shanghai), unless the spec names another offset."""
    rows = [
        ("e1", "a1", datetime(2024, 1, 31, 20, 0)),  # 2024-02-01 04:00 in Shanghai
        ("e2", "a1", datetime(2024, 2, 29, 17, 0)),  # 2024-03-01 01:00 in Shanghai
        ("e3", "a2", datetime(2024, 1, 10, 12, 0)),  # January either way
        ("e4", "a2", datetime(2024, 2, 10, 12, 0)),
    ]
    events = [
        {"event_id": i, "anonymous_id": a, "event": "Page Viewed", "ts": ts} for i, a, ts in rows
    ]
    put(wh, events=canonical("events", events), orders=canonical("orders", []),
        identity_links=links({}))  # fmt: skip

    def cells(spec):
        got = retention(wh, spec)
        return {(str(r.cohort)[:7], int(r.period)): int(r.retained) for r in got.itertuples()}

    local = cells(RetentionSpec(period="month", max_periods=1))
    assert local == {("2024-01", 0): 1, ("2024-01", 1): 1, ("2024-02", 0): 1, ("2024-02", 1): 1}
    utc = cells(RetentionSpec(period="month", max_periods=1, utc_offset_minutes=0))
    assert utc[("2024-01", 0)] == 2 and utc[("2024-01", 1)] == 2  # both people in January
