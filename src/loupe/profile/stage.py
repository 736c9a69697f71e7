"""The profile stage on a warehouse: ``customer_features`` (with RFM and lifecycle),
``lifecycle_history`` and ``customer_tags``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import ibis.expr.types as ir
from ibis import _

from loupe.expr import CompileContext
from loupe.profile.audience import audience_table
from loupe.profile.features import (
    FeatureSpec,
    customer_features,
    line_spend,
    order_facts,
    spend_by,
)
from loupe.profile.lifecycle import HISTORY_SCHEMA, lifecycle_stages, transitions
from loupe.profile.rfm_grid import rfm_cells, rfm_report, rfm_scores
from loupe.profile.settings import ProfileSettings, profile_settings
from loupe.profile.tables import (
    PROFILE_INPUTS,
    categories,
    default_as_of,
    profile_tables,
    utc_offset_minutes,
)
from loupe.profile.tags import TAGS_SCHEMA, evaluate_tags, expression_tags, tag_changes
from loupe.profile.work import work_table
from loupe.warehouse import Warehouse, stage_run, utcnow

Progress = Callable[[str, int, int], None]

FEATURES = "customer_features"
WORK_FACTS = "profile_work_orders"
"""The order facts of the last features run (one row per order before its as-of date)."""
WORK_FEATURES = "profile_work_features"
WORK_LINES = "profile_work_lines"
WORK_SPEND = {"category": "profile_work_category_spend", "brand": "profile_work_brand_spend"}
""":func:`spend_by` of the last features run (the category one is stored by it)."""
WORK_TAGS = "profile_work_tags"
"""One row per customer, one value column per tag (the last tags run)."""
WORK_TAG_ROWS = "profile_work_tag_rows"
HISTORY = "lifecycle_history"
TAGS = "customer_tags"
SEGMENT_MEMBERS = "segment_members"
SEGMENT_MEMBERS_SCHEMA = {"segment": "string", "customer_id": "string", "computed_at": "timestamp"}


@dataclass(frozen=True)
class FeaturesReport:
    """What one features run wrote."""

    as_of: date
    customers: int
    buyers: int
    columns: list[str]
    lifecycle: dict[str, int]
    rfm_groups: dict[str, int]
    transitions: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TagsReport:
    """What one tags run appended."""

    computed_at: datetime
    tags: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProfileReport:
    features: FeaturesReport
    tags: TagsReport

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features.to_dict(), "tags": self.tags.to_dict()}


def feature_spec(wh: Warehouse, as_of: date | None = None) -> FeatureSpec:
    """The :class:`FeatureSpec` of this project for ``as_of`` (default: the day after the
    latest order)."""
    settings = profile_settings(wh.settings)
    day = as_of or default_as_of(wh)
    return FeatureSpec.from_settings(
        settings,
        day,
        categories=categories(wh),
        utc_offset_minutes=utc_offset_minutes(wh.settings.project.timezone, day),
    )


def scored_features(
    tables: dict[str, ir.Table], spec: FeatureSpec, settings: ProfileSettings
) -> ir.Table:
    """Features plus RFM scores and lifecycle stage (pure: nothing is executed)."""
    features = customer_features(tables, spec)
    return score(features, settings)


def score(features: ir.Table, settings: ProfileSettings) -> ir.Table:
    """RFM scores and lifecycle stage on top of :func:`customer_features`."""
    return lifecycle_stages(rfm_scores(features, settings.rfm), settings.lifecycle)


def work_facts(wh: Warehouse, spec: FeatureSpec, tables: dict[str, ir.Table]) -> ir.Table:
    """The stashed order facts of this connection's last features run, or the expression."""
    try:
        return wh.con.table(WORK_FACTS)
    except Exception:  # not stashed on this connection
        return order_facts(tables["orders"], spec)


