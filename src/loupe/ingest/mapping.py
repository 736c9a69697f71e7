"""Column mapping: a staged source (text columns) → typed canonical rows, with a reason per
rejected row.  Pure functions from Ibis tables to Ibis tables; nothing runs here.
"""

from __future__ import annotations

import difflib

import ibis
import ibis.expr.types as ir

from loupe.config import Settings, SourceSettings
from loupe.errors import SourceError
from loupe.ingest import readers
from loupe.warehouse import functions as fn
from loupe.warehouse.schemas import RAW_COLUMNS, REQUIRED

REASON = "_reason"
NON_NEGATIVE = ("quantity", "unit_price", "price", "spend", "impressions", "clicks")


def check_mapping(source: SourceSettings, header: list[str] | None, where: str) -> None:
    """Every mapped source column exists and every canonical column is known.

    ``header`` is None for a JSON source: its documents need not share keys, and a key
    missing from one is NULL there."""
    table = source.target_table
    known = RAW_COLUMNS[table]
    for canonical in (*source.columns, *source.constants):
        if canonical not in known:
            close = difflib.get_close_matches(canonical, list(known), n=1)
            raise SourceError(
                f"Source {source.name!r} maps unknown {table} column {canonical!r}"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                where=f"loupe.toml [[sources]] name = {source.name!r}, columns",
                fix=f"{table} columns are: {', '.join(known)}",
            )
    for canonical, column in source.columns.items():
        if header is not None and column not in header:
            close = difflib.get_close_matches(column, header, n=1)
            raise SourceError(
                f"Source {source.name!r}: column {column!r} (mapped to {canonical}) is not in "
                f"the file" + (f"; did you mean {close[0]!r}?" if close else ""),
                where=where,
                fix=f"the file's columns are: {', '.join(header)}",
            )
    missing = [c for c in REQUIRED[table] if c not in source.columns and c not in source.constants]
    if table == "contacts" and "source_key" in missing:
        missing.remove("source_key")  # derived from user_id/email/phone when not mapped
    if missing:
        raise SourceError(
            f"Source {source.name!r} does not map required {table} column(s): "
            + ", ".join(missing),
            where=f"loupe.toml [[sources]] name = {source.name!r}, columns",
            fix='add them under [sources.columns] as canonical = "source column"',
        )


#: Text columns that hold a date, parsed by quality (a bad birth date is flagged there, not
#: quarantined here); a source's ``date_order``, and month names, still apply to them at load.
DATE_TEXTS = {"birth_date"}


def _typed(
    kind: str,
    text: ir.StringValue,
    zone: str,
    backend: str,
    source: SourceSettings,
    named: ir.StringValue | None = None,
) -> ir.Value:
    """``text`` as a value of ``kind``; a timestamp or date is read from ``named`` (the text
    with its month name rewritten, :func:`_named_months`) where the usual forms give NULL."""
    if kind == "timestamp":
        read = fn.parse_timestamp(fn.year_first(text, source.date_order, backend), zone, backend)
        if named is None:
            return read
        return ibis.coalesce(read, fn.parse_timestamp(named, zone, backend))
    if kind == "date":
        read_date = fn.parse_date(fn.year_first(text, source.date_order, backend), backend)
        if named is None:
            return read_date
        return ibis.coalesce(read_date, fn.parse_date(named, backend))
    if kind == "float64":
        return fn.parse_number(text, source.decimal)
    if kind == "int64":
        return fn.parse_number(text, source.decimal).round().cast("int64")
    if kind == "boolean":
        return fn.parse_bool(text)
    return ibis.ifelse(fn.is_blank(text), ibis.null("string"), text)


