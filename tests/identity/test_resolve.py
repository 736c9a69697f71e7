"""resolve_identities: guard, identify events, stable ids, order invariance."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from identity_data import load, make_settings, person

from loupe.identity import resolve_identities
from loupe.warehouse import Warehouse
from loupe.warehouse.functions import hash64


def groups(wh) -> set[frozenset[str]]:
    """Records grouped by customer (ignores the ids themselves)."""
    links = wh.to_pandas(wh.table("identity_links"))
    recs = links[links.id_type == "record"]
    return {frozenset(g.id_value) for _, g in recs.groupby("customer_id")}


def record_ids(wh) -> dict[str, str]:
    links = wh.to_pandas(wh.table("identity_links"))
    recs = links[links.id_type == "record"]
    return dict(zip(recs.id_value, recs.customer_id, strict=True))


@pytest.fixture
def det(tmp_path: Path):
    """A warehouse with probabilistic matching off (pure deterministic graph)."""
    w = Warehouse.open(make_settings(tmp_path, identity={"probabilistic": False}))
    yield w
    w.close()


def test_shared_phone_above_limit_does_not_merge(det):
    store = "+862100000000"
    rows = [person("pos_members", str(i), phone=store, email=f"p{i}@x.com") for i in range(6)]
    load(det, contacts=rows)
    report = resolve_identities(det)
    assert report.customers == 6
    assert report.shared_identifiers == 1
    assert report.shared_top[0] == {"id_type": "phone", "id_value": store, "records": 6}
    shared = det.to_pandas(det.table("shared_identifiers"))
    assert list(shared.id_value) == [store]
    links = det.to_pandas(det.table("identity_links"))
    assert store not in set(links.id_value)


def test_blank_identifiers_do_not_link_and_padded_ones_do(det):
    # user_ids are not trimmed by quality: a blank one must not join records, a padded one
    # is still an identifier (as it is written).
    blanks = ["", " ", "  ", "\t", " \n "]
    rows = [person("crm", f"b{i}", user_id=v) for i, v in enumerate(blanks)]
    rows += [person("app", f"b{i}", user_id=v) for i, v in enumerate(blanks)]
    rows += [person("crm", "p1", user_id=" u1"), person("app", "p1", user_id=" u1")]
    rows += [person("crm", "q1", user_id="u2\t"), person("app", "q1", user_id="u2\t")]
    load(det, contacts=rows)
    resolve_identities(det)
    merged = {g for g in groups(det) if len(g) > 1}
    assert merged == {frozenset({"crm:p1", "app:p1"}), frozenset({"crm:q1", "app:q1"})}


def test_is_present_is_not_null_and_not_blank(det):
    from loupe.identity.graph import is_present

    values = [None, "", " ", "\t\n", " a", "a ", "a", "\u3000", "\x0b\x0c"]
    t = ibis.memtable(pd.DataFrame({"v": values}), schema={"v": "string"})
    got = list(det.to_pandas(t.select(p=is_present(t.v)))["p"])
    assert got == [v is not None and v.strip(" \t\n\r\x0b\x0c") != "" for v in values]


def test_phone_at_the_limit_merges(det):
    family = "+8613900000000"
    load(det, contacts=[person("crm", str(i), phone=family) for i in range(5)])
    report = resolve_identities(det)
    assert report.customers == 1
    assert report.duplicates_merged == 4
    assert report.shared_identifiers == 0


def test_family_tablet_does_not_merge_users(det):
    load(
        det,
        contacts=[person("web", "a", user_id="u1"), person("web", "b", user_id="u2")],
        events=[
            {
                "source": "web",
                "event_id": f"e{i}",
                "type": "identify",
                "anonymous_id": "tablet",
                "user_id": u,
                "ts": datetime(2024, 1, 1),
            }
            for i, u in enumerate(["u1", "u2"])
        ],
    )
    report = resolve_identities(det)
    assert report.customers == 2
    assert {s["id_value"] for s in report.shared_top} == {"tablet"}


def test_identify_event_links_anonymous_id(det):
    load(
        det,
        contacts=[
            person("eshop_accounts", "1", user_id="u1", email="a@x.com"),
            person("web", "v9", anonymous_id="anon-9"),
        ],
        events=[
            {
                "source": "web",
                "event_id": "e1",
                "type": "identify",
                "anonymous_id": "anon-9",
                "user_id": "u1",
                "ts": datetime(2024, 1, 1),
            }
        ],
    )
    report = resolve_identities(det)
    assert report.customers == 1
    assert groups(det) == {frozenset({"eshop_accounts:1", "web:v9"})}
    links = det.to_pandas(det.table("identity_links"))
    assert set(links.id_type) == {"user_id", "email", "anonymous_id", "record"}


def test_every_event_gets_its_person_key(det):
    """After a run, ``event_persons`` holds each event with an identifier and the hash of its
    person: the customer its ids link to, else the visitor's own anonymous id.  Loading
    events again drops it, so it is never read stale."""
    t = datetime(2024, 1, 1)
    event = {"source": "web", "type": "track", "event": "View", "ts": t}
    load(
        det,
        contacts=[person("eshop_accounts", "1", user_id="u1", email="a@x.com")],
        events=[
            {
                **event,
                "event_id": "e1",
                "type": "identify",
                "anonymous_id": "an-1",
                "user_id": "u1",
            },
            {**event, "event_id": "e2", "anonymous_id": "an-1"},
            {**event, "event_id": "e3", "anonymous_id": "an-2"},
            {**event, "event_id": "e4", "anonymous_id": "", "user_id": None},
        ],
    )
    resolve_identities(det)
    (cid,) = set(record_ids(det).values())
    got = det.to_pandas(det.table("event_persons"))
    key = {v: det.scalar(hash64(ibis.literal(v), det.backend)) for v in (cid, "an-2")}
    assert sorted(got.pk.tolist()) == sorted([key[cid], key[cid], key["an-2"]])
    assert set(got.event) == {"View"} and (got.ts == t).all()
    load(det, events=[{**event, "event_id": "e5", "anonymous_id": "an-3"}])
    assert not det.exists("event_persons")


def test_chain_of_identifiers_is_one_customer(det):
    rows = [
        person("crm", f"{i:02d}", email=f"e{i}@x.com", phone=f"+86138000000{i:02d}")
        for i in range(10)
    ]
    for i in range(1, 10):  # record i also carries record i-1's e-mail through user ids
        rows[i]["user_id"] = f"u{i}"
    rows += [
        person("app", f"{i:02d}", user_id=f"u{i}", email=f"e{i - 1}@x.com") for i in range(1, 10)
    ]
    load(det, contacts=rows)
    report = resolve_identities(det)
    assert report.customers == 1
    assert report.converged


def test_ids_are_stable_across_runs_and_additions(det):
    rows = [
        person("crm", "1", email="a@x.com"),
        person("web", "1", email="a@x.com"),
        person("crm", "2", phone="+8613800000002"),
    ]
    load(det, contacts=rows)
    resolve_identities(det)
    first = record_ids(det)
    resolve_identities(det)
    assert record_ids(det) == first
    load(det, contacts=[*rows, person("app", "0", email="new@x.com")])
    resolve_identities(det)
    again = record_ids(det)
    assert {k: again[k] for k in first} == first
    assert again["app:0"] not in first.values()


def test_merge_keeps_larger_id_and_split_keeps_id_in_larger_part(det):
    big = [person("crm", str(i), email="a@x.com") for i in range(3)]
    small = [person("web", "9", phone="+8613800000009")]
    load(det, contacts=big + small)
    resolve_identities(det)
    before = record_ids(det)
    bridge = person("app", "b", email="a@x.com", phone="+8613800000009")
    load(det, contacts=[*big, *small, bridge])
    resolve_identities(det)
    merged = record_ids(det)
    assert set(merged.values()) == {before["crm:0"]}
    # remove the bridge again: the big part keeps the id, the small one gets a new one
    load(det, contacts=big + small)
    resolve_identities(det)
    split = record_ids(det)
    assert split["crm:0"] == before["crm:0"]
    assert split["web:9"] != before["crm:0"]


def test_new_ids_do_not_depend_on_processing_order(tmp_path_factory):
    rows = [person("crm", str(i), email=f"{i % 3}@x.com") for i in range(9)]
    out = []
    for order in (rows, rows[::-1]):
        w = Warehouse.open(
            make_settings(tmp_path_factory.mktemp("o"), identity={"probabilistic": False})
        )
        load(w, contacts=order)
        resolve_identities(w)
        out.append(record_ids(w))
        w.close()
    assert out[0] == out[1]


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_resolution_does_not_depend_on_record_order(tmp_path_factory, data):
    n = data.draw(st.integers(2, 8))
    emails = data.draw(
        st.lists(st.sampled_from(["a@x.com", "b@x.com", None]), min_size=n, max_size=n)
    )
    phones = data.draw(st.lists(st.sampled_from(["+8613800000001", None]), min_size=n, max_size=n))
    rows = [
        person("crm", f"{i}", email=e, phone=p)
        for i, (e, p) in enumerate(zip(emails, phones, strict=True))
    ]
    perm = data.draw(st.permutations(rows))
    results = []
    for order in (rows, perm):
        w = Warehouse.open(
            make_settings(tmp_path_factory.mktemp("p"), identity={"probabilistic": False})
        )
        load(w, contacts=list(order))
        resolve_identities(w)
        results.append(
            pd.DataFrame(w.to_pandas(w.table("identity_links")))
            .sort_values(["id_type", "id_value"])
            .reset_index(drop=True)
        )
        w.close()
    pd.testing.assert_frame_equal(results[0], results[1])


def test_customers_from_orders_when_asked(tmp_path: Path):
    """``customers_from_orders``: the people behind orders that name no contact record become
    customers (one per order source and user id, else e-mail, else phone) and link to a
    contact that carries the same identifier; off by default, orders make no customers."""
    t = datetime(2025, 1, 1)
    contacts = [person("crm", "1", user_id="u1", email="li@x.com", name="李芳")]
    orders = [
        {"order_id": "o1", "source": "shop", "user_id": "u1", "ordered_at": t, "amount": 1.0},
        {"order_id": "o2", "source": "shop", "user_id": "u2", "ordered_at": t, "amount": 2.0},
        {"order_id": "o3", "source": "shop", "user_id": "u2", "ordered_at": t, "amount": 3.0},
        {"order_id": "o4", "source": "shop", "email": "guest@x.com", "ordered_at": t, "amount": 4.0},
        {"order_id": "o5", "source": "pos", "email": "li@x.com", "ordered_at": t, "amount": 5.0},
        # names its contact record: attaches through it, makes no record of its own
        {"order_id": "o6", "source": "shop", "contact_source": "crm", "source_key": "1",
         "user_id": "u9", "ordered_at": t, "amount": 6.0},
    ]  # fmt: skip
    for on in (False, True):
        root = tmp_path / str(on)
        root.mkdir()
        wh = Warehouse.open(
            make_settings(root, identity={"probabilistic": False, "customers_from_orders": on})
        )
        load(wh, contacts=contacts, orders=orders)
        report = resolve_identities(wh)
        if not on:
            assert report.customers == 1 and report.records == 1
            wh.close()
            continue
        assert groups(wh) == {
            frozenset({"crm:1", "orders:shop:u1", "orders:pos:li@x.com"}),
            frozenset({"orders:shop:u2"}),
            frozenset({"orders:shop:guest@x.com"}),
        }
        from loupe.identity import order_customers

        owners = wh.to_pandas(order_customers(wh)).set_index("order_id").customer_id
        assert owners["o1"] == owners["o5"] == owners["o6"]
        assert owners["o2"] == owners["o3"] != owners["o1"]
        assert owners.nunique() == 3
        from loupe.identity import customer_360

        doc = customer_360(wh, "u2")  # the 360 lists the record made of the orders
        assert [(r["source"], r["source_key"], r["location"]) for r in doc["records"]] == [
            ("orders:shop", "u2", "")
        ]
        assert doc["orders"]["count"] == 2
        wh.close()
