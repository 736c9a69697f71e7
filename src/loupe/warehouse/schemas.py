"""Canonical table schemas: the contract between stages.

Two layers, as data teams know them from the medallion pattern:

* ``raw_<table>`` — written by ``ingest``: every source mapped onto the canonical columns, typed
  where the type is unambiguous (timestamps, amounts, quantities) and otherwise exactly as read,
  plus lineage columns (``_file``, ``_line``, ``_batch``, ``_loaded_at``, ``_row_hash``).
* ``<table>`` — written by ``quality``: the same columns standardised (email, E.164 phone,
  gender, dates, base-currency amounts), deduplicated by natural key, with quality flags.
  Downstream stages read only these.

All timestamps are UTC, stored without a time zone.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
from ibis.expr.schema import Schema

LINEAGE: dict[str, str] = {
    "_file": "string",
    "_line": "int64",
    "_batch": "string",
    "_loaded_at": "timestamp",
    "_row_hash": "string",
}

CONTACTS: dict[str, str] = {
    "source": "string",
    "source_key": "string",
    "email": "string",
    "phone": "string",
    "user_id": "string",
    "anonymous_id": "string",
    "name": "string",
    "gender": "string",
    "birth_date": "string",
    "city": "string",
    "region": "string",
    "country": "string",
    "signup_at": "timestamp",
    "updated_at": "timestamp",
}

ORDERS: dict[str, str] = {
    "order_id": "string",
    "source": "string",
    "contact_source": "string",
    "source_key": "string",
    "email": "string",
    "phone": "string",
    "user_id": "string",
    "ordered_at": "timestamp",
    "amount": "float64",
    "currency": "string",
    "discount": "float64",
    "coupon_code": "string",
    "channel": "string",
    "store_id": "string",
    "status": "string",
}

ORDER_ITEMS: dict[str, str] = {
    "order_id": "string",
    "source": "string",
    "line_no": "int64",
    "product_id": "string",
    "quantity": "int64",
    "unit_price": "float64",
    "discount": "float64",
}

PRODUCTS: dict[str, str] = {
    "product_id": "string",
    "source": "string",
    "name": "string",
    "name_en": "string",
    "category": "string",
    "brand": "string",
    "price": "float64",
    "currency": "string",
}

EVENTS: dict[str, str] = {
    "event_id": "string",
    "source": "string",
    "type": "string",
    "event": "string",
    "anonymous_id": "string",
    "user_id": "string",
    "ts": "timestamp",
    "session_id": "string",
    "url": "string",
    "screen": "string",
    "referrer": "string",
    "product_id": "string",
    "order_id": "string",
    "revenue": "float64",
    "utm_source": "string",
    "utm_medium": "string",
    "utm_campaign": "string",
    "properties": "string",
    "traits": "string",
}

MARKETING_SPEND: dict[str, str] = {
    "date": "date",
    "source": "string",
    "channel": "string",
    "campaign": "string",
    "spend": "float64",
    "impressions": "int64",
    "clicks": "int64",
    "currency": "string",
}

CONSENTS: dict[str, str] = {
    "source": "string",
    "identifier": "string",
    "identifier_type": "string",
    "purpose": "string",
    "granted": "boolean",
    "ts": "timestamp",
    "origin": "string",
}

FEEDBACK: dict[str, str] = {
    "feedback_id": "string",
    "source": "string",
    "contact_source": "string",
    "source_key": "string",
    "user_id": "string",
    "email": "string",
    "phone": "string",
    "ts": "timestamp",
    "text": "string",
    "rating": "float64",
    "lang": "string",
    "channel": "string",
    "product_id": "string",
}

#: Canonical columns of each table as ingest writes them (before lineage columns).
RAW_COLUMNS: dict[str, dict[str, str]] = {
    "contacts": CONTACTS,
    "orders": ORDERS,
    "order_items": ORDER_ITEMS,
    "products": PRODUCTS,
    "events": EVENTS,
    "marketing_spend": MARKETING_SPEND,
    "consents": CONSENTS,
    "feedback": FEEDBACK,
}

#: Natural key of each canonical table: one row per key after ``quality``.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "contacts": ("source", "source_key"),
    "orders": ("source", "order_id"),
    "order_items": ("source", "order_id", "line_no"),
    "products": ("product_id",),
    "events": ("source", "event_id"),
    "marketing_spend": ("date", "channel", "campaign"),
    "consents": ("source", "identifier", "purpose", "ts"),
    "feedback": ("source", "feedback_id"),
}


def lineage_order(latest_first: bool) -> list[ibis.Deferred]:
    """Sort keys of ``raw_<table>`` rows by when and where they were loaded."""
    cols = ["_loaded_at", "_batch", "_file", "_line"]
    if latest_first:
        return [ibis.desc(c) for c in cols]
    return [ibis.asc(c) for c in cols]


def version_order(table: str) -> list[ibis.Deferred]:
    """Sort keys of ``raw_<table>``, the version quality keeps first, for the rows of one
    natural key.

    Contacts: the newest ``updated_at``, then ``signup_at``; every table but events: then the
    latest load (``_loaded_at``, ``_batch``) and the highest ``_file``/``_line``.  Events keep
    the *first* version (an event happens once; a later copy is a re-send).  Ingest reads the
    version in force of a profile with the same order (``ingest.load._latest_versions``).
    """
    if table == "events":
        return lineage_order(latest_first=False)
    keys: list[ibis.Deferred] = []
    if table == "contacts":
        keys = [
            ibis.desc("updated_at", nulls_first=False),
            ibis.desc("signup_at", nulls_first=False),
        ]
    return keys + lineage_order(latest_first=True)


#: Columns ingest insists on: a row without them is quarantined.
REQUIRED: dict[str, tuple[str, ...]] = {
    "contacts": ("source_key",),
    "orders": ("order_id", "ordered_at"),
    "order_items": ("order_id", "product_id", "quantity"),
    "products": ("product_id",),
    "events": ("ts",),
    "marketing_spend": ("date", "channel"),
    "consents": ("identifier", "purpose", "granted"),
    "feedback": ("feedback_id",),
}

#: Columns a quality stage adds to the canonical (published) tables.
QUALITY_EXTRA: dict[str, dict[str, str]] = {
    "contacts": {
        "email_raw": "string",
        "phone_raw": "string",
        "birth_date": "date",
        "quality_flags": "array<string>",
    },
    "orders": {"amount_base": "float64", "quality_flags": "array<string>"},
    "order_items": {"quality_flags": "array<string>"},
    "products": {"price_base": "float64", "quality_flags": "array<string>"},
    "events": {"quality_flags": "array<string>"},
    "marketing_spend": {"spend_base": "float64", "quality_flags": "array<string>"},
    "consents": {"quality_flags": "array<string>"},
    "feedback": {"quality_flags": "array<string>"},
}

QUARANTINE: dict[str, str] = {
    "source": "string",
    "location": "string",
    "raw": "string",
    "reason": "string",
    "loaded_at": "timestamp",
    "batch": "string",
}

IDENTITY_LINKS: dict[str, str] = {
    "id_type": "string",
    "id_value": "string",
    "customer_id": "string",
}

#: ``event_persons``: the person key of every event that has an identifier, written by the
#: identity stage (see :func:`loupe.identity.attach.event_person_index`), with a third column
#: ``pk``, the 64-bit hash of the person's id (:func:`loupe.warehouse.functions.hash64`),
#: in the backend's own type (unsigned on DuckDB, signed on Spark).
EVENT_PERSONS: dict[str, str] = {"event": "string", "ts": "timestamp"}

#: ``order_baskets``: one row per order in ``order_items`` (lines with an ``order_id`` and a
#: ``product_id``), keyed by ``bs`` (the source, ``''`` when NULL) and ``bo`` (the order id),
#: with ``items``, the distinct codes of its products in ascending order; written by the
#: quality stage (see :func:`loupe.quality.baskets.store_baskets`).  ``basket_items`` decodes
#: them: a dense code per product, numbered in product order.
ORDER_BASKETS: dict[str, str] = {"bs": "string", "bo": "string", "items": "array<int32>"}
BASKET_ITEMS: dict[str, str] = {"item": "string", "code": "int32"}

#: Derived tables and the tables each is computed from.  The warehouse drops a derived table
#: whenever one of its inputs is written through it (replaced, appended to or dropped), so a
#: reader finds it either fresh or missing, never stale; readers fall back to the inputs.
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "event_persons": ("events", "identity_links"),
    "order_baskets": ("order_items",),
    "basket_items": ("order_items",),
}

CUSTOMERS: dict[str, str] = {
    "customer_id": "string",
    "email": "string",
    "phone": "string",
    "user_id": "string",
    "name": "string",
    "gender": "string",
    "birth_date": "date",
    "city": "string",
    "region": "string",
    "country": "string",
    "first_seen": "timestamp",
    "last_seen": "timestamp",
    "sources": "array<string>",
    "record_count": "int64",
}

STAGE_RUNS: dict[str, str] = {
    "run_id": "string",
    "stage": "string",
    "inputs": "array<string>",
    "outputs": "array<string>",
    "rows_in": "int64",
    "rows_out": "int64",
    "started_at": "timestamp",
    "finished_at": "timestamp",
    "loupe_version": "string",
    "status": "string",
    "error": "string",
}

INGESTED_FILES: dict[str, str] = {
    "source": "string",
    "file": "string",
    "fingerprint": "string",
    "rows": "int64",
    "batch": "string",
    "loaded_at": "timestamp",
    "size": "int64",
    "modified_ns": "int64",
}
"""``ingested_files``: one row per file loaded, with its content fingerprint and, since
migration 7, its size in bytes and modification time (ns since the epoch) when it was listed."""

QUALITY_METRICS: dict[str, str] = {
    "table": "string",
    "column": "string",
    "metric": "string",
    "value": "float64",
    "computed_at": "timestamp",
}

SHARED_IDENTIFIERS: dict[str, str] = {"id_type": "string", "id_value": "string", "records": "int64"}

IDENTITY_MATCHES: dict[str, str] = {
    "record_l": "string",
    "record_r": "string",
    "match_probability": "float64",
    "match_weight": "float64",
    "levels": "string",
}
"""``identity_matches``: one row per record pair the probabilistic model linked; ``levels``
(migration 9) is JSON text, each comparison's level and weight (NULL for pairs linked before)."""

