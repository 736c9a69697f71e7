"""Segment-spec web and app events, one JSONL file per source and month.

Sessions are drawn per month for all persons at once: one purchase session per online order
(ending in ``Order Completed`` at the order time), browse sessions at the type's rate, and
sessions of anonymous visitors who never identify.  A session expands into events through a
fixed slot template and a per-session mask, so nothing loops over sessions or events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loupe.synth import catalog as cat
from loupe.synth import text
from loupe.synth.behaviour import Products
from loupe.synth.people import People, chinese_name, emails, pinyin_name, rng_for
from loupe.synth.sources import sku_code
from loupe.synth.writer import SourceFile

BROWSE_SCALE = 0.12  # browse sessions per month = type.browse_per_month * BROWSE_SCALE
ANON_SESSIONS_PER_PERSON_MONTH = 0.04
SESSION_CHUNK = 200_000  # sessions expanded and written at a time (bounds memory)
SITE = "https://www.loupe-mall.cn"
SLOTS = (  # (type, event or page/screen name, web path)
    ("track", "Email Opened", "/"),
    ("track", "Email Link Clicked", "/"),
    ("track", "Push Notification Opened", "/"),
    ("page", "Home", "/"),
    ("identify", "", "/login"),
    ("track", "Products Searched", "/search"),
    ("track", "Product List Viewed", "/list"),
    ("track", "Product Viewed", "/p/"),
    ("track", "Product Viewed", "/p/"),
    ("track", "Product Added", "/p/"),
    ("track", "Product Removed", "/cart"),
    ("track", "Cart Viewed", "/cart"),
    ("track", "Checkout Started", "/checkout"),
    ("track", "Order Completed", "/checkout/done"),
)
N_SLOTS = len(SLOTS)
_CH = cat.CHANNELS
_WEB_DEVICES = ('{"type":"desktop"},"os":{"name":"Windows"}', '{"type":"mobile"},"os":{"name":"Android"}',
                '{"type":"desktop"},"os":{"name":"Mac OS X"}', '{"type":"mobile"},"os":{"name":"iOS"}')  # fmt: skip
_APP_DEVICES = ('{"type":"ios","model":"iPhone15,2"},"os":{"name":"iOS","version":"17.4"}',
                '{"type":"android","model":"HUAWEI P60"},"os":{"name":"HarmonyOS","version":"4.0"}',
                '{"type":"android","model":"Xiaomi 14"},"os":{"name":"Android","version":"14"}')  # fmt: skip


@dataclass
class OnlineOrders:
    """All e-shop orders (every block) needed for purchase sessions."""

    person: np.ndarray
    time: np.ndarray
    platform: np.ndarray
    number: np.ndarray
    total: np.ndarray
    currency: np.ndarray
    campaign: np.ndarray  # -1 or campaign index
    line_order: np.ndarray  # index into the arrays above
    line_sku: np.ndarray
    line_qty: np.ndarray
    line_price: np.ndarray


def _campaign_names(channel: np.ndarray, secs: np.ndarray) -> pa.Array:
    y, m, _ = text.civil(secs // 86400)
    q = (y - 2024) * 4 + (m - 1) // 3
    names = [f"{c.name}_{2024 + k // 4}q{k % 4 + 1}" for c in _CH for k in range(8)]
    return text.lookup(text.strings(names), channel * 8 + np.clip(q, 0, 7))


def quarter_campaigns() -> list[str]:
    return [f"{c.name}_{2024 + k // 4}q{k % 4 + 1}" for c in _CH for k in range(8)]


def _draw_channels(
    rng: np.random.Generator, platform: np.ndarray, buying: np.ndarray
) -> np.ndarray:
    share = np.array([[c.web_share, c.app_share] for c in _CH]).T  # (2, channels)
    lift = np.array([c.conversion_lift for c in _CH])
    out = np.empty(len(platform), dtype=np.int64)
    for pf in (0, 1):
        for buy in (False, True):
            sel = (platform == pf) & (buying == buy)
            w = share[pf] * (lift if buy else 1.0)
            out[sel] = rng.choice(len(_CH), size=int(sel.sum()), p=w / w.sum())
    return out


def write_month(
    p: People,
    prod: Products,
    orders: OnlineOrders,
    month: int,
    seed: int,
    files: dict[str, SourceFile],
    clicks: np.ndarray,
    identified: dict[str, list[np.ndarray]],
) -> None:
    """Draw and write the sessions of month number ``month`` (0 = 2024-01)."""
    rng = rng_for(seed, 40, month)
    y, m = cat.MONTHS[month]
    m0 = text.epoch(y, m, 1)
    m1 = text.epoch(y + (m == 12), m % 12 + 1, 1)

    # Purchase sessions: one per online order of the month.
    in_month = (orders.time >= m0) & (orders.time < m1)
    oi = np.flatnonzero(in_month)
    # Browse sessions of persons: before churn at the type rate, after churn at 5% of it.
    rate = np.array([t.browse_per_month for t in cat.CUSTOMER_TYPES])[p.ctype] * BROWSE_SCALE
    a = np.clip(p.active_start, m0, m1)
    c = np.clip(p.churn_at, a, m1)
    frac_pre, frac_post = (c - a) / (m1 - m0), (m1 - c) / (m1 - m0)
    lam = rate * (frac_pre + cat.POST_CHURN_VISIT_FACTOR * frac_post)
    web_w = np.where(p.has_account, p.channel_mix[:, 0] + 1e-9, 1.0)
    app_w = p.channel_mix[:, 1] * np.exp(p.app_trend * (m0 - cat.START) / cat.YEAR)
    app_w = np.where(p.app_user, app_w, 0.0)
    tot = web_w + p.channel_mix[:, 1]
    n_web = rng.poisson(lam * web_w / tot)
    n_app = rng.poisson(lam * app_w / tot)
    bp = np.r_[np.repeat(np.arange(p.n), n_web), np.repeat(np.arange(p.n), n_app)]
    bpf = np.r_[np.zeros(n_web.sum(), np.int64), np.ones(n_app.sum(), np.int64)]
    post = rng.random(len(bp)) * (frac_pre[bp] + cat.POST_CHURN_VISIT_FACTOR * frac_post[bp])
    after = post >= frac_pre[bp]
    lo = np.where(after, c[bp], a[bp])
    hi = np.where(after, m1, c[bp])
    bt = lo + (rng.random(len(bp)) * (hi - lo)).astype(np.int64)
    n_anon = rng.poisson(ANON_SESSIONS_PER_PERSON_MONTH * p.n)

    ns_p, ns_b = len(oi), len(bp)
    n = ns_p + ns_b + n_anon
    person = np.r_[orders.person[oi], bp, np.full(n_anon, -1)]
    platform = np.r_[orders.platform[oi], bpf, (rng.random(n_anon) < 0.3).astype(np.int64)]
    anchor = np.r_[orders.time[oi], bt, m0 + rng.integers(0, m1 - m0, n_anon)]
    buying = np.r_[np.ones(ns_p, bool), np.zeros(ns_b + n_anon, bool)]
    channel = _draw_channels(rng, platform, buying)
    camp = np.r_[orders.campaign[oi], np.full(ns_b + n_anon, -1)]
    camp_channel = np.array([[ch.name for ch in _CH].index(x.channel) for x in cat.CAMPAIGNS])
    channel = np.where(camp >= 0, camp_channel[np.maximum(camp, 0)], channel)
    known = person >= 0
    logged = buying | (known & p.has_account[np.maximum(person, 0)] & (rng.random(n) < 0.6))
    day = ((anchor - cat.START) // 86400).clip(0, clicks.shape[0] - 1)
    np.add.at(clicks, (day, channel), 1)

    device = np.where(
        known,
        np.where(
            platform == 0, p.web_device[np.maximum(person, 0)], p.app_device[np.maximum(person, 0)]
        ),
        text.mix_u64(np.arange(n) + month * 2**28, seed * 7 + 3),
    )
    order_idx = np.r_[oi, np.full(ns_b + n_anon, -1)]
    by_time = np.argsort(anchor, kind="stable")
    sessions = {
        "person": person, "platform": platform, "anchor": anchor, "buying": buying,
        "channel": channel, "camp": camp, "logged": logged, "order_idx": order_idx,
        "device": device,
    }  # fmt: skip
    sessions = {k: v[by_time] for k, v in sessions.items()}
    first_line = np.r_[0, np.flatnonzero(np.diff(orders.line_order)) + 1]
    event_base = 0
    for k, lo in enumerate(range(0, n, SESSION_CHUNK)):
        chunk = Sessions(**{key: v[lo : lo + SESSION_CHUNK] for key, v in sessions.items()})
        rng_k = rng_for(seed, 41, month, k)
        event_base += _write_sessions(
            p, prod, orders, first_line, chunk, rng_k, month, seed, event_base, files, identified
        )


@dataclass
class Sessions:
    """A time-ordered chunk of one month's sessions."""

    person: np.ndarray  # -1 for anonymous visitors
    platform: np.ndarray
    anchor: np.ndarray  # start, or order time for purchase sessions
    buying: np.ndarray
    channel: np.ndarray
    camp: np.ndarray
    logged: np.ndarray
    order_idx: np.ndarray  # index into OnlineOrders, -1 for browse sessions
    device: np.ndarray


