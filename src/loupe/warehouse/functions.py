"""Portable expressions the stages share: parsing timestamps and numbers, reading JSON.

Ibis has no portable operation for a few things every loader needs (validating JSON,
extracting a JSON path without failing on bad input, turning a local time in a named zone
into UTC).  Each is written here once per backend as an Ibis *builtin* function, chosen by
the warehouse's backend name, so stage code stays one expression for DuckDB and Spark.
"""

from __future__ import annotations

import datetime
import json

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

# -- backend builtins -------------------------------------------------------------------------


@ibis.udf.scalar.builtin(name="json_valid")
def _duck_json_valid(x: str) -> bool:  # type: ignore[empty-body]
    ...


@ibis.udf.scalar.builtin(name="json_extract_string")
def _duck_json_get(x: str, path: str) -> str:  # type: ignore[empty-body]
    ...


@ibis.udf.scalar.builtin(name="json_extract")
def _duck_json_raw(x: str, path: str) -> str:  # type: ignore[empty-body]
    ...


@ibis.udf.scalar.builtin(name="get_json_object")
def _spark_json_get(x: str, path: str) -> str:  # type: ignore[empty-body]
    ...


@ibis.udf.scalar.builtin(name="hash")
def _duck_hash64(x: str) -> ibis.dtype("uint64"):  # type: ignore[empty-body,valid-type]
    """DuckDB's 64-bit hash of a value."""


@ibis.udf.scalar.builtin(name="xxhash64")
def _spark_hash64(x: str) -> ibis.dtype("int64"):  # type: ignore[empty-body,valid-type]
    """Spark's 64-bit xxHash of a value (its ``hash`` is 32-bit)."""


@ibis.udf.scalar.builtin(name="timezone")
def _duck_local_to_utc(zone: str, ts: ibis.dtype("timestamp")) -> ibis.dtype("timestamp('UTC')"):  # type: ignore[empty-body,valid-type]
    ...


@ibis.udf.scalar.builtin(name="to_utc_timestamp")
def _spark_local_to_utc(ts: ibis.dtype("timestamp"), zone: str) -> ibis.dtype("timestamp"):  # type: ignore[empty-body,valid-type]
    ...


def json_valid(col: ir.StringValue, backend: str) -> ir.BooleanValue:
    """True where ``col`` holds a well-formed JSON document."""
    if backend == "duckdb":
        return _duck_json_valid(col).fill_null(False)
    return _spark_json_get(col, "$").notnull()


def json_get(col: ir.StringValue, path: str, backend: str) -> ir.StringValue:
    """The value at JSON ``path`` (``$.a.b``) as text; NULL where absent.

    Objects and arrays come back as JSON text.  Only call on rows that passed
    :func:`json_valid` (DuckDB raises on malformed input).
    """
    if backend == "duckdb":
        return _duck_json_get(col, path)
    return _spark_json_get(col, path)


JsonFields = dict[str, "str | JsonFields"]
"""Fields to read from a JSON document: ``"string"``, ``"json"`` (kept as JSON text), or a
nested mapping for an object."""


def _struct_dtype(fields: JsonFields) -> dt.Struct:
    return dt.Struct(
        {k: _struct_dtype(v) if isinstance(v, dict) else dt.string for k, v in fields.items()}
    )


def _duck_structure(fields: JsonFields) -> str:
    def walk(f: JsonFields) -> dict[str, object]:
        return {
            k: walk(v) if isinstance(v, dict) else ("JSON" if v == "json" else "VARCHAR")
            for k, v in f.items()
        }

    return json.dumps(walk(fields), separators=(",", ":"))


def _spark_ddl(fields: JsonFields) -> str:
    parts = [
        f"`{k}`: " + (_spark_ddl(v) if isinstance(v, dict) else "STRING") for k, v in fields.items()
    ]
    return "STRUCT<" + ", ".join(parts) + ">"