def map_columns(
    staged: ir.Table,
    source: SourceSettings,
    settings: Settings,
    backend: str,
    texts: dict[str, ir.Value] | None = None,
) -> ir.Table:
    """Typed canonical columns of ``source.target_table`` plus lineage (``_file``, ``_line``,
    ``_row``) and ``_reason``.

    ``texts`` overrides where a canonical column's text comes from (used for JSON sources);
    otherwise it is the mapped source column, or the constant, or NULL.
    """
    table = source.target_table
    zone = source.timezone or settings.project.timezone
    columns = RAW_COLUMNS[table]
    texts = dict(texts or {})
    for canonical, col in source.columns.items():
        if canonical not in texts:  # a JSON source's mapped columns come parsed, in texts
            texts[canonical] = staged[col].cast("string")
    for canonical, value in source.constants.items():
        texts[canonical] = ibis.literal(value)

    staged, named = _named_months(staged, columns, texts, backend)

    # Two projections: the typed values first, then the checks on them.  In one projection,
    # DuckDB computed each typed value twice, once for its column and once in the reason's
    # CASE (it shares no sub-expression across CASE branches).
    inner: dict[str, ir.Value] = {}
    typed_kinds: dict[str, str] = {}
    for name, kind in columns.items():
        text = texts.get(name)
        if name in ("source", "contact_source") or text is None:
            continue
        if not isinstance(text, ir.StringValue):  # already typed (e.g. an event's ts)
            inner[_value(name)] = text.cast(kind)
            continue
        if name in DATE_TEXTS:
            text = fn.year_first(text, source.date_order, backend)
            with_name = ibis.coalesce(fn.named_month(text, backend), text)  # for text with letters
            text = ibis.cases((text.re_search("[A-Za-z]{3}"), with_name), else_=text)
        inner[_value(name)] = _typed(kind, text, zone, backend, source, named.get(name))
        inner[_text(name)] = text
        typed_kinds[name] = kind
    if not readers.reads_as_is(source.encoding):  # decoded: U+FFFD marks an undecodable byte
        replaced = [t.contains("\ufffd") for t in texts.values() if isinstance(t, ir.StringValue)]
        if replaced:
            any_bad = replaced[0].fill_null(False)
            for r in replaced[1:]:
                any_bad = any_bad | r.fill_null(False)
            inner["_undecodable"] = any_bad
    lineage = ("_file", "_line", "_row")
    t = staged.select(**inner, **{c: staged[c] for c in lineage})

    values: dict[str, ir.Value] = {}
    checks: list[tuple[ir.BooleanValue, ir.StringValue]] = []
    if "_undecodable" in inner:
        checks.append((t["_undecodable"], ibis.literal(f"bytes not valid {source.encoding}")))
    for name, kind in columns.items():
        if name == "source":
            values[name] = ibis.literal(source.name)
        elif name == "contact_source":
            values[name] = ibis.literal(source.contact_source or source.name)
        elif _value(name) not in inner:
            values[name] = ibis.null(kind)
        else:
            values[name] = t[_value(name)]
        if name not in typed_kinds:
            continue
        value, text = t[_value(name)], t[_text(name)]
        present = text.notnull() & ~fn.is_blank(text)
        if kind != "string":
            checks.append(
                (present & value.isnull(), f"unparseable {name}: '" + text.left(40) + "'")
            )
        if name in NON_NEGATIVE:
            checks.append((value < 0, ibis.literal(f"negative {name}")))
        if name in REQUIRED[table]:
            checks.append((~present, ibis.literal(f"missing required {name}")))
    if table == "contacts" and "source_key" not in texts:
        values["source_key"] = ibis.coalesce(values["user_id"], values["email"], values["phone"])
    reason: ir.Value = ibis.null("string")
    if checks:
        reason = ibis.cases(
            *[(cond.fill_null(False), msg) for cond, msg in checks], else_=ibis.null("string")
        )
    return t.select(**values, **{c: t[c] for c in lineage}, **{REASON: reason})


def _named_months(
    staged: ir.Table, columns: dict[str, str], texts: dict[str, ir.Value], backend: str
) -> tuple[ir.Table, dict[str, ir.StringValue]]:
    """The text of each timestamp and date column with its month name rewritten year first
    (:func:`fn.named_month`), for :func:`_typed` to read where the usual forms give NULL.

    On DuckDB it stays inline: ``COALESCE`` evaluates it only for the rows the usual parse
    left NULL, so the dates most sources write do not pay for it.  Spark's SQL repeats an
    expression at each use, and the portable parser uses its input some fifteen times: inline,
    one column's SQL was 6.4 MB, and Spark's parser ran out of memory.  There it is computed
    once, in a projection of its own (``staged`` gains the columns), for text with letters.
    """
    dated = [
        name
        for name, kind in columns.items()
        if kind in ("timestamp", "date") and isinstance(texts.get(name), ir.StringValue)
    ]
    if backend == "duckdb":
        return staged, {name: fn.named_month(texts[name], backend) for name in dated}
    rewritten = {
        f"_m_{name}": ibis.cases(
            (texts[name].re_search("[A-Za-z]{3}"), fn.named_month(texts[name], backend)),
            else_=ibis.null("string"),
        )
        for name in dated
    }
    staged = staged.mutate(**rewritten)
    return staged, {name: staged[f"_m_{name}"] for name in dated}