CUSTOMER_ID_CHANGES: dict[str, str] = {
    "old_id": "string",
    "customer_id": "string",
    "reason": "string",
    "records": "int64",
    "old_records": "int64",
    "changed_at": "timestamp",
}
"""``customer_id_changes``: one row per customer id an identity run retired, appended by that
run (migration 8).  ``reason`` is ``merged`` (its records joined a customer that kept another
id; ``customer_id`` is the one now holding most of them, ``records`` how many) or ``removed``
(none of its ``old_records`` is left; ``customer_id`` is NULL)."""

CUSTOMER_TAGS: dict[str, str] = {
    "customer_id": "string",
    "tag": "string",
    "value": "string",
    "computed_at": "timestamp",
}

LIFECYCLE_HISTORY: dict[str, str] = {
    "customer_id": "string",
    "stage": "string",
    "since": "date",
    "computed_at": "timestamp",
}

SEGMENTS: dict[str, str] = {
    "name": "string",
    "expr": "string",
    "description": "string",
    "created_at": "timestamp",
}

SEGMENT_MEMBERS: dict[str, str] = {
    "segment": "string",
    "customer_id": "string",
    "computed_at": "timestamp",
}

MODEL_REGISTRY: dict[str, str] = {
    "name": "string",
    "version": "string",
    "kind": "string",
    "target": "string",
    "trained_at": "timestamp",
    "train_start": "date",
    "train_end": "date",
    "features": "string",
    "metrics": "string",
    "params": "string",
    "libraries": "string",
    "content_hash": "string",
    "path": "string",
}
"""One row per trained model version; JSON text in ``features``, ``metrics``, ``params``,
``libraries``; the artefact itself is a file at ``path`` (relative to the project)."""