def work_spend(
    wh: Warehouse, spec: FeatureSpec, tables: dict[str, ir.Table], column: str
) -> ir.Table:
    """:func:`spend_by` ``column`` of the last features run (stored by it), or the expression."""
    try:
        return wh.con.table(WORK_SPEND[column])
    except Exception:  # not stored on this connection
        facts = work_facts(wh, spec, tables)
        try:
            lines = wh.con.table(WORK_LINES)
        except Exception:
            lines = line_spend(facts, tables["order_items"], tables["products"])
        return spend_by(facts, tables["order_items"], tables["products"], column, lines=lines)


def ensure_tables(wh: Warehouse) -> None:
    """Create the profile tables a fresh warehouse does not have yet."""
    import ibis

    wh.create_empty(HISTORY, HISTORY_SCHEMA)
    wh.create_empty(TAGS, TAGS_SCHEMA)
    wh.create_empty(SEGMENT_MEMBERS, ibis.schema(SEGMENT_MEMBERS_SCHEMA))


def build_features(
    wh: Warehouse, as_of: date | None = None, progress: Progress | None = None
) -> FeaturesReport:
    """Write ``customer_features`` as of ``as_of`` and append lifecycle transitions."""
    start = time.perf_counter()
    settings = profile_settings(wh.settings)
    spec = feature_spec(wh, as_of)
    ensure_tables(wh)
    if progress:
        progress("features", 0, 3)
    with stage_run(wh, "features", PROFILE_INPUTS, [FEATURES, HISTORY]) as run:
        # Stored in steps, each once: the order facts feed the purchase aggregate and the line
        # spend; the category spend feeds the features and the top-k tags; the plain features
        # are read several times by the RFM ranks and the lifecycle median.
        tables = profile_tables(wh)
        facts = work_table(wh, WORK_FACTS, order_facts(tables["orders"], spec))
        lines = work_table(
            wh, WORK_LINES, line_spend(facts, tables["order_items"], tables["products"])
        )
        cats = work_table(
            wh,
            WORK_SPEND["category"],
            spend_by(facts, tables["order_items"], tables["products"], "category", lines=lines),
        )
        plain = work_table(
            wh,
            WORK_FEATURES,
            customer_features(tables, spec, facts=facts, lines=lines, category_spend=cats),
        )
        if progress:
            progress("features", 1, 3)
        features = wh.replace(FEATURES, score(plain, settings))
        if progress:
            progress("features", 2, 3)
        at = utcnow()
        moved = wh.append(HISTORY, transitions(features, wh.table(HISTORY), at))
        summary = wh.to_pandas(
            features.group_by(["lifecycle_stage", "rfm_group"]).aggregate(n=_.customer_id.count())
        )
        stages = summary.groupby("lifecycle_stage", dropna=False)["n"].sum()
        groups = summary.dropna(subset=["rfm_group"]).groupby("rfm_group")["n"].sum()
        customers = int(summary["n"].sum())
        run.rows_in = customers
        run.rows_out = customers
        if progress:
            progress("features", 3, 3)
    gcounts = {str(k): int(v) for k, v in groups.items()}
    return FeaturesReport(
        as_of=spec.as_of,
        customers=customers,
        buyers=sum(gcounts.values()),
        columns=list(features.columns),
        lifecycle={str(k): int(v) for k, v in stages.items()},
        rfm_groups=gcounts,
        transitions=moved,
        seconds=round(time.perf_counter() - start, 3),
    )


def tag_context(wh: Warehouse, tables: dict[str, ir.Table], as_of: date) -> CompileContext:
    """What tag and segment expressions are compiled against on this warehouse."""
    return CompileContext.as_of(
        as_of,
        tags=expression_tags(wh.table(TAGS)) if wh.exists(TAGS) else None,
        segments=wh.table(SEGMENT_MEMBERS) if wh.exists(SEGMENT_MEMBERS) else None,
        orders=tables["orders"].filter(tables["orders"].customer_id.notnull()),
        events=tables["events"].filter(tables["events"].customer_id.notnull()),
    )


