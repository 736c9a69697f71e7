"""Segments: saved audiences in the expression language, preview, overlap, export; clustering.

>>> from loupe.segments import preview, create_segment, overlap  # doctest: +SKIP
>>> preview(wh, 'rfm_group in ("At Risk", "Hibernating") and has_tag("价格敏感型")')["size"]  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from loupe.lazy import lazy_getattr

if TYPE_CHECKING:
    from loupe.segments.clustering import (
        ClusterResult,
        ClusterSpec,
        cluster_customers,
        cluster_name,
        save_clusters,
    )
    from loupe.segments.export import consented_customers, export_members
    from loupe.segments.overlaps import overlap, overlap_counts
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
        delete_segment,
        list_segments,
        members_of,
        preview,
        refresh_segments,
        save_definitions,
        show_segment,
    )

#: Where each public name lives, loaded on first use (see :mod:`loupe.lazy`).
_EXPORTS = {
    "Audience": "loupe.segments.store",
    "ClusterResult": "loupe.segments.clustering",
    "ClusterSpec": "loupe.segments.clustering",
    "RefreshReport": "loupe.segments.store",
    "SegmentSettings": "loupe.segments.settings",
    "audience": "loupe.segments.store",
    "cluster_customers": "loupe.segments.clustering",
    "cluster_name": "loupe.segments.clustering",
    "compute_members": "loupe.segments.store",
    "consented_customers": "loupe.segments.export",
    "create_segment": "loupe.segments.store",
    "current_members": "loupe.segments.store",
    "declared_segments": "loupe.segments.settings",
    "definition": "loupe.segments.store",
    "definitions": "loupe.segments.store",
    "delete_segment": "loupe.segments.store",
    "export_members": "loupe.segments.export",
    "list_segments": "loupe.segments.store",
    "members_of": "loupe.segments.store",
    "overlap": "loupe.segments.overlaps",
    "overlap_counts": "loupe.segments.overlaps",
    "preview": "loupe.segments.store",
    "refresh_segments": "loupe.segments.store",
    "save_clusters": "loupe.segments.clustering",
    "save_definitions": "loupe.segments.store",
    "show_segment": "loupe.segments.store",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)

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
    "delete_segment",
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
