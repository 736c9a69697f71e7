"""Deduplication: exact duplicates counted, the latest version of a natural key kept."""

from __future__ import annotations

import hashlib
from datetime import datetime

import ibis
import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loupe.quality import dedupe, run_quality

from .rawdata import write_raw


def _rows(wh, table, order_by):
    return wh.to_pandas(wh.table(table).order_by(order_by))


def test_contacts_keep_latest_version_and_count_exact_duplicates(wh):
    old, new = datetime(2024, 1, 1), datetime(2024, 3, 1)
    write_raw(
        wh,
        "contacts",
        [
            {"source": "crm", "source_key": "1", "name": "old", "updated_at": old},
            {"source": "crm", "source_key": "1", "name": "new", "updated_at": new},
            {"source": "crm", "source_key": "1", "name": "no date", "updated_at": None},
            {"source": "crm", "source_key": "2", "name": "same", "signup_at": old},
            {"source": "crm", "source_key": "2", "name": "same", "signup_at": old},
            {"source": "crm", "source_key": "2", "name": "same", "signup_at": old},
            {"source": "app", "source_key": "1", "name": "other source"},
        ],
    )
    # a later batch re-exports key 3; without dates the later load wins
    write_raw(wh, "contacts", [{"source": "crm", "source_key": "3", "name": "first"}], batch="b1")
    write_raw(
        wh,
        "contacts",
        [
            {
                "source": "crm",
                "source_key": "3",
                "name": "second",
                "_loaded_at": datetime(2024, 7, 1),
            }
        ],
        batch="b2",
    )
    report = run_quality(wh)
    got = _rows(wh, "contacts", ["source", "source_key"])
    assert list(zip(got.source, got.source_key, got.name, strict=True)) == [
        ("app", "1", "other source"),
        ("crm", "1", "new"),
        ("crm", "2", "same"),
        ("crm", "3", "second"),
    ]
    t = report.table("contacts")
    assert (t.rows_in, t.rows_out, t.exact_duplicates, t.superseded) == (9, 4, 2, 3)


def test_higher_line_wins_within_a_batch(wh):
    write_raw(
        wh,
        "orders",
        [
            {
                "source": "s",
                "order_id": "o1",
                "ordered_at": datetime(2024, 1, 1),
                "amount": 1.0,
                "_line": 9,
            },
            {
                "source": "s",
                "order_id": "o1",
                "ordered_at": datetime(2024, 1, 1),
                "amount": 2.0,
                "_line": 3,
            },
        ],
    )
    run_quality(wh)
    assert list(_rows(wh, "orders", "order_id").amount) == [1.0]


def test_events_keep_first_copy_and_null_keys_are_not_merged(wh):
    ts = datetime(2024, 5, 1)
    write_raw(
        wh,
        "events",
        [
            {"source": "web", "event_id": "e1", "ts": ts, "event": "first", "_line": 2},
            {"source": "web", "event_id": "e1", "ts": ts, "event": "resent", "_line": 3},
            {"source": "web", "event_id": None, "ts": ts, "event": "a", "_line": 4},
            {"source": "web", "event_id": None, "ts": ts, "event": "b", "_line": 5},
        ],
    )
    report = run_quality(wh)
    got = _rows(wh, "events", "_line")
    assert list(got.event) == ["first", "a", "b"]
    assert report.table("events").superseded == 1


_ROW = st.tuples(
    st.sampled_from(["a", "b", None]),  # source
    st.sampled_from(["1", "2", "3", None]),  # event_id
    st.sampled_from(["x", "y"]),  # the rest of the content
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_ROW, max_size=30))
@example(rows=[("a", "1", "x"), ("a", "1", "x"), ("a", "1", "y"), ("a", None, "x")] * 2)
@example(rows=[("a", "1", "x"), ("a", "1", "x"), ("b", "2", "x"), ("b", "2", "y")])
def test_counts_equal_a_count_of_distinct_rows_and_versions(wh, rows):
    # What counts must find, straight from the definition: exact duplicates are rows whose
    # whole content repeats; superseded versions are, per complete natural key, its distinct
    # contents but one.  Rows whose keys are all distinct (the count of keys alone), repeated
    # keys of one content or of several (the full count) and NULL keys (never superseded,
    # still deduplicated) all occur.
    distinct = set(rows)
    versions: dict[tuple[str, str], int] = {}
    for source, event_id, _ in distinct:
        if source is not None and event_id is not None:
            versions[(source, event_id)] = versions.get((source, event_id), 0) + 1
    expected = dedupe.DedupeCounts(
        exact_duplicates=len(rows) - len(distinct),
        superseded=sum(n - 1 for n in versions.values()),
    )
    content = [hashlib.md5(repr(r).encode()).hexdigest() for r in rows]
    raw = pa.table(
        {
            "source": pa.array([r[0] for r in rows], pa.string()),
            "event_id": pa.array([r[1] for r in rows], pa.string()),
            dedupe.HASH: pa.array(content, pa.string()),
        }
    )
    assert dedupe.counts(wh, ibis.memtable(raw), "events", len(rows)) == expected
