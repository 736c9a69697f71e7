"""Settings of the profile stage: ``[profile]``, ``[profile.rfm]``, ``[profile.lifecycle]`` and
``[[profile.tags]]`` in ``loupe.toml``.

These models are hooked into :class:`loupe.config.Settings` as ``profile: ProfileSettings``;
stage code reads them through :func:`profile_settings`, which falls back to the defaults when
the project's settings carry no ``profile`` section.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from loupe.config import Settings

TagCategory = Literal["basic", "behaviour", "interest", "value", "scene"]
TagKind = Literal["expr", "quantile", "top_k", "threshold"]
RfmMethod = Literal["quantile", "fixed"]

#: The RFM groups, in the order the default mapping tries them.
RFM_GROUPS = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "Cannot Lose Them",
    "At Risk",
    "Lost",
    "Hibernating",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RfmRule(_Strict):
    """One named group: the cells of the R × FM grid it covers (inclusive score ranges)."""

    group: str
    r: tuple[int, int]
    fm: tuple[int, int]

    @field_validator("r", "fm")
    @classmethod
    def _range(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not 1 <= lo <= hi <= 5:
            raise ValueError("a score range is [low, high] with 1 <= low <= high <= 5")
        return v


def default_rfm_rules() -> list[RfmRule]:
    """The default mapping of the R × FM grid to named groups (first matching rule wins).

    ``FM`` is the rounded mean of the F and M scores.  Rows are R (5 = bought most recently),
    columns FM (5 = buys most often and spends most)::

              FM=1          FM=2          FM=3          FM=4       FM=5
        R=5   New           Pot. Loyalist Pot. Loyalist Champions  Champions
        R=4   Promising     Pot. Loyalist Pot. Loyalist Loyal      Loyal
        R=3   About to Sl.  About to Sl.  Need Attent.  Loyal      Loyal
        R=2   Hibernating   Hibernating   At Risk       At Risk    Cannot Lose Them
        R=1   Lost          Hibernating   At Risk       At Risk    Cannot Lose Them
    """
    rules = [
        ("Champions", (5, 5), (4, 5)),
        ("Loyal", (3, 4), (4, 5)),
        ("Potential Loyalist", (4, 5), (2, 3)),
        ("New", (5, 5), (1, 1)),
        ("Promising", (4, 4), (1, 1)),
        ("Need Attention", (3, 3), (3, 3)),
        ("About to Sleep", (3, 3), (1, 2)),
        ("Cannot Lose Them", (1, 2), (5, 5)),
        ("At Risk", (1, 2), (3, 4)),
        ("Lost", (1, 1), (1, 1)),
        ("Hibernating", (1, 2), (1, 2)),
    ]
    return [RfmRule(group=g, r=r, fm=fm) for g, r, fm in rules]


class RfmSettings(_Strict):
    method: RfmMethod = "quantile"
    """``quantile``: scores 1-5 by percentile rank among buyers (ties share a score);
    ``fixed``: scores from the edges below."""
    window_days: int | None = None
    """Frequency and monetary value over the last N days; unset means all history."""
    recency_edges: list[float] = Field(default_factory=lambda: [30.0, 90.0, 180.0, 365.0])
    """Days since the last purchase: <= 30 scores 5, <= 90 scores 4 … > 365 scores 1."""
    frequency_edges: list[float] = Field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0])
    """Purchases: <= 1 scores 1, <= 2 scores 2 … > 8 scores 5."""
    monetary_edges: list[float] = Field(default_factory=lambda: [200.0, 500.0, 1500.0, 5000.0])
    """Revenue (base currency): <= 200 scores 1 … > 5000 scores 5."""
    groups: list[RfmRule] = Field(default_factory=default_rfm_rules)

    @field_validator("recency_edges", "frequency_edges", "monetary_edges")
    @classmethod
    def _four_rising_edges(cls, v: list[float]) -> list[float]:
        if len(v) != 4 or any(a >= b for a, b in itertools.pairwise(v)):
            raise ValueError("give 4 rising edges (they split the values into 5 scores)")
        return v

    @model_validator(mode="after")
    def _every_cell_has_a_group(self) -> RfmSettings:
        missing = [
            f"R{r}/FM{fm}"
            for r in range(1, 6)
            for fm in range(1, 6)
            if not any(g.r[0] <= r <= g.r[1] and g.fm[0] <= fm <= g.fm[1] for g in self.groups)
        ]
        if missing:
            raise ValueError(f"no group covers the RFM cells {', '.join(missing)}")
        return self


class LifecycleSettings(_Strict):
    """Stages judged against each customer's own purchase cadence.

    ``usual`` is the customer's mean interval between purchase days when they have at least
    ``min_intervals`` intervals, else the population median; ``ratio`` = days since the last
    purchase / ``usual``.
    """

    at_risk_ratio: float = 1.5
    dormant_ratio: float = 3.0
    churned_ratio: float = 6.0
    churned_after_days: int = 540
    """Churned regardless of cadence after this many days without a purchase."""
    new_days: int = 60
    """A first purchase at most this many days ago (and no second one) is *new*."""
    min_intervals: int = 2
    min_usual_days: float = 7.0
    """Floor on ``usual``, so a burst of same-week purchases does not make a week's pause a risk."""

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleSettings:
        if not 1 <= self.at_risk_ratio < self.dormant_ratio < self.churned_ratio:
            raise ValueError("need 1 <= at_risk_ratio < dormant_ratio < churned_ratio")
        return self


