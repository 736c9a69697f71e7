"""Segments: saved audiences in the expression language, preview, overlap, export; clustering.

>>> from loupe.segments import preview, create_segment, overlap  # doctest: +SKIP
>>> preview(wh, 'rfm_group in ("At Risk", "Hibernating") and has_tag("价格敏感型")')["size"]  # doctest: +SKIP
"""

from loupe.segments.clustering import (
    ClusterResult,
    ClusterSpec,
    cluster_customers,
    cluster_name,
    save_clusters,
)
from loupe.segments.export import consented_customers, export_members
from loupe.segments.overlap import overlap, overlap_counts
from loupe.segments.settings import SegmentSettings, declared_segments
from loupe.segments.store import (
    Audience,
    RefreshReport,
    audience,
    compute_members,
    create_segment,
    current_members,
    definition,
    definitions,
    list_segments,
    members_of,
    preview,
    refresh_segments,
    save_definitions,
    show_segment,
)

__all__ = [
    "Audience",
    "ClusterResult",
    "ClusterSpec",
    "RefreshReport",
    "SegmentSettings",
    "audience",
    "cluster_customers",
    "cluster_name",
    "compute_members",
    "consented_customers",
    "create_segment",
    "current_members",
    "declared_segments",
    "definition",
    "definitions",
    "export_members",
    "list_segments",
    "members_of",
    "overlap",
    "overlap_counts",
    "preview",
    "refresh_segments",
    "save_clusters",
    "save_definitions",
    "show_segment",
]
