"""find_customers and ``loupe customers find``: customers by part of what is known of them."""

from __future__ import annotations

import json

import pytest
from identity_data import load, person
from test_customer360 import fill

from loupe import names
from loupe.cli import main
from loupe.errors import LoupeError, NotFoundError
from loupe.identity import customer_360, find_customers, resolve_identities
from loupe.identity.search import SHOWN
from loupe.warehouse import Warehouse


def _names(doc: dict) -> list[str]:
    return [c["name"] for c in doc["customers"]]


@pytest.fixture
def found(wh: Warehouse) -> Warehouse:
    """The customers of ``fill`` (李芳, with two records and orders; 张强), plus 李芳华, seen
    last, and an old e-mail of 李芳's that her golden record does not show."""
    fill(wh)
    contacts = wh.to_pandas(wh.table("contacts")).to_dict(orient="records")
    extra = [
        person("crm", "3", email="fanghua@y.com", name="李芳华", signup_at="2025-06-01"),
        # an unranked source after crm: the golden record keeps the CRM e-mail
        person("pos", "9", user_id="u1", email="old.fang@y.com"),
    ]
    load(wh, contacts=[*contacts, *extra])
    resolve_identities(wh)
    return wh


def test_a_word_is_found_in_any_column_and_every_word_must_match(found):
    assert _names(find_customers(found, "x.com")) == ["李芳", "张强"]  # last seen first
    doc = find_customers(found, "X.COM 张")
    assert (_names(doc), doc["words"], doc["customers"][0]["matched"]) == (
        ["张强"],
        ["x.com", "张"],
        ["email", "name"],  # in the order of the words
    )
    assert find_customers(found, "x.com nobody")["total"] == 0


def test_the_whole_query_comes_first_then_the_last_seen(found):
    """李芳华 was seen last, but 李芳 is the whole query."""
    assert _names(find_customers(found, "李芳")) == ["李芳", "李芳华"]
    assert _names(find_customers(found, "芳")) == ["李芳华", "李芳"]
    doc = find_customers(found, "芳", limit=1)
    assert (doc["total"], _names(doc)) == (2, ["李芳华"])


def test_phones_by_their_digits_and_whole_in_any_format(found):
    doc = find_customers(found, "5678")
    assert (_names(doc), doc["customers"][0]["matched"]) == (["李芳"], ["phone"])
    assert find_customers(found, "138 1234 5678")["words"] == ["+8613812345678"]
    assert _names(find_customers(found, "+86 138-1234-5678")) == ["李芳"]
    assert find_customers(found, "138 1234")["words"] == ["1381234"]  # the start of a number
    assert _names(find_customers(found, "138 1234")) == ["李芳"]


def test_an_identifier_the_golden_record_does_not_show_finds_its_customer(found):
    """The old e-mail is in identity_links, not in the golden record; a record is found by
    its key, not by its source's name, which every record of the source holds."""
    doc = find_customers(found, "old.fang")
    [customer] = doc["customers"]
    assert customer["email"] == "li.fang@x.com" and customer["matched"] == ["source records"]
    assert _names(find_customers(found, "crm:2")) == ["张强"]
    assert find_customers(found, "crm")["total"] == 0
    with pytest.raises(LoupeError, match="Nothing to search for"):
        find_customers(found, "   ")