def _write_sessions(
    p: People, prod: Products, orders: OnlineOrders, first_line: np.ndarray, ss: Sessions,
    rng: np.random.Generator, month: int, seed: int, event_base: int,
    files: dict[str, SourceFile], identified: dict[str, list[np.ndarray]],
) -> int:  # fmt: skip
    """Expand sessions into events and write them; returns the number of events."""
    person, platform, anchor, buying = ss.person, ss.platform, ss.anchor, ss.buying
    channel, camp, logged, device = ss.channel, ss.camp, ss.logged, ss.device
    n = len(person)
    # Which slots each session has.
    u = rng.random((n, N_SLOTS))
    has = np.zeros((n, N_SLOTS), dtype=bool)
    email = channel == 5
    has[:, 0] = has[:, 1] = email
    has[:, 2] = (channel == 7) & (platform == 1)
    has[:, 3] = True
    has[:, 4] = logged
    has[:, 5] = u[:, 5] < np.where(buying, 0.15, 0.3)
    has[:, 6] = u[:, 6] < np.where(buying, 0.2, 0.6)
    has[:, 7] = True
    has[:, 8] = u[:, 8] < np.where(buying, 0.15, 0.3)
    has[:, 9] = buying | (u[:, 9] < 0.15)
    has[:, 10] = np.where(buying, u[:, 10] < 0.05, has[:, 9] & (u[:, 10] < 0.3))
    has[:, 11] = np.where(buying, u[:, 11] < 0.3, has[:, 9] & (u[:, 11] < 0.5))
    has[:, 12] = buying
    has[:, 13] = buying
    sess, slot = np.nonzero(has)
    rank = np.cumsum(has, axis=1)[sess, slot] - 1
    last = has.sum(1) - 1
    step = rng.integers(15, 120, n)
    ts = anchor[sess] + (rank - np.where(buying, last, 0)[sess]) * step[sess]
    ms = rng.integers(0, 1000, len(sess))
    ms[slot == 13] = 0

    # Per-session strings.
    sku_all = sku_code(np.arange(len(prod.sku)))
    cmix = np.array([t.category_mix for t in cat.CUSTOMER_TYPES])
    pt = p.ctype[np.maximum(person, 0)]
    cat_idx = np.minimum((rng.random(n)[:, None] > np.cumsum(cmix[pt], 1)).sum(1), 5)
    view_sku = prod.cat_start[cat_idx] + rng.integers(0, prod.cat_count[cat_idx])
    view_sku[buying] = orders.line_sku[first_line[ss.order_idx[buying]]]
    anon_id = text.uuids(np.stack([device, text.mix_u64(device, 5)], 1))
    acct = p.account_ids(np.maximum(person, 0))
    camp_name = _campaign_names(channel, anchor)
    camp_name = text.where(
        camp >= 0,
        text.lookup(
            text.strings([x.name for x in cat.CAMPAIGNS] + [""]),
            np.where(camp >= 0, camp, len(cat.CAMPAIGNS)),
        ),
        camp_name,
    )
    src = text.lookup(text.strings([ch.utm_source for ch in _CH]), channel)
    med = text.lookup(text.strings([ch.utm_medium for ch in _CH]), channel)
    campaign_ctx = text.where(
        channel == 0,
        "",
        text.join(
            [',"campaign":{"source":"', src, '","medium":"', med, '","name":"', camp_name, '"}']
        ),
    )
    referrer = text.lookup(text.strings([cat.REFERRERS[ch.name] for ch in _CH]), channel)
    dev_web = text.lookup(text.strings(_WEB_DEVICES), device % np.uint64(len(_WEB_DEVICES)))
    dev_app = text.lookup(text.strings(_APP_DEVICES), device % np.uint64(len(_APP_DEVICES)))
    tail_web = text.join([campaign_ctx, ',"device":', dev_web, ',"locale":"zh-CN"}'])
    tail_app = text.join(
        [
            '{"app":{"name":"Loupe Mall","version":"5.2.0"}',
            campaign_ctx,
            ',"device":',
            dev_app,
            ',"locale":"zh-CN"}',
        ]
    )
    order_props = _order_properties(orders, ss.order_idx, buying, sku_all)
    ev_all = np.arange(len(sess))
    for pf, source in ((0, "web"), (1, "app")):
        ev = ev_all[platform[sess] == pf]
        if not len(ev):
            continue
        ev = ev[np.argsort(ts[ev], kind="stable")]
        s_ev, slot_ev = sess[ev], slot[ev]
        ctx_tail = tail_web if pf == 0 else tail_app
        user_on = logged[s_ev] & (slot_ev >= 4)
        mid = text.uuids(
            np.stack(
                [
                    text.mix_u64(ev + event_base + (month * 4 + pf) * 2**36, seed),
                    text.mix_u64(ev, 9),
                ],
                1,
            )
        )
        parts = dict(
            anon=anon_id.take(pa.array(s_ev)),
            user=text.where(
                user_on, text.join([',"userId":"', acct.take(pa.array(s_ev)), '"']), ""
            ),
            ts=_timestamps(ts[ev], ms[ev], rng),
        )
        body = _bodies(
            pf, slot_ev, s_ev, person, view_sku, prod, sku_all, camp_name, referrer,
            ctx_tail, order_props, p,
        )  # fmt: skip
        kind = text.lookup(
            text.strings([("screen" if (t == "page" and pf) else t) for t, _, _ in SLOTS]), slot_ev
        )
        lines = text.join(
            [
                '{"type":"',
                kind,
                '","messageId":"',
                mid,
                '","anonymousId":"',
                parts["anon"],
                '"',
                parts["user"],
                body,
                ',"timestamp":"',
                parts["ts"],
                '"}',
            ]
        )
        files[source].write(lines=lines, protect=slot_ev == 4)
        identified[source].append(np.unique(person[s_ev[slot_ev == 4]]))
    return len(sess)


