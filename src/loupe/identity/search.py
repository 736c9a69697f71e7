"""Finding customers by part of what is known about them (``loupe customers find``).

``loupe customers show`` needs an identifier whole: a customer id, an e-mail, a phone or a
user id.  A CRM or store team more often has a piece: a name, the last four digits of a phone,
the start of an e-mail, a city, an old address the golden record no longer shows.  This finds
the customers that match every word of such a query, on their golden record and on every
identifier of their source records (``identity_links``), so that a customer is found by an
e-mail or phone that survivorship did not keep.  A word in pinyin also finds the Chinese names
it reads as (``zhang qiang`` finds 张强; :func:`loupe.names.pinyin_pattern`).

It is one Ibis query on the ``customers`` and ``identity_links`` tables, so it runs on either
engine; the few rows it returns are described in Python.
"""

from __future__ import annotations

import re
from typing import Any

import ibis
import ibis.expr.types as ir

from loupe.errors import LoupeError
from loupe.identity.customer360 import _rows, normalise_email, normalise_phone, retired_id
from loupe.names import PLACE_EXONYMS, pinyin_pattern, place_key, place_pattern
from loupe.quality.standardise import country_code
from loupe.warehouse import Warehouse

#: Golden-record columns a query word is looked for in (lower-cased, as a part).
TEXT_FIELDS = ("customer_id", "name", "email", "user_id", "city", "region", "country")
#: Identifier types of the source records a word is looked for in.
LINK_TYPES = ("email", "phone", "user_id", "record")
#: Columns of a found customer, in this order.
SHOWN = ("customer_id", "name", "email", "phone", "user_id", "city", "last_seen")
#: Golden-record columns a word is looked for in that a found customer does not show.
_NOT_SHOWN = tuple(f for f in TEXT_FIELDS if f not in SHOWN)
#: Fewest digits for a word to be looked for in phone numbers ("138", "5678").
PHONE_DIGITS = 3
_PHONE_WORD = re.compile(r"^\+?[\d\-().]+$")


def _words(query: str, region: str) -> list[str]:
    """The query's words, lower-cased.  A whole e-mail is one word; so is a phone number
    written with spaces, in E.164 when it is a whole number (``138 1234 5678``), else as its
    digits (``138 0013``, the start of one)."""
    text = query.strip()
    if "@" in text and " " not in text:
        return [normalise_email(text)]
    words = text.split()
    if len(words) > 1 and all(_PHONE_WORD.match(w) for w in words):
        return [normalise_phone(text, region) or re.sub(r"\D", "", text)]
    return [w.casefold() for w in words]


def _digits(word: str) -> str | None:
    """The digits of a word that looks like (part of) a phone number, else None."""
    if not _PHONE_WORD.match(word):
        return None
    digits = re.sub(r"\D", "", word)
    return digits if len(digits) >= PHONE_DIGITS else None


def _golden_match(customers: ir.Table, word: str) -> ir.BooleanValue:
    cond = ibis.literal(False)
    for field in TEXT_FIELDS:
        cond |= customers[field].lower().contains(word).fill_null(False)
    digits = _digits(word)
    if digits is not None:
        cond |= customers.phone.contains(digits).fill_null(False)
    pinyin = pinyin_pattern(word)
    if pinyin is not None:  # "wang" finds 王芳: the name in Chinese characters, by its pinyin
        cond |= customers.name.re_search(pinyin).fill_null(False)
    place = place_pattern(word)
    if place is not None:  # "shanghai" finds 上海: a whole city (a part would find 丽水 by
        cond |= customers.city.re_search(place).fill_null(False)  # "li", a surname)
    latin = _latin_places(word)
    if latin:  # "上海" finds Shanghai, "hongkong" Hong Kong: a whole city in Latin letters
        cond |= customers.city.lower().re_replace("[^a-z]", "").isin(latin).fill_null(False)
    country = _country(word)
    if country is not None:  # "中国" and "china" find CN, as quality writes countries
        cond |= (customers.country == country).fill_null(False)
    return cond


def _country(word: str) -> str | None:
    """The ISO code of a country a word names (``中国``, ``china``, ``deutschland``), or None;
    a two-letter code is a part of the country as written already (``cn``), and most two
    letters are a code of some country (``li``, a surname, is Liechtenstein)."""
    if len(word) <= 2 and word.isascii():
        return None
    return country_code(word)