def json_struct(col: ir.StringValue, fields: JsonFields, backend: str) -> ir.StructValue:
    """Parse each JSON document once into a struct of the named fields (text values).

    One parse per row instead of one per extracted path: on event streams this is ten times
    faster than :func:`json_get` per field.  Missing fields are NULL; only call on rows that
    passed :func:`json_valid`.
    """
    dtype = _struct_dtype(fields)
    if backend == "duckdb":
        name, spec = "json_transform", _duck_structure(fields)
    else:
        name, spec = "from_json", _spark_ddl(fields)
    op = ibis.udf.scalar.builtin(name=name, signature=((dt.string, dt.string), dtype))(
        lambda x, s: None
    )
    return op(col, spec)


def local_to_utc(ts: ir.TimestampValue, zone: str, backend: str) -> ir.TimestampValue:
    """Interpret naive ``ts`` as wall-clock time in ``zone`` and return it in UTC (naive)."""
    if zone.upper() in ("UTC", "Z", "ETC/UTC"):
        return ts
    if backend == "duckdb":
        return _duck_local_to_utc(zone, ts).cast("timestamp")
    return _spark_local_to_utc(ts, zone)


# -- parsing ----------------------------------------------------------------------------------

_TIMESTAMP = (
    r"^([0-9]{4})[-/.年]?([0-9]{1,2})[-/.月]?([0-9]{1,2})日?"
    r"(?:[T ]+([0-9]{1,2}):?([0-9]{2})(?::?([0-9]{2}))?([.][0-9]+)?)?"
    r" *(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)


_EPOCH = ibis.literal(datetime.datetime(1970, 1, 1), type="timestamp")

#: Unix time: seconds (ten digits, up to six decimals) or milliseconds (thirteen digits);
#: or seconds as Java prints a double (``1.70960400025E9``): Spark's ``from_json`` writes a
#: JSON number so when it reads it as text.
_UNIX_TIME = r"^([0-9]{10}([.][0-9]{1,6})?|[0-9]{13}|[1-9][.][0-9]{1,15}E9)$"


def parse_timestamp(col: ir.StringValue, zone: str, backend: str) -> ir.TimestampValue:
    """Parse the timestamp forms sources write, to UTC; NULL where it does not parse.

    Accepted: ``2024-03-05 10:00[:00]``, ``2024-03-05T02:00:00Z``, ``…+08:00``/``+0800``,
    ``2024/3/5 10:00``, ``20240305 100000``, ``2024年3月5日 10:00``, dates alone (midnight),
    and Unix time (UTC) in seconds, with up to six decimals, or in milliseconds: ten or
    thirteen digits (``1709632800``, ``1709632800.5``, ``1709632800123``; and seconds as
    Spark's JSON reader prints a number, ``1.7096328005E9``), as Mixpanel, Amplitude and
    many event pipelines write it.  No other accepted form is
    ten or thirteen digits alone (``20240305`` is eight), so none is read differently.  A
    timestamp without an offset is wall-clock time in ``zone``.  Impossible dates
    (``2024-13-45``) give NULL rather than an error, so the caller can quarantine the row.

    On DuckDB this is one call of the ``loupe_parse_ts`` macro (see :data:`DUCKDB_MACROS`);
    elsewhere the portable Ibis expression :func:`parse_timestamp_expr`.
    """
    if backend == "duckdb":
        return _duck_parse_ts(col, zone)
    return parse_timestamp_expr(col, zone, backend)


def parse_timestamp_expr(col: ir.StringValue, zone: str, backend: str) -> ir.TimestampValue:
    """:func:`parse_timestamp` as a portable Ibis expression (one regular expression).

    Spark evaluates the repeated sub-expressions once (whole-stage code generation eliminates
    common sub-expressions); DuckDB re-evaluates each of them, which makes this ten times
    slower there than the macro, so DuckDB uses the macro and this stays its reference.
    """
    s = col.strip()

    def part(i: int) -> ir.StringValue:
        return s.re_extract(_TIMESTAMP, i)

    hh, ss, fraction, offset = part(4), part(6), part(7), part(8)
    iso = (
        part(1)
        + "-"
        + part(2).lpad(2, "0")
        + "-"
        + part(3).lpad(2, "0")
        + " "
        + ibis.ifelse(hh == "", "00", hh.lpad(2, "0"))
        + ":"
        + ibis.ifelse(hh == "", "00", part(5))
        + ":"
        + ibis.ifelse(ss == "", "00", ss)
        + fraction.left(7)  # to the microsecond, as timestamps are kept
    )
    naive = ibis.ifelse(s.re_search(_TIMESTAMP), iso, ibis.null("string")).try_cast("timestamp")
    digits = offset.re_replace(r"[^0-9]", "")
    minutes = (digits.left(2).try_cast("int64") * 60 + digits.right(2).try_cast("int64")).fill_null(
        0
    )
    signed = ibis.ifelse(offset.left(1) == "-", -minutes, minutes)
    general = ibis.cases(
        (naive.isnull(), ibis.null("timestamp")),
        (offset == "Z", naive),
        (offset != "", naive - signed.as_interval("m")),
        else_=local_to_utc(naive, zone, backend),
    )
    # Fast paths for the two commonest forms, so the regular expression runs only on the rest:
    # ISO 8601 in UTC (`2024-03-05T02:00:00[.fff]Z`) and naive `2024-03-05 10:00:00`.
    n = s.length()
    iso_utc = s.endswith("Z") & (n >= 20) & (s.substr(10, 1) == "T") & (s.substr(4, 1) == "-")
    plain = (n == 19) & (s.substr(10, 1) == " ") & (s.substr(4, 1) == "-")
    millis = (n == 13) & ~s.contains(".")  # `1709604000.25` is thirteen characters too
    micros = s.try_cast("decimal(20, 6)") * ibis.ifelse(millis, 1_000, 1_000_000)
    unix = _EPOCH + micros.round().cast("int64").as_interval("us")
    return ibis.cases(
        (iso_utc, s.substr(0, n - 1).replace("T", " ").try_cast("timestamp")),
        (plain, local_to_utc(s.try_cast("timestamp"), zone, backend)),
        (s.re_search(_UNIX_TIME), unix),
        else_=general,
    )


def parse_date(col: ir.StringValue, backend: str = "") -> ir.DateValue:
    """A calendar date in any of the forms :func:`parse_timestamp` accepts (no zone shift)."""
    if backend == "duckdb":
        return _duck_parse_date(col)
    return parse_date_expr(col)


def parse_date_expr(col: ir.StringValue) -> ir.DateValue:
    """:func:`parse_date` as a portable Ibis expression."""
    s = col.strip()
    iso = (
        s.re_extract(_TIMESTAMP, 1)
        + "-"
        + s.re_extract(_TIMESTAMP, 2).lpad(2, "0")
        + "-"
        + s.re_extract(_TIMESTAMP, 3).lpad(2, "0")
    )
    return ibis.ifelse(s.re_search(_TIMESTAMP), iso, ibis.null("string")).try_cast("date")


# -- DuckDB macros ----------------------------------------------------------------------------
# DuckDB does not share repeated sub-expressions between the branches of a CASE, so the
# portable expressions above trim and match the same text a dozen times per row (30 KB of
# SQL for one timestamp).  These macros do the same parse with every intermediate bound once,
# through the ``list_transform([value], lambda x: …)[1]`` idiom (a per-row "let"); on the
# synthetic orders they are ten times faster.  ``tests/warehouse/test_functions.py`` checks
# they agree with the portable expressions on generated input.

_PARTS = "['y', 'mo', 'd', 'h', 'mi', 'se', 'f', 'z']"

#: What Ibis's ``strip()`` removes on DuckDB (Spark's trim takes the first four).
_WHITESPACE = (" ", "\t", "\n", "\r", "\x0b", "\x0c")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _duckdb_macros() -> list[str]:
    ws = "' ' || chr(9) || chr(10) || chr(13) || chr(11) || chr(12)"
    pattern = _sql_text(_TIMESTAMP)
    naive = (
        "TRY_CAST(r.y || '-' || lpad(r.mo, 2, '0') || '-' || lpad(r.d, 2, '0') || ' ' || "
        "CASE WHEN r.h = '' THEN '00' ELSE lpad(r.h, 2, '0') END || ':' || "
        "CASE WHEN r.h = '' THEN '00' ELSE r.mi END || ':' || "
        "CASE WHEN r.se = '' THEN '00' ELSE r.se END || left(r.f, 7) AS TIMESTAMP)"
    )
    offset_minutes = (
        "coalesce(TRY_CAST(left(regexp_replace(p.z, '[^0-9]', '', 'g'), 2) AS BIGINT) * 60 + "
        "TRY_CAST(right(regexp_replace(p.z, '[^0-9]', '', 'g'), 2) AS BIGINT), 0) * "
        "CASE WHEN left(p.z, 1) = '-' THEN -1 ELSE 1 END"
    )
    local = "CAST(timezone(zone, {ts}) AS TIMESTAMP)"
    general = (
        f"list_transform([list_transform([regexp_extract(t, {pattern}, {_PARTS})], "
        f"lambda r: CASE WHEN regexp_matches(t, {pattern}) "
        f"THEN {{'naive': {naive}, 'z': r.z}} END)[1]], "
        "lambda p: CASE WHEN p IS NULL OR p.naive IS NULL THEN NULL "
        "WHEN p.z = 'Z' THEN p.naive "
        f"WHEN p.z <> '' THEN p.naive - to_minutes({offset_minutes}) "
        f"ELSE {local.format(ts='p.naive')} END)[1]"
    )
    # Trimmed only when an end is whitespace: TRIM with a character set scans every string.
    trimmed = (
        "CASE WHEN ascii(s) <= 32 OR "
        + " OR ".join(f"suffix(s, chr({ord(w)}))" for w in _WHITESPACE)
        + f" THEN trim(s, {ws}) ELSE s END"
    )
    # ISO 8601 in UTC, the commonest form (every Segment event), is parsed before the
    # per-row "let" below: the list_transform machinery cost more than the parse itself.
    iso_utc = (
        "WHEN suffix({t}, 'Z') AND length({t}) >= 20 AND substr({t}, 11, 1) = 'T' "
        "AND substr({t}, 5, 1) = '-' "
        "THEN TRY_CAST(replace(substr({t}, 1, length({t}) - 1), 'T', ' ') AS TIMESTAMP) "
    )
    ts_body = (
        f"CASE {iso_utc.format(t='s')}ELSE "
        f"list_transform([{trimmed}], lambda t: CASE "
        f"{iso_utc.format(t='t')}"
        "WHEN length(t) = 25 AND substr(t, 11, 1) = 'T' AND substr(t, 5, 1) = '-' "
        "AND substr(t, 14, 1) = ':' AND substr(t, 17, 1) = ':' "
        "AND substr(t, 20, 1) IN ('+', '-') AND substr(t, 23, 1) = ':' "
        "THEN TRY_CAST(replace(substr(t, 1, 19), 'T', ' ') AS TIMESTAMP) - to_minutes("
        "(TRY_CAST(substr(t, 21, 2) AS BIGINT) * 60 + TRY_CAST(substr(t, 24, 2) AS BIGINT)) * "
        "CASE WHEN substr(t, 20, 1) = '-' THEN -1 ELSE 1 END) "
        "WHEN length(t) = 19 AND substr(t, 11, 1) = ' ' AND substr(t, 5, 1) = '-' "
        f"THEN {local.format(ts='TRY_CAST(t AS TIMESTAMP)')} "
        f"WHEN length(t) BETWEEN 5 AND 19 AND regexp_matches(t, {_sql_text(_UNIX_TIME)}) "
        "THEN make_timestamp(CAST(round(TRY_CAST(t AS DECIMAL(20, 6)) * "
        "CASE WHEN length(t) = 13 AND NOT contains(t, '.') THEN 1000 ELSE 1000000 END) "
        "AS BIGINT)) "
        f"ELSE {general} END)[1] END"
    )
    date_body = (
        f"list_transform([{trimmed}], lambda t: CASE "
        "WHEN length(t) = 10 AND substr(t, 5, 1) = '-' AND substr(t, 8, 1) = '-' "
        "THEN TRY_CAST(t AS DATE) "
        f"WHEN regexp_matches(t, {pattern}) "
        f"THEN list_transform([regexp_extract(t, {pattern}, {_PARTS})], "
        "lambda r: TRY_CAST(r.y || '-' || lpad(r.mo, 2, '0') || '-' || lpad(r.d, 2, '0') "
        "AS DATE))[1] END)[1]"
    )
    return [
        f"CREATE OR REPLACE TEMP MACRO loupe_parse_ts(s, zone) AS ({ts_body})",
        f"CREATE OR REPLACE TEMP MACRO loupe_parse_date(s) AS ({date_body})",
    ]


DUCKDB_MACROS = _duckdb_macros()
"""SQL that defines Loupe's DuckDB macros; run on every DuckDB connection the warehouse opens."""


def install_duckdb_macros(con: object) -> None:
    """Define :data:`DUCKDB_MACROS` on an Ibis DuckDB connection (idempotent)."""
    for sql in DUCKDB_MACROS:
        con.raw_sql(sql)  # type: ignore[attr-defined]


@ibis.udf.scalar.builtin(name="loupe_parse_ts")
def _duck_parse_ts_op(s: str, zone: str) -> ibis.dtype("timestamp"):  # type: ignore[empty-body,valid-type]
    ...


@ibis.udf.scalar.builtin(name="loupe_parse_date")
def _duck_parse_date_op(s: str) -> ibis.dtype("date"):  # type: ignore[empty-body,valid-type]
    ...


def _duck_parse_ts(col: ir.StringValue, zone: str) -> ir.TimestampValue:
    return _duck_parse_ts_op(col, zone)


def _duck_parse_date(col: ir.StringValue) -> ir.DateValue:
    return _duck_parse_date_op(col)


#: A number whose commas group thousands: ``1,234.50``, ``-12,000``.
_GROUPED = r"^[-+]?[0-9]{1,3}(,[0-9]{3})+([.][0-9]*)?$"
#: The same with a decimal comma: ``1.234,50``, ``-12.000``.
_GROUPED_COMMA = r"^[-+]?[0-9]{1,3}([.][0-9]{3})+(,[0-9]*)?$"
#: What a number may carry besides its digits: white space (with the no-break spaces that
#: French and Russian exports group thousands with), currency signs and the yuan character.
_NUMBER_NOISE = "[\\s\u00a0\u202f¥$￥€£元]"


def parse_number(col: ir.StringValue, decimal: str = ".") -> ir.FloatingValue:
    """A decimal number, written with optional spaces, currency signs or the yuan character
    (``¥1,234.50``, ``12.5元``, ``€ 3``) and thousands separators.

    With ``decimal = "."`` (the default), a comma that does not group thousands makes the
    text unparseable (NULL, so the row is quarantined): ``12,50`` and ``1.234,50`` are decimal
    commas, which were read as 1250 and 1.2345 until 2026-12-07.  With ``decimal = ","`` the
    roles swap: ``12,50`` and ``1.234,50`` are read, and a point that does not group
    thousands (``12.5``) makes the text unparseable.  Spaces, no-break spaces included, are
    removed in both (``1 234,50``).  The text is not trimmed first (the whitespace is removed
    anyway): without that trim the parse takes 1.5-2.0 s instead of 4.3-4.6 s for 6.4M order
    lines' three numbers (DuckDB, 2 threads).
    """
    s = col.re_replace(_NUMBER_NOISE, "")
    if decimal == ",":
        # A point always groups; the comma, if any, becomes the point.
        grouped = ibis.ifelse(
            s.re_search(_GROUPED_COMMA), s.replace(".", "").replace(",", "."), ibis.null("string")
        )
        return ibis.cases((col.contains("."), grouped), else_=s.replace(",", ".")).try_cast(
            "float64"
        )
    # Only text holding a comma is matched against the pattern (a CASE branch runs on the
    # rows it selects alone).  An empty result casts to NULL.
    grouped = ibis.ifelse(s.re_search(_GROUPED), s.replace(",", ""), ibis.null("string"))
    return ibis.cases((col.contains(","), grouped), else_=s).try_cast("float64")


#: A date written day or month first, with a four-digit year last (``05/03/2024``,
#: ``5.3.2024 10:00``, ``05-03-2024, 10:00:00``), and whatever follows it: the text
#: :func:`year_first` reorders (the quarantine's hints look for it too).
DATE_YEAR_LAST = r"\s*([0-9]{1,2})[-/.]([0-9]{1,2})[-/.]([0-9]{4}),?((?:[ T].*)?)"
_DATE_YEAR_LAST = f"^{DATE_YEAR_LAST}$"
#: The same with a year of two digits (``05/03/24``): day or month first and what follows.
DATE_SHORT_YEAR_LAST = r"\s*([0-9]{1,2}[-/.][0-9]{1,2}[-/.])([0-9]{2})((?:,?[ T].*)?)"
#: Two-digit years by century, in Excel's window (``29`` is 2029, ``30`` is 1930), so that a
#: date reads as it did in the spreadsheet it came from: ``(century, years)``.
_CENTURIES = (("20", "[0-2][0-9]"), ("19", "[3-9][0-9]"))
#: A time on the 12-hour clock at the end of the text: ``2:30 PM``, ``2:30:15pm``,
#: ``12:05 a.m.``; groups: what comes before the hour, the hour, the rest of the time, a/p.
_TWELVE_HOUR = (
    r"^(.*[ T])([0-9]{1,2})(:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]+)?)?) *([AaPp])[.]?[Mm][.]?\s*$"
)


def year_first(col: ir.StringValue, order: str, backend: str) -> ir.StringValue:
    """``col`` with a date written day first (``order = "dmy"``) or month first (``"mdy"``)
    rewritten as :func:`parse_timestamp` and :func:`parse_date` read it: year first, and a
    time on the 12-hour clock on the 24-hour one (``3/5/2024 2:30 PM`` → ``2024-3-5 14:30``
    for ``"mdy"``, as US exports write it).  An hour of 0 or above 12 before AM or PM gives
    NULL (unparseable).  A year of two digits is read in Excel's window (:data:`_CENTURIES`:
    ``05/03/24`` is 2024, ``05/03/65`` 1965).  Any other text is unchanged: a year-first
    date, Unix time, or a form neither parser reads.
    """
    if order == "ymd":
        return col
    day, month = ("1", "2") if order == "dmy" else ("2", "1")
    ref = "\\" if backend == "duckdb" else "$"  # RE2's and Java's group references
    text = _four_digit_years(col, f"^{DATE_SHORT_YEAR_LAST}$", ref)
    text = text.re_replace(_DATE_YEAR_LAST, f"{ref}3-{ref}{month}-{ref}{day}{ref}4")
    return _twenty_four_hour(text)


def _four_digit_years(text: ir.StringValue, pattern: str, ref: str) -> ir.StringValue:
    """``text`` with the two-digit year that ``pattern``'s second group matches written with
    its century (:data:`_CENTURIES`); the first group is what comes before the year, the
    third what comes after it.  One replacement per century: a regular expression cannot
    add, and each leaves the other's text alone (its year then has four digits)."""
    for century, years in _CENTURIES:
        text = text.re_replace(
            pattern.replace("([0-9]{2})", f"({years})"), f"{ref}1{century}{ref}2{ref}3"
        )
    return text


def _twenty_four_hour(text: ir.StringValue) -> ir.StringValue:
    """``text`` with a time on the 12-hour clock at its end on the 24-hour one; NULL for an
    hour of 0 or above 12 before AM or PM; other text unchanged."""
    hour = text.re_extract(_TWELVE_HOUR, 2).try_cast("int64")
    pm = text.re_extract(_TWELVE_HOUR, 4).upper() == "P"
    clock = (hour % 12 + ibis.ifelse(pm, 12, 0)).cast("string").lpad(2, "0")
    rebuilt = text.re_extract(_TWELVE_HOUR, 1) + clock + text.re_extract(_TWELVE_HOUR, 3)
    valid = ibis.ifelse(hour.between(1, 12), rebuilt, ibis.null("string"))
    return ibis.cases((text.re_search(_TWELVE_HOUR), valid), else_=text)


#: English month names as a date writes them: abbreviated or whole (``Sept`` too), any case.
_MONTHS = (
    "jan|january",
    "feb|february",
    "mar|march",
    "apr|april",
    "may",
    "jun|june",
    "jul|july",
    "aug|august",
    "sep|sept|september",
    "oct|october",
    "nov|november",
    "dec|december",
)
_WEEKDAY = r"(?:[A-Za-z]{3,9}[.]?,?\s+)?"
#: ``5 Mar 2024``, ``05-Mar-2024``, ``Tue, 05 Mar 2024 10:00:00 +0000``: day, month, year,
#: the rest.
_DAY_NAMED_MONTH = (
    rf"^\s*{_WEEKDAY}([0-9]{{1,2}})[-/ ]([A-Za-z]{{3,9}})[.]?[-/ ]([0-9]{{4}}),?((?:[ T].*)?)$"
)
#: ``5-Mar-24`` (Excel's ``d-mmm-yy``): what comes before the year, the year, the rest.
_DAY_NAMED_MONTH_SHORT_YEAR = (
    rf"^(\s*{_WEEKDAY}[0-9]{{1,2}}[-/ ][A-Za-z]{{3,9}}[.]?[-/ ])([0-9]{{2}})((?:,?[ T].*)?)$"
)
#: ``Mar 5, 2024``, ``March 5th 2024, 2:30 PM``, ``Tuesday, March 5, 2024``: month, day,
#: year, the rest.
_NAMED_MONTH_DAY = (
    rf"^\s*{_WEEKDAY}([A-Za-z]{{3,9}})[.]? +([0-9]{{1,2}})(?:st|nd|rd|th)?,? +([0-9]{{4}}),?"
    r"((?:[ T].*)?)$"
)


def named_month(col: ir.StringValue, backend: str) -> ir.StringValue:
    """A date written with an English month name, year last, rewritten year first for
    :func:`parse_timestamp` and :func:`parse_date`: ``5 Mar 2024``, ``05-Mar-2024 10:00``,
    ``Mar 5, 2024, 2:30 PM`` (12-hour clock on the 24-hour one), ``March 5th 2024``, with or
    without a weekday first (``Tue, 05 Mar 2024 10:00:00 +0000``, as e-mail headers write
    it).  NULL for text of neither form; a name that is no month (``5 Foo 2024``) stays a
    name, which the parsers do not read.

    The name says which part is the month, so no ``date_order`` is needed; a two-digit year
    after the month (``5-Mar-24``, Excel's ``d-mmm-yy``) is read in Excel's window, as in
    :func:`year_first`.  Callers use it on text the usual parsers left NULL (see
    ``mapping._named_months``).

    Built of replacements that each use the text before them once, so the expression stays
    small: an earlier form, which extracted each part with its own regular expression, was
    75 KB of SQL that DuckDB took 8 s to plan, whatever the rows.
    """
    ref = "\\" if backend == "duckdb" else "$"  # RE2's and Java's group references
    col = _four_digit_years(col, _DAY_NAMED_MONTH_SHORT_YEAR, ref)
    text = col.re_replace(_NAMED_MONTH_DAY, f"{ref}3-{ref}1-{ref}2{ref}4")
    text = _twenty_four_hour(text.re_replace(_DAY_NAMED_MONTH, f"{ref}3-{ref}2-{ref}1{ref}4"))
    for number, names in enumerate(_MONTHS, start=1):
        text = text.re_replace(f"^([0-9]{{4}})-(?i:{names})-", f"{ref}1-{number}-")
    named = col.re_search(f"(?:{_DAY_NAMED_MONTH})|(?:{_NAMED_MONTH_DAY})")
    return ibis.ifelse(named, text, ibis.null("string"))


def parse_bool(col: ir.StringValue) -> ir.BooleanValue:
    s = col.strip().lower()
    return ibis.cases(
        (s.isin(["true", "t", "1", "yes", "y", "是", "granted", "opt-in", "opt_in"]), True),
        (s.isin(["false", "f", "0", "no", "n", "否", "denied", "opt-out", "opt_out"]), False),
        else_=ibis.null("boolean"),
    )


def strip(col: ir.StringValue) -> ir.StringValue:
    """``col.strip()``, skipping the trim where neither end is whitespace.

    Ibis's ``strip()`` is ``TRIM(x, ' \t\n\r\v\f')`` on DuckDB, which scans every string
    against the set: over the 19 text columns of 5.5M events it cost 9 s, against 2 s with this
    test of the first and last character first.  ``col`` should be a column or a cheap
    expression (it is evaluated once per test below, and again by the trim).
    """
    # Each side of a DuckDB ``AND``/``OR`` is evaluated on every row (no short cut), so the
    # tests must be cheap: the code of the first character, and byte suffixes for the last
    # (``right(col, 1)`` builds a string per row: 94 ms against 55 ms per 400k strings).
    padded = col.ascii_str() <= 32
    for w in _WHITESPACE:
        padded = padded | col.endswith(w)
    return ibis.ifelse(padded.fill_null(False), col.strip(), col)


def is_blank(col: ir.StringValue) -> ir.BooleanValue:
    """True where ``col`` is empty or only whitespace (NULL where it is NULL).

    Trims only strings that start with whitespace or are empty.  That must be a ``CASE``:
    DuckDB evaluates both sides of an ``AND`` on every row, and the trim of every string cost
    129 ms per 400k strings against 9 ms (two such tests per text column of every ingested row).
    """
    return ibis.cases(
        (col.isnull(), ibis.null("boolean")),
        (col.ascii_str() <= 32, col.strip() == ""),
        else_=False,
    )


def hash64(col: ir.StringValue, backend: str) -> ir.IntegerValue:
    """A 64-bit hash of a string, to partition and join on a number instead of the string.

    Two distinct strings share a hash with probability about ``n² / 2^65`` among ``n``
    strings (3e-8 for a million); callers that use it as a key say so.  Ibis's ``hash()`` is
    Spark's 32-bit ``hash`` there, which collides within a few thousand strings.
    """
    return _spark_hash64(col) if backend == "pyspark" else _duck_hash64(col)


def row_hash(cols: list[ir.Value]) -> ir.StringValue:
    """A content hash of several columns (NULL-safe), for duplicate detection."""
    parts = [c.cast("string").fill_null("<null>") for c in cols]
    joined = ibis.literal("|~|").join(parts)
    return joined.hexdigest("md5")


# -- DuckDB arg_min / arg_max -----------------------------------------------------------------
# Ibis 12 compiles ``x.argmin(key)`` on DuckDB to ``first(x ORDER BY key)``, an ordered
# aggregate that sorts every group.  DuckDB's ``arg_min_null`` gives the same answer (the value
# on the row with the smallest non-NULL key, NULL values included) with one pass and no sort:
# the CLV summary at 1M customers went from 0.69-0.96 s to 0.61-0.79 s.  Spark keeps Ibis's
# ``min_by``.  ``tests/warehouse/test_functions.py`` checks both spellings agree.


def _use_duckdb_arg_min() -> None:
    from ibis.backends.sql.compilers.duckdb import DuckDBCompiler

    def visit_arg_min(self, op, *, arg, key, where):  # type: ignore[no-untyped-def]
        return self.agg.arg_min_null(arg, key, where=where)

    def visit_arg_max(self, op, *, arg, key, where):  # type: ignore[no-untyped-def]
        return self.agg.arg_max_null(arg, key, where=where)

    DuckDBCompiler.visit_ArgMin = visit_arg_min  # type: ignore[method-assign]
    DuckDBCompiler.visit_ArgMax = visit_arg_max  # type: ignore[method-assign]


_use_duckdb_arg_min()


# -- bit masks on Spark -------------------------------------------------------------------------
# Retention keeps the periods a person was seen in as the bits of a few int64 words and ORs them
# together.  Two gaps of Ibis 12's PySpark compiler: it has no rule for ``BitOr`` (Spark has had
# ``bit_or`` since 3.0), and it writes an int64 literal ``1`` as Spark's 32-bit ``1``, so
# ``1 << 40`` wrapped around.  The shift now casts its left side to the expression's type.


def _use_spark_bit_or() -> None:
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    def visit_bit_or(self, op, *, arg, where):  # type: ignore[no-untyped-def]
        return self.agg.bit_or(arg, where=where)

    def visit_left_shift(self, op, *, left, right):  # type: ignore[no-untyped-def]
        return self.f.shiftleft(self.cast(left, op.dtype), right)

    PySparkCompiler.visit_BitOr = visit_bit_or  # type: ignore[method-assign]
    PySparkCompiler.visit_BitwiseLeftShift = visit_left_shift  # type: ignore[method-assign]


_use_spark_bit_or()