def _value(name: str) -> str:
    return f"_v_{name}"


def _text(name: str) -> str:
    return f"_t_{name}"


# -- JSON sources -------------------------------------------------------------------------------


def json_texts(staged: ir.Table, source: SourceSettings, backend: str) -> dict[str, ir.Value]:
    """Text of each mapped column of a ``jsonl`` source, parsed from the document in ``raw``.

    A source column names a key of the document, or a path of keys joined by dots
    (``customer.email``).  A string comes back as it is; a number, a boolean, an object or an
    array as its JSON text (``12.5``, ``true``, ``{"a":1}``); a missing key or ``null`` as
    NULL.  The document is parsed once per row (:func:`functions.json_struct`).
    """
    fields: fn.JsonFields = {}
    for canonical, path in source.columns.items():
        keys = path.split(".")
        if "" in keys:
            raise SourceError(
                f"Source {source.name!r}: {path!r} (mapped to {canonical}) has an empty key",
                where=f"loupe.toml [[sources]] name = {source.name!r}, columns",
                fix="write a key, or keys joined by single dots: buyer.email",
            )
        node: fn.JsonFields = fields
        for k, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise _path_clash(source, ".".join(keys[: k + 1]), canonical, path)
            node = child
        if isinstance(node.get(keys[-1]), dict):
            raise _path_clash(source, path, canonical, path)
        node[keys[-1]] = "string"
    if not fields:
        return {}
    doc = fn.json_struct(staged["raw"], fields, backend)
    texts: dict[str, ir.Value] = {}
    for canonical, path in source.columns.items():
        value: ir.Value = doc
        for key in path.split("."):
            value = value[key]
        texts[canonical] = value
    return texts


def _path_clash(source: SourceSettings, key: str, canonical: str, path: str) -> SourceError:
    return SourceError(
        f"Source {source.name!r}: {key!r} is mapped both as a value and as an object holding "
        f"other mapped keys ({path!r}, mapped to {canonical}, is one of the two)",
        where=f"loupe.toml [[sources]] name = {source.name!r}, columns",
        fix="map either the object (as JSON text) or the keys inside it, not both",
    )


# -- Segment (JSON) sources --------------------------------------------------------------------

_EVENT_NAMES = {
    "page": "Page Viewed",
    "screen": "Screen Viewed",
    "identify": "Identify",
    "alias": "Alias",
    "group": "Group",
}


#: What Loupe reads from a Segment message (tracking spec v2): one parse per message.
SEGMENT_FIELDS: fn.JsonFields = {
    "type": "string",
    "messageId": "string",
    "event": "string",
    "name": "string",
    "anonymousId": "string",
    "userId": "string",
    "timestamp": "string",
    "originalTimestamp": "string",
    "sentAt": "string",
    "receivedAt": "string",
    "context": {
        "sessionId": "string",
        "session_id": "string",
        "page": {"url": "string", "referrer": "string"},
        "campaign": {"source": "string", "medium": "string", "name": "string"},
        "traits": "json",
    },
    "properties": "json",
    "traits": "json",
}
PROPERTY_FIELDS: fn.JsonFields = dict.fromkeys(
    ("product_id", "sku", "order_id", "revenue", "total", "session_id", "url", "referrer"),
    "string",
)
TRAIT_FIELDS: fn.JsonFields = {
    **dict.fromkeys(
        (
            "email",
            "phone",
            "mobile",
            "name",
            "real_name",
            "gender",
            "birthday",
            "birth_date",
            "city",
            "province",
            "state",
            "country",
            "createdAt",
            "created_at",
            "firstName",
            "first_name",
            "lastName",
            "last_name",
        ),
        "string",
    ),
    "address": dict.fromkeys(("city", "state", "province", "country"), "string"),
}