def _latin_places(word: str) -> list[str]:
    """How the place ``word`` names is written in Latin letters, as letters only: its pinyin
    (上海: ``shanghai``; ``xi'an``: ``xian``) and the usual names that are not pinyin (香港
    and ``xianggang``: ``hongkong``).  A city is compared whole with these, so ``hongkong``
    finds ``Hong Kong``."""
    key = place_key(word)
    if not (key and key.isascii() and key.isalpha()):
        return []
    return [key, *(name for name, k in PLACE_EXONYMS.items() if k == key)]


def _whole_pinyin(words: list[str]) -> list[str]:
    """Patterns for a name that is the whole query in pinyin, in either order of the words
    (``wang fang`` and ``fang wang`` are 王芳)."""
    orders = dict.fromkeys(["".join(words), "".join(reversed(words))])
    return [p for w in orders if (p := pinyin_pattern(w, whole=True)) is not None]


def _link_match(links: ir.Table, word: str) -> ir.BooleanValue:
    """A link whose identifier holds ``word``: a record by its source key (``crm:C001`` by
    ``c001``, not by ``crm``, which every record of the source holds) or whole."""
    value, kind = links.id_value.lower(), links.id_type
    key = value.re_extract(r"^[^:]*:(.*)$", 1)
    cond = ibis.ifelse(kind == "record", key.contains(word) | (value == word), value.contains(word))
    digits = _digits(word)
    if digits is not None:
        cond |= (kind == "phone") & value.contains(digits)
    return kind.isin(LINK_TYPES) & cond.fill_null(False)


def find_customers(wh: Warehouse, query: str, limit: int = 20) -> dict[str, Any]:
    """The customers matching every word of ``query``.

    A word matches a customer when it is part of (any case) the customer's id, name, e-mail,
    user id, city, region or country, or of an e-mail, phone, user id or record
    (``source:source_key``) of one of the customer's source records.  A word of three digits or
    more (``5678``, ``138-1234``) is also looked for in the phone numbers.  A whole e-mail or
    phone number with spaces is one word; a phone is matched in E.164 whatever its format.

    Returns
    -------
    dict
        ``query``, ``words`` (as searched), ``total`` (customers matching) and ``customers``
        (the first ``limit``, 0 for all: ``customer_id, name, email, phone, user_id, city,
        last_seen, record_count, matched``).  A customer whose id, name, e-mail, phone or user
        id is the whole query comes first, then the most recently seen.  ``matched`` names the
        golden-record columns a word was found in, and ``source records`` when a word was
        found only in an identifier the golden record does not show.
    """
    words = _words(query, wh.settings.project.default_region)
    if not words:
        raise LoupeError(
            "Nothing to search for",
            where="customers find",
            fix="give part of a name, e-mail, phone or id",
        )
    customers = wh.table("customers")
    links = wh.table("identity_links")
    found = customers
    # a customer id a merge retired finds the customer now holding its records
    moved = retired_id(wh, query.strip()) if len(words) == 1 else None
    heir = moved["customer_id"] if moved else None
    for word in words:
        linked = links.filter(_link_match(links, word)).select("customer_id").distinct()
        found = found.filter(
            _golden_match(found, word)
            | found.customer_id.isin(linked.customer_id)
            | found.customer_id.isin([heir] if heir else [])
        )
    whole = words[0] if len(words) == 1 else query.strip().casefold()
    exact = found.customer_id.isin([heir] if heir else [])
    for field in ("customer_id", "name", "email", "phone", "user_id"):
        exact |= (found[field].lower() == whole).fill_null(False)
    for pattern in _whole_pinyin(words):
        exact |= found.name.re_search(pattern).fill_null(False)
    ranked = found.mutate(_exact=exact).order_by(
        [ibis.desc("_exact"), ibis.desc("last_seen"), "customer_id"]
    )
    if limit > 0:
        ranked = ranked.limit(limit)
    total = int(wh.to_pandas(found.aggregate(n=found.count()))["n"].iloc[0])
    rows = _rows(wh.to_pandas(ranked.select(*SHOWN, "record_count", *_NOT_SHOWN)))
    for row in rows:
        row["matched"] = ["retired id"] if row["customer_id"] == heir else _matched(row, words)
        for field in _NOT_SHOWN:  # read to say where a word matched
            del row[field]
    near = _near(wh, " ".join(words), limit) if total == 0 else []  # a name of two words too
    return {"query": query, "words": words, "total": total, "customers": rows, "near": near}