def test_cli_find(found, capsys, monkeypatch):
    from loupe.cli import common

    root = found.settings.root
    (root / "loupe.toml").write_text("")
    found.close()
    monkeypatch.setattr(common.out, "width", 80)
    assert main.main(["--project", str(root), "customers", "find", "李芳"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    assert "li.fang@x.com" in out and "fanghua@y.com" in out
    assert "2 of 2 customers; `loupe customers show ID` shows one" in out
    assert main.main(["--project", str(root), "customers", "find", "old", "fang", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["total"], doc["words"]) == (1, ["old", "fang"])
    assert main.main(["--project", str(root), "customers", "find", "nobody"]) == 0
    assert "no customer matches 'nobody'" in capsys.readouterr().out
    assert main.main(["--project", str(root), "customers", "find", "other@x.con"]) == 0
    out = capsys.readouterr().out
    assert "close to it, a typing mistake or two away" in out and "张强" in out


def test_show_with_a_name_lists_the_customers_it_matches(found):
    """A name is no identifier: ``customers show`` said only "No customer found"."""
    with pytest.raises(NotFoundError, match=r"No identifier is '李芳华'; 1 customer matches it: C"):
        customer_360(found, "李芳华")
    with pytest.raises(
        NotFoundError, match=r"; 2 customers match it: C\w+ \(李芳\), C\w+ \(李芳华\)\n"
    ):
        customer_360(found, "李芳")
    with pytest.raises(NotFoundError, match=r"^No customer found for 'nobody@x.com'\n"):
        customer_360(found, "nobody@x.com")


def test_a_country_by_its_name_and_a_region_said_where_it_matched(found):
    """Quality writes countries as ISO codes, so 中国, China and PRC all find CN; a word
    found in the region says so (until 2026-12-08 it said "source records": the region
    and country were not read back to say where a word matched)."""
    contacts = found.to_pandas(found.table("contacts")).to_dict(orient="records")
    more = [
        person("crm", "6", name="赵六", country="CN", region="广东"),
        person("crm", "7", name="钱七", country="HK"),
        person("crm", "8", name="孙八", country="DE"),
    ]
    load(found, contacts=[*contacts, *more])
    resolve_identities(found)
    for query in ("中国", "China", "prc", "cn"):
        doc = find_customers(found, query)
        assert (_names(doc), doc["customers"][0]["matched"]) == (["赵六"], ["country"]), query
    assert _names(find_customers(found, "香港")) == ["钱七"]
    assert _names(find_customers(found, "deutschland")) == ["孙八"]
    doc = find_customers(found, "广东")
    assert (_names(doc), doc["customers"][0]["matched"]) == (["赵六"], ["region"])
    assert set(doc["customers"][0]) == {*SHOWN, "record_count", "matched"}
    assert find_customers(found, "li")["total"] == 2  # 李芳, 李芳华: not Liechtenstein's LI


def test_a_chinese_name_is_found_by_its_pinyin(found):
    """张强's e-mail holds no pinyin, so only his name can match; 张强东 was seen last, but
    张强 is the whole query, in either order of its words."""
    contacts = found.to_pandas(found.table("contacts")).to_dict(orient="records")
    more = person("crm", "4", email="d@z.com", name="张强东", signup_at="2025-07-01")
    cities = [
        person("crm", "6", name="赵六", city="Shanghai"),
        person("crm", "7", city="上海市"),
        person("crm", "8", name="周八", city="丽水"),  # 丽 is li
        person("crm", "9", name="吴九", city="Dalian"),
        person("crm", "10", name="郑十", city="Hong Kong"),
        person("crm", "11", name="冯十一", city="澳门"),
    ]
    load(found, contacts=[*contacts, more, person("crm", "5", name="吕娜"), *cities])
    resolve_identities(found)
    for query in ("zhangqiang", "zhang qiang", "qiang zhang", "Qiang ZHANG"):
        doc = find_customers(found, query)
        assert _names(doc) == ["张强", "张强东"], query
        assert doc["customers"][0]["matched"] == ["name"]
    assert _names(find_customers(found, "dong")) == ["张强东"]
    assert _names(find_customers(found, "lv")) == ["吕娜"]  # ü typed as v
    # a city in Chinese finds it in pinyin, and the other way round
    for query in ("上海", "shanghai", "Shanghai"):
        doc = find_customers(found, query)
        assert sorted(map(str, _names(doc))) == ["None", "赵六"], query
        assert [c["matched"] for c in doc["customers"]] == [["city"], ["city"]], query
    # a city by its other script matches whole: li (a surname) is not 丽水, 李 not Dalian
    # (which "li" is part of, as written)
    assert "周八" not in _names(find_customers(found, "li"))
    assert _names(find_customers(found, "李")) == ["李芳华", "李芳"]
    assert _names(find_customers(found, "lishui")) == ["周八"]
    # a usual name that is not pinyin: 香港 is Hong Kong, Macau 澳门
    for query, name in (("香港", "郑十"), ("hongkong", "郑十"), ("macau", "冯十一")):
        doc = find_customers(found, query)
        assert (_names(doc), doc["customers"][0]["matched"]) == ([name], ["city"]), query
    # xian is 先 or 西安: a word is looked for in every way it splits into syllables
    assert names.pinyin_pattern("xian").count("|") == 1
    # not pinyin, or not whole syllables: looked for as text only
    assert find_customers(found, "zhangq")["total"] == 0
    assert names.pinyin_pattern("hello") is None and names.pinyin_pattern("n") is None


def test_a_whole_value_mistyped_finds_the_customers_close_to_it(found):
    """Nothing matches, so the customers a typing mistake or two away are offered."""
    doc = find_customers(found, "li.fsng@x.com")
    assert doc["total"] == 0
    assert [(c["name"], c["matched"], c["edits"]) for c in doc["near"]] == [
        ("李芳", ["email", "source records"], 1)
    ]
    # a phone number with its last digit wrong, in any format
    [near] = find_customers(found, "138 1234 5679")["near"]
    assert (near["name"], near["matched"]) == ("李芳", ["phone", "source records"])
    # a name: fewest edits, then the last seen
    assert [c["name"] for c in find_customers(found, "李芳芳")["near"]] == ["李芳华", "李芳"]
    # a query of several words, compared whole: until 2026-12-08 only one word was
    contacts = found.to_pandas(found.table("contacts")).to_dict(orient="records")
    load(found, contacts=[*contacts, person("crm", "7", name="Anna Schmidt")])
    resolve_identities(found)
    doc = find_customers(found, "anna schmit")
    assert (doc["total"], [(c["name"], c["edits"]) for c in doc["near"]]) == (
        0,
        [("Anna Schmidt", 1)],
    )
    # nothing offered beside a match, or for a word too short to tell a mistake
    assert find_customers(found, "li.fang")["near"] == []
    assert find_customers(found, "李华")["near"] == [] and find_customers(found, "zz")["near"] == []
    with pytest.raises(NotFoundError, match=r"'li.fsng@x.com'; close to it: C\w+ \(李芳\)"):
        customer_360(found, "li.fsng@x.com")
