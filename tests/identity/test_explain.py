"""explain and ``loupe customers explain``: why a customer is one, and why two are not."""

from __future__ import annotations

import json
import re
from datetime import datetime

import ibis
import pytest
from identity_data import load, make_settings, person

from loupe.cli import main
from loupe.identity import explain, resolve_identities
from loupe.warehouse import Warehouse
from loupe.warehouse.schemas import IDENTITY_MATCHES, schema

FAMILY = "+8613900000000"  # a phone on six records: over the default limit of five


@pytest.fixture
def chain(tmp_path) -> Warehouse:
    """李芳 is one customer of four records in a chain:
    ``pos:9 -phone- crm:1 -email- shop:u1 -user_id- web:u1``.  An identify call puts the
    anonymous id anon-7 on both records of user u1, a second link between them.  crm:1b
    and five store members carry a family phone that the guard refuses (six records, over
    the default limit of five), so each of the six is a customer of its own.  A family
    tablet identified both u1 and u2 (王伟): its anonymous id is refused too."""
    wh = Warehouse.open(make_settings(tmp_path, identity={"probabilistic": False}))
    family = [person("pos", f"f{i}", phone=FAMILY, name=f"家人{i}") for i in range(5)]
    load(
        wh,
        contacts=[
            person("crm", "1", email="li.fang@x.com", phone="+8613812345678", name="李芳"),
            person("crm", "1b", phone=FAMILY),
            person("shop", "u1", user_id="u1", email="li.fang@x.com", name="李芳"),
            person("web", "u1", user_id="u1"),
            person("pos", "9", phone="+8613812345678", name="李芳", city="上海"),
            person("shop", "u2", user_id="u2", name="王伟"),
            *family,
        ],
        events=[
            {
                "source": "web",
                "event_id": f"e{i}",
                "type": "identify",
                "anonymous_id": anon,
                "user_id": user,
                "ts": datetime(2024, 2, 1 + i),
            }
            for i, (anon, user) in enumerate([("anon-7", "u1"), ("tablet", "u1"), ("tablet", "u2")])
        ],
    )
    resolve_identities(wh)
    yield wh
    wh.close()


def _links(doc: dict) -> dict[str, dict]:
    return {f"{x['by']} {x['value']}": x for x in doc["links"]}


def test_each_link_says_which_records_it_joins_and_what_falls_apart_without_it(chain):
    doc = explain(chain, "li.fang@x.com")
    assert [r["record"] for r in doc["records"]] == ["crm:1", "pos:9", "shop:u1", "web:u1"]
    # in this order: user id, e-mail, phone, anonymous id; the apart records sorted
    assert [(x["by"], x["value"], x["records"], x["apart"]) for x in doc["links"]] == [
        # user id u1 and anon-7 join the same two records: neither is needed
        ("user_id", "u1", ["shop:u1", "web:u1"], []),
        ("email", "li.fang@x.com", ["crm:1", "shop:u1"], ["shop:u1", "web:u1"]),
        ("phone", "+8613812345678", ["crm:1", "pos:9"], ["pos:9"]),
        ("anonymous_id", "anon-7", ["shop:u1", "web:u1"], []),
    ]
    assert [(x["needed"], x["splits_off"]) for x in doc["links"]] == [
        (False, 0),
        (True, 2),
        (True, 1),
        (False, 0),
    ]
    assert doc["connected"] is True and doc["name"] == "李芳"
    # the tablet: refused for two user ids (the limit is one), carried by the u1 records
    assert doc["refused"] == [
        {
            "id_type": "anonymous_id",
            "id_value": "tablet",
            "records": 3,
            "limit": 1,
            "carried_by": ["shop:u1", "web:u1"],
        }
    ]


def test_the_report_gives_records_per_customer_and_the_largest_customers(chain):
    """李芳's four records, and seven customers of one: crm:1b and the five on the family
    phone, and 王伟 (the tablet links no one)."""
    report = resolve_identities(chain)  # the same tables again
    assert report.records_per_customer == {
        "1": 7,
        "2": 0,
        "3": 0,
        "4-5": 1,
        "6-10": 0,
        "11-50": 0,
        "51+": 0,
    }
    largest = report.largest_customers
    assert (largest[0]["name"], largest[0]["records"], len(largest)) == ("李芳", 4, 5)
    assert [c["records"] for c in largest[1:]] == [1, 1, 1, 1]


def test_the_refused_identifier_is_listed_with_the_guard_s_count(chain):
    doc = explain(chain, "pos:f0")
    assert doc["records"][0]["record"] == "pos:f0" and len(doc["records"]) == 1
    assert doc["links"] == []
    assert doc["refused"] == [
        {"id_type": "phone", "id_value": FAMILY, "records": 6, "limit": 5, "carried_by": ["pos:f0"]}
    ]


def test_a_refused_identifier_says_whose_records_carry_it(chain):
    doc = explain(chain, "139 0000 0000")  # any format, as customers show takes it
    assert (doc["kind"], doc["id_type"], doc["id_value"]) == ("shared", "phone", FAMILY)
    assert (doc["records"], doc["limit"], doc["customers"]) == (6, 5, 6)
    carriers = {r["record"]: r["name"] for r in doc["carried_by"]}
    assert carriers == {"crm:1b": None, **{f"pos:f{i}": f"家人{i}" for i in range(5)}}
    tablet = explain(chain, "tablet")
    assert (tablet["records"], tablet["customers"]) == (3, 2)
    assert sorted(r["record"] for r in tablet["carried_by"]) == ["shop:u1", "shop:u2", "web:u1"]


