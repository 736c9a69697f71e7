"""Next purchase dates recover planted cadences, cover the planted next purchase at the
configured rate, lean on the population when a customer has few purchases, and never read
data from after the as-of day."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from tests.conftest import make_settings

from loupe.errors import LoupeError
from loupe.models import due as D
from loupe.models.settings import DueSettings
from loupe.warehouse import Warehouse
from loupe.warehouse.schemas import IDENTITY_LINKS, canonical_schema, schema

AS_OF = date(2025, 7, 1)


# -- a shop with planted cadences --------------------------------------------------------------
def put(wh: Warehouse, name: str, df: pd.DataFrame, sch: ibis.Schema) -> None:
    full = pd.DataFrame({c: df.get(c, None) for c in sch.names})
    for c, t in sch.items():
        if t.is_array():
            full[c] = [[] for _ in range(len(full))]
    wh.replace(name, ibis.memtable(full, schema=sch))


def load_purchases(wh: Warehouse, purchases: pd.DataFrame) -> None:
    """One order (one line) per row of ``customer_id, category, day[, status, hour]``; orders
    find their customer through the record ``crm:<customer_id>``."""
    o = purchases.reset_index(drop=True).copy()
    o["order_id"] = [f"O{i:06d}" for i in range(len(o))]
    hour = o["hour"].fillna(10) if "hour" in o else 10
    o["ordered_at"] = pd.to_datetime(o["day"]) + pd.to_timedelta(hour, unit="h")
    o["status"] = o["status"].fillna("delivered") if "status" in o else "delivered"
    o["quantity"] = o.get("quantity", 1)
    o["unit_price"] = o.get("unit_price", 10.0)
    o["amount"] = o["quantity"] * o["unit_price"]
    o["amount_base"] = o["amount"]
    o["product_id"] = "P_" + o["category"]
    put(
        wh,
        "orders",
        o.assign(contact_source="crm", source_key=o.customer_id, source="shop"),
        canonical_schema("orders"),
    )
    put(wh, "order_items", o.assign(source="lines"), canonical_schema("order_items"))
    cats = sorted(o["category"].unique())
    products = pd.DataFrame({"product_id": [f"P_{c}" for c in cats], "category": cats})
    put(wh, "products", products, canonical_schema("products"))
    ids = pd.Series(o["customer_id"].unique())
    links = pd.DataFrame({"id_type": "record", "id_value": "crm:" + ids, "customer_id": ids})
    put(wh, "identity_links", links, schema(IDENTITY_LINKS))


def planted_buyers(
    rng: np.random.Generator,
    n: int,
    category: str,
    purchases: int,
    prefix: str,
    cadence: tuple[float, float] = (20.0, 40.0),
    log_sd: float = 0.1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers who buy every ``c_i * LogNormal(0, log_sd)`` days, ``c_i ~ U(cadence)``.

    Histories end 1-5 days before :data:`AS_OF`; ``truth`` holds each customer's cadence, last
    purchase and the next purchase drawn from the same process."""
    rows, truth = [], []
    for i in range(n):
        c = rng.uniform(*cadence)
        gaps = np.maximum(np.rint(c * np.exp(rng.normal(0, log_sd, purchases))), 1).astype(int)
        last = AS_OF - timedelta(days=int(rng.integers(1, 6)))
        days = [last - timedelta(days=int(g)) for g in np.cumsum(gaps[: purchases - 1])]
        cid = f"{prefix}{i:04d}"
        rows += [(cid, category, d) for d in [last, *days]]
        truth.append((cid, category, c, last, last + timedelta(days=int(gaps[-1]))))
    cols = ["customer_id", "category", "cadence", "last", "next"]
    return (
        pd.DataFrame(rows, columns=["customer_id", "category", "day"]),
        pd.DataFrame(truth, columns=cols),
    )