def build_tags(wh: Warehouse, progress: Progress | None = None) -> TagsReport:
    """Evaluate ``[[profile.tags]]`` against ``customer_features`` and append the changes.

    Only (customer, tag) pairs whose values differ from their current ones are appended to
    ``customer_tags`` (see :mod:`loupe.profile.tags`); ``TagsReport.tags`` counts each tag's
    rows in this run's values and ``rows`` the rows appended.
    """
    start = time.perf_counter()
    settings = profile_settings(wh.settings)
    ensure_tables(wh)
    features = wh.table(FEATURES)
    as_of = features_as_of(wh, features)
    spec = feature_spec(wh, as_of)
    tables = profile_tables(wh)
    affinity = {src: work_spend(wh, spec, tables, src) for src in ("category", "brand")}
    audience = audience_table(wh.table("customers"), features)
    at = utcnow()
    with stage_run(wh, "tags", [FEATURES, "customers", TAGS], [TAGS]) as run:
        result = evaluate_tags(
            settings.tags,
            audience,
            context=tag_context(wh, tables, as_of),
            affinity=affinity,
            computed_at=at,
        )
        counts: dict[str, int] = {}
        rows = 0
        if result.wide is not None and result.evaluated:
            # every tag is a column of one table, stored once; the rows are read from it
            wide = work_table(wh, WORK_TAGS, result.wide)
            values = result.rows_over(wide)
            assert values is not None
            snapshot = work_table(wh, WORK_TAG_ROWS, values)
            df = wh.to_pandas(snapshot.group_by("tag").aggregate(n=snapshot.customer_id.count()))
            counts = {str(k): int(v) for k, v in zip(df["tag"], df["n"], strict=True)}
            history = wh.table(TAGS)
            if wh.count(history) == 0:
                changes = snapshot
            else:
                changes = tag_changes(snapshot, history, result.evaluated, at)
            rows = wh.append(TAGS, changes)
        run.rows_in = wh.count(features)
        run.rows_out = rows
        if progress:
            progress("tags", 1, 1)
    return TagsReport(
        computed_at=at,
        tags={name: counts.get(name, 0) for name in result.evaluated},
        skipped=result.skipped,
        rows=rows,
        seconds=round(time.perf_counter() - start, 3),
    )


def build_profile(
    wh: Warehouse, as_of: date | None = None, progress: Progress | None = None
) -> ProfileReport:
    """The whole profile stage: features (with RFM and lifecycle), then tags."""
    return ProfileReport(build_features(wh, as_of, progress), build_tags(wh, progress))


def rfm(wh: Warehouse) -> dict[str, Any]:
    """The RFM grid and groups of the current ``customer_features``."""
    settings = profile_settings(wh.settings).rfm
    cells = wh.to_pandas(rfm_cells(wh.table(FEATURES), settings))
    doc = rfm_report(cells, settings)
    doc["as_of"] = features_as_of(wh, wh.table(FEATURES))
    return doc


def features_as_of(wh: Warehouse, features: ir.Table) -> date:
    """The ``as_of`` day of ``customer_features``; a clear error when there are none.

    With no customers at all the cause is upstream, not a missing ``loupe profile``: customers
    come from contact records, and a project of orders (or events) alone has none.
    """
    value = wh.scalar(features.as_of.max())
    if value is None or value != value:
        from loupe.errors import LoupeError

        if not wh.exists("customers") or wh.count("customers") == 0:
            raise LoupeError(
                "there are no customers: identity resolution found no contact records",
                where="customers",
                fix="customers come from contacts sources (a CRM, e-shop accounts, loyalty "
                "members): declare one in loupe.toml, or set [identity] customers_from_orders "
                "= true to make customers of the people behind orders; then `loupe run`",
            )
        raise LoupeError(
            "customer_features is empty",
            where=FEATURES,
            fix="run `loupe profile` (or `loupe run`) after identity resolution",
        )
    return value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)[:10])
