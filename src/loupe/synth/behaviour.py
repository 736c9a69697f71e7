"""Purchases: the product catalogue, orders and order lines for a block of persons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loupe.synth import catalog as cat
from loupe.synth import text
from loupe.synth.people import People, rng_for

BLOCK = 50_000  # persons per block; fixed so output does not depend on machine size


@dataclass
class Products:
    """The catalogue, sorted by category then price."""

    sku: np.ndarray  # int index == position
    category: np.ndarray
    brand: np.ndarray  # index within the category's brands
    noun: np.ndarray
    variant: np.ndarray
    price_cents: np.ndarray
    cat_start: np.ndarray
    cat_count: np.ndarray


def make_products(seed: int) -> Products:
    rng = rng_for(seed, 2)
    nb, nn, nv = 3, 5, cat.SKUS_PER_NOUN
    per_cat = nb * nn * nv
    c = np.repeat(np.arange(len(cat.CATEGORIES)), per_cat)
    within = np.tile(np.arange(per_cat), len(cat.CATEGORIES))
    brand, noun, variant = within // (nn * nv), (within // nv) % nn, within % nv
    med = np.array([cat.CATEGORY_PRICE[k][0] for k in cat.CATEGORIES])[c]
    sd = np.array([cat.CATEGORY_PRICE[k][1] for k in cat.CATEGORIES])[c]
    price = np.round(med * np.exp(rng.normal(0, 1, len(c)) * sd)) - 0.1  # 179.9 style prices
    price = np.maximum(price, 4.9)
    order = np.lexsort((price, c))
    return Products(
        sku=np.arange(len(c)),
        category=c[order],
        brand=brand[order],
        noun=noun[order],
        variant=variant[order],
        price_cents=np.round(price[order] * 100).astype(np.int64),
        cat_start=np.arange(len(cat.CATEGORIES)) * per_cat,
        cat_count=np.full(len(cat.CATEGORIES), per_cat),
    )


@dataclass
class Orders:
    """Orders of one block (both channels) with their lines (flattened, grouped by order)."""

    person: np.ndarray
    time: np.ndarray  # seconds UTC
    platform: np.ndarray  # 0 web, 1 app, 2 store
    store: np.ndarray
    currency: np.ndarray  # 0 CNY, 1 USD, 2 HKD
    coupon: np.ndarray  # -1 none, 0 generic, 1 + campaign index
    status: np.ndarray  # index into ORDER_STATUS
    outlier: np.ndarray
    subtotal: np.ndarray  # cents
    discount: np.ndarray
    number: np.ndarray  # global order number (unique over blocks)
    line_order: np.ndarray  # order position (within this block) of each line
    line_no: np.ndarray
    line_sku: np.ndarray
    line_qty: np.ndarray
    line_price: np.ndarray  # unit price cents (in the order currency)
    line_discount: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.subtotal - self.discount

    def __len__(self) -> int:
        return len(self.person)


def _pick(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Row-wise inverse-CDF draw: ``probs`` has one row of probabilities per draw."""
    cdf = np.cumsum(probs, axis=1)
    return np.minimum((u[:, None] > cdf).sum(1), probs.shape[1] - 1)