def test_two_keys_of_one_customer_give_the_chain_between_them(chain):
    doc = explain(chain, "pos:9", "web:u1")
    assert doc["kind"] == "customer" and doc["ends"] == [["pos:9"], ["web:u1"]]
    assert [(h["from"], h["by"], h["to"]) for h in doc["path"]] == [
        ("pos:9", "phone", "crm:1"),
        ("crm:1", "email", "shop:u1"),
        ("shop:u1", "user_id", "web:u1"),
    ]
    # an identifier names the records carrying it; a customer id names them all: no chain
    assert explain(chain, "+86 138 1234 5678", "u1")["ends"] == [
        ["crm:1", "pos:9"],
        ["shop:u1", "web:u1"],
    ]
    assert explain(chain, "web:u1", "web:u1")["path"] == []
    cid = doc["customer_id"]
    assert explain(chain, cid, "web:u1")["path"] is None


def test_two_customers_on_a_refused_phone_are_told_apart(chain):
    doc = explain(chain, "crm:1b", "pos:f3")
    assert doc["kind"] == "apart" and doc["records"] == [["crm:1b"], ["pos:f3"]]
    assert doc["in_common"] == [
        {"id_type": "phone", "id_value": FAMILY, "records": 6, "limit": 5, "shared": True}
    ]
    assert doc["probabilistic"] == {"on": False, "threshold": None}
    compared = {c["field"]: c["values"] for c in doc["compared"]}
    assert compared["name"] == [None, "家人3"]
    # 李芳 carries nothing of the family's
    assert explain(chain, "li.fang@x.com", "pos:f3")["in_common"] == []


def test_a_probabilistic_match_is_a_link_and_makes_another_unneeded(chain):
    """With a match between pos:9 and crm:1 beside their phone, neither is needed."""
    cid = explain(chain, "pos:9")["customer_id"]
    terms = [{"comparison": "name", "level": "Exact match on name_key", "weight": 11.0}]
    pair = {"record_l": "crm:1", "record_r": "pos:9", "match_probability": 0.998}
    row = {**pair, "match_weight": 9.0, "levels": json.dumps(terms)}
    chain.replace("identity_matches", ibis.memtable([row]).cast(schema(IDENTITY_MATCHES)))
    doc = explain(chain, cid)
    links = _links(doc)
    match = links["match None"]
    assert (match["records"], match["match_probability"], match["needed"]) == (
        ["crm:1", "pos:9"],
        0.998,
        False,
    )
    assert (match["levels"], match["prior_weight"]) == (terms, -2.0)
    assert links["phone +8613812345678"]["needed"] is False
    assert links["email li.fang@x.com"]["splits_off"] == 2


def test_records_no_longer_linked_are_reported(chain):
    """The data changed after identity ran: pos:9 lost its phone."""
    cid = explain(chain, "pos:9")["customer_id"]
    contacts = chain.to_pandas(chain.table("contacts")).to_dict(orient="records")
    for row in contacts:
        if row["source_key"] == "9":
            row["phone"] = None
    load(chain, contacts=contacts)
    assert explain(chain, cid)["connected"] is False


def test_cli_explain(chain, capsys, monkeypatch):
    from loupe.cli import common

    root = chain.settings.root
    (root / "loupe.toml").write_text("[identity]\nprobabilistic = false\n")
    chain.close()
    monkeypatch.setattr(common.out, "width", 80)
    assert main.main(["--project", str(root), "identity"]) == 0
    out = capsys.readouterr().out
    assert "records per customer: 1: 7 · 4-5: 1\n" in out
    assert re.search(r"largest customers \(records\): C\w+ 李芳 \(4\), C\w+ ", out)
    assert main.main(["--project", str(root), "customers", "explain", "li.fang@x.com"]) == 0
    out = capsys.readouterr().out
    assert "4 source records, one customer through 4 links (2 needed)" in out
    assert "phone +8613812345678  needed: without it pos:9 would be apart" in out
    assert main.main(["--project", str(root), "customers", "explain", "pos:f1"]) == 0
    out = capsys.readouterr().out
    assert "1 source record: nothing to link" in out
    assert f"Refused by the over-merge guard (they link no one)\n  phone {FAMILY}: 6 records" in out
    assert main.main(["--project", str(root), "customers", "explain", "pos:9", "web:u1"]) == 0
    out = capsys.readouterr().out
    assert "pos:9 → crm:1  by phone +8613812345678" in out
    assert main.main(["--project", str(root), "customers", "explain", "crm:1b", "pos:f3"]) == 0
    out = capsys.readouterr().out
    assert "are two customers" in out and "refused by the over-merge guard: 6 records" in out
    assert main.main(["--project", str(root), "customers", "explain", FAMILY]) == 0
    out = capsys.readouterr().out
    assert f"phone {FAMILY} links no one: 6 records carry it" in out
    assert "Its records belong to 6 customers" in out and "家人4" in out
    args = ["--project", str(root), "customers", "explain", "pos:9", "--json"]
    assert main.main(args) == 0
    assert json.loads(capsys.readouterr().out)["customer_ids"][0].startswith("C")
    assert main.main(["--project", str(root), "customers", "explain", "nobody@x.com"]) == 1
    assert "No customer found" in capsys.readouterr().err
    assert main.main(["--project", str(root), "customers", "explain", " "]) == 2
    assert "No customer key given" in capsys.readouterr().err
