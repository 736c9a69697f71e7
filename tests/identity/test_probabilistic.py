"""Splink matching: typos link, a shared surname does not."""

from __future__ import annotations

import math
import unicodedata

import numpy as np
import pandas as pd
import pytest
from identity_data import load, person

from loupe.identity import probabilistic, resolve_identities
from loupe.identity.names import name_key


def background() -> list[dict]:
    """Unrelated people, and one deterministic pair so the model sees a known match."""
    rows = [
        person(
            "crm",
            f"bg{i}",
            name=n,
            birth_date=f"19{70 + i}-0{1 + i % 9}-1{i % 9}",
            city=c,
            gender=g,
        )
        for i, (n, c, g) in enumerate(
            [
                ("赵磊", "北京", "M"),
                ("钱静", "深圳", "F"),
                ("孙强", "成都", "M"),
                ("周娜", "杭州", "F"),
                ("吴军", "武汉", "M"),
                ("郑丽", "南京", "F"),
                ("冯涛", "西安", "M"),
                ("陈艳", "重庆", "F"),
            ]
        )
    ]
    rows += [
        person(
            "crm",
            "k1",
            email="k@x.com",
            name="黄杰",
            birth_date="1991-02-03",
            city="广州",
            gender="M",
        ),
        person(
            "eshop_accounts",
            "k1",
            email="k@x.com",
            name="Jie Huang",
            birth_date="1991-02-03",
            city="广州",
            gender="M",
        ),
    ]
    return rows


def test_name_key_reads_chinese_and_pinyin_alike():
    assert name_key("王伟民") == name_key("Weimin Wang") == name_key("WANG Weimin") == "wangweimin"
    assert name_key(None) is None


def test_typo_with_same_birth_date_and_city_links(wh):
    rows = [
        *background(),
        person(
            "crm",
            "a",
            email="a@x.com",
            name="Weimin Wang",
            birth_date="1990-01-02",
            city="上海",
            gender="M",
        ),
        person(
            "pos_members",
            "a",
            phone="+8613800000001",
            name="Wiemin Wang",
            birth_date="1990-01-02",
            city="上海",
            gender="M",
        ),
        person("app", "a", name="王伟民", birth_date="1990-01-02", city="上海", gender="M"),
    ]
    load(wh, contacts=rows)
    report = resolve_identities(wh)
    assert report.probabilistic_links >= 2
    links = wh.to_pandas(wh.table("identity_links"))
    recs = links[links.id_type == "record"].set_index("id_value").customer_id
    assert recs["crm:a"] == recs["pos_members:a"] == recs["app:a"]
    assert report.customers == len(rows) - 3
    weights = {(w["comparison"], w["level"]): w for w in report.match_weights}
    assert weights[("birth_date", "Exact match on birth_date")]["match_weight"] > 5


def test_common_surname_alone_does_not_link(wh):
    rows = [
        *background(),
        person("crm", "w1", name="王伟", birth_date="1988-05-06", city="上海", gender="M"),
        person("pos_members", "w2", name="王芳", birth_date="1993-07-08", city="上海", gender="F"),
        person("app", "w3", name="王伟", birth_date="1979-11-12", city="北京", gender="M"),
    ]
    load(wh, contacts=rows)
    report = resolve_identities(wh)
    assert report.probabilistic_links == 0
    assert report.customers == len(rows) - 1


def test_matching_can_be_switched_off(tmp_path):
    from identity_data import make_settings

    from loupe.warehouse import Warehouse

    w = Warehouse.open(make_settings(tmp_path, identity={"probabilistic": False}))
    rows = [
        person("crm", "a", name="Weimin Wang", birth_date="1990-01-02", city="上海", gender="M"),
        person("app", "a", name="王伟民", birth_date="1990-01-02", city="上海", gender="M"),
    ]
    load(w, contacts=rows)
    report = resolve_identities(w)
    assert report.customers == 2
    assert report.match_weights == []
    w.close()


def _records(n: int) -> pd.DataFrame:
    """``n`` records in ``match_records``' input shape; names repeat, a tenth of the birth
    dates are missing."""
    rng = np.random.default_rng(3)
    days = pd.Timestamp("1960-01-01") + pd.to_timedelta(rng.integers(0, 20_000, n), unit="D")
    return pd.DataFrame(
        {
            "record": [f"crm:{i:05d}" for i in range(n)],
            "component": [f"crm:{i:05d}" for i in range(n)],
            "name": rng.choice(["王伟", "Wang Wei", " LI  Na ", "Zoë Dubois", None], n),
            "birth_date": days.where(rng.random(n) > 0.1),
            "city": rng.choice(["上海", " Beijing ", "", None], n),
            "gender": rng.choice(["M", "f", None], n),
        }
    )


