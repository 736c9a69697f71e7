"""Tag history stored as changes: unchanged runs add nothing, a change adds exactly the
changed (customer, tag) pairs, removals are explicit, and as-of queries see older values."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pandas as pd
import pytest

from loupe.profile import build_features, build_profile, build_tags
from loupe.profile.tags import TAGS_SCHEMA, current_tags, tag_changes, tags_as_of
from loupe.segments import compute_members, current_members
from loupe.segments.settings import SegmentSettings
from tests.conftest import make_settings
from tests.profile.shop import load_into, make_shop

T1, T2, T3 = datetime(2025, 1, 1, 3), datetime(2025, 2, 1, 3), datetime(2025, 3, 1, 3)


def snapshot(rows: list[tuple[str, str, str]]) -> ibis.Table:
    df = pd.DataFrame(rows, columns=["customer_id", "tag", "value"])
    return ibis.memtable(df, schema=ibis.schema({c: "string" for c in df.columns}))


def history(frames: list[pd.DataFrame]) -> ibis.Table:
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TAGS_SCHEMA.names)
    return ibis.memtable(df, schema=TAGS_SCHEMA)


def values(con, t: ibis.Table) -> set[tuple[str, str, str | None]]:
    df = con.execute(t.select("customer_id", "tag", "value"))
    return {(r.customer_id, r.tag, None if pd.isna(r.value) else r.value) for r in df.itertuples()}


def test_changes_hold_only_what_changed_and_as_of_sees_older_values():
    con = ibis.duckdb.connect()
    tags = ["level", "fav", "vip"]
    first = [
        ("A", "level", "low"),
        ("B", "level", "high"),
        ("A", "fav", "baby"),
        ("A", "fav", "home"),  # a top-k tag with two values
        ("B", "vip", "true"),
    ]
    run1 = con.execute(tag_changes(snapshot(first), history([]), tags, T1))
    assert len(run1) == len(first) and (run1.computed_at == T1).all()
    # the same values again: nothing to append
    assert len(con.execute(tag_changes(snapshot(first), history([run1]), tags, T2))) == 0

    second = [
        ("A", "level", "medium"),  # changed value
        ("B", "level", "high"),  # unchanged
        ("A", "fav", "baby"),  # set {baby, home} -> {baby}
        ("C", "vip", "true"),  # new customer on the tag; B lost it
    ]
    run2 = con.execute(tag_changes(snapshot(second), history([run1]), tags, T2))
    assert values(con, ibis.memtable(run2)) == {
        ("A", "level", "medium"),
        ("A", "fav", "baby"),
        ("C", "vip", "true"),
        ("B", "vip", None),  # the removal, explicit
    }
    both = history([run1, run2])
    assert values(con, current_tags(both)) == set(second)
    assert values(con, tags_as_of(both, T1)) == set(first)
    assert values(con, tags_as_of(both, date(2025, 1, 15))) == set(first)  # a date: end of day
    assert values(con, tags_as_of(both, date(2024, 12, 31))) == set()
    # a tag this run did not evaluate is left alone (no removal rows for it)
    run3 = con.execute(tag_changes(snapshot([("A", "level", "medium")]), both, ["level"], T3))
    assert len(run3) == 1 and run3.iloc[0].value is None and run3.iloc[0].customer_id == "B"


@pytest.fixture
def shop_wh(tmp_path):
    from loupe.warehouse import Warehouse

    wh = Warehouse.open(make_settings(tmp_path))
    load_into(wh, make_shop(seed=5, customers=60, orders=500, events=800))
    yield wh
    wh.close()


def test_reruns_append_only_changes_and_has_tag_reads_the_current_values(shop_wh):
    wh = shop_wh
    first = build_profile(wh, date(2025, 6, 1))
    t = wh.table("customer_tags")
    assert first.tags.rows == wh.count(t) == sum(first.tags.tags.values())
    before = wh.to_pandas(current_tags(t).select("customer_id", "tag", "value"))

    again = build_tags(wh)  # no data change
    assert again.rows == 0 and again.tags == first.tags.tags
    assert wh.count("customer_tags") == first.tags.rows

    build_features(wh, date(2025, 12, 1))
    later = build_tags(wh)
    after = wh.to_pandas(
        current_tags(wh.table("customer_tags")).select("customer_id", "tag", "value")
    )
    # brute force: pairs whose set of values differs; each appends its new values, or one
    # removal row when it has none left
    key = ["customer_id", "tag"]
    old = before.groupby(key).value.agg(frozenset)
    new = after.groupby(key).value.agg(frozenset)
    pairs = old.index.union(new.index)
    changed = [p for p in pairs if old.get(p, frozenset()) != new.get(p, frozenset())]
    assert changed  # half a year later some tags must have moved
    assert later.rows == sum(max(1, len(new.get(p, frozenset()))) for p in changed)
    assert wh.count("customer_tags") == first.tags.rows + later.rows
    assert (
        later.tags == after.groupby("tag").size().reindex(list(later.tags), fill_value=0).to_dict()
    )

    # the old values stay queryable as of the first run
    old_view = wh.to_pandas(
        tags_as_of(wh.table("customer_tags"), first.tags.computed_at).select(*key, "value")
    )
    assert set(map(tuple, old_view.values)) == set(map(tuple, before.values))

    # has_tag (segments) sees the current values, not the older ones
    tag = next(
        name
        for name in later.tags
        if set(before[before.tag == name].customer_id) != set(after[after.tag == name].customer_id)
    )
    compute_members(wh, [SegmentSettings(name="tagged", expr=f'has_tag("{tag}")')])
    members = set(wh.to_pandas(current_members(wh, ["tagged"]))["customer_id"])
    assert members == set(after[after.tag == tag].customer_id)
