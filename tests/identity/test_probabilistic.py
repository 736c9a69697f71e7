"""Splink matching: typos link, a shared surname does not."""

from __future__ import annotations

import json
import math
import unicodedata

import numpy as np
import pandas as pd
import pytest
from identity_data import load, person

from loupe.identity import probabilistic, resolve_identities
from loupe.names import name_key, place_key


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


def test_place_key_reads_a_city_in_chinese_pinyin_or_english_alike():
    """The city the probabilistic model compares: 上海 and Shanghai agreed nowhere before
    (an e-shop writes the city in pinyin, the CRM in Chinese)."""
    pairs = [
        ("上海市", " Shanghai "),
        ("重庆", "Chongqing"),
        ("成都", "CHENGDU"),
        ("长沙市", "Changsha"),
        ("厦门", "Xiamen"),
        ("西安", "Xi'an"),
        ("北京", "Beijing"),
        ("香港", "Hong Kong"),  # not pinyin: the usual English names are listed
        ("澳门", "Macao"),
        ("台北市", "Taipei"),
        ("乌鲁木齐", "Urumqi"),
    ]
    for chinese, latin in pairs:
        assert place_key(chinese) == place_key(latin), chinese
    assert place_key("上海") != place_key("北京")
    assert place_key("首都") == "shoudu" and place_key("  ") is None and place_key(None) is None


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
    used = set(report.blocking_rules)
    assert used and used <= {*probabilistic.RULES, probabilistic.NAME_AND_BIRTH}
    assert report.match_threshold == wh.settings.identity.match_threshold
    # each pair's levels are the terms of its weight, with the prior's
    prior = math.log2(report.prior_match_probability / (1 - report.prior_match_probability))
    pairs = wh.to_pandas(wh.table("identity_matches"))
    for p in pairs.itertuples():
        levels = json.loads(p.levels)
        assert [lv["comparison"] for lv in levels] == ["name", "birth_date", "city", "gender"]
        assert p.match_weight == pytest.approx(prior + sum(lv["weight"] for lv in levels))
        assert {lv["level"] for lv in levels if lv["comparison"] == "birth_date"} == {
            "Exact match on birth_date"
        }
    crm_pos = pairs[(pairs.record_l == "crm:a") & (pairs.record_r == "pos_members:a")]
    name = json.loads(crm_pos.levels.iloc[0])[0]
    assert name["level"] != "Exact match on name_key"  # Wiemin for Weimin
    assert name["weight"] == pytest.approx(weights[("name", name["level"])]["match_weight"])

    # `loupe identity` prints the weights as a table, the prior and threshold in its title
    import io

    from rich.console import Console

    from loupe.cli.identity import _weights_table

    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(_weights_table(report.to_dict()))
    out = console.file.getvalue()
    prior = round(1 / report.prior_match_probability)
    assert f"prior: 1 pair in {prior:,} matches; a pair links at P ≥ 0.99" in out.replace("\n", " ")
    birth = weights[("birth_date", "Exact match on birth_date")]
    lines = [line.replace("│", " ").split() for line in out.splitlines()]  # rules or none
    row = next(cells for cells in lines if "birth_date" in cells and "Exact" in cells)
    assert row[-1] == f"{birth['match_weight']:+.2f}" and row[-3] == f"{birth['m']:.4g}"


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
    assert report.match_weights == [] and report.blocking_rules == []
    assert report.match_threshold is None
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
        assert r.city == (place_key(src.city) if isinstance(src.city, str) else None)
    assert df.record.is_monotonic_increasing
    keys = dict(zip(raw.loc[df.record, "name"], df.name_key, strict=True))
    assert keys["王伟"] == keys["Wang Wei"] == "wangwei" and keys[" LI  Na "] == "lina"
    cities = dict(zip(raw.loc[df.record, "city"], df.city, strict=True))
    assert (cities["上海"], cities[" Beijing "], cities[""]) == ("shanghai", "beijing", None)
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
                place_key(r.city) if isinstance(r.city, str) else None,
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


def _people_records(n_people: int, seed: int) -> pd.DataFrame:
    """Records of ``n_people`` persons with common names: each has one to three records,
    some with a typo, a missing birth date or another city; half of the second records are
    in their person's deterministic component (so m can be estimated), the rest apart."""
    rng = np.random.default_rng(seed)
    surnames = ["Wang", "Li", "Zhang", "Liu", "Chen"]
    syllables = ["wei", "fang", "na", "min", "jing", "lei", "qiang", "yan", "hua", "tao"]
    syllables += ["li", "jun", "hong", "ping", "bo", "xin", "yu", "chen", "hao", "kai"]
    cities = ["上海", "北京", "深圳", "成都", "杭州", "武汉"]
    rows = []
    for p in range(n_people):
        name = f"{rng.choice(syllables).title()}{rng.choice(syllables)} {rng.choice(surnames)}"
        born = pd.Timestamp("1960-01-01") + pd.Timedelta(days=int(rng.integers(0, 4_000)))
        city, gender = rng.choice(cities), rng.choice(["M", "F"])
        for k in range(int(rng.integers(1, 4))):
            written = name
            if k and rng.random() < 0.3:  # a swapped pair of letters
                i = int(rng.integers(1, len(name) - 2))
                written = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
            rows.append(
                {
                    "record": f"crm:{p:05d}-{k}",
                    "component": f"crm:{p:05d}-0" if k == 1 and rng.random() < 0.5 else None,
                    "name": written,
                    "birth_date": None if k and rng.random() < 0.15 else born,
                    "city": rng.choice(cities) if k and rng.random() < 0.1 else city,
                    "gender": gender,
                }
            )
    df = pd.DataFrame(rows)
    df["component"] = df["component"].fillna(df["record"])
    return df