#: The events columns :func:`segment_texts` fills.
SEGMENT_COLUMNS = (
    "event_id",
    "type",
    "event",
    "anonymous_id",
    "user_id",
    "ts",
    "session_id",
    "url",
    "screen",
    "referrer",
    "product_id",
    "order_id",
    "revenue",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "properties",
    "traits",
)


def segment_texts(staged: ir.Table, backend: str) -> dict[str, ir.Value]:
    """Text of each events column, read from Segment tracking-spec JSON in ``raw``."""
    raw = staged["raw"]
    m = fn.json_struct(raw, SEGMENT_FIELDS, backend)
    ctx = m["context"]
    props_text = m["properties"].cast("string")
    props = fn.json_struct(props_text, PROPERTY_FIELDS, backend)
    kind = m["type"].lower()
    event = ibis.coalesce(m["event"], kind.cases(*_EVENT_NAMES.items(), else_=ibis.null("string")))
    return {
        "event_id": ibis.coalesce(m["messageId"], raw.hexdigest("md5")),
        "type": kind,
        "event": event,
        "anonymous_id": m["anonymousId"],
        "user_id": m["userId"],
        "ts": ibis.coalesce(m["timestamp"], m["originalTimestamp"], m["sentAt"], m["receivedAt"]),
        "session_id": ibis.coalesce(ctx["sessionId"], ctx["session_id"], props["session_id"]),
        "url": ibis.coalesce(ctx["page"]["url"], props["url"]),
        "screen": ibis.ifelse(kind == "screen", m["name"], ibis.null("string")),
        "referrer": ibis.coalesce(ctx["page"]["referrer"], props["referrer"]),
        "product_id": ibis.coalesce(props["product_id"], props["sku"]),
        "order_id": props["order_id"],
        "revenue": ibis.coalesce(props["revenue"], props["total"]),
        "utm_source": ctx["campaign"]["source"],
        "utm_medium": ctx["campaign"]["medium"],
        "utm_campaign": ctx["campaign"]["name"],
        "properties": props_text,
        "traits": ibis.coalesce(m["traits"].cast("string"), ctx["traits"].cast("string")),
    }


#: A name written in Chinese characters alone (the common ones), family name first.
_HAN_NAME = "^[一-鿿]+$"


def _full_name(traits: ir.StructValue) -> ir.StringValue:
    """The full name from Segment's ``firstName`` and ``lastName`` traits (or their snake-case
    spellings), as Segment fills ``name`` when only those are sent: "first last", except
    that a Chinese name puts the family name first, without a space (王 + 伟 → 王伟)."""
    first = fn.strip(ibis.coalesce(traits["firstName"], traits["first_name"])).nullif("")
    last = fn.strip(ibis.coalesce(traits["lastName"], traits["last_name"])).nullif("")
    han = first.re_search(_HAN_NAME) & last.re_search(_HAN_NAME)
    both = ibis.ifelse(han, last + first, first + " " + last)
    return ibis.coalesce(both, first, last)


def segment_profile_texts(events: ir.Table, backend: str) -> dict[str, ir.Value]:
    """Contact columns from the traits of identify calls (one profile version per call)."""
    t = fn.json_struct(events["traits"], TRAIT_FIELDS, backend)
    address = t["address"]
    return {
        "source_key": events["user_id"],
        "user_id": events["user_id"],
        "anonymous_id": events["anonymous_id"],
        "email": t["email"],
        "phone": ibis.coalesce(t["phone"], t["mobile"]),
        "name": ibis.coalesce(t["name"], t["real_name"], _full_name(t)),
        "gender": t["gender"],
        "birth_date": ibis.coalesce(t["birthday"], t["birth_date"]),
        "city": ibis.coalesce(address["city"], t["city"]),
        "region": ibis.coalesce(address["state"], address["province"], t["province"], t["state"]),
        "country": ibis.coalesce(address["country"], t["country"]),
        "signup_at": ibis.coalesce(t["createdAt"], t["created_at"]),
    }
