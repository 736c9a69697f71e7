"""Standardisers against hand-written expectations, and their engine twins against them."""

from __future__ import annotations

import random
from datetime import date, datetime

import ibis
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from loupe.quality import normalise_email, normalise_gender, normalise_phone, parse_date
from loupe.quality import standardise as st

E164 = "+8613800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "+86 138-0013-8000",
        "0086 13800138000",
        "138 0013 8000",
        "13800138000",
        "+8613800138000",
        "(+86) 138.0013.8000",
        "8613800138000",
        "１３８００１３８０００",
    ],
)
def test_phone_formats_give_e164(raw):
    assert normalise_phone(raw, "CN") == E164


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("010-12345678", "CN", "+861012345678"),
        ("+1 650-253-0000", "CN", "+16502530000"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("2345 6789", "HK", "+85223456789"),
        ("123", "CN", None),
        ("12345678901234567890", "CN", None),
        ("not a phone", "CN", None),
        ("", "CN", None),
        (None, "CN", None),
        ("+86 100 0000 0000", "CN", None),
    ],
)
def test_phone_other_numbers(raw, region, expected):
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Li.Na@Example.COM ", "li.na@example.com"),
        ("wang_wei+vip@qq.com", "wang_wei+vip@qq.com"),
        ("ZHANG@163.COM", "zhang@163.com"),
        ("user@mail.company.com.cn", "user@mail.company.com.cn"),
        ("ｌｉ＠ｑｑ．ｃｏｍ", "li@qq.com"),
        ("li.na@", None),
        ("@qq.com", None),
        ("li..na@qq.com", None),
        ("li na@qq.com", None),
        ("li@localhost", None),
        ("li@example.test", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_email(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("男", "M"),
        ("女", "F"),
        ("M", "M"),
        ("f", "F"),
        ("male", "M"),
        ("Female", "F"),
        (" FEMALE ", "F"),
        ("先生", "M"),
        ("女士", "F"),
        ("小姐", "F"),
        ("", None),
        (None, None),
        ("unknown", None),
        ("?", None),
    ],
)
def test_gender(raw, expected):
    assert normalise_gender(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-05", date(2024, 3, 5)),
        ("2024/3/5", date(2024, 3, 5)),
        ("20240305", date(2024, 3, 5)),
        ("2024年3月5日", date(2024, 3, 5)),
        ("2024.03.05", date(2024, 3, 5)),
        (" 1990-12-31 ", date(1990, 12, 31)),
        ("1990-12-31 08:00:00", date(1990, 12, 31)),
        ("2024-02-30", None),
        ("20241301", None),
        ("05/03/2024", None),
        ("March 5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


GENDERS = [
    "男",
    "女",
    "M",
    "F",
    "male",
    "female",
    "Female",
    " 先生",
    "女士",
    "",
    None,
    "??",
    "unknown",
]
DATES = [
    "2024-03-05",
    "2024/3/5",
    "20240305",
    "2024年3月5日",
    "2024-02-30",
    "x",
    "",
    None,
    "1990-1-31",
]


def _none(v):
    return None if v is None or v != v else v


def test_engine_twins_agree_with_python():
    t = ibis.memtable({"g": GENDERS}, schema={"g": "string"})
    got = t.select(g=t.g, n=st.gender_expr(t.g), bad=st.gender_unreadable_expr(t.g)).execute()
    assert [_none(v) for v in got["n"]] == [normalise_gender(g) for g in GENDERS]
    assert list(got["bad"]) == [st.gender_is_unreadable(g) for g in GENDERS]

    d = ibis.memtable({"s": DATES}, schema={"s": "string"})
    parsed = d.select(p=st.date_expr(d.s)).execute()["p"]
    as_dates = [_none(v) for v in parsed]
    as_dates = [v.date() if isinstance(v, datetime) else v for v in as_dates]
    assert as_dates == [parse_date(s) for s in DATES]


def _slow_phone(s: str, region: str) -> str | None:
    try:
        n = phonenumbers.parse(s, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def test_phone_fast_path_agrees_with_phonenumbers():
    rng = random.Random(7)
    samples = [f"1{rng.randrange(10**10):010d}" for _ in range(3000)]
    samples += [f"+86{s}" for s in samples[:500]] + [f"0086{s}" for s in samples[500:1000]]
    for s in samples:
        assert normalise_phone(s, "CN") == _slow_phone(s, "CN"), s


def _lookup_frame(lookup):
    frame = lookup.execute()
    return dict(zip(frame["key"], frame["value"], strict=True))


@pytest.mark.parametrize("region", ["CN", "US", "GB", "HK"])
def test_phone_lookup_over_an_array_equals_the_standardiser_key_by_key(region):
    # The lookup decides most keys with Arrow regular expressions over the whole array
    # (_fast_phones); every key must get what the standardiser gives it alone.
    rng = random.Random(11)
    cc = str(phonenumbers.country_code_for_region(region))
    keys = ["1" + f"{rng.randrange(10**10):010d}" for _ in range(400)]  # CN-shaped mobiles
    keys += [f"{rng.randrange(10**9, 10**10)}" for _ in range(400)]  # ten digits: US-shaped
    keys += ["07" + f"{rng.randrange(10**9):09d}" for _ in range(200)]  # GB-shaped mobiles
    keys += [f"{rng.choice('569')}{rng.randrange(10**7):07d}" for _ in range(200)]  # HK-shaped
    keys += [f"{p}{k}" for k in keys[::3] for p in ("+" + cc, "00" + cc, "011" + cc)][:1500]
    keys += ["+" + k for k in keys[:100]] + ["++8613800138000", "+", "0086", "12", "1" * 18]
    keys += ["１３８００１３８０００", "+86１３８00138000", "abc", "13800138000x", ""]
    expected = {k: st._phone(k, region) or "" for k in set(keys)}
    for k, want in expected.items():  # and the fast paths agree with phonenumbers
        if k.isascii() and k.removeprefix("+").isdigit():
            assert want == (_slow_phone(k, region) or ""), k
    lookup, timing = st.phone_lookup([*keys, None], region)
    assert _lookup_frame(lookup) == expected
    assert timing.distinct_values == len(expected)


def test_lookups_take_an_arrow_array():
    keys = pa.chunked_array([["13800138000", None, "bad"], ["13800138000", "008613912345678"]])
    assert _lookup_frame(st.phone_lookup(keys, "CN")[0]) == {
        "13800138000": "+8613800138000",
        "bad": "",
        "008613912345678": "+8613912345678",
    }
    emails = pa.array(["a@b.com", "not an address", None, "a@b.com"])
    assert _lookup_frame(st.email_lookup(emails)[0]) == {"a@b.com": "a@b.com", "not an address": ""}


def test_email_fast_path_agrees_with_email_validator():
    import email_validator

    cases = ["a@b.com", "a.b-c@x-y.cn", "a@b.c.com", "a@-b.com", "a@b-.com", "a@123.com",
             "x@b.hk", "!#$%@qq.com", "a@b.io", "a@" + "b" * 64 + ".com"]  # fmt: skip
    for s in cases:
        try:
            want = email_validator.validate_email(s, check_deliverability=False).normalized
        except email_validator.EmailNotValidError:
            want = None
        assert normalise_email(s) == want, s


NATIONAL = hs.sampled_from(["13800138000", "13912345678", "18600001111", "15000000000"])


@settings(max_examples=200, deadline=None)
@given(
    national=NATIONAL,
    prefix=hs.sampled_from(["", "+86", "0086", "+86 ", "0086 ", "+86-"]),
    seps=hs.lists(
        hs.tuples(hs.integers(0, 11), hs.sampled_from([" ", "-", "  ", " - "])), max_size=4
    ),
)
def test_phone_invariant_to_prefix_and_separators(national, prefix, seps):
    s = national
    for pos, sep in sorted(seps, reverse=True):
        s = s[:pos] + sep + s[pos:]
    expected = normalise_phone(national, "CN")
    assert expected is not None
    assert normalise_phone(prefix + s, "CN") == expected


@settings(max_examples=200, deadline=None)
@given(hs.text(alphabet="0123456789+-() ", max_size=20))
def test_phone_idempotent(s):
    once = normalise_phone(s, "CN")
    if once is not None:
        assert normalise_phone(once, "CN") == once
        assert once.startswith("+") and once[1:].isdigit()


def test_a_place_is_written_as_most_records_write_it():
    """Planted: 上海 in most rows, against Shanghai, SHANGHAI and 上海市; 苏州 and 宿州 (one
    key, suzhou) beside a Latin Suzhou that could be either; Beijing written in Latin more
    often than in Chinese; a tie between 广州 and Guangzhou."""
    counts = {
        "上海": 100, "Shanghai": 10, "SHANGHAI": 1, "上海市": 3,
        "苏州": 50, "宿州": 5, "Suzhou": 7, "苏州市": 2,
        "北京": 2, "Beijing": 5,
        "广州": 3, "Guangzhou": 3,
        "沙市": 4, "杭州": 9,
    }  # fmt: skip
    assert st.canonical_places(counts) == {
        "Shanghai": "上海",
        "SHANGHAI": "上海",
        "上海市": "上海",
        "苏州市": "苏州",  # the same characters: one place
        "北京": "Beijing",
        "Guangzhou": "广州",  # a tie goes to the Chinese characters
    }
    _, timing, changes = st.place_lookup(
        pa.table({"value": list(counts), "n": list(counts.values())})
    )
    assert timing.distinct_values == len(counts)
    assert [(c.written, c.standard, c.rows) for c in changes] == [
        ("Shanghai", "上海", 10),
        ("Guangzhou", "广州", 3),
        ("上海市", "上海", 3),
        ("北京", "Beijing", 2),
        ("苏州市", "苏州", 2),
        ("SHANGHAI", "上海", 1),
    ]
    assert changes[0].to_dict() == {"from": "Shanghai", "to": "上海", "rows": 10}


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("中国", "CN"), ("China", "CN"), (" cn ", "CN"), ("PRC", "CN"), ("P.R. China", "CN"),
        ("中華人民共和國", "CN"),
        ("香港", "HK"), ("Hong Kong", "HK"), ("澳门", "MO"), ("Macau", "MO"), ("台灣", "TW"),
        ("USA", "US"), ("美国", "US"), ("uk", "GB"), ("Deutschland", "DE"), ("Allemagne", "DE"),
        ("Côte d’Ivoire", "CI"), ("Cote d'Ivoire", "CI"),
        ("ao", "AO"),  # Angola's code, though a language names Austria so
        ("Mars", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_a_country_written_any_way_has_its_iso_code(written, code):
    assert st.country_code(written) == code
