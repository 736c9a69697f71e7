"""The synthetic company: contract of the files and exactness of the planted truth."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from loupe.errors import LoupeError
from loupe.synth import GenerateReport, generate_company
from loupe.synth.people import make_people
from tests.synth import checks

N = 600


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _truth(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / "truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _events(folder: Path, source: str) -> list[Path]:
    return sorted(folder.glob(f"{source}_events_*.jsonl"))


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    generate_company(tmp_path / "a", customers=300, seed=7)
    generate_company(tmp_path / "b", customers=300, seed=7)
    generate_company(tmp_path / "c", customers=300, seed=8)
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.startswith(("crm", "eshop", "pos", "web", "app")))


def test_months_written_side_by_side_give_the_same_bytes(tmp_path: Path, monkeypatch) -> None:
    """Event months run in threads (``MAX_EVENT_THREADS``): they must share no state."""
    from loupe.synth import generate

    monkeypatch.setattr(generate, "_event_threads", lambda: 1)
    generate_company(tmp_path / "one", customers=300, seed=5)
    monkeypatch.setattr(generate, "_event_threads", lambda: 3)
    generate_company(tmp_path / "three", customers=300, seed=5)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "three")


def test_order_blocks_drawn_side_by_side_give_the_same_bytes(tmp_path: Path, monkeypatch) -> None:
    """Order blocks are drawn and formatted in threads, ahead of the one being written."""
    from loupe.synth import behaviour, generate

    monkeypatch.setattr(behaviour, "BLOCK", 70)  # 300 persons: five blocks
    monkeypatch.setattr(generate, "BLOCK", 70)
    monkeypatch.setattr(generate, "_event_threads", lambda: 1)
    generate_company(tmp_path / "one", customers=300, seed=5)
    monkeypatch.setattr(generate, "_event_threads", lambda: 3)
    generate_company(tmp_path / "three", customers=300, seed=5)
    one = _digest(tmp_path / "one")
    assert one == _digest(tmp_path / "three")
    lines = (tmp_path / "one" / "eshop_orders.csv").read_text(encoding="utf-8").splitlines()
    numbers = [int(line.split(",")[0][1:]) for line in lines[1:] if line[:1] == "E"]
    assert numbers == sorted(numbers)  # blocks written in order (order numbers rise by block)


def test_a_failing_month_stops_the_months_not_yet_started(tmp_path: Path, monkeypatch) -> None:
    """An error (or Ctrl-C) in one month must not wait for the other 23 to be written."""
    import time

    from loupe.synth import generate

    started: list[int] = []

    def month(p, prod, orders, month, *args) -> None:
        started.append(month)
        if month == 1:
            raise OSError("disk full")
        time.sleep(0.1)

    monkeypatch.setattr(generate, "write_month", month)
    monkeypatch.setattr(generate, "_event_threads", lambda: 2)
    with pytest.raises(OSError, match="disk full"):
        generate_company(tmp_path / "x", customers=50, seed=1)
    assert len(started) < 6, started


def test_files_exist_with_exact_headers_and_encodings(tmp_path: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    report = generate_company(tmp_path, customers=N, progress=lambda *a: steps.append(a))
    assert isinstance(report, GenerateReport)
    assert steps[-1][1] == steps[-1][2] and [s[1] for s in steps] == list(range(1, len(steps) + 1))
    for name, header in checks.HEADERS.items():
        enc = "gbk" if name in checks.GBK else "utf-8"
        first = checks.read_bytes(tmp_path / name).split(b"\n", 1)[0].decode(enc)
        assert first == header, name
        assert report.files[name] == len(checks.read_records(tmp_path / name)) - 1
    for src in ("web", "app"):
        months = [p.name for p in _events(tmp_path, src)]
        assert len(months) == 24 and months[0] == f"{src}_events_2024-01.jsonl"
    for name in ("records.csv", "bad_rows.csv", "people.csv", "params.json", "campaigns.csv"):
        assert (tmp_path / "truth" / name).exists()
    params = json.loads((tmp_path / "truth" / "params.json").read_text(encoding="utf-8"))
    assert params["as_of"] == "2026-01-01" and len(params["customer_types"]) == 5
    d = report.to_dict()
    assert d["customers"] == N and d["bad_rows"] == report.bad_rows > 0


def test_spend_is_a_workbook_with_a_summary_and_a_titled_daily_sheet(tmp_path: Path) -> None:
    """The marketing team's spend comes as a workbook: a summary sheet first, then the daily
    rows under a title and a blank row, in typed cells (dates, amounts, counts)."""
    report = generate_company(tmp_path, customers=N, seed=3)
    header, rows, summary = checks.read_spend(tmp_path / "marketing_spend.xlsx")
    assert header == ["date", "channel", "campaign", "spend", "impressions", "clicks", "currency"]
    assert report.files["marketing_spend.xlsx"] == len(rows) > 100
    dates = [r[0] for _, r in rows]
    assert all(isinstance(d, datetime) for d in dates) and dates == sorted(dates)
    assert dates[0] >= datetime(2024, 1, 1) and dates[-1] < datetime(2026, 1, 1)
    paid = {"douyin", "wechat", "baidu", "xiaohongshu", "email", "sms", "app_push", "store"}
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    for _, (_, channel, campaign, spend, shown, clicks, currency) in rows:
        assert channel in paid and str(campaign) and currency == "CNY"
        assert isinstance(spend, int | float) and spend >= 0
        assert isinstance(shown, int) and isinstance(clicks, int) and 0 <= clicks <= shown
        t = totals[str(channel)]
        t[0], t[1], t[2] = t[0] + spend, t[1] + shown, t[2] + clicks
    assert summary[0] == ("channel", "spend", "impressions", "clicks")
    by_channel = {r[0]: r[1:] for r in summary[1:]}
    assert by_channel.keys() == totals.keys()
    for channel, (spend, shown, clicks) in by_channel.items():
        assert spend == pytest.approx(totals[channel][0], abs=0.01)
        assert (shown, clicks) == (totals[channel][1], totals[channel][2])


def test_some_reviews_have_a_follow_up_on_a_second_line(tmp_path: Path) -> None:
    """A follow-up review (追评) sits on a line of its own inside the quoted text, in the
    review's language: the file holds records that span two lines, and each later record's
    location counts both."""
    generate_company(tmp_path, customers=N, seed=2)
    records = checks.read_records(tmp_path / "reviews.csv")
    header, rows = records[0][1], records[1:]
    text, lang = header.index("text"), header.index("lang")
    follow = [(ln, f) for ln, f in rows if "\n" in f[text]]
    assert 0.02 < len(follow) / len(rows) < 0.09, (len(follow), len(rows))
    for _, f in follow:
        _, second = f[text].split("\n")
        assert second.startswith("追评：" if f[lang] == "zh" else "Update: "), f
    spans = [b[0] - a[0] for a, b in itertools.pairwise(rows)]
    assert set(spans) == {1, 2}
    assert sum(s == 2 for s in spans) == sum(1 for ln, _ in follow if ln != rows[-1][0])


def test_row_counts_scale(tmp_path: Path) -> None:
    small = generate_company(tmp_path / "s", customers=400, seed=1)
    large = generate_company(tmp_path / "l", customers=1600, seed=1)
    for name in ("crm_customers.csv", "eshop_orders.csv", "pos_transactions.csv"):
        ratio = large.files[name] / small.files[name]
        assert 2.5 < ratio < 6.0, (name, ratio)
    orders = large.files["eshop_orders.csv"] + large.files["pos_transactions.csv"]
    events = sum(v for k, v in large.files.items() if k.endswith(".jsonl"))
    assert 6 < orders / 1600 < 15
    assert 35 < events / 1600 < 80


def test_bad_rows_truth_is_exact(tmp_path: Path) -> None:
    report = generate_company(tmp_path, customers=N, seed=3)
    detected: set[tuple[str, str]] = set()
    for name in checks.HEADERS:
        detected |= checks.read_csv(tmp_path / name)[2]
    for src in ("web", "app"):
        for path in _events(tmp_path, src):
            detected |= checks.read_events(path)[1]
    planted = {(r["location"], r["kind"]) for r in _truth(tmp_path, "bad_rows.csv")}
    assert planted == detected
    assert report.bad_rows == len(planted)
    kinds = defaultdict(int)
    for _, kind in planted:
        kinds[kind] += 1
    assert set(kinds) == {"wrong_column_count", "bad_date", "negative_quantity", "broken_json"}
    assert min(kinds.values()) >= 3


def test_records_exist_in_their_files(tmp_path: Path) -> None:
    generate_company(tmp_path, customers=N, seed=4)
    records = _truth(tmp_path, "records.csv")
    keys = defaultdict(set)
    for r in records:
        keys[r["source"]].add(r["source_key"])
    assert len(records) == sum(len(v) for v in keys.values())  # one row per key
    for source, name in (
        ("crm", "crm_customers.csv"),
        ("eshop_accounts", "eshop_accounts.csv"),
        ("pos_members", "pos_members.csv.gz"),
    ):
        _, good, _ = checks.read_csv(tmp_path / name)
        assert keys[source] == {fields[0] for _, fields in good}, source
    for src in ("web", "app"):
        ids = {e["userId"] for p in _events(tmp_path, src) for e in checks.read_events(p)[0]
               if e["type"] == "identify"}  # fmt: skip
        assert keys[src] == ids
    people = {r["person_id"] for r in _truth(tmp_path, "people.csv")}
    assert {r["person_id"] for r in records} <= people


def test_identity_constraint_own_at_most_5_shared_at_least_6(tmp_path: Path) -> None:
    generate_company(tmp_path, customers=1500, seed=5)
    person = {
        (r["source"], r["source_key"]): r["person_id"] for r in _truth(tmp_path, "records.csv")
    }
    ident: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)

    def add(kind: str, value: str, record: tuple[str, str]) -> None:
        value = checks.norm_phone(value) if kind == "phone" else checks.norm_email(value)
        if value:
            ident[(kind, value)].add(record)

    for name, source, email_col, phone_col in (
        ("crm_customers.csv", "crm", 4, 5),
        ("eshop_accounts.csv", "eshop_accounts", 1, 2),
        ("pos_members.csv.gz", "pos_members", None, 1),
    ):
        for _, fields in checks.read_csv(tmp_path / name)[1]:
            rec = (source, fields[0])
            if email_col is not None:
                add("email", fields[email_col], rec)
            add("phone", fields[phone_col], rec)
    for src in ("web", "app"):
        for path in _events(tmp_path, src):
            for e in checks.read_events(path)[0]:
                if e["type"] == "identify":
                    rec = (src, e["userId"])
                    add("email", e["traits"].get("email", ""), rec)
                    add("phone", e["traits"].get("phone", ""), rec)
    shared = 0
    for key, recs in ident.items():
        persons = {person[r] for r in recs}
        if len(persons) == 1:
            assert len(recs) <= 5, (key, recs)
        else:
            shared += 1
            assert len(recs) >= 6, (key, recs)
    assert shared >= 3  # store phones and family phones exist


def test_customer_types_behave_differently(tmp_path: Path) -> None:
    generate_company(tmp_path, customers=2000, seed=6)
    by_type: dict[str, list[int]] = defaultdict(list)
    for r in _truth(tmp_path, "people.csv"):
        by_type[r["customer_type"]].append(int(r["eshop_orders"]) + int(r["pos_orders"]))
    mean = {k: sum(v) / len(v) for k, v in by_type.items()}
    assert len(mean) == 5
    assert mean["vip_loyal"] > 2 * mean["bargain_hunter"] > 0
    assert mean["bargain_hunter"] > 2 * mean["occasional"]
    assert mean["family_shopper"] > 2 * mean["occasional"]


def test_events_follow_the_segment_spec(tmp_path: Path) -> None:
    generate_company(tmp_path, customers=N, seed=2)
    _, orders, _ = checks.read_csv(tmp_path / "eshop_orders.csv")
    order_nos = {f[0] for _, f in orders}
    completed, tablets = set(), defaultdict(set)
    for src in ("web", "app"):
        for path in _events(tmp_path, src):
            for e in checks.read_events(path)[0]:
                assert e["type"] in {"track", "identify", "page", "screen"}
                assert checks.parse_ts(e["timestamp"]) is not None
                assert e["messageId"] and e["anonymousId"]
                if e["type"] == "identify":
                    assert e["userId"].startswith("U") and "email" in e["traits"]
                    tablets[e["anonymousId"]].add(e["userId"])
                if e.get("event") == "Order Completed":
                    assert e["properties"]["products"] and "userId" in e
                    completed.add(e["properties"]["order_id"])
    assert completed and len(completed & order_nos) > 0.95 * len(completed)
    assert any(len(u) >= 2 for u in tablets.values())  # family tablets


def test_rejects_bad_customer_count(tmp_path: Path) -> None:
    with pytest.raises(LoupeError):
        generate_company(tmp_path, customers=0)


def test_account_and_card_numbers_are_unique_at_a_million_persons() -> None:
    """A source key stands for one person: 8-digit numbers must not repeat (a hash taken
    modulo the 90M codes repeated 148 times at 200k persons and about 5,500 at 1M)."""
    people = make_people(1_000_000, seed=3)
    everyone = np.arange(people.n)
    for ids in (people.account_ids(everyone), people.card_ids(everyone)):
        assert pc.count_distinct(ids).as_py() == people.n
        assert pc.all(pc.match_substring_regex(ids, "^[UM][1-9][0-9]{7}$")).as_py()