def _allowed_edits(word: str) -> int:
    """Typing mistakes forgiven in a whole value: none in a short word (``王伟`` is one edit
    from every 王 with a two-character name), one up to seven characters, then two."""
    shortest = 3 if any(ord(ch) > 127 for ch in word) else 4
    if len(word) < shortest:
        return 0
    return 1 if len(word) < 8 else 2


def _near(wh: Warehouse, word: str, limit: int) -> list[dict[str, Any]]:
    """Customers with a value a typing mistake or two from the whole of ``word`` (the words
    of a query, joined by a space: ``anna schmit`` is one edit from the name Anna Schmidt):
    an e-mail, a name, a user id, a customer id or a record's key, or a phone number's last
    digits.  Each row has ``matched`` (the field) and ``edits``; fewest edits first."""
    k = _allowed_edits(word)
    if k == 0:
        return []
    n = len(word)
    digits = _digits(word)
    customers = wh.table("customers")
    links = wh.table("identity_links")

    def close(value: ir.StringValue) -> ir.IntegerValue:
        value = value.lower()
        near_length = (value.length() - n).abs() <= k  # cheap, before the edit distance
        return ibis.ifelse(near_length, value.levenshtein(word), k + 1)

    parts = []
    for field in ("email", "name", "user_id", "customer_id"):
        parts.append(
            customers.select(
                "customer_id", field=ibis.literal(field), edits=close(customers[field])
            )
        )
    key = links.id_value.re_extract(r"^[^:]*:(.*)$", 1)
    value = ibis.ifelse(links.id_type == "record", key, links.id_value)
    kinds = links.id_type.isin(["email", "user_id", "record"])
    parts.append(
        links.filter(kinds).select(
            "customer_id", field=ibis.literal("source records"), edits=close(value)
        )
    )
    if digits is not None and len(digits) >= 7:  # a phone number mistyped: its last digits
        for table, col, field in ((customers, customers.phone, "phone"),
                                  (links.filter(links.id_type == "phone"), links.id_value,
                                   "source records")):  # fmt: skip
            tail = col.substr(col.length() - len(digits))
            parts.append(
                table.select(
                    "customer_id",
                    field=ibis.literal(field),
                    edits=ibis.ifelse(col.length() >= len(digits), tail.levenshtein(digits), k + 1),
                )
            )
    hits = ibis.union(*parts).filter(lambda t: (t.edits <= k) & (t.edits > 0))
    best = hits.group_by("customer_id").agg(edits=hits.edits.min())
    fields = hits.join(best, ["customer_id", "edits"]).select("customer_id", "field").distinct()
    ranked = best.join(customers, "customer_id").order_by(
        ["edits", ibis.desc("last_seen"), "customer_id"]
    )
    if limit > 0:
        ranked = ranked.limit(limit)
    rows = _rows(wh.to_pandas(ranked.select(*SHOWN, "record_count", "edits")))
    found = wh.to_pandas(fields.filter(fields.customer_id.isin([r["customer_id"] for r in rows])))
    where: dict[str, list[str]] = {}
    for r in found.itertuples():
        where.setdefault(str(r.customer_id), []).append(str(r.field))
    order = ("email", "name", "user_id", "customer_id", "phone", "source records")
    for row in rows:
        row["matched"] = sorted(where.get(row["customer_id"], []), key=order.index)
    return rows


def _matched(row: dict[str, Any], words: list[str]) -> list[str]:
    """The golden-record columns of ``row`` a word is part of, and ``source records`` when a
    word is in none of them (it matched an identifier of a source record)."""
    fields: list[str] = []
    elsewhere = False
    for word in words:
        digits = _digits(word)
        hit = [f for f in TEXT_FIELDS if word in str(row.get(f) or "").casefold()]
        if digits is not None and digits in str(row.get("phone") or ""):
            hit.append("phone")
        pinyin = pinyin_pattern(word)
        place = place_pattern(word)
        city = str(row.get("city") or "")
        if pinyin is not None and re.search(pinyin, str(row.get("name") or "")):
            hit.append("name")
        if place is not None and re.search(place, city):
            hit.append("city")
        if re.sub("[^a-z]", "", city.lower()) in _latin_places(word):
            hit.append("city")
        country = _country(word)
        if country is not None and country == row.get("country"):
            hit.append("country")
        hit = list(dict.fromkeys(hit))
        fields += hit
        elsewhere |= not hit
    return list(dict.fromkeys(fields)) + (["source records"] if elsewhere else [])
