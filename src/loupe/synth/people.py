"""Persons: type, household, demographics, identifiers, memberships and the churn process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from loupe.synth import catalog as cat
from loupe.synth import text


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one (seed, stream...) so chunks do not depend on order."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


#: The time of an incident that never happens (far beyond any churn time, no overflow).
NEVER = np.iinfo(np.int64).max // 4


def churn_times(
    start: np.ndarray,
    hazard: np.ndarray,
    jumps: list[tuple[np.ndarray, float]],
    exposure: np.ndarray,
) -> np.ndarray:
    """Churn times (seconds) under a piecewise-constant hazard, by inverting its integral.

    ``hazard`` (per year) holds from ``start``; each ``(at, coefficient)`` of ``jumps``
    multiplies it by ``exp(coefficient)`` from ``at`` on (``NEVER``: no jump).  A person churns
    when the integrated hazard reaches their ``exposure`` (an Exponential(1) draw), so without
    jumps this is ``start + exposure / hazard`` years.
    """
    n = len(start)
    at = np.stack([np.maximum(a, start) for a, _ in jumps], axis=1).astype(np.float64)
    order = np.argsort(at, axis=1)
    at = np.take_along_axis(at, order, axis=1)
    coefs = np.array([c for _, c in jumps], dtype=np.float64)
    # segment k runs from bounds[k] to bounds[k + 1] at rate rates[k] (per second)
    bounds = np.concatenate([start[:, None].astype(np.float64), at, np.full((n, 1), np.inf)], 1)
    log_mult = np.concatenate([np.zeros((n, 1)), np.cumsum(coefs[order], axis=1)], axis=1)
    rates = hazard[:, None] * np.exp(log_mult) / cat.YEAR
    left = exposure.astype(np.float64).copy()
    churn = np.full(n, np.inf)
    for k in range(rates.shape[1]):
        length = bounds[:, k + 1] - bounds[:, k]
        need = left / rates[:, k]
        here = np.isinf(churn) & (need <= length)
        churn[here] = bounds[here, k] + need[here]
        with np.errstate(invalid="ignore"):  # inf * 0 on the open last segment
            left = np.where(np.isinf(churn), left - rates[:, k] * length, left)
    return np.minimum(churn, NEVER).astype(np.int64)


def _days(iso: str) -> int:
    y, m, d = (int(p) for p in iso.split("-"))
    return text.days_from_civil(y, m, d)


@dataclass
class People:
    """One row per person, as parallel NumPy arrays (index = person number)."""

    n: int
    ctype: np.ndarray  # int8 index into CUSTOMER_TYPES
    household: np.ndarray
    household_size: np.ndarray
    gender: np.ndarray  # 0 male, 1 female
    birth_day: np.ndarray  # days since epoch
    city: np.ndarray
    surname: np.ndarray
    given1: np.ndarray
    given2: np.ndarray  # -1 for a one-character given name
    signup: np.ndarray  # seconds since epoch (UTC)
    active_start: np.ndarray
    churn_at: np.ndarray  # seconds; END or later when not churned
    churned: np.ndarray
    has_account: np.ndarray
    app_user: np.ndarray
    is_member: np.ndarray
    in_crm: np.ndarray
    crm_duplicate: np.ndarray
    family_phone: np.ndarray  # household phone used on CRM/POS instead of the own phone
    rate: np.ndarray  # individual orders per year while active
    coupon_rate: np.ndarray
    channel_mix: np.ndarray  # (n, 3) web/app/store
    home_store: np.ndarray
    complaint: np.ndarray  # a complaint happened while a customer, before END
    discount_dependency: np.ndarray
    late_delivery: np.ndarray  # a late e-shop delivery happened while a customer, before END
    app_trend: np.ndarray
    complaint_at: np.ndarray  # seconds; NEVER when no complaint
    late_delivery_at: np.ndarray  # seconds; NEVER when no late delivery
    phone_digits: np.ndarray  # own mobile number as int64 (11 digits)
    household_phone_digits: np.ndarray
    email_domain: np.ndarray
    email_number: np.ndarray
    web_device: np.ndarray  # uint64 word identifying the web browser (family tablets share)
    app_device: np.ndarray
    account_number: np.ndarray  # distinct code below ID_CODES (U + 10M + code)
    card_number: np.ndarray  # distinct code below ID_CODES (M + 10M + code)

    def person_ids(self, index: np.ndarray | None = None) -> pa.Array:
        idx = np.arange(self.n) if index is None else index
        return text.padded(idx + 1, 7 if self.n < 10_000_000 else 9, "P")

    def account_ids(self, index: np.ndarray) -> pa.Array:
        return text.padded(self.account_number[index] + 10_000_000, 8, "U")

    def card_ids(self, index: np.ndarray) -> pa.Array:
        return text.padded(self.card_number[index] + 10_000_000, 8, "M")


#: Account and member card numbers are 8 digits that do not start with 0: 90M codes.
ID_CODES = 90_000_000


def _unique_codes(n: int, seed: int, key: int, modulus: int) -> np.ndarray:
    """n distinct pseudo-random integers below ``modulus`` (affine bijection of 0..n-1).

    ``(i * a + b) % modulus`` with ``a`` coprime to ``modulus`` never repeats for ``n <=
    modulus``.  A hash taken modulo the code space instead repeats about ``n² / 2·modulus``
    times (account numbers did: 148 at 200k persons, so a source record stood for two persons).
    """
    rng = rng_for(seed, key)
    a = int(rng.integers(1, modulus // 7)) * 2 + 1
    while np.gcd(a, modulus) != 1:
        a += 2
    b = int(rng.integers(0, modulus))
    return (np.arange(n, dtype=np.int64) * a + b) % modulus


def make_people(n: int, seed: int) -> People:
    """Draw ``n`` persons; every draw is vectorised over persons."""
    rng = rng_for(seed, 1)
    types = cat.CUSTOMER_TYPES
    ctype = rng.choice(len(types), size=n, p=[t.share for t in types]).astype(np.int8)
    col = {f: np.array([getattr(t, f) for t in types]) for f in types[0].__dataclass_fields__}

    sizes = rng.choice([1, 2, 3, 4], size=n, p=[0.40, 0.30, 0.20, 0.10])
    household = np.repeat(np.arange(n), sizes)[:n]
    household_size = np.bincount(household)[household]
    head = np.r_[0, np.flatnonzero(np.diff(household)) + 1]
    first = head[household]  # first member of each person's household

    city_p = np.array([c[3] for c in cat.CITIES])
    city = rng.choice(len(cat.CITIES), size=n, p=city_p / city_p.sum())[first]
    gender = rng.integers(0, 2, n)
    gender = np.where(col["name"][ctype] == "family_shopper", rng.random(n) < 0.75, gender)
    surname = rng.integers(0, len(cat.SURNAMES), n)
    surname = np.where(rng.random(n) < 0.6, surname[first], surname)
    given1 = rng.integers(0, len(cat.GIVEN), n)
    given2 = np.where(rng.random(n) < 0.7, rng.integers(0, len(cat.GIVEN), n), -1)

    ages = np.array([t.age_range for t in types])[ctype]
    age_days = rng.uniform(ages[:, 0], ages[:, 1] + 1) * 365.25
    birth_day = (cat.END // 86400 - age_days).astype(np.int64)

    lo = np.array([_days(t.signup_range[0]) for t in types])[ctype]
    hi = np.array([_days(t.signup_range[1]) for t in types])[ctype]
    signup = (rng.uniform(lo, hi + 1) * 86400).astype(np.int64) + rng.integers(0, 86400, n)
    active_start = np.maximum(signup, cat.START)

    has_account = rng.random(n) < col["account_rate"][ctype]
    mix = np.array([t.channel_mix for t in types])[ctype].astype(float)
    mix[~has_account, :2] = 0.0
    mix /= mix.sum(1, keepdims=True)
    app_user = has_account & (mix[:, 1] > 0) & (rng.random(n) < 0.9)
    mix[has_account & ~app_user, 1] = 0.0
    mix /= mix.sum(1, keepdims=True)

    # Households of three or more: some type their shared family phone at the store/CRM.
    fam = (household_size >= 3) & (rng.random(n) < cat.SHARE_DIRT["family_phone_household"])
    family_phone = fam[first]
    is_member = (rng.random(n) < col["member_rate"][ctype]) & (mix[:, 2] > 0) | family_phone
    in_crm = (rng.random(n) < 0.8) | family_phone
    crm_duplicate = in_crm & (rng.random(n) < cat.SHARE_DIRT["crm_duplicate_person"])

    rate = col["orders_per_year"][ctype] * rng.gamma(4.0, 0.25, n)
    coupon_rate = np.clip(col["coupon_rate"][ctype] + rng.normal(0, 0.15, n), 0.0, 0.98)

    # Churn drivers and the planted hazard (catalog.CHURN_DRIVERS).  Discount dependency and
    # the app trend are traits, in force from the start.  A complaint and a late delivery are
    # incidents at a time in the active period that multiply the hazard from then on; an
    # incident due after the person churned never happens.  The incident times come from their
    # own stream, so every other draw of the generator is unchanged.
    d: dict[str, Any] = cat.CHURN_DRIVERS
    complaint = rng.random(n) < d["complaint"]["prevalence"]
    discount_dependency = coupon_rate - 0.3
    late_delivery = has_account & (rng.random(n) < d["late_delivery"]["prevalence"])
    app_trend = np.where(app_user, rng.normal(0.0, 0.6, n), 0.0)
    trait = (
        d["discount_dependency"]["coefficient"] * discount_dependency
        + d["app_engagement_trend"]["coefficient"] * app_trend
    )
    hazard = col["base_churn_hazard"][ctype] * np.exp(trait)
    span = np.maximum(cat.END - active_start, 1).astype(np.float64)
    when = rng_for(seed, 5).random((2, n))
    complaint_at = np.where(complaint, active_start + (when[0] * span).astype(np.int64), NEVER)
    late_at = np.where(late_delivery, active_start + (when[1] * span).astype(np.int64), NEVER)
    incidents = [
        (complaint_at, d["complaint"]["coefficient"]),
        (late_at, d["late_delivery"]["coefficient"]),
    ]
    churn_at = churn_times(active_start, hazard, incidents, rng.exponential(1.0, n))
    churned = churn_at < cat.END
    complaint_at = np.where(complaint_at < churn_at, complaint_at, NEVER)
    late_at = np.where(late_at < churn_at, late_at, NEVER)
    complaint, late_delivery = complaint_at < cat.END, late_at < cat.END

    stores_per_city = np.array(cat.STORES_PER_CITY)
    store_first = np.r_[0, np.cumsum(stores_per_city)[:-1]]
    home_store = store_first[city] + (rng.random(n) * stores_per_city[city]).astype(np.int64)

    prefixes = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139])
    own = _unique_codes(n, seed, 2, 100_000_000)
    phone_digits = prefixes[rng.integers(0, len(prefixes), n)] * 100_000_000 + own
    # Make the own number unique across prefixes too: the 8-digit tail already is.
    hh_phone = 15_000_000_000 + _unique_codes(n, seed, 3, 100_000_000)[household]

    tablet = (household_size >= 2) & (rng.random(n) < cat.SHARE_DIRT["family_tablet_household"])
    web_device = text.mix_u64(np.arange(n), seed * 7 + 1)
    web_device = np.where(tablet[first] & has_account, web_device[first], web_device)
    app_device = text.mix_u64(np.arange(n), seed * 7 + 2)

    return People(
        n=n, ctype=ctype, household=household, household_size=household_size,
        gender=gender.astype(np.int8), birth_day=birth_day, city=city, surname=surname,
        given1=given1, given2=given2, signup=signup, active_start=active_start,
        churn_at=churn_at, churned=churned, has_account=has_account, app_user=app_user,
        is_member=is_member, in_crm=in_crm, crm_duplicate=crm_duplicate,
        family_phone=family_phone, rate=rate, coupon_rate=coupon_rate, channel_mix=mix,
        home_store=home_store, complaint=complaint, discount_dependency=discount_dependency,
        late_delivery=late_delivery, app_trend=app_trend, complaint_at=complaint_at,
        late_delivery_at=late_at, phone_digits=phone_digits,
        household_phone_digits=hh_phone,
        email_domain=rng.integers(0, len(cat.EMAIL_DOMAINS), n),
        email_number=_unique_codes(n, seed, 4, 1_000_000_000),
        web_device=web_device, app_device=app_device,
        account_number=_unique_codes(n, seed, 11, ID_CODES),
        card_number=_unique_codes(n, seed, 12, ID_CODES),
    )  # fmt: skip


# --- names ------------------------------------------------------------------------------------

_SUR_ZH = text.strings([s[0] for s in cat.SURNAMES])
_SUR_PY = text.strings([s[1] for s in cat.SURNAMES])
_GIV_ZH = text.strings([g[0] for g in cat.GIVEN] + [""])
_GIV_PY = text.strings([g[1] for g in cat.GIVEN] + [""])
_GIV_PY_LOWER = text.strings([g[1].lower() for g in cat.GIVEN] + [""])
_GIV_TYPO_PY = text.strings([g[1][:-2] + g[1][-1] + g[1][-2] for g in cat.GIVEN] + [""])


def chinese_name(p: People, idx: np.ndarray, typo: np.ndarray | None = None) -> pa.Array:
    """Chinese name; a typo replaces the last character with a neighbour in the list."""
    g1, g2 = p.given1[idx], p.given2[idx]
    if typo is not None:
        last2 = g2 >= 0
        g2 = np.where(typo & last2, (g2 + 1) % len(cat.GIVEN), g2)
        g1 = np.where(typo & ~last2, (g1 + 1) % len(cat.GIVEN), g1)
    g2 = np.where(g2 < 0, len(cat.GIVEN), g2)
    return text.join(
        [text.lookup(_SUR_ZH, p.surname[idx]), text.lookup(_GIV_ZH, g1), text.lookup(_GIV_ZH, g2)]
    )


def pinyin_name(p: People, idx: np.ndarray, typo: np.ndarray | None = None) -> pa.Array:
    """Pinyin ``Wei Wang`` style (given name first); a typo swaps two letters."""
    g1, g2 = p.given1[idx], np.where(p.given2[idx] < 0, len(cat.GIVEN), p.given2[idx])
    first = text.lookup(_GIV_PY, g1)
    if typo is not None:
        first = text.where(typo, text.lookup(_GIV_TYPO_PY, g1), first)
    given = text.join([first, text.lookup(_GIV_PY_LOWER, g2)])
    return text.join([given, text.lookup(_SUR_PY, p.surname[idx])], " ")


def emails(p: People, idx: np.ndarray) -> pa.Array:
    """The person's own e-mail: unique thanks to a per-person number."""
    dom = p.email_domain[idx]
    number = text.num(p.email_number[idx] % 1_000_000_000 + 100_000)
    local = text.join(
        [
            pc_lower(text.lookup(_SUR_PY, p.surname[idx])),
            ".",
            text.lookup(_GIV_PY_LOWER, p.given1[idx]),
            number,
        ]
    )
    qq = dom == 0
    local = text.where(qq, number, local)
    return text.join([local, text.lookup(text.strings(cat.EMAIL_DOMAINS), dom)], "@")


def pc_lower(arr: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.utf8_lower(arr)
