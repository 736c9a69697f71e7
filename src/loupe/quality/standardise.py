"""Standardisers: email, phone (E.164), countries (ISO 3166), place names, gender, dates and
currencies.

Three kinds, all pure:

* Library-based (email, phone, country): a Python function per value, cached, with a cheap
  fast path before the library call.  The stage applies them to the DISTINCT raw values only
  (customer sized), via :func:`email_lookup`, :func:`phone_lookup` and
  :func:`country_lookup`, and joins the result back in the engine.
* Place names (city, region): decided over the distinct values and their counts, since the
  way to write a place is the way most records write it (:func:`place_lookup`).
* Rule-based (gender, dates, currency): an Ibis expression (CASE / regex / ``TRY_CAST``) that
  runs in the engine, plus a Python twin with exactly the same rules for callers and tests.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Literal

import email_validator
import ibis
import ibis.expr.types as ir
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from loupe.names import place_core, place_key
from loupe.warehouse import functions as fn

Gender = Literal["F", "M"]

# -- email ---------------------------------------------------------------------------------------

# Shapes email-validator always accepts: a dot-atom local part and a host name under a common
# top-level domain.  Anything else (quotes, IDN, rare TLDs, special-use names) goes to the library.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_COMMON_TLDS = "com|cn|net|org|edu|gov|io|hk|tw|mo|sg|jp|kr|uk|de|fr|us|co|info|biz|me|top|xyz"
_EMAIL_FAST = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:{_COMMON_TLDS})")
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def email_key(s: str) -> str:
    """The cheap normalisation the engine applies before the lookup: trim, lower-case."""
    return s.strip().lower()


def normalise_email(s: str | None) -> str | None:
    """Trim, lower-case and syntax-check an email address.

    Returns the normalised address, or ``None`` when it is missing or not a valid address
    (``email-validator`` rules, without a deliverability (DNS) check).

    >>> normalise_email("  Li.Na@Example.COM ")
    'li.na@example.com'
    >>> normalise_email("li.na@") is None
    True
    """
    if s is None:
        return None
    return _email(email_key(str(s)))


@lru_cache(maxsize=1 << 20)
def _email(key: str) -> str | None:
    if not key:
        return None
    if not key.isascii():
        key = unicodedata.normalize("NFKC", key).lower()
    if len(key) <= 254 and _EMAIL_FAST.fullmatch(key) and len(key.partition("@")[0]) <= 64:
        return key
    if not _EMAIL_SHAPE.fullmatch(key):
        return None
    try:
        result = email_validator.validate_email(key, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return None
    return str(result.normalized).lower()


# -- phone ---------------------------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s\-().·/]")
#: The same separators as an engine regex (RE2 and Java syntax agree on it).
PHONE_SEPARATORS_SQL = r"[\s\-().·/]"


def phone_key(s: str) -> str:
    """The cheap normalisation the engine applies before the lookup: drop separators."""
    return _PHONE_SEPARATORS.sub("", s)


def normalise_phone(s: str | None, region: str = "CN") -> str | None:
    """A phone number in E.164 form (``+8613800138000``), or ``None`` when invalid.

    ``region`` is the ISO country used for numbers written without a country code.  Spaces,
    dashes, dots and brackets are ignored; ``+86``, ``0086`` and no prefix give the same
    result.  Validity is ``phonenumbers.is_valid_number``.

    >>> normalise_phone("0086 138-0013-8000", "CN")
    '+8613800138000'
    """
    if s is None:
        return None
    return _phone(phone_key(str(s)), region.upper())


@lru_cache(maxsize=64)
def _fast_phone_rules(region: str) -> tuple[str, re.Pattern[str], tuple[str, ...]] | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.mobile is None or not meta.mobile.national_number_pattern:
        return None
    cc = str(meta.country_code)
    # The international prefix is a pattern for some regions (China: 00, or 1xx00 through a
    # carrier); its preferred form is then the one people write (0086), if phonenumbers reads
    # it as the whole prefix: Hong Kong's pattern also takes the 8 of 00852.
    intl = meta.international_prefix or ""
    if not intl.isdigit():
        preferred = meta.preferred_international_prefix or ""
        took = re.match(intl, f"{preferred}{cc}") if preferred.isdigit() and intl else None
        intl = preferred if took is not None and took.end() == len(preferred) else ""
    prefixes = (f"+{cc}",) + ((f"{intl}{cc}",) if intl.isdigit() else ())
    return cc, re.compile(meta.mobile.national_number_pattern), prefixes


def _fast_phones(keys: pa.StringArray, region: str) -> pa.StringArray:
    """:func:`_phone`'s fast path over a whole array: E.164, or NULL where it does not decide.

    A key decides when it is ASCII, is a mobile number of ``region`` after one of its
    prefixes is dropped (the first that starts it, as :func:`_phone` does) and has 6 to 17
    digits.  Matched with Arrow's regular expressions (RE2), not a Python call per key:
    the 2.27M distinct phone keys of the 1M-customer company took 24 s one by one, a fifth of
    them (``0086`` before a mobile number) through ``phonenumbers``.
    """
    rules = _fast_phone_rules(region)
    undecided = pa.nulls(len(keys), pa.string())
    if rules is None or len(keys) == 0:
        return undecided
    cc, mobile, prefixes = rules
    starts = "|".join(re.escape(p) for p in prefixes)
    try:
        national = pc.replace_substring_regex(keys, f"^(?:{starts})", "", max_replacements=1)
        is_mobile = pc.match_substring_regex(national, f"^(?:{mobile.pattern})$")
    except pa.ArrowInvalid:  # a pattern RE2 cannot read: every key goes one by one
        return undecided
    digits = pc.utf8_length(pc.utf8_ltrim(keys, "+"))
    decided = pc.and_(
        pc.and_(is_mobile, pc.string_is_ascii(keys)),
        pc.and_(pc.greater_equal(digits, 6), pc.less_equal(digits, 17)),
    )
    e164 = pc.binary_join_element_wise(f"+{cc}", national, "")
    return pc.if_else(decided, e164, undecided)


@lru_cache(maxsize=1 << 20)
def _phone(key: str, region: str) -> str | None:
    if not key:
        return None
    if not key.isascii():
        key = phone_key(unicodedata.normalize("NFKC", key))
    digits = key[1:] if key.startswith("+") else key
    if not digits.isdigit() or not 6 <= len(digits) <= 17:
        return None
    rules = _fast_phone_rules(region)
    if rules is not None:
        # Fast path: a mobile number of the default region, with or without its country code.
        cc, mobile, prefixes = rules
        national = next((key[len(p) :] for p in prefixes if key.startswith(p)), key)
        if national.isdigit() and mobile.fullmatch(national):
            return f"+{cc}{national}"
    try:
        number = phonenumbers.parse(key, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# -- lookups for the engine ----------------------------------------------------------------------


@dataclass(frozen=True)
class LookupTiming:
    """How long a Python standardiser took over the distinct values it was given."""

    standardiser: str
    distinct_values: int
    seconds: float

    @property
    def seconds_per_100k(self) -> float:
        return self.seconds / self.distinct_values * 100_000 if self.distinct_values else 0.0

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "standardiser": self.standardiser,
            "distinct_values": self.distinct_values,
            "seconds": round(self.seconds, 4),
            "seconds_per_100k": round(self.seconds_per_100k, 4),
        }


def _distinct_sorted(keys: Iterable[str | None] | pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """The distinct non-null keys, sorted (so the lookup table is the same on every run)."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if not isinstance(keys, pa.Array):
        keys = pa.array(list(keys), pa.string())
    values = pc.unique(keys.cast(pa.string()).drop_null())
    return values.take(pc.sort_indices(values))


