"""The same resolution on PySpark as on DuckDB."""

from __future__ import annotations

import pytest
from identity_data import load, make_settings, person

from loupe.identity import resolve_identities
from loupe.warehouse import Warehouse

ROWS = [
    person(
        "crm",
        "1",
        email="a@x.com",
        phone="+8613800000001",
        name="王伟民",
        birth_date="1990-01-02",
        city="上海",
        gender="M",
        updated_at="2024-01-01 00:00:00",
    ),
    person("eshop_accounts", "1", email="a@x.com", user_id="u1", name="Weimin Wang"),
    person("app", "1", name="Wiemin Wang", birth_date="1990-01-02", city="上海", gender="M"),
    person(
        "crm", "2", email="b@x.com", name="李芳", birth_date="1985-03-04", city="北京", gender="F"
    ),
    person("web", "2", email="b@x.com", user_id="u2", anonymous_id="an2"),
    *[person("pos_members", str(i), phone="+862100000000", name=f"顾客{i}") for i in range(7)],
]


def resolve(settings):
    wh = Warehouse.open(settings)
    load(wh, contacts=ROWS)
    report = resolve_identities(wh)
    links = (
        wh.to_pandas(wh.table("identity_links"))
        .sort_values(["id_type", "id_value"])
        .reset_index(drop=True)
    )
    customers = (
        wh.to_pandas(wh.table("customers")).sort_values("customer_id").reset_index(drop=True)
    )
    wh.close()
    return report, links, customers


@pytest.mark.spark
def test_pyspark_gives_the_same_customers_as_duckdb(tmp_path):
    rd, ld, cd = resolve(make_settings(tmp_path / "duck"))
    rs, ls, cs = resolve(make_settings(tmp_path / "spark", warehouse={"backend": "pyspark"}))
    assert rd.customers == rs.customers == 9  # a+app typo, b, 7 behind a store phone
    assert rd.probabilistic_links == 1
    assert rd.probabilistic_links == rs.probabilistic_links
    assert ld.equals(ls)
    cd["sources"] = cd["sources"].map(list)
    cs["sources"] = cs["sources"].map(list)
    for col in cd.columns:
        assert cd[col].astype(str).tolist() == cs[col].astype(str).tolist(), col
