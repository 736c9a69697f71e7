"""Customer understanding: features as of a date, RFM, lifecycle stages, declarative tags.

>>> from loupe.profile import build_profile, rfm  # doctest: +SKIP
>>> report = build_profile(wh)  # doctest: +SKIP
>>> rfm(wh)["groups"]  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from loupe.lazy import lazy_getattr

if TYPE_CHECKING:
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
    from loupe.profile.rfm_grid import rfm_cells, rfm_group_of, rfm_report, rfm_scores
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

#: Where each public name lives, loaded on first use (see :mod:`loupe.lazy`).
_EXPORTS = {
    "FeatureSpec": "loupe.profile.features",
    "FeaturesReport": "loupe.profile.stage",
    "LifecycleSettings": "loupe.profile.settings",
    "ProfileReport": "loupe.profile.stage",
    "ProfileSettings": "loupe.profile.settings",
    "RfmRule": "loupe.profile.settings",
    "RfmSettings": "loupe.profile.settings",
    "STAGES": "loupe.profile.lifecycle",
    "TagSettings": "loupe.profile.settings",
    "TagsReport": "loupe.profile.stage",
    "activity_features": "loupe.profile.features",
    "affinity_features": "loupe.profile.features",
    "audience_table": "loupe.profile.audience",
    "build_features": "loupe.profile.stage",
    "build_profile": "loupe.profile.stage",
    "build_tags": "loupe.profile.stage",
    "category_column": "loupe.profile.features",
    "customer_features": "loupe.profile.features",
    "evaluate_tags": "loupe.profile.tags",
    "feature_spec": "loupe.profile.stage",
    "interval_features": "loupe.profile.features",
    "latest_stages": "loupe.profile.lifecycle",
    "latest_tags": "loupe.profile.tags",
    "lifecycle_stages": "loupe.profile.lifecycle",
    "line_spend": "loupe.profile.features",
    "order_facts": "loupe.profile.features",
    "profile_settings": "loupe.profile.settings",
    "profile_tables": "loupe.profile.tables",
    "purchase_features": "loupe.profile.features",
    "rfm": "loupe.profile.stage",
    "rfm_cells": "loupe.profile.rfm_grid",
    "rfm_group_of": "loupe.profile.rfm_grid",
    "rfm_report": "loupe.profile.rfm_grid",
    "rfm_scores": "loupe.profile.rfm_grid",
    "scored_features": "loupe.profile.stage",
    "spend_by": "loupe.profile.features",
    "starter_tags": "loupe.profile.settings",
    "tag_context": "loupe.profile.stage",
    "tag_rows": "loupe.profile.tags",
    "transitions": "loupe.profile.lifecycle",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)

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
