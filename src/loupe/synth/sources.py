"""Operational source files: loyalty CRM, e-shop accounts and orders, POS members and tickets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from loupe.synth import catalog as cat
from loupe.synth import text
from loupe.synth.behaviour import Orders, Products
from loupe.synth.people import People, chinese_name, emails, pinyin_name, rng_for
from loupe.synth.writer import Prepared, SourceFile

GENDER_FORMS = text.strings(["男", "女", "M", "F", "male", "female", ""])
_CITY = text.strings([c[0] for c in cat.CITIES])
_CITY_PY = text.strings([c[2] for c in cat.CITIES])
_PROVINCE = text.strings([c[1] for c in cat.CITIES])
STORE_PHONE_BASE = 18_800_000_000


def stores() -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Store codes, names and city index (fixed list)."""
    city = np.repeat(np.arange(len(cat.CITIES)), cat.STORES_PER_CITY)
    within = np.concatenate([np.arange(k) for k in cat.STORES_PER_CITY])
    codes = text.padded(np.arange(len(city)) + 1, 3, "S")
    names = text.join(
        [
            text.lookup(_CITY, city),
            text.lookup(text.strings(cat.MALLS), within % len(cat.MALLS)),
            "店",
        ]
    )
    return codes, names, city


def store_phones(store: np.ndarray) -> pa.Array:
    return text.num(STORE_PHONE_BASE + np.asarray(store) + 1)


