"""Customer understanding: features as of a date, RFM, lifecycle stages, declarative tags.

>>> from loupe.profile import build_profile, rfm  # doctest: +SKIP
>>> report = build_profile(wh)  # doctest: +SKIP
>>> rfm(wh)["groups"]  # doctest: +SKIP
"""

from loupe.profile.audience import audience_table
from loupe.profile.features import (
    FeatureSpec,
    activity_features,
    affinity_features,
    category_column,
    customer_features,
    interval_features,
    line_spend,
    order_facts,
    purchase_features,
    spend_by,
)
from loupe.profile.lifecycle import STAGES, latest_stages, lifecycle_stages, transitions
from loupe.profile.rfm import rfm_cells, rfm_group_of, rfm_report, rfm_scores
from loupe.profile.settings import (
    LifecycleSettings,
    ProfileSettings,
    RfmRule,
    RfmSettings,
    TagSettings,
    profile_settings,
    starter_tags,
)
from loupe.profile.stage import (
    FeaturesReport,
    ProfileReport,
    TagsReport,
    build_features,
    build_profile,
    build_tags,
    feature_spec,
    rfm,
    scored_features,
    tag_context,
)
from loupe.profile.tables import profile_tables
from loupe.profile.tags import evaluate_tags, latest_tags, tag_rows

__all__ = [
    "STAGES",
    "FeatureSpec",
    "FeaturesReport",
    "LifecycleSettings",
    "ProfileReport",
    "ProfileSettings",
    "RfmRule",
    "RfmSettings",
    "TagSettings",
    "TagsReport",
    "activity_features",
    "affinity_features",
    "audience_table",
    "build_features",
    "build_profile",
    "build_tags",
    "category_column",
    "customer_features",
    "evaluate_tags",
    "feature_spec",
    "interval_features",
    "latest_stages",
    "latest_tags",
    "lifecycle_stages",
    "line_spend",
    "order_facts",
    "profile_settings",
    "profile_tables",
    "purchase_features",
    "rfm",
    "rfm_cells",
    "rfm_group_of",
    "rfm_report",
    "rfm_scores",
    "scored_features",
    "spend_by",
    "starter_tags",
    "tag_context",
    "tag_rows",
    "transitions",
]