def _lookup(
    name: str,
    keys: Iterable[str | None] | pa.Array | pa.ChunkedArray,
    each: Callable[[str], str | None],
    fast: Callable[[pa.StringArray], pa.StringArray] | None = None,
) -> tuple[ir.Table, LookupTiming]:
    """``(key, value)`` for each distinct key: ``fast`` over the whole array first (NULL
    where it does not decide), then ``each`` for every key it left, one by one."""
    values = _distinct_sorted(keys)
    start = time.perf_counter()
    out = fast(values) if fast is not None else pa.nulls(len(values), pa.string())
    left = pc.is_null(out)
    rest = [each(k) or "" for k in values.filter(left).to_pylist()]
    # Invalid is "" rather than NULL: Ibis ships memtables to Spark through pandas, where a
    # missing string becomes NaN and then the string "NaN".  Joiners apply nullif("").
    out = pc.replace_with_mask(out, left, pa.array(rest, pa.string()))
    timing = LookupTiming(name, len(values), time.perf_counter() - start)
    return ibis.memtable(pa.table({"key": values, "value": out})), timing


def email_lookup(
    keys: Iterable[str | None] | pa.Array | pa.ChunkedArray,
) -> tuple[ir.Table, LookupTiming]:
    """A ``(key, value)`` memtable: each distinct email key → its normalised address or ``""``."""
    return _lookup("email", keys, _email)