class TagSettings(_Strict):
    """One declared tag: an expression, or a built-in kind over a feature column."""

    name: str
    category: TagCategory = "behaviour"
    description: str = ""
    label_zh: str | None = None
    label_en: str | None = None
    kind: TagKind = "expr"
    expr: str | None = None
    """``kind = "expr"``: a condition in the segment language; members get value ``true``.
    Other kinds: an optional condition that limits who is considered."""
    column: str | None = None
    """``quantile``/``threshold``: a numeric column of the customer table."""
    labels: list[str] = Field(default_factory=lambda: ["low", "medium", "high"])
    """``quantile``: one label per bucket, lowest first (equal-size buckets)."""
    min: float | None = None
    max: float | None = None
    """``threshold``: inclusive bounds on ``column``."""
    source: Literal["category", "brand"] = "category"
    k: int = 1
    min_share: float = 0.0
    """``top_k``: a customer's k largest category (or brand) shares of spend, at least this."""
    optional: bool = False
    """Skip the tag (with a warning in the report) when a column it names does not exist."""

    @model_validator(mode="after")
    def _kind_needs(self) -> TagSettings:
        if self.kind == "expr" and not self.expr:
            raise ValueError(f"tag {self.name!r}: kind 'expr' needs `expr`")
        if self.kind in ("quantile", "threshold") and not self.column:
            raise ValueError(f"tag {self.name!r}: kind {self.kind!r} needs `column`")
        if self.kind == "threshold" and self.min is None and self.max is None:
            raise ValueError(f"tag {self.name!r}: kind 'threshold' needs `min` or `max`")
        if self.kind == "quantile" and len(self.labels) < 2:
            raise ValueError(f"tag {self.name!r}: a quantile tag needs at least 2 labels")
        if self.k < 1:
            raise ValueError(f"tag {self.name!r}: k must be at least 1")
        return self

    @property
    def label(self) -> str:
        return self.label_en or self.label_zh or self.name


def starter_tags() -> list[TagSettings]:
    """The starter tag set used when ``[[profile.tags]]`` declares none (see docs/profiles.md)."""
    raw: list[dict[str, object]] = [
        dict(
            name="高频购买用户",
            label_en="frequent buyer",
            category="behaviour",
            description="6 or more purchases in the last 365 days",
            kind="threshold",
            column="orders_365d",
            min=6,
        ),
        dict(
            name="价格敏感型",
            label_en="price-sensitive",
            category="behaviour",
            description="at least half of the purchases used a coupon or discount",
            expr="frequency >= 2 and discount_share >= 0.5",
        ),
        dict(
            name="偏好线上渠道",
            label_en="prefers online",
            category="behaviour",
            description="at least 70% of purchases on the web or in the app",
            expr="frequency >= 2 and online_share + app_share >= 0.7",
        ),
        dict(
            name="熬夜党",
            label_en="night owl",
            category="scene",
            description="at least 40% of purchases between 22:00 and 05:00 local time",
            expr="frequency >= 2 and night_share >= 0.4",
        ),
        dict(
            name="亲子家庭",
            label_en="family with kids",
            category="interest",
            description="baby products are at least 20% of spend",
            expr="cat_share_baby >= 0.2",
            optional=True,
        ),
        dict(
            name="高价值客户",
            label_en="high value",
            category="value",
            description="RFM group Champions or Loyal",
            expr='rfm_group in ("Champions", "Loyal")',
        ),
        dict(
            name="流失风险",
            label_en="churn risk",
            category="value",
            description="lifecycle stage at-risk or dormant",
            expr='lifecycle_stage in ("at-risk", "dormant")',
        ),
        dict(
            name="消费水平",
            label_en="spend level",
            category="value",
            description="tercile of revenue in the last 365 days among buyers",
            kind="quantile",
            expr="revenue_365d > 0",
            column="revenue_365d",
            labels=["低", "中", "高"],
        ),
        dict(
            name="偏好品类",
            label_en="favourite category",
            category="interest",
            description="the category with the largest share of spend (at least 30%)",
            kind="top_k",
            source="category",
            k=1,
            min_share=0.3,
        ),
    ]
    return [TagSettings.model_validate(r) for r in raw]


class ProfileSettings(_Strict):
    windows: list[int] = Field(default_factory=lambda: [30, 90, 365])
    """Windows (days) of ``orders_<N>d`` and ``revenue_<N>d``."""
    activity_windows: list[int] = Field(default_factory=lambda: [7, 30, 90])
    """Windows (days) of ``events_<N>d`` and ``sessions_<N>d``."""
    engagement_days: int = 90
    """Window of the e-mail and push engagement counts."""
    session_gap_minutes: int = 30
    """Events of one customer further apart than this start a new session (when the events
    carry no ``session_id``)."""
    not_purchase_statuses: list[str] = Field(
        default_factory=lambda: ["cancelled", "canceled", "refunded", "returned"]
    )
    """Order statuses that do not count as purchases (frequency, revenue, cadence)."""
    return_statuses: list[str] = Field(default_factory=lambda: ["refunded", "returned"])
    rfm: RfmSettings = Field(default_factory=RfmSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    tags: list[TagSettings] = Field(default_factory=starter_tags)

    @field_validator("windows", "activity_windows")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(w <= 0 for w in v):
            raise ValueError("windows are positive numbers of days")
        return sorted(set(v))

    @model_validator(mode="after")
    def _unique_tags(self) -> ProfileSettings:
        names = [t.name for t in self.tags]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tag names must be unique; repeated: {', '.join(dupes)}")
        return self


def profile_settings(settings: Settings | None) -> ProfileSettings:
    """The ``[profile]`` section of ``settings``, or the defaults."""
    found = getattr(settings, "profile", None)
    return found if isinstance(found, ProfileSettings) else ProfileSettings()