_TRIO = (
    probabilistic.BIRTH_AND_NAME_INITIAL,
    probabilistic.BIRTH_AND_WRITTEN_INITIAL,
    probabilistic.BIRTH_AND_CITY,
)


def test_the_chosen_blocking_rules_find_what_every_rule_finds(monkeypatch):
    """Rules are left out only when none of their pairs can reach the threshold: the linked
    pairs are those of the full set of rules, whichever rules the model leaves out.  In this
    company a typo weighs about 8 bits and a missing birth date 0, so at 0.99 only the name-
    and-city rule goes, at 0.999 the three birth-date rules too, and at 0.5 none; at 0.5 and
    0.99, pairs the narrowest rule would not find are linked."""
    monkeypatch.setattr(probabilistic, "U_SAMPLE_ROWS", 500)  # u from 125k pairs, for speed
    records = _people_records(1_000, seed=5)
    by = records.set_index("record")
    expected = {0.999: (probabilistic.NAME_AND_BIRTH,), 0.99: _TRIO, 0.5: probabilistic.RULES}
    chosen = {t: probabilistic.match_records(records, threshold=t) for t in expected}
    with monkeypatch.context() as m:
        m.setattr(probabilistic, "blocking_rules", lambda *a: probabilistic.RULES)
        full = probabilistic.match_records(records, threshold=0.5).pairs
    for t, rules in expected.items():
        assert chosen[t].blocking == rules
        linked = full[full.match_probability >= t].reset_index(drop=True)
        pd.testing.assert_frame_equal(chosen[t].pairs, linked)
        left, right = by.loc[linked.record_l], by.loc[linked.record_r]
        same_name = left.name.to_numpy() == right.name.to_numpy()
        same_birth = left.birth_date.to_numpy() == right.birth_date.to_numpy()
        assert same_name.sum() > 50
        if t < 0.999:
            assert (~same_name).sum() > 10
        if t < 0.99:
            assert (~same_birth).sum() > 10


def _model(name: list[float], birth: list[float], city: list[float], gender: list[float]):
    """(m, u) levels whose weights are the given bits (u fixed, m = u · 2^w)."""

    def levels(weights: list[float]) -> list[tuple[float, float]]:
        return [(1e-3 * 2**w, 1e-3) for w in weights]

    return {
        "name": levels(name),
        "birth_date": levels(birth),
        "city": levels(city),
        "gender": levels(gender),
    }


def _probability(weight: float) -> float:
    return 2**weight / (1 + 2**weight)


def test_blocking_rules_follow_the_best_weight_each_rule_can_add():
    """Exact boundaries: a rule is kept from the threshold its best pair reaches."""
    m_u = _model(
        name=[12.0, 3.0, 2.0, 0.5, -8.0],
        birth=[13.0, -19.0],
        city=[4.0, -2.0],
        gender=[1.0, -18.0],
    )
    prior = 2**-17 / (1 + 2**-17)  # a prior weight of -17 bits
    fuzzy_best = -17 + 3.0 + 13.0 + 4.0 + 1.0  # 4: same birth date, a name one edit apart
    apart_best = -17 + 12.0 + 0.0 + 4.0 + 1.0  # 0: same name and city, birth date missing
    nudge = 1e-4

    def rules(weight: float) -> tuple[str, ...]:
        return probabilistic.blocking_rules(m_u, prior, _probability(weight))

    assert rules(fuzzy_best + nudge) == (probabilistic.NAME_AND_BIRTH,)
    assert rules(fuzzy_best - nudge) == _TRIO
    assert rules(apart_best + nudge) == _TRIO
    assert rules(apart_best - nudge) == probabilistic.RULES
    assert probabilistic.blocking_rules(m_u, prior, 1.0) == (probabilistic.NAME_AND_BIRTH,)


def test_each_pair_s_levels_are_read_from_its_bayes_factors():
    """Planted factors: a level's own m/u, 1 (a value missing), and one no level has."""
    levels = (
        probabilistic.MatchLevel("city", "Exact match on city", 0.9, 0.05),  # 18
        probabilistic.MatchLevel("city", "All other comparisons", 0.1, 0.95),
    )
    pairs = pd.DataFrame({"bf_city": [18.0, 0.1 / 0.95, 1.0, 3.0]})
    got = [json.loads(t)[0] for t in probabilistic._pair_levels(pairs, levels)]
    assert [g["level"] for g in got] == [
        "Exact match on city",
        "All other comparisons",
        "null (a value missing)",
        "other",
    ]
    assert [round(g["weight"], 6) for g in got] == [
        round(math.log2(18), 6),
        round(math.log2(0.1 / 0.95), 6),
        0.0,
        round(math.log2(3), 6),
    ]