def phone_lookup(
    keys: Iterable[str | None] | pa.Array | pa.ChunkedArray, region: str
) -> tuple[ir.Table, LookupTiming]:
    """A ``(key, value)`` memtable: each distinct phone key → E.164 or ``""`` (invalid)."""
    reg = region.upper()
    return _lookup("phone", keys, lambda k: _phone(k, reg), lambda v: _fast_phones(v, reg))


# -- place names ---------------------------------------------------------------------------------


def canonical_places(counts: Mapping[str, int]) -> dict[str, str]:
    """Each place name (trimmed) that is written otherwise by more records → the way most
    records write that place; names already written that way are left out.

    Two names are one place when their place keys agree (:func:`loupe.names.place_key`:
    上海, 上海市, Shanghai and SHANGHAI are ``shanghai``), so a CRM's 上海 and an e-shop's
    Shanghai become one value that a segment, a profile or a report can count.  But a key
    is toneless pinyin, and two places can share one: 苏州 and 宿州 are both ``suzhou``,
    福州 and 抚州 ``fuzhou``.  So names in Chinese characters are one place only when their
    characters are the same (without 市, 省 …); and where the characters of a key differ,
    which one a name in Latin letters means cannot be told, and it is left as written.
    Ties go to the name in Chinese characters, then the shorter, then the first in order.
    """
    groups: dict[str, list[str]] = {}
    for value in counts:
        key = place_key(value)
        if key:
            groups.setdefault(key, []).append(value)
    out: dict[str, str] = {}
    for values in groups.values():
        cores = {v: place_core(v) for v in values}
        han = set(cores.values()) - {""}
        parts = [values] if len(han) <= 1 else [[v for v in values if cores[v] == c] for c in han]
        for part in parts:
            best = min(part, key=lambda v: (-counts[v], not cores[v], len(v), v))
            out |= {v: best for v in part if v != best}
    return out


# -- countries -----------------------------------------------------------------------------------

#: Names of a country that CLDR's territory names (below) lack: official and traditional
#: Chinese forms, English abbreviations, and the ISO alpha-3 codes of the markets a Chinese
#: retailer sells to most.  Korea is South Korea, as in commerce.
_COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "CN": ("PRC", "P.R. China", "People's Republic of China", "Mainland China", "CHN",
           "中华人民共和国", "中華人民共和國", "中國", "中国大陆", "中國大陸", "大陆"),
    "HK": ("Hong Kong SAR", "HKSAR", "HKG", "中国香港", "中國香港", "香港特别行政区"),
    "MO": ("Macau", "Macau SAR", "MAC", "澳门", "澳門", "中国澳门", "中國澳門"),
    "TW": ("TWN", "台灣", "中国台湾", "中國台灣"),
    "US": ("USA", "U.S.", "U.S.A.", "United States of America", "America", "美國"),
    "GB": ("UK", "U.K.", "Great Britain", "Britain", "GBR", "英國"),
    "KR": ("KOR", "韓國"),
    "JP": ("JPN",), "SG": ("SGP",), "MY": ("MYS",), "TH": ("THA",), "AU": ("AUS",),
    "CA": ("CAN",), "DE": ("DEU",), "FR": ("FRA",), "IT": ("ITA",), "NZ": ("NZL",),
}  # fmt: skip


