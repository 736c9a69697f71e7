"""Reference and side files: products, marketing spend, consents and reviews."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loupe.synth import catalog as cat
from loupe.synth import text, workbook
from loupe.synth.behaviour import Orders, Products
from loupe.synth.events import quarter_campaigns
from loupe.synth.people import People, emails, rng_for
from loupe.synth.sources import sku_code
from loupe.synth.writer import SourceFile

REVIEW_SHARE = 0.04  # share of delivered orders that get a review
CTR = {"douyin": 0.012, "wechat": 0.02, "baidu": 0.03, "xiaohongshu": 0.018, "email": 0.08,
       "sms": 0.05, "app_push": 0.06, "store": 0.25, "direct": 1.0}  # fmt: skip


@dataclass
class ReviewSeeds:
    """Orders sampled for reviews, collected block by block."""

    person: list[np.ndarray] = field(default_factory=list)
    time: list[np.ndarray] = field(default_factory=list)
    sku: list[np.ndarray] = field(default_factory=list)
    platform: list[np.ndarray] = field(default_factory=list)
    late: list[np.ndarray] = field(default_factory=list)

    def add(self, o: Orders, rng: np.random.Generator) -> None:
        pick = (o.status < 2) & (rng.random(len(o)) < REVIEW_SHARE)
        first = np.r_[0, np.flatnonzero(np.diff(o.line_order)) + 1]
        self.person.append(o.person[pick])
        self.time.append(o.time[pick])
        self.sku.append(o.line_sku[first][pick])
        self.platform.append(o.platform[pick])
        self.late.append(o.status[pick] == 1)


def write_products(prod: Products, f: SourceFile) -> None:
    brand_zh = [b[0] for k in cat.CATEGORIES for b in cat.BRANDS[k]]
    brand_en = [b[1] for k in cat.CATEGORIES for b in cat.BRANDS[k]]
    noun_zh = [x[0] for k in cat.CATEGORIES for x in cat.PRODUCT_NOUNS[k]]
    noun_en = [x[1] for k in cat.CATEGORIES for x in cat.PRODUCT_NOUNS[k]]
    b = prod.category * 3 + prod.brand
    nn = prod.category * 5 + prod.noun
    variant = text.num(prod.variant + 1)
    columns = [
        sku_code(prod.sku),
        text.join(
            [
                text.lookup(text.strings(brand_zh), b),
                text.lookup(text.strings(noun_zh), nn),
                " #",
                variant,
            ]
        ),
        text.join(
            [
                text.lookup(text.strings(brand_en), b),
                " ",
                text.lookup(text.strings(noun_en), nn),
                " #",
                variant,
            ]
        ),
        text.lookup(text.strings(cat.CATEGORIES), prod.category),
        text.lookup(text.strings(brand_en), b),
        text.money(prod.price_cents),
        pa.repeat("CNY", len(prod.sku)),
    ]
    f.write(columns)


#: The marketing team's spend workbook: its sheets, and the rows above the daily table.
SPEND_SUMMARY_SHEET = "汇总"
SPEND_SHEET = "每日明细"
SPEND_HEADER = ["date", "channel", "campaign", "spend", "impressions", "clicks", "currency"]


def write_spend(clicks: np.ndarray, campaign_sends: list[int], path: Path, seed: int) -> int:
    """Daily spend per paid channel from the UTM sessions it brought, plus the two campaigns,
    as the marketing team keeps it: a workbook whose first sheet sums spend per channel and
    whose second holds the daily rows under a title, with typed cells (dates, amounts,
    counts).  Returns the number of daily rows."""
    rng = rng_for(seed, 60)
    d, c = np.nonzero(clicks[:, 1:])
    c = c + 1
    k = clicks[d, c]
    ctr = np.array([CTR[ch.name] for ch in cat.CHANNELS])[c]
    cpc = np.array([ch.cost_per_click for ch in cat.CHANNELS])[c]
    impressions = np.round(k / ctr * rng.uniform(0.8, 1.2, len(k))).astype(np.int64)
    spend = np.round(k * cpc * rng.uniform(0.85, 1.15, len(k)) * 100).astype(np.int64)
    day = d + cat.START // 86400
    y, m, _ = text.civil(day)
    q = (y - 2024) * 4 + (m - 1) // 3
    quarter = quarter_campaigns()
    names = [ch.name for ch in cat.CHANNELS]
    epoch = datetime.date(1970, 1, 1)
    rows: list[list[Any]] = [
        [epoch + datetime.timedelta(days=int(dd)), names[cc], quarter[cc * 8 + qq], ss / 100, ii, kk]
        for dd, cc, qq, ss, ii, kk in zip(
            day.tolist(), c.tolist(), q.tolist(), spend.tolist(), impressions.tolist(), k.tolist(),
            strict=True,
        )
    ]  # fmt: skip
    cost = {"sms": 5, "app_push": 0}  # cents per message sent
    for i, cp in enumerate(cat.CAMPAIGNS):
        sent = campaign_sends[i]
        rows.append([datetime.date.fromisoformat(cp.send_date), cp.channel, cp.name,
                     sent * cost[cp.channel] / 100, sent, 0])  # fmt: skip
    rows = [[*r, "CNY"] for r in sorted(rows, key=lambda r: r[0])]  # stable: by date only
    totals: dict[str, list[float]] = {}
    for r in rows:
        t = totals.setdefault(r[1], [0.0, 0, 0])
        t[0] += r[3]
        t[1] += r[4]
        t[2] += r[5]
    first, last = rows[0][0].isoformat(), rows[-1][0].isoformat()
    summary: list[list[Any]] = [
        ["channel", "spend", "impressions", "clicks"],
        *([ch, round(t[0], 2), t[1], t[2]] for ch, t in sorted(totals.items())),
    ]
    daily: list[list[Any]] = [  # a title and a blank row: the header is row 3 (header_row)
        [f"营销投放花费 Marketing spend {first} – {last}"],
        [],
        SPEND_HEADER,
        *rows,
    ]
    workbook.write(path, {SPEND_SUMMARY_SHEET: summary, SPEND_SHEET: daily})
    return len(rows)


def write_consents(p: People, f: SourceFile, seed: int) -> None:
    """Consent decisions per identifier and purpose; some are revoked later."""
    rng = rng_for(seed, 61)
    acct = np.flatnonzero(p.has_account)
    crm = np.flatnonzero(p.in_crm & ~p.has_account)
    groups = [  # (persons, identifier type, purpose, grant probability, source)
        (acct, "email", "email", 0.55, "eshop"),
        (acct, "phone", "sms", 0.45, "eshop"),
        (acct, "user_id", "analytics", 0.9, "eshop"),
        (acct, "user_id", "ads", 0.5, "eshop"),
        (np.flatnonzero(p.app_user), "user_id", "push", 0.6, "app"),
        (crm, "email", "email", 0.5, "crm"),
        (crm, "phone", "sms", 0.4, "crm"),
    ]
    cols: list[list[pa.Array]] = [[], [], [], [], [], []]
    for who, id_type, purpose, prob, source in groups:
        if not len(who):
            continue
        granted = rng.random(len(who)) < prob
        ts = p.signup[who] + rng.integers(0, 86400, len(who))
        revoke = granted & (rng.random(len(who)) < 0.08)
        rw = who[revoke]
        t2 = ts[revoke] + (rng.random(len(rw)) * (cat.END - ts[revoke])).astype(np.int64)
        allw, allt = np.r_[who, rw], np.r_[ts, t2]
        allg = np.r_[granted, np.zeros(len(rw), bool)]
        if id_type == "email":
            ident = emails(p, allw)
        elif id_type == "phone":
            ident = text.num(p.phone_digits[allw])
        else:
            ident = p.account_ids(allw)
        n = len(allw)
        cols[0].append(ident)
        cols[1].append(pa.repeat(id_type, n))
        cols[2].append(pa.repeat(purpose, n))
        cols[3].append(text.where(allg, "true", "false"))
        cols[4].append(text.ts_utc_z(np.minimum(allt, cat.END - 1)))
        cols[5].append(pa.repeat(source, n))
    f.write([pa.concat_arrays(c) for c in cols])


def write_reviews(p: People, prod: Products, seeds: ReviewSeeds, f: SourceFile, seed: int) -> None:
    rng = rng_for(seed, 62)
    person = np.concatenate(seeds.person)
    t = np.concatenate(seeds.time)
    sku = np.concatenate(seeds.sku)
    platform = np.concatenate(seeds.platform)
    late = np.concatenate(seeds.late)
    # complaint driver: the complaint is a 1-2 star review written at the incident's time.
    cp = np.flatnonzero(p.complaint)
    ct = p.complaint_at[cp]
    n0 = len(person)
    person = np.r_[person, cp]
    later = t + rng.integers(2 * 86400, 10 * 86400, n0)
    t = np.r_[np.where(later < cat.END, later, (t + cat.END) // 2), ct]
    sku = np.r_[sku, rng.integers(0, len(prod.sku), len(cp))]
    platform = np.r_[platform, np.where(p.has_account[cp], 0, 2)]
    n = len(person)
    u = rng.random(n)
    sentiment = np.where(u < 0.72, 0, np.where(u < 0.9, 1, 2))
    sentiment[:n0] = np.where(late & (rng.random(n0) < 0.7), 2, sentiment[:n0])
    sentiment[n0:] = 2
    unhappy = p.complaint[person] & (t >= p.complaint_at[person])  # after the complaint
    sentiment = np.where(unhappy & (sentiment == 0), 1, sentiment)
    sent_names = ("positive", "neutral", "negative")
    templates = [(s, lang, tx) for s in sent_names for lang, tx in cat.REVIEW_TEMPLATES[s]]
    per = np.array([len(cat.REVIEW_TEMPLATES[s]) for s in sent_names])
    start = np.r_[0, np.cumsum(per)[:-1]]
    tid = start[sentiment] + (rng.random(n) * per[sentiment]).astype(np.int64)
    lo = np.array([cat.REVIEW_RATINGS[s][0] for s in sent_names])[sentiment]
    hi = np.array([cat.REVIEW_RATINGS[s][1] for s in sent_names])[sentiment]
    rating = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)
    # A follow-up (its own stream, so the draws above are those of reviews without one).
    follow = rng_for(seed, 63).random(n) < cat.REVIEW_FOLLOW_UP_SHARE
    order = np.argsort(t, kind="stable")
    person, t, sku, platform, rating, tid, follow = (
        x[order] for x in (person, t, sku, platform, rating, tid, follow)
    )
    follow_ups = text.strings(["\n" + cat.REVIEW_FOLLOW_UPS[s][lang] for s, lang, _ in templates])
    review = text.join(
        [
            text.lookup(text.strings([x[2] for x in templates]), tid),
            text.where(follow, text.lookup(follow_ups, tid), ""),
        ]
    )
    online = (platform < 2) & p.has_account[person]
    columns = [
        text.padded(np.arange(n) + 1, 8, "R"),
        text.where(online, p.account_ids(person), ""),
        text.where(online, "", text.num(p.phone_digits[person])),
        sku_code(sku),
        text.num(rating),
        text.join(['"', review, '"']),
        text.lookup(text.strings([x[1] for x in templates]), tid),
        text.ts_utc_z(np.minimum(t, cat.END - 1)),
        text.lookup(text.strings(["eshop", "app", "store"]), platform),
    ]
    f.write(columns)