def genders(p: People, idx: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Gender spelt 男/女, M/F, male/female or blank."""
    style = rng.choice(4, size=len(idx), p=[0.55, 0.2, 0.15, 0.10])
    code = np.where(style == 3, 6, style * 2 + p.gender[idx])
    return text.lookup(GENDER_FORMS, code)


def dates(days: np.ndarray, rng: np.random.Generator, blank: float) -> pa.Array:
    style = rng.choice(4, size=len(days), p=[0.55, 0.2, 0.15, 0.10])
    return text.where(rng.random(len(days)) < blank, "", text.date_mixed(days, style))


def stamps(secs: np.ndarray, rng: np.random.Generator, p_local: float = 0.5) -> pa.Array:
    q = (1 - p_local) / 2
    style = rng.choice(3, size=len(secs), p=[p_local, q, q])
    return text.ts_mixed(np.minimum(secs, cat.END - 1), style)


def phones(digits: np.ndarray, rng: np.random.Generator, blank: np.ndarray | float) -> pa.Array:
    style = rng.choice(5, size=len(digits), p=[0.5, 0.15, 0.1, 0.1, 0.15])
    out = text.phone_mixed(text.num(digits), style)
    mask = blank if isinstance(blank, np.ndarray) else rng.random(len(digits)) < blank
    return text.where(mask, "", out)


def dirty_emails(
    p: People, idx: np.ndarray, rng: np.random.Generator, dirty: float | np.ndarray
) -> pa.Array:
    style = np.where(rng.random(len(idx)) < dirty, rng.integers(1, 5, len(idx)), 0)
    return text.email_mixed(emails(p, idx), style)


def write_crm(p: People, f: SourceFile, seed: int) -> None:
    rng = rng_for(seed, 20)
    base = np.flatnonzero(p.in_crm)
    dup = np.flatnonzero(p.crm_duplicate)
    person = np.concatenate([base, dup])
    is_dup = np.r_[np.zeros(len(base), bool), np.ones(len(dup), bool)]
    reg = p.signup[person] + np.where(is_dup, rng.integers(30, 400, len(person)) * 86400, 0)
    reg = np.minimum(reg, cat.END - 3600)
    order = np.lexsort((person, reg))
    person, is_dup, reg = person[order], is_dup[order], reg[order]
    n = len(person)
    typo = is_dup & (rng.random(n) < 0.5) | (rng.random(n) < cat.SHARE_DIRT["name_typo"])
    no_account_member = ~p.has_account[person] & p.is_member[person] & ~p.family_phone[person]
    blank_phone = rng.random(n) < np.where(no_account_member, 0.4, cat.SHARE_DIRT["blank_phone"])
    blank_phone &= ~p.family_phone[person]  # a family phone is always on >= 6 records
    blank_email = (rng.random(n) < cat.SHARE_DIRT["blank_email"]) & ~blank_phone
    phone_digits = np.where(
        p.family_phone[person], p.household_phone_digits[person], p.phone_digits[person]
    )
    level = np.clip(
        np.array([3, 0, 0, 0, 1])[p.ctype[person]] + rng.integers(-1, 2, n) * (p.ctype[person] > 0),
        0,
        3,
    )
    upd = reg + (rng.random(n) * (cat.END - reg)).astype(np.int64)
    columns = [
        text.padded(np.arange(n) + 1, 8, "C"),
        chinese_name(p, person, typo),
        genders(p, person, rng),
        dates(p.birth_day[person], rng, cat.SHARE_DIRT["blank_birth_date"]),
        text.where(blank_email, "", dirty_emails(p, person, rng, np.where(is_dup, 0.9, 0.1))),
        text.where(blank_phone, "", phones(phone_digits, rng, 0.0)),
        text.lookup(_CITY, p.city[person]),
        text.lookup(_PROVINCE, p.city[person]),
        text.lookup(text.strings(["中国", "CN", "China"]), rng.choice(3, n, p=[0.7, 0.2, 0.1])),
        text.lookup(text.strings(cat.CRM_LEVELS), level),
        stamps(reg, rng),
        text.where(rng.random(n) < 0.2, "", stamps(upd, rng)),
    ]
    f.write(columns, keys=columns[0], persons=person, protect=p.family_phone[person])


def write_accounts(p: People, f: SourceFile, seed: int) -> None:
    rng = rng_for(seed, 21)
    person = np.flatnonzero(p.has_account)
    created = np.minimum(p.signup[person] + rng.integers(0, 30 * 86400, len(person)), cat.END - 1)
    person, created = person[np.argsort(created, kind="stable")], np.sort(created)
    n = len(person)
    blank_phone = rng.random(n) < 0.15
    blank_email = (rng.random(n) < cat.SHARE_DIRT["blank_email"]) & ~blank_phone
    real_style = rng.choice(3, n, p=[0.6, cat.SHARE_DIRT["pinyin_name"], 0.15])
    real = text.choose(
        real_style,
        [chinese_name(p, person), pinyin_name(p, person), text.where(np.ones(n, bool), "", "")],
    )
    nick = text.join(
        [
            text.lookup(text.strings([s[1] for s in cat.SURNAMES]), p.surname[person]),
            text.lookup(text.strings(cat.NICK_WORDS), rng.integers(0, len(cat.NICK_WORDS), n)),
            text.num(rng.integers(1, 999, n)),
        ]
    )
    last_login = created + (rng.random(n) * (np.minimum(p.churn_at[person], cat.END) - created))
    city = text.where(
        rng.random(n) < 0.2,
        text.lookup(_CITY_PY, p.city[person]),
        text.lookup(_CITY, p.city[person]),
    )
    columns = [
        p.account_ids(person),
        text.where(blank_email, "", dirty_emails(p, person, rng, 0.1)),
        phones(p.phone_digits[person], rng, blank_phone),
        nick,
        real,
        genders(p, person, rng),
        dates(p.birth_day[person], rng, 0.3),
        city,
        stamps(created, rng),
        stamps(np.maximum(last_login.astype(np.int64), created), rng),
    ]
    f.write(columns, keys=columns[0], persons=person)


def write_members(p: People, f: SourceFile, seed: int) -> None:
    rng = rng_for(seed, 22)
    person = np.flatnonzero(p.is_member)
    opened = np.maximum(
        p.signup[person], p.active_start[person] - rng.integers(0, 3 * 365, len(person)) * 86400
    )
    person, opened = person[np.argsort(opened, kind="stable")], np.sort(opened)
    n = len(person)
    _, name, _ = stores()
    store = p.home_store[person]
    # The store's own phone typed in for some new members: always >= 6 members per store phone.
    cand = np.flatnonzero(~p.family_phone[person])
    k = min(len(cand), max(6 * cat.STORE_PHONE_STORES, n // 100))
    k -= k % cat.STORE_PHONE_STORES
    chosen = np.sort(rng.choice(cand, size=k, replace=False))
    store_phone_row = np.zeros(n, bool)
    store_phone_row[chosen] = True
    store_phone_store = np.zeros(n, dtype=np.int64)
    store_phone_store[chosen] = np.arange(k) % cat.STORE_PHONE_STORES
    digits = np.where(
        p.family_phone[person], p.household_phone_digits[person], p.phone_digits[person]
    )
    digits = np.where(store_phone_row, STORE_PHONE_BASE + store_phone_store + 1, digits)
    store = np.where(store_phone_row, store_phone_store, store)
    typo = rng.random(n) < cat.SHARE_DIRT["name_typo"]
    columns = [
        p.card_ids(person),
        phones(digits, rng, np.zeros(n, bool)),
        chinese_name(p, person, typo),
        genders(p, person, rng),
        dates(p.birth_day[person], rng, cat.SHARE_DIRT["blank_birth_date"]),
        text.lookup(name, store),
        stamps(opened, rng, 0.8),
    ]
    protect = p.family_phone[person] | store_phone_row
    f.write(columns, keys=columns[0], persons=person, protect=protect)


GENERIC_COUPONS = text.strings(["", "WELCOME10", "SAVE20", "VIP50", "FLASH30"])


def coupon_codes(o: Orders, rng: np.random.Generator) -> pa.Array:
    generic = text.lookup(GENERIC_COUPONS, rng.integers(1, 5, len(o)))
    campaigns = text.strings(["", *[c.coupon_code for c in cat.CAMPAIGNS]])
    camp = text.lookup(campaigns, np.maximum(o.coupon, 0))
    return text.where(o.coupon < 0, "", text.where(o.coupon == 0, generic, camp))


def prepare_orders(
    p: People, prod: Products, o: Orders, files: dict[str, SourceFile], block: int, seed: int
) -> dict[str, Prepared | None]:
    """One block's e-shop orders + lines and POS tickets + lines, ready to commit to
    ``files`` (chunk number ``block`` of each; see :meth:`SourceFile.prepare`)."""
    out: dict[str, Prepared | None] = {}
    rng = rng_for(seed, 23, block)
    sku_codes = sku_code(np.arange(len(prod.sku)))
    online = o.platform < 2
    for kind, sel in (("eshop", online), ("pos", ~online)):
        rows = np.flatnonzero(sel)
        person = o.person[rows]
        n = len(rows)
        line_sel = sel[o.line_order]
        lo_rows = o.line_order[line_sel]
        currency = text.lookup(text.strings(["CNY", "USD", "HKD"]), o.currency[rows])
        if kind == "eshop":
            order_no = text.padded(o.number[rows], 11, "E")
            columns = [
                order_no,
                p.account_ids(person),
                text.where(rng.random(n) < 0.3, "", dirty_emails(p, person, rng, 0.1)),
                phones(p.phone_digits[person], rng, 0.3),
                stamps(o.time[rows], rng, 0.3),
                text.money(o.total[rows]),
                currency,
                coupon_codes(o, rng).take(pa.array(rows)),
                text.money(o.discount[rows]),
                text.lookup(text.strings(cat.PLATFORMS), o.platform[rows]),
                text.where(
                    rng.random(n) < 0.05,
                    text.lookup(_CITY, rng.integers(0, len(cat.CITIES), n)),
                    text.lookup(_CITY, p.city[person]),
                ),
                text.lookup(text.strings(cat.ORDER_STATUS), o.status[rows]),
            ]
            out["eshop_orders"] = files["eshop_orders"].prepare(block, columns)
            lines_key = "eshop_order_lines"
        else:
            order_no = text.padded(o.number[rows], 11, "T")
            codes, names, _ = stores()
            store = o.store[rows]
            member = p.is_member[person]
            walk_style = rng.choice(3, n, p=[0.4, 0.1, 0.5])  # own phone, store phone, blank
            own = phones(p.phone_digits[person], rng, 0.0)
            walk_phone = text.choose(walk_style, [own, store_phones(store), own])
            walk_phone = text.where(walk_style == 2, "", walk_phone)
            member_phone = text.where(rng.random(n) < 0.3, "", own)
            columns = [
                order_no,
                text.lookup(codes, store),
                text.lookup(names, store),
                text.where(member, p.card_ids(person), ""),
                text.where(member, member_phone, walk_phone),
                stamps(o.time[rows], rng, 0.8),
                text.money(o.total[rows]),
                currency,
                text.lookup(text.strings(cat.PAYMENTS), rng.choice(4, n, p=[0.5, 0.35, 0.1, 0.05])),
            ]
            out["pos_transactions"] = files["pos_transactions"].prepare(block, columns)
            lines_key = "pos_lines"
        # Lines: map the block-local order position to the position within `rows`.
        pos_in_rows = np.full(len(o), -1, dtype=np.int64)
        pos_in_rows[rows] = np.arange(n)
        ln = np.flatnonzero(line_sel)
        line_cols = [
            order_no.take(pa.array(pos_in_rows[lo_rows])),
            text.num(o.line_no[ln]),
            sku_codes.take(pa.array(o.line_sku[ln])),
            text.num(o.line_qty[ln]),
            text.money(o.line_price[ln]),
            text.money(o.line_discount[ln]),
        ]
        out[lines_key] = files[lines_key].prepare(block, line_cols)
    return out


def sku_code(index: np.ndarray) -> pa.Array:
    return text.padded(index + 1, 5, "SKU")
