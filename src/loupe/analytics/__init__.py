"""Behavioural analytics: funnels, market basket, retention cohorts, paths, recommendations.

Every analysis is a pure function ``(tables, spec) -> ibis.Table`` that the warehouse runs,
plus a convenience function that runs it on an open warehouse.

>>> from loupe.analytics import FunnelSpec, funnel, parse_steps  # doctest: +SKIP
>>> funnel(wh, FunnelSpec(parse_steps("Product Viewed,Order Completed"))).steps  # doctest: +SKIP
"""

from loupe.analytics.audiences import save_static_segment
from loupe.analytics.basket import (
    BasketSpec,
    association_rules,
    basket_rules,
    basket_tables,
    baskets,
    bought_together,
    frequent_itemsets,
)
from loupe.analytics.funnel import (
    FunnelResult,
    FunnelSpec,
    funnel,
    funnel_counts,
    funnel_dropoff,
    funnel_people,
    funnel_tables,
    save_dropoff,
    time_to_convert,
)
from loupe.analytics.paths import PathSpec, exits_and_loops, path_table, paths, sankey, top_paths
from loupe.analytics.people import event_people, order_people
from loupe.analytics.recommend import (
    RECOMMENDATIONS,
    RecommendSpec,
    als_recommendations,
    cooccurrence_recommendations,
    evaluate,
    item_similarity,
    popularity_recommendations,
    purchases,
    recommend,
)
from loupe.analytics.retention import (
    RetentionSpec,
    acquisitions,
    period_index,
    retention,
    retention_doc,
    retention_matrix,
)
from loupe.analytics.spec import Condition, Step, parse_duration, parse_steps

__all__ = [
    "RECOMMENDATIONS",
    "BasketSpec",
    "Condition",
    "FunnelResult",
    "FunnelSpec",
    "PathSpec",
    "RecommendSpec",
    "RetentionSpec",
    "Step",
    "acquisitions",
    "als_recommendations",
    "association_rules",
    "basket_rules",
    "basket_tables",
    "baskets",
    "bought_together",
    "cooccurrence_recommendations",
    "evaluate",
    "event_people",
    "exits_and_loops",
    "frequent_itemsets",
    "funnel",
    "funnel_counts",
    "funnel_dropoff",
    "funnel_people",
    "funnel_tables",
    "item_similarity",
    "order_people",
    "parse_duration",
    "parse_steps",
    "path_table",
    "paths",
    "period_index",
    "popularity_recommendations",
    "purchases",
    "recommend",
    "retention",
    "retention_doc",
    "retention_matrix",
    "sankey",
    "save_dropoff",
    "save_static_segment",
    "time_to_convert",
    "top_paths",
]
