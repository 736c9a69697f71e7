"""customer_id_changes: a customer id a merge retires still leads to its customer."""

from __future__ import annotations

import json

import pytest
from identity_data import load, make_settings, person

from loupe.cli import main
from loupe.errors import NotFoundError
from loupe.identity import customer_360, explain, find_customers, resolve_identities
from loupe.warehouse import Warehouse

ANNA = [
    person("crm", "1", email="anna@x.com", name="安娜"),
    person("web", "1", email="anna@x.com", user_id="w1"),
]
BO = [person("crm", "2", phone="+8613812345678", name="安娜")]  # the same person, not yet known
LONE = [person("crm", "3", email="lone@x.com", name="孤")]


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    w = Warehouse.open(make_settings(tmp_path, identity={"probabilistic": False}))
    yield w
    w.close()


def _id(wh: Warehouse, key: str) -> str:
    return customer_360(wh, key)["customer"]["customer_id"]


def _changes(wh: Warehouse) -> list[tuple]:
    t = wh.to_pandas(wh.table("customer_id_changes").order_by("changed_at"))
    return list(zip(t.old_id, t.customer_id.where(t.customer_id.notna(), None), t.reason,
                    t.records, t.old_records, strict=True))  # fmt: skip


def test_a_merge_retires_the_smaller_customer_s_id_and_show_follows_it(wh):
    load(wh, contacts=[*ANNA, *BO, *LONE])
    resolve_identities(wh)
    anna, bo, lone = _id(wh, "anna@x.com"), _id(wh, "crm:2"), _id(wh, "lone@x.com")
    assert len({anna, bo, lone}) == 3 and _changes(wh) == []

    # the shop account carries Anna's e-mail and Bo's phone: one person, Anna's id kept
    bridge = person("shop", "9", email="anna@x.com", phone="+8613812345678")
    load(wh, contacts=[*ANNA, *BO, *LONE, bridge])
    report = resolve_identities(wh)
    assert report.ids_retired == 1
    assert _changes(wh) == [(bo, anna, "merged", 1, 1)]
    doc = customer_360(wh, bo)
    assert doc["customer"]["customer_id"] == anna
    assert (doc["moved"]["old_id"], doc["moved"]["customer_id"], doc["moved"]["via"]) == (
        bo,
        anna,
        [],
    )
    assert customer_360(wh, anna)["moved"] is None
    [heir] = find_customers(wh, bo)["customers"]
    assert (heir["customer_id"], heir["matched"]) == (anna, ["retired id"])
    assert explain(wh, bo)["customer_id"] == anna and explain(wh, bo)["moved"]["old_id"] == bo

    # an unchanged run retires nothing
    assert resolve_identities(wh).ids_retired == 0 and len(_changes(wh)) == 1

    # Lone's customer grows to five records, then joins Anna's four: Lone's id is kept,
    # and Bo's is followed through Anna's
    # (four records carry her e-mail and the knot a fifth: the guard's limit is five)
    big = [person("pos", f"m{i}", email="lone@x.com", user_id="lu") for i in range(3)]
    big.append(person("pos", "m3", user_id="lu"))
    load(wh, contacts=[*ANNA, *BO, *LONE, bridge, *big])
    assert resolve_identities(wh).ids_retired == 0
    knot = person("shop", "10", email="lone@x.com", phone="+8613812345678")
    load(wh, contacts=[*ANNA, *BO, *LONE, bridge, *big, knot])
    resolve_identities(wh)
    assert _changes(wh)[1] == (anna, lone, "merged", 4, 4)
    moved = customer_360(wh, bo)["moved"]
    assert (moved["customer_id"], moved["via"]) == (lone, [anna])

    # every record gone: the id is removed, and show says so
    load(wh, contacts=[person("crm", "8", email="new@x.com")])
    resolve_identities(wh)
    assert _changes(wh)[-1] == (lone, None, "removed", 0, 10)
    with pytest.raises(NotFoundError, match=f"{bo} is no longer a customer id, and none"):
        customer_360(wh, bo)


def test_cli_show_says_the_id_was_retired(wh, capsys, monkeypatch):
    from loupe.cli import common

    load(wh, contacts=[*ANNA, *BO])
    resolve_identities(wh)
    bo = _id(wh, "crm:2")
    load(wh, contacts=[*ANNA, *BO, person("shop", "9", email="anna@x.com", phone="+8613812345678")])
    report = resolve_identities(wh)
    root = wh.settings.root
    (root / "loupe.toml").write_text("[identity]\nprobabilistic = false\n")
    wh.close()
    monkeypatch.setattr(common.out, "width", 80)
    assert main.main(["--project", str(root), "customers", "show", bo]) == 0
    out = capsys.readouterr().out
    assert f"{bo} is no longer a customer id: the identity run of" in out
    assert main.main(["--project", str(root), "customers", "show", bo, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["moved"]["old_id"] == bo
    assert report.ids_retired == 1


@pytest.mark.spark
def test_spark_retires_the_same_id(tmp_path):
    """The merge above, on both engines: the same ids, the same change, and show follows it."""
    seen = {}
    for backend in ("duckdb", "pyspark"):
        settings = make_settings(
            tmp_path / backend, identity={"probabilistic": False}, warehouse={"backend": backend}
        )
        w = Warehouse.open(settings)
        load(w, contacts=[*ANNA, *BO])
        resolve_identities(w)
        bridge = person("shop", "9", email="anna@x.com", phone="+8613812345678")
        load(w, contacts=[*ANNA, *BO, bridge])
        resolve_identities(w)
        seen[backend] = (_changes(w), customer_360(w, _changes(w)[0][0])["moved"]["customer_id"])
        w.close()
    assert seen["duckdb"] == seen["pyspark"]
    assert seen["duckdb"][0][0][2:] == ("merged", 1, 1)