MODEL_SCORES: dict[str, str] = {
    "customer_id": "string",
    "model": "string",
    "version": "string",
    "score": "float64",
    "decile": "int64",
    "drivers": "string",
    "scored_at": "timestamp",
}
"""One row per customer per scoring run; ``drivers`` is JSON: the top contributions."""

PURCHASE_DUE: dict[str, str] = {
    "customer_id": "string",
    "category": "string",
    "last_purchase": "date",
    "expected_date": "date",
    "low_date": "date",
    "high_date": "date",
    "purchases": "int64",
    "basis": "string",
    "as_of": "date",
    "computed_at": "timestamp",
}
"""Next purchase per customer and category as of ``as_of``; ``basis`` says whose cadence was used."""

DEMAND_FORECASTS: dict[str, str] = {
    "category": "string",
    "metric": "string",
    "freq": "string",
    "period_start": "date",
    "model": "string",
    "forecast": "float64",
    "low": "float64",
    "high": "float64",
    "computed_at": "timestamp",
}

AUDIT_LOG: dict[str, str] = {
    "ts": "timestamp",
    "actor": "string",
    "action": "string",
    "target": "string",
    "detail": "string",
}


def schema(columns: dict[str, str]) -> Schema:
    """An Ibis schema from a ``{column: type}`` mapping."""
    return ibis.schema({name: dt.dtype(kind) for name, kind in columns.items()})


def raw_schema(table: str) -> Schema:
    return schema({**RAW_COLUMNS[table], **LINEAGE})


def canonical_schema(table: str) -> Schema:
    cols = {**RAW_COLUMNS[table], **QUALITY_EXTRA[table]}
    return schema({**cols, "_file": "string", "_line": "int64"})