def test_prepare_normalises_each_comparison_column():
    df = probabilistic.prepare(_records(500))
    raw = _records(500).set_index("record")
    for r in df.itertuples():
        src = raw.loc[r.record]
        assert r.name_key == (name_key(src["name"]) if src["name"] else None)
        assert r.birth_date == (None if pd.isna(src.birth_date) else str(src.birth_date)[:10])
        city = src.city.strip().lower() if isinstance(src.city, str) else None
        assert r.city == (city or None)
    assert df.record.is_monotonic_increasing
    keys = dict(zip(raw.loc[df.record, "name"], df.name_key, strict=True))
    assert keys["王伟"] == keys["Wang Wei"] == "wangwei" and keys[" LI  Na "] == "lina"
    plain = dict(zip(raw.loc[df.record, "name"], df.name_plain, strict=True))
    assert plain[" LI  Na "] == "lina" and plain["Zoë Dubois"] == "zoëdubois"
    assert df.birth_date.map(lambda d: d is None or len(d) == 10).all()


def test_u_sample_is_seeded_and_in_record_order(monkeypatch):
    monkeypatch.setattr(probabilistic, "U_SAMPLE_ROWS", 200)
    df = probabilistic.prepare(_records(1_000))
    sample = probabilistic.u_sample(df)
    assert len(sample) == 200 and sample.record.is_monotonic_increasing
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert probabilistic.u_sample(shuffled).record.tolist() == sample.record.tolist()
    other = probabilistic.u_sample(df, seed=7).record
    assert 0 < len(set(other) & set(sample.record)) < 100  # another seed, another sample
    small = df.head(150)
    assert probabilistic.u_sample(small).record.tolist() == small.record.tolist()


def _prepared_row_by_row(records: pd.DataFrame) -> list[list[object]]:
    """The extract by definition: rows in Python's order of the record keys, each value
    normalised on its own, ``None`` for a missing one."""

    def missing(v: object) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT

    def word(v: object) -> object:
        return None if missing(v) else (str(v).strip().lower() or None)

    def day(v: object) -> object:
        if missing(v):
            return None
        return str(v.date()) if isinstance(v, pd.Timestamp) else str(v)[:10]

    def plain(v: object) -> object:
        if missing(v):
            return None
        return "".join(unicodedata.normalize("NFKC", str(v)).lower().split()) or None

    out = []
    for r in sorted(records.itertuples(index=False), key=lambda r: r.record):
        out.append(
            [
                r.record,
                None if missing(r.component) else r.component,
                day(r.birth_date),
                word(r.city),
                word(r.gender),
                name_key(r.name) if isinstance(r.name, str) else None,
                plain(r.name),
            ]
        )
    return out


@pytest.mark.parametrize("dates_as_text", [False, True])
def test_prepare_equals_a_row_by_row_normalisation(dates_as_text):
    """Values are normalised once per distinct value and rows put in order by Arrow: the
    same extract as row by row in Python, in Python's order of the keys (non-ASCII keys
    included), with ``None`` for NaN, NaT and blanks alike."""
    rng = np.random.default_rng(11)
    n = 400
    records = _records(n)
    keys = np.array(["crm:", "app:", "web:", "pos:é", "pos:王", "orders:Z"], dtype=object)
    records["record"] = [f"{keys[i % 6]}{rng.integers(0, 10**6)}-{i}" for i in range(n)]
    records["name"] = rng.choice(
        np.array(["王伟", "Wang  Wei", "", np.nan, None, "Ｚｏë"], dtype=object), n
    )
    records["gender"] = rng.choice(np.array(["M", " f ", "", np.nan, None], dtype=object), n)
    if dates_as_text:
        records["birth_date"] = [
            None if pd.isna(d) else f"{d:%Y-%m-%d} 00:00:00" for d in records["birth_date"]
        ]
    records = records.sample(frac=1.0, random_state=5).reset_index(drop=True)
    got = probabilistic.prepare(records)
    assert list(got.columns) == [
        "record",
        "component",
        "birth_date",
        "city",
        "gender",
        "name_key",
        "name_plain",
    ]
    assert all(str(d) == "object" for d in got.dtypes)
    assert got.to_numpy().tolist() == _prepared_row_by_row(records)
