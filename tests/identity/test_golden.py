"""Golden record: source priority, then recency; first/last seen; order attachment."""

from __future__ import annotations

from datetime import datetime

from identity_data import load, make_settings, person

from loupe.identity import order_customers, resolve_identities
from loupe.warehouse import Warehouse


def test_source_priority_then_recency(tmp_path):
    wh = Warehouse.open(
        make_settings(
            tmp_path,
            identity={"source_priority": ["crm", "eshop_accounts"], "probabilistic": False},
        )
    )
    load(
        wh,
        contacts=[
            person(
                "web",
                "1",
                email="a@x.com",
                name="Web Name",
                city="上海",
                updated_at="2024-06-01 00:00:00",
            ),
            person(
                "eshop_accounts",
                "1",
                email="a@x.com",
                name="Old Shop",
                city="北京",
                updated_at="2023-01-01 00:00:00",
            ),
            person(
                "eshop_accounts",
                "2",
                email="a@x.com",
                name="New Shop",
                updated_at="2024-01-01 00:00:00",
            ),
            person(
                "crm",
                "1",
                email="a@x.com",
                phone=None,
                name=None,
                gender="F",
                signup_at="2022-01-01 00:00:00",
            ),
            person("pos_members", "1", email="a@x.com", phone="+8613800000001"),
        ],
        orders=[
            {
                "order_id": "o1",
                "source": "pos",
                "email": "a@x.com",
                "ordered_at": datetime(2024, 7, 1),
                "amount_base": 5.0,
            }
        ],
        events=[
            {
                "source": "web",
                "event_id": "e1",
                "type": "track",
                "user_id": None,
                "anonymous_id": None,
                "ts": datetime(2021, 1, 1),
            }
        ],
    )
    resolve_identities(wh)
    c = wh.to_pandas(wh.table("customers")).iloc[0]
    assert c["name"] == "New Shop"  # crm has no name; eshop_accounts beats web; newest wins
    assert c["city"] == "北京"  # only eshop_accounts:1 has a city among priority sources
    assert c["gender"] == "F"
    assert c["phone"] == "+8613800000001"  # only an unlisted source has it
    assert list(c["sources"]) == ["crm", "eshop_accounts", "pos_members", "web"]
    assert c["record_count"] == 5
    assert c["first_seen"] == datetime(2022, 1, 1)
    assert c["last_seen"] == datetime(2024, 7, 1)
    oc = wh.to_pandas(order_customers(wh))
    assert list(oc.customer_id) == [c["customer_id"]]
    wh.close()


def test_order_prefers_its_record_over_email(wh):
    load(
        wh,
        contacts=[person("crm", "1", email="a@x.com"), person("crm", "2", email="b@x.com")],
        orders=[
            {
                "order_id": "o1",
                "source": "shop",
                "contact_source": "crm",
                "source_key": "2",
                "email": "a@x.com",
                "ordered_at": datetime(2024, 1, 1),
            },
            {
                "order_id": "o2",
                "source": "shop",
                "email": "guest@x.com",
                "ordered_at": datetime(2024, 1, 1),
            },
        ],
    )
    resolve_identities(wh)
    links = wh.to_pandas(wh.table("identity_links")).set_index("id_value").customer_id
    oc = wh.to_pandas(order_customers(wh)).set_index("order_id").customer_id
    assert oc["o1"] == links["crm:2"]
    assert oc.isna()["o2"]