def _country_word(name: str) -> str:
    """A country name as it is looked up: letters and digits only, case and accents dropped."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name).casefold())
    return "".join(c for c in folded if c.isalnum())


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """Every name of a country → its ISO 3166-1 alpha-2 code.

    The names are CLDR's, in every language it has (中国, China, Chine, 중국 …), as
    ``phonenumbers`` ships them for its geocoder, so no other library is needed; then the
    aliases above, and last the codes themselves, which win over a name in some language
    that happens to be one (``ao`` is Angola's code and Austria's name in one language).  A
    name of two countries is left out.
    """
    from phonenumbers.geodata.locale import LOCALE_DATA

    found: dict[str, set[str]] = {}
    for code, names in LOCALE_DATA.items():
        for name in names.values():
            if name.startswith("*"):  # the same as another language's name
                name = names[name[1:]]
            found.setdefault(_country_word(name), set()).add(code)
    out = {word: codes.pop() for word, codes in found.items() if len(codes) == 1}
    for code, aliases in _COUNTRY_ALIASES.items():
        out |= {_country_word(a): code for a in aliases}
    out |= {code.lower(): code for code in LOCALE_DATA}
    return out


def country_code(name: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country written any way (``中国``, ``China``,
    ``cn``, ``PRC``, ``Deutschland``), or None when it is not a country's name."""
    if name is None:
        return None
    return _countries().get(_country_word(name))


def country_lookup(
    keys: Iterable[str | None] | pa.Array | pa.ChunkedArray,
) -> tuple[ir.Table, LookupTiming]:
    """A ``(key, value)`` memtable: each distinct trimmed country → its ISO code or ``""``.
    The index of names is built first (0.3 s, once per process), so that the timing is the
    lookups'."""
    _countries()
    return _lookup("country", keys, country_code)


@dataclass(frozen=True)
class PlaceChange:
    """A place name the quality stage writes otherwise: ``written`` becomes ``standard`` in
    the ``rows`` rows of ``raw_contacts`` that hold it as their city or region."""

    written: str
    standard: str
    rows: int

    def to_dict(self) -> dict[str, str | int]:
        return {"from": self.written, "to": self.standard, "rows": self.rows}


def place_lookup(values: pa.Table) -> tuple[ir.Table, LookupTiming, tuple[PlaceChange, ...]]:
    """A ``(key, value)`` memtable from ``values`` (``value``, ``n``: each distinct trimmed
    place name and how many rows hold it): each name written otherwise than most records
    write its place → that way (:func:`canonical_places`); with the time it took and the
    changes, most rows first."""
    start = time.perf_counter()
    counts = dict(zip(values["value"].to_pylist(), values["n"].to_pylist(), strict=True))
    changed = canonical_places(counts)
    timing = LookupTiming("place", len(counts), time.perf_counter() - start)
    table = pa.table(
        {
            "key": pa.array(list(changed), pa.string()),
            "value": pa.array(list(changed.values()), pa.string()),
        }
    )
    changes = sorted(
        (PlaceChange(v, to, counts[v]) for v, to in changed.items()),
        key=lambda c: (-c.rows, c.written),
    )
    return ibis.memtable(table), timing, tuple(changes)


def place_key_expr(col: ir.StringValue) -> ir.StringValue:
    """A place name as :func:`place_lookup` is keyed: trimmed, blank as NULL."""
    return fn.strip(col).nullif("")


def email_key_expr(col: ir.StringValue) -> ir.StringValue:
    return fn.strip(col).lower().nullif("")


def phone_key_expr(col: ir.StringValue) -> ir.StringValue:
    return col.re_replace(PHONE_SEPARATORS_SQL, "").nullif("")


# -- gender --------------------------------------------------------------------------------------

MALE = ("m", "male", "man", "men", "boy", "mr", "mr.", "男", "男性", "男士", "先生", "公")
FEMALE = (
    "f", "female", "woman", "women", "girl", "mrs", "mrs.", "ms", "ms.", "miss",
    "女", "女性", "女士", "小姐", "太太", "母",
)  # fmt: skip
#: Answers that say "not given" rather than being unreadable: NULL without a flag.
UNSTATED = ("u", "unknown", "x", "other", "n/a", "na", "none", "-", "未知", "保密", "其他")