def _timestamps(secs: np.ndarray, ms: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """UTC ``...Z`` timestamps, a few written with a ``+08:00`` offset instead."""
    out = text.ts_utc_z(secs, ms)
    off = rng.random(len(secs)) < cat.SHARE_DIRT["offset_timestamp_event"]
    if not off.any():
        return out
    return pc.replace_with_mask(out, pa.array(off), text.ts_offset(secs[off], ms[off]))


def _order_properties(
    orders: OnlineOrders, order_idx: np.ndarray, buying: np.ndarray, sku_all: pa.Array
) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """``Checkout Started`` and ``Order Completed`` properties of the purchase sessions, and
    each session's position in them."""
    oi = np.sort(order_idx[buying])
    pos = np.where(buying, np.searchsorted(oi, order_idx), 0)
    sel = np.zeros(len(orders.person), dtype=bool)
    sel[oi] = True
    ln = np.flatnonzero(sel[orders.line_order])
    items = text.join(
        [
            '{"product_id":"',
            sku_all.take(pa.array(orders.line_sku[ln])),
            '","quantity":',
            text.num(orders.line_qty[ln]),
            ',"price":',
            text.money(orders.line_price[ln]),
            "}",
        ]
    )
    counts = np.bincount(np.searchsorted(oi, orders.line_order[ln]), minlength=len(oi))
    offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int32))
    products = pc.binary_join(pa.ListArray.from_arrays(offsets, items), ",")
    order_no = text.padded(orders.number[oi], 11, "E")
    cur = text.lookup(text.strings(["CNY", "USD", "HKD"]), orders.currency[oi])
    value = text.money(orders.total[oi])
    head = text.join(['{"order_id":"', order_no, '","'])
    checkout = text.join([head, 'value":', value, ',"currency":"', cur, '"}'])
    done = text.join(
        [head, 'revenue":', value, ',"currency":"', cur, '","products":[', products, "]}"]
    )
    return checkout, done, pos