def planted_shop(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regular coffee buyers (8, 2 or 1 purchases) and erratic snack buyers (exponential-ish
    gaps: log-sd 1.0) with 10 or 2 purchases."""
    rng = np.random.default_rng(seed)
    parts = [
        planted_buyers(rng, 400, "coffee", 8, "R"),
        planted_buyers(rng, 80, "coffee", 2, "T"),
        planted_buyers(rng, 80, "coffee", 1, "O"),
        planted_buyers(rng, 150, "snacks", 10, "S", cadence=(25.0, 35.0), log_sd=1.0),
        planted_buyers(rng, 80, "snacks", 2, "U", cadence=(25.0, 35.0), log_sd=1.0),
    ]
    history = pd.concat([p[0] for p in parts]).drop_duplicates(["customer_id", "category", "day"])
    return history, pd.concat([p[1] for p in parts], ignore_index=True)


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    return planted_shop()


def shop_wh(tmp_path: Path, history: pd.DataFrame, **due: object) -> Warehouse:
    wh = Warehouse.open(make_settings(tmp_path, models={"due": due}))
    load_purchases(wh, history)
    return wh


def due_frame(wh: Warehouse) -> pd.DataFrame:
    df = wh.to_pandas(wh.table("purchase_due"))
    for c in ("last_purchase", "expected_date", "low_date", "high_date"):
        df[c] = pd.to_datetime(df[c]).dt.date
    return df


@pytest.fixture(scope="module")
def computed(tmp_path_factory, shop) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """``(purchase_due, run report, truth)`` on the planted shop with the default settings."""
    history, truth = shop
    wh = shop_wh(tmp_path_factory.mktemp("due"), history)
    report = D.run_due(wh, as_of=AS_OF)
    df = due_frame(wh)
    wh.close()
    return df, report, truth


# -- the estimators against a brute-force reference -------------------------------------------
def reference_population(history: pd.DataFrame) -> pd.DataFrame:
    """Method-of-moments estimates per category, written with pandas loops."""
    out = {}
    for cat, g in history.groupby("category"):
        means, ss, ns = [], 0.0, []
        for _, days in g.groupby("customer_id")["day"]:
            d = np.sort(pd.to_datetime(days).to_numpy())
            logs = np.log(np.diff(d).astype("timedelta64[D]").astype(float))
            if len(logs) == 0:
                continue
            means.append(logs.mean())
            ss += ((logs - logs.mean()) ** 2).sum()
            ns.append(len(logs))
        within = ss / sum(n - 1 for n in ns)
        between = max(np.var(means, ddof=1) - within * np.mean([1 / n for n in ns]), D.TAU2_FLOOR)
        out[cat] = {"mu": np.mean(means), "within_var": within, "between_var": between}
    return pd.DataFrame(out).T


def test_population_estimates_match_a_pandas_reference(tmp_path, shop) -> None:
    history, _ = shop
    wh = shop_wh(tmp_path, history)
    spec = D.due_spec(wh, AS_OF)
    t = D.due_inputs(wh)
    cad = D.cadences(D.purchase_days(t["orders"], t["order_items"], t["products"], spec))
    got = wh.to_pandas(D.population_cadence(cad, spec)).set_index("category").sort_index()
    ref = reference_population(history).sort_index()
    for col in ("mu", "within_var", "between_var"):
        np.testing.assert_allclose(got[col], ref[col].astype(float), rtol=1e-9)
    # the planted spreads come back: log-sd 0.1 for coffee, 1.0 for snacks
    assert np.sqrt(got.loc["coffee", "within_var"]) == pytest.approx(0.1, abs=0.02)
    assert np.sqrt(got.loc["snacks", "within_var"]) == pytest.approx(1.0, abs=0.1)
    # coffee cadences vary between customers (U(20, 40)): log-sd about 0.2
    assert np.sqrt(got.loc["coffee", "between_var"]) == pytest.approx(0.2, abs=0.04)


# -- recovered truth ---------------------------------------------------------------------------
def test_expected_dates_recover_the_planted_cadence(computed) -> None:
    df, report, truth = computed
    regular = truth[truth.customer_id.str.startswith("R")].merge(df, on=["customer_id", "category"])
    assert len(regular) == 400
    assert (regular["basis"] == "customer").all()
    assert (regular["last_purchase"] == regular["last"]).all()
    planted = pd.to_datetime(regular["last"]) + pd.to_timedelta(regular["cadence"], unit="D")
    error = (pd.to_datetime(regular["expected_date"]) - planted).dt.days.abs()
    assert (error <= 3).mean() >= 0.95
    assert error.median() <= 1
    assert report["rows"] == len(df) == len(truth)
    assert report["basis"]["population"] == 80  # the one-purchase coffee buyers
    coffee = next(p for p in report["population"] if p["category"] == "coffee")
    assert 27 <= coffee["median_interval_days"] <= 31  # geometric mean of U(20, 40) ~ 29.4


def coverage(df: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    both = truth.merge(df, on=["customer_id", "category"])
    inside = (both["low_date"] <= both["next"]) & (both["next"] <= both["high_date"])
    return inside.groupby(both["customer_id"].str[0]).mean()


@pytest.mark.parametrize("interval", [0.5, 0.9])
def test_intervals_cover_the_next_purchase_at_the_configured_rate(tmp_path, shop, interval) -> None:
    history, truth = shop
    wh = shop_wh(tmp_path, history, interval=interval)
    D.run_due(wh, as_of=AS_OF)
    cover = coverage(due_frame(wh), truth)
    # 400 regular buyers (s.e. of a rate ~0.025), 150 erratic ones (~0.04)
    assert cover["R"] == pytest.approx(interval, abs=0.07)
    assert cover["S"] == pytest.approx(interval, abs=0.1)


def test_default_interval_covers_about_80_percent(computed) -> None:
    df, _, truth = computed
    cover = coverage(df, truth)
    assert cover["R"] == pytest.approx(0.8, abs=0.06)
    assert cover["S"] == pytest.approx(0.8, abs=0.09)
    # even with one or two purchases, the population's cadence keeps the rate
    assert cover[["T", "O", "U"]].min() >= 0.65


def test_few_purchases_lean_on_the_population(computed, tmp_path, shop) -> None:
    df, report, _ = computed
    pop = {p["category"]: p for p in report["population"]}
    interval = (pd.to_datetime(df["expected_date"]) - pd.to_datetime(df["last_purchase"])).dt.days
    df = df.assign(interval=interval, kind=df["customer_id"].str[0])
    # one purchase: the population's median interval, for every such customer
    once = df[df.kind == "O"]
    assert (once["basis"] == "population").all()
    assert set(once["interval"]) == {round(pop["coffee"]["median_interval_days"])}
    # erratic buyers with one interval: pulled most of the way to the population
    two = df[df.kind == "U"].merge(
        gaps_of_two(shop[0]), on=["customer_id", "category"], validate="one_to_one"
    )
    mu0 = np.log(pop["snacks"]["median_interval_days"])
    moved = np.abs(np.log(two["interval"]) - mu0) / np.abs(np.log(two["gap"]) - mu0)
    far = np.abs(np.log(two["gap"]) - mu0) > 0.5
    assert far.sum() >= 20
    assert moved[far].max() < 0.35
    assert (two["basis"] == "blended").all()
    # ten erratic purchases weigh more than one, yet still less than the population
    assert pop["snacks"]["prior_intervals"] > 5
    # regular buyers: one interval already outweighs the population (k ~ 0.25)
    assert (df[df.kind == "T"]["basis"] == "customer").all()
    # min_purchases = 3: two purchases are not enough to count
    wh = shop_wh(tmp_path, shop[0], min_purchases=3)
    D.run_due(wh, as_of=AS_OF)
    strict = due_frame(wh)
    assert (strict[strict.customer_id.str.startswith(("T", "U"))]["basis"] == "population").all()


def gaps_of_two(history: pd.DataFrame) -> pd.DataFrame:
    """The one gap of each two-purchase customer."""
    h = history.assign(day=pd.to_datetime(history["day"]))
    g = h.groupby(["customer_id", "category"])["day"].agg(["min", "max", "count"]).reset_index()
    g = g[g["count"] == 2]
    return g.assign(gap=(g["max"] - g["min"]).dt.days)[["customer_id", "category", "gap"]]


def test_data_after_the_as_of_day_cannot_change_the_result(tmp_path, shop) -> None:
    history, truth = shop
    wh = shop_wh(tmp_path / "a", history)
    D.run_due(wh, as_of=AS_OF)
    before = due_frame(wh).drop(columns="computed_at")
    later = truth[["customer_id", "category"]].assign(day=truth["next"])
    later = later[later["day"] >= AS_OF]  # erratic buyers may come back before it
    assert len(later) > 600
    at_midnight = later.head(50).assign(day=AS_OF, hour=0)  # the as-of day itself
    new_customers = later.head(30).assign(customer_id=lambda d: "N" + d.customer_id)
    more = pd.concat([history, later, at_midnight, new_customers], ignore_index=True)
    wh2 = shop_wh(tmp_path / "b", more)
    D.run_due(wh2, as_of=AS_OF)
    after = due_frame(wh2).drop(columns="computed_at")
    key = ["customer_id", "category"]
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True),
        after.sort_values(key).reset_index(drop=True),
    )
    # and the data after it does count for a later as-of day
    D.run_due(wh2, as_of=AS_OF + timedelta(days=90))
    assert len(due_frame(wh2)) > len(before)


def test_cancelled_orders_are_not_purchases(tmp_path) -> None:
    days = [date(2025, 1, 1) + timedelta(days=30 * i) for i in range(5)]
    history = pd.DataFrame({"customer_id": "C1", "category": "tea", "day": days})
    history["status"] = ["delivered", "cancelled", "delivered", "refunded", "delivered"]
    wh = shop_wh(tmp_path, history)
    D.run_due(wh, as_of=AS_OF)
    row = due_frame(wh).iloc[0]
    assert row["purchases"] == 3
    assert row["last_purchase"] == days[4]


def test_level_all_counts_any_purchase(tmp_path) -> None:
    history = pd.DataFrame(
        {
            "customer_id": "C1",
            "category": ["tea", "coffee", "tea", "coffee"],
            "day": [date(2025, 1, 1), date(2025, 1, 1), date(2025, 1, 11), date(2025, 1, 21)],
        }
    )
    wh = shop_wh(tmp_path, history, level="all")
    D.run_due(wh, as_of=AS_OF)
    df = due_frame(wh)
    assert df[["category", "purchases"]].values.tolist() == [["all", 3]]


def test_without_order_lines_the_level_falls_back_to_all(tmp_path) -> None:
    """Categories come from order lines; a project of orders alone listed nobody as due."""
    days = [date(2025, 1, 1) + timedelta(days=10 * i) for i in range(4)]
    wh = shop_wh(tmp_path, pd.DataFrame({"customer_id": "C1", "category": "tea", "day": days}))
    wh.replace("order_items", wh.table("order_items").limit(0))
    report = D.run_due(wh, as_of=AS_OF)
    assert report["level"] == "all"
    assert due_frame(wh)[["category", "purchases"]].values.tolist() == [["all", 4]]


# -- the list campaigns trigger on -------------------------------------------------------------
def test_due_within_lists_the_window_and_flags_overdue() -> None:
    d = date(2025, 7, 1)

    def row(cid: str, expected: int, low: int, high: int) -> dict:
        return {
            "customer_id": cid,
            "category": "tea",
            "last_purchase": d - timedelta(days=30),
            "expected_date": d + timedelta(days=expected),
            "low_date": d + timedelta(days=low),
            "high_date": d + timedelta(days=high),
            "basis": "customer",
            "purchases": 5,
        }

    rows = [
        row("soon", 3, 1, 6),  # due
        row("edge", 13, 10, 20),  # expected on the last day of the window
        row("later", 14, 1, 25),  # expected the day after the window (however wide)
        row("overdue", -2, -6, 1),  # expected date passed, interval still open
        row("today", 0, -3, 3),
        row("long_overdue", -20, -30, 5),  # passed 20 days ago: past the default 14
        row("lapsed", -10, -25, -1),  # the whole interval passed
    ]
    t = ibis.memtable(pd.DataFrame(rows))
    con = ibis.duckdb.connect()
    out = con.execute(D.due_within(t, d, 14))
    assert out["customer_id"].tolist() == ["overdue", "today", "soon", "edge"]
    assert out["overdue"].tolist() == [True, False, False, False]
    assert out["days_until"].tolist() == [-2, 0, 3, 13]
    upcoming = con.execute(D.due_within(t, d, 14, overdue_days=0))
    assert upcoming["customer_id"].tolist() == ["today", "soon", "edge"]
    month = con.execute(D.due_within(t, d, 14, overdue_days=30))
    assert month["customer_id"].tolist() == ["long_overdue", "overdue", "today", "soon", "edge"]


def test_due_list_reads_the_stored_table_and_refreshes(tmp_path, shop) -> None:
    history, _ = shop
    wh = shop_wh(tmp_path, history)
    # histories end 1-5 days before AS_OF and cadences are 20-40 days: due within 30 days
    first = D.due_list(wh, 30, limit=5)  # nothing stored yet: computed and stored
    assert first["as_of"] == AS_OF  # the day after the latest order
    stored = D.stored_as_of(wh)
    assert stored == first["as_of"]
    # a look back in time does not replace the stored list
    back = D.due_list(wh, 30, as_of=date(2025, 5, 1))
    assert back["as_of"] == date(2025, 5, 1)
    assert D.stored_as_of(wh) == stored
    assert back["count"] != first["count"]
    # --refresh stores it
    D.due_list(wh, 30, as_of=date(2025, 5, 1), refresh=True)
    assert D.stored_as_of(wh) == date(2025, 5, 1)
    assert len(first["customers"]) == 5 <= first["count"]
    coffee = D.due_list(wh, 30, category="coffee")
    assert {c["category"] for c in coffee["customers"]} == {"coffee"}
    with pytest.raises(LoupeError, match="categories are: coffee, snacks"):
        D.due_list(wh, 30, category="tee")


def test_settings_reach_the_spec(tmp_path) -> None:
    settings = DueSettings(level="all", min_purchases=4, interval=0.9, prior_intervals=2.0)
    spec = D.DueSpec.from_settings(settings, AS_OF, ("Cancelled",))
    assert (spec.level, spec.min_purchases, spec.interval, spec.prior_intervals) == (
        "all",
        4,
        0.9,
        2.0,
    )
    assert spec.not_purchase_statuses == ("cancelled",)
    assert spec.z == pytest.approx(1.6449, abs=1e-4)
    assert spec.cutoff == datetime(2025, 7, 1)


# -- the synthetic company ---------------------------------------------------------------------
@pytest.mark.slow
def test_company_frequent_buyer_types_are_due_sooner(tmp_path) -> None:
    from tests.profile.company import company

    _, source, truth = company()
    source.con.raw_sql("CHECKPOINT")
    shutil.copy(source.settings.resolve(source.settings.warehouse.path), tmp_path / "loupe.duckdb")
    wh = Warehouse.open(make_settings(tmp_path, models={"due": {"level": "all"}}))
    report = D.run_due(wh)
    assert report["as_of"] == date(2026, 1, 1)
    df = due_frame(wh).merge(truth[["customer_id", "customer_type"]], on="customer_id")
    df["interval"] = (
        pd.to_datetime(df["expected_date"]) - pd.to_datetime(df["last_purchase"])
    ).dt.days
    median = df.groupby("customer_type")["interval"].median()
    # planted orders per year: vip 18, family 9, bargain 8, new 7, occasional 1.5
    assert median["vip_loyal"] < median["family_shopper"] < median["occasional"]
    assert median["bargain_hunter"] < median["occasional"]
    rate = {"vip_loyal": 18, "bargain_hunter": 8, "occasional": 1.5, "new_explorer": 7}
    rate["family_shopper"] = 9
    own = df[df["basis"] != "population"]
    rho = own["interval"].corr(own["customer_type"].map(rate), method="spearman")
    assert rho < -0.4
    # who campaigns would remind: expected within the next 14 days
    listed = D.due_list(wh, 14)
    soon = {c["customer_id"] for c in listed["customers"] if not c["overdue"]}
    share = df.assign(soon=df.customer_id.isin(soon)).groupby("customer_type")["soon"].mean()
    assert share["vip_loyal"] > 1.5 * share["occasional"]
    assert listed["count"] == len(listed["customers"]) > listed["overdue"] > 0