def normalise_gender(s: str | None) -> Gender | None:
    """``'M'``, ``'F'`` or ``None`` from 男/女/M/F/male/female/先生/女士 … (case-insensitive)."""
    if s is None:
        return None
    g = str(s).strip().lower()
    if g in MALE:
        return "M"
    if g in FEMALE:
        return "F"
    return None


def gender_is_unreadable(s: str | None) -> bool:
    """True for a non-blank answer that is neither a gender nor a known 'not given'."""
    if s is None:
        return False
    g = str(s).strip().lower()
    return bool(g) and g not in MALE and g not in FEMALE and g not in UNSTATED


def gender_expr(col: ir.StringValue) -> ir.StringValue:
    """The engine twin of :func:`normalise_gender`."""
    g = col.strip().lower()
    return ibis.cases((g.isin(MALE), "M"), (g.isin(FEMALE), "F"), else_=ibis.null("string"))


def gender_unreadable_expr(col: ir.StringValue) -> ir.BooleanValue:
    g = col.strip().lower()
    known = (*MALE, *FEMALE, *UNSTATED)
    return (g.notnull() & (g != "") & ~g.isin(known)).fill_null(False)


# -- dates ---------------------------------------------------------------------------------------

#: ``2024-03-05``, ``2024/3/5``, ``2024.3.5``, ``2024年3月5日`` (optionally with a time after it).
DATE_SEPARATED = r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?$"
#: ``20240305``.
DATE_COMPACT = r"^(\d{4})(\d{2})(\d{2})$"
_DATE_PATTERNS = (re.compile(DATE_SEPARATED), re.compile(DATE_COMPACT))


def parse_date(s: str | date | None) -> date | None:
    """A date from ``2024-03-05``, ``2024/3/5``, ``20240305`` or ``2024年3月5日``.

    Returns ``None`` for anything else and for impossible dates (``2024-02-30``).
    """
    if s is None:
        return None
    if isinstance(s, datetime):
        return s.date()
    if isinstance(s, date):
        return s
    text = str(s).strip()
    for pattern in _DATE_PATTERNS:
        m = pattern.match(text)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def date_expr(col: ir.StringValue) -> ir.DateValue:
    """The engine twin of :func:`parse_date`: regex extraction, then ``TRY_CAST`` to DATE."""
    s = col.strip()

    def part(i: int) -> ir.StringValue:
        return ibis.coalesce(
            s.re_extract(DATE_SEPARATED, i).nullif(""), s.re_extract(DATE_COMPACT, i).nullif("")
        )

    text = part(1) + "-" + part(2).lpad(2, "0") + "-" + part(3).lpad(2, "0")
    return text.try_cast("date")


# -- currency ------------------------------------------------------------------------------------

CURRENCY_ALIASES: Mapping[str, str] = {
    "RMB": "CNY",
    "人民币": "CNY",
    "元": "CNY",
    "¥": "CNY",
    "￥": "CNY",
    "美元": "USD",
    "US$": "USD",
    "$": "USD",
    "港币": "HKD",
    "港元": "HKD",
    "HK$": "HKD",
}


def currency_expr(col: ir.StringValue) -> ir.StringValue:
    """Upper-cased ISO code, with common Chinese names and symbols mapped (RMB → CNY)."""
    c = col.strip().upper().nullif("")
    return c.substitute(dict(CURRENCY_ALIASES), else_=c)


def rates_with_base(rates: Mapping[str, float], base: str) -> dict[str, float]:
    """The configured rates plus the base currency at 1."""
    return {**{k.upper(): float(v) for k, v in rates.items()}, base.upper(): 1.0}


def rate_expr(currency: ir.StringValue, rates: Mapping[str, float]) -> ir.FloatingValue:
    """Units of base currency per unit of ``currency``; NULL for an unknown currency."""
    branches = [(currency == code, ibis.literal(rate, "float64")) for code, rate in rates.items()]
    return ibis.cases(*branches, else_=ibis.null("float64"))