def _online_platform(p: People, who: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Web (0) or app (1) for an online order of each of ``who``, by their web/app mix."""
    mix = p.channel_mix[who, :2]
    return (rng.random(len(who)) * mix.sum(1) >= mix[:, 0]).astype(np.int64)


def campaign_windows() -> list[tuple[int, int]]:
    out = []
    for c in cat.CAMPAIGNS:
        y, m, d = (int(x) for x in c.send_date.split("-"))
        start = cat.epoch(y, m, d) + 2 * 3600  # sent at 10:00 Beijing time
        out.append((start, start + c.window_days * 86400))
    return out


def campaign_arms(p: People, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per campaign: (eligible mask, treated mask) over all persons."""
    arms = []
    for k, (start, _) in enumerate(campaign_windows()):
        active = (p.active_start <= start) & (p.churn_at > start)
        base = p.app_user if cat.CAMPAIGNS[k].channel == "app_push" else p.has_account
        eligible = active & base
        u = rng_for(seed, 30, k).random(p.n)
        arms.append((eligible, eligible & (u < cat.CAMPAIGNS[k].treatment_share)))
    return arms


def make_orders(
    p: People, prod: Products, block: int, seed: int, arms: list[tuple[np.ndarray, np.ndarray]]
) -> Orders:
    """All orders of persons ``[block*BLOCK, (block+1)*BLOCK)``, vectorised over orders."""
    rng = rng_for(seed, 10, block)
    lo, hi = block * BLOCK, min(p.n, (block + 1) * BLOCK)
    idx = np.arange(lo, hi)
    end = np.minimum(p.churn_at[idx], cat.END)
    years = np.maximum(end - p.active_start[idx], 0) / cat.YEAR
    counts = rng.poisson(p.rate[idx] * years)
    person = np.repeat(idx, counts)
    start_s, end_s = p.active_start[person], np.minimum(p.churn_at[person], cat.END)
    t = start_s + (rng.random(len(person)) * (end_s - start_s)).astype(np.int64)
    coupon = np.where(rng.random(len(person)) < p.coupon_rate[person], 0, -1)
    platform = _pick(rng.random(len(person)), p.channel_mix[person])

    # Randomised campaigns: treated persons make one extra order in the window w.p. uplift.
    extra_p, extra_t, extra_c, extra_pf = [person], [t], [coupon], [platform]
    for k, (w0, w1) in enumerate(campaign_windows()):
        treated = arms[k][1][idx]
        win_end = np.minimum(w1, p.churn_at[idx])
        hit = treated & (rng.random(len(idx)) < cat.CAMPAIGNS[k].uplift) & (win_end > w0)
        who = idx[hit]
        extra_p.append(who)
        extra_t.append(w0 + (rng.random(len(who)) * (win_end[hit] - w0)).astype(np.int64))
        extra_c.append(np.full(len(who), 1 + k))
        if cat.CAMPAIGNS[k].channel == "app_push":
            extra_pf.append(np.ones(len(who), dtype=np.int64))
        else:
            extra_pf.append(_online_platform(p, who, rng))
    # late_delivery driver: the incident is an e-shop order delivered late, at its time.
    late = idx[p.late_delivery[idx]]
    extra_p.append(late)
    extra_t.append(p.late_delivery_at[late])
    extra_c.append(np.where(rng.random(len(late)) < p.coupon_rate[late], 0, -1))
    extra_pf.append(_online_platform(p, late, rng))
    incident = np.zeros(sum(len(x) for x in extra_p), dtype=bool)
    incident[len(incident) - len(late) :] = True
    person = np.concatenate(extra_p)
    t, coupon, platform = (np.concatenate(x) for x in (extra_t, extra_c, extra_pf))
    order = np.lexsort((t, person))
    person, t, coupon, platform = person[order], t[order], coupon[order], platform[order]
    incident = incident[order]
    n = len(person)

    # Hour of day from the type's peak (local time), kept inside the person's active window.
    ty = p.ctype[person]
    peak = np.array([x.peak_hour for x in cat.CUSTOMER_TYPES])[ty]
    sd = np.array([x.hour_sd for x in cat.CUSTOMER_TYPES])[ty]
    hour = np.mod(peak + rng.normal(0, 1, n) * sd, 24.0)
    local_midnight = (t + text.TZ_OFFSET) // 86400 * 86400 - text.TZ_OFFSET
    t2 = local_midnight + (hour * 3600).astype(np.int64)
    ok = (t2 >= p.active_start[person]) & (t2 < np.minimum(p.churn_at[person], cat.END))
    ok &= coupon < 1  # campaign orders keep their window
    t = np.where(ok, t2, t)

    store = np.where(
        rng.random(n) < 0.85, p.home_store[person], rng.integers(0, sum(cat.STORES_PER_CITY), n)
    )
    store = np.where(platform == 2, store, -1)
    online = platform < 2
    currency = np.zeros(n, dtype=np.int64)
    fx = online & (rng.random(n) < cat.SHARE_DIRT["foreign_currency_order"])
    currency[fx] = 1 + (rng.random(fx.sum()) < 0.5)
    outlier = rng.random(n) < cat.SHARE_DIRT["outlier_order"]
    status = rng.choice(4, size=n, p=[0.94, 0.01, 0.02, 0.03])
    status[~online & (status == 1)] = 0
    status[incident] = 1

    # Lines: 1-5 per order, category by type mix, SKU by price preference.
    mean_lines = np.array([x.lines_per_order for x in cat.CUSTOMER_TYPES])[ty]
    n_lines = 1 + rng.binomial(4, (mean_lines - 1) / 4)
    line_order = np.repeat(np.arange(n), n_lines)
    starts = np.r_[0, np.cumsum(n_lines)[:-1]]
    line_no = np.arange(len(line_order)) - starts[line_order] + 1
    lty = ty[line_order]
    cmix = np.array([x.category_mix for x in cat.CUSTOMER_TYPES])
    c = _pick(rng.random(len(line_order)), cmix[lty])
    pref = np.array([x.price_preference for x in cat.CUSTOMER_TYPES])[lty]
    pos = np.clip(pref + rng.normal(0, 0.18, len(c)), 0, 0.999)
    sku = prod.cat_start[c] + (pos * prod.cat_count[c]).astype(np.int64)
    qty = 1 + rng.poisson(np.where(lty == 4, 0.6, 0.25))
    first_line = line_no == 1
    qty = np.where(first_line & outlier[line_order], qty * rng.integers(50, 101, len(qty)), qty)
    price = prod.price_cents[sku]
    fx_rate = np.array([1.0, cat.FX_CENTS_PER_CNY["USD"], cat.FX_CENTS_PER_CNY["HKD"]])
    price = np.round(price * fx_rate[currency[line_order]]).astype(np.int64)
    base_rate = np.array([x.discount_rate for x in cat.CUSTOMER_TYPES])[ty]
    d_rate = np.where(coupon >= 0, base_rate * rng.uniform(0.6, 1.4, n), 0.0)
    line_cents = qty * price
    line_disc = np.floor(line_cents * d_rate[line_order]).astype(np.int64)
    subtotal = np.bincount(line_order, weights=line_cents, minlength=n).astype(np.int64)
    discount = np.bincount(line_order, weights=line_disc, minlength=n).astype(np.int64)

    return Orders(
        person=person, time=t, platform=platform, store=store, currency=currency,
        coupon=coupon, status=status, outlier=outlier, subtotal=subtotal, discount=discount,
        number=block * 100_000_000 + np.arange(n), line_order=line_order, line_no=line_no,
        line_sku=sku, line_qty=qty, line_price=price, line_discount=line_disc,
    )  # fmt: skip