def _traits(p: People, who: np.ndarray, pf: int) -> pa.Array:
    """Identify traits: the profile of a userId in the web or app source (stable per person)."""
    pinyin = text.mix_u64(who, 77) % np.uint64(10) < np.uint64(3)
    name = text.where(pinyin, pinyin_name(p, who), chinese_name(p, who))
    parts = ['{"email":"', emails(p, who), '"']
    if pf == 1:
        parts += [',"phone":"', text.num(p.phone_digits[who]), '"']
    return text.join([*parts, ',"name":"', name, '"}'])


_NOUN_ZH = text.strings([n[0] for k in cat.CATEGORIES for n in cat.PRODUCT_NOUNS[k]])


def _bodies(
    pf: int, slot: np.ndarray, sess: np.ndarray, person: np.ndarray, view_sku: np.ndarray,
    prod: Products, sku_all: pa.Array, camp_name: pa.Array, referrer: pa.Array,
    ctx_tail: pa.Array, order_props: tuple[pa.Array, pa.Array, np.ndarray], p: People,
) -> pa.Array:  # fmt: skip
    """Everything between ``userId`` and ``timestamp``, built per slot group then scattered."""
    groups, pieces = [], []
    for s in range(N_SLOTS):
        rows = np.flatnonzero(slot == s)
        if not len(rows):
            continue
        se = sess[rows]
        typ, name, path = SLOTS[s]
        sku = view_sku[se]
        if s == 8:  # the second product viewed is a neighbour in the same category
            end = prod.cat_start[prod.category[sku]] + prod.cat_count[prod.category[sku]]
            sku = np.where(sku + 1 < end, sku + 1, sku - 1)
        sku_s = sku_all.take(pa.array(sku))
        price = text.money(prod.price_cents[sku])
        cat_s = text.lookup(text.strings(cat.CATEGORIES), prod.category[sku])
        if s <= 2:
            props = text.join(['{"campaign":"', camp_name.take(pa.array(se)), '"}'])
        elif s == 3:
            props = pa.repeat('{"title":"Loupe Mall"}', len(rows))
        elif s == 5:
            noun = prod.category[sku] * 5 + prod.noun[sku]
            props = text.join(['{"query":"', text.lookup(_NOUN_ZH, noun), '"}'])
        elif s == 6:
            props = text.join(['{"category":"', cat_s, '"}'])
        elif s in (7, 8):
            props = text.join(
                ['{"product_id":"', sku_s, '","category":"', cat_s, '","price":', price, "}"]
            )
        elif s in (9, 10):
            props = text.join(['{"product_id":"', sku_s, '","quantity":1,"price":', price, "}"])
        elif s == 11:
            props = pa.repeat("{}", len(rows))
        elif s >= 12:
            props = order_props[s - 12].take(pa.array(order_props[2][se]))
        else:  # identify: traits, no properties
            props = pa.repeat("{}", len(rows))
        if s == 4:
            head = text.join([',"traits":', _traits(p, person[se], pf)])
        elif typ == "track":
            head = text.join([',"event":"', name, '","properties":', props])
        else:
            head = text.join([',"name":"', name, '","properties":', props])
        if pf == 0:
            url = (
                text.join([SITE, path, sku_s])
                if path == "/p/"
                else pa.repeat(SITE + path, len(rows))
            )
            ctx = text.join(
                [
                    ',"context":{"page":{"url":"',
                    url,
                    '","referrer":"',
                    referrer.take(pa.array(se)),
                    '"}',
                    ctx_tail.take(pa.array(se)),
                ]
            )
        else:
            ctx = text.join([',"context":', ctx_tail.take(pa.array(se))])
        groups.append(rows)
        pieces.append(text.join([head, ctx]))
    perm = np.concatenate(groups)
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(len(perm))
    return pa.concat_arrays(pieces).take(pa.array(inverse))
