"""Ground truth written to ``OUT/truth/``: records, bad rows, people, campaigns, params."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from loupe.synth import catalog as cat
from loupe.synth import text
from loupe.synth.people import People
from loupe.synth.sources import STORE_PHONE_BASE
from loupe.synth.writer import SourceFile, bad_rows_table


def write_csv(path: Path, header: list[str], columns: list[pa.Array]) -> int:
    """A plain UTF-8 CSV (no quoting needed: values never hold commas or quotes)."""
    with path.open("wb") as fh:
        fh.write((",".join(header) + "\n").encode())
        if columns and len(columns[0]):
            fh.write(text.lines_to_bytes(text.join(columns, ",")))
    return len(columns[0]) if columns else 0


def write_records(
    p: People, out: Path, contacts: list[SourceFile], identified: dict[str, list[np.ndarray]]
) -> int:
    sources, keys, persons = [], [], []
    for f in contacts:
        for k, who in f.keys:
            sources.append(pa.repeat(f.source, len(k)))
            keys.append(k)
            persons.append(who)
    for source in ("web", "app"):
        who = np.unique(np.concatenate(identified[source] or [np.array([], np.int64)]))
        sources.append(pa.repeat(source, len(who)))
        keys.append(p.account_ids(who))
        persons.append(who)
    who = np.concatenate(persons).astype(np.int64)
    cols = [pa.concat_arrays(sources), pa.concat_arrays(keys), p.person_ids(who)]
    return write_csv(out / "records.csv", ["source", "source_key", "person_id"], cols)


def write_bad_rows(out: Path, files: list[SourceFile]) -> int:
    t = bad_rows_table(files)
    return write_csv(out / "bad_rows.csv", t.column_names, [c.combine_chunks() for c in t.columns])


def write_people(p: People, out: Path, orders_online: np.ndarray, orders_store: np.ndarray) -> None:
    idx = np.arange(p.n)
    churn_day = np.minimum(p.churn_at, cat.END) // 86400
    columns = [
        p.person_ids(),
        text.lookup(text.strings(cat.type_names()), p.ctype),
        text.padded(p.household + 1, 7, "H"),
        text.where(p.gender == 1, "F", "M"),
        text.date_iso(p.birth_day),
        text.lookup(text.strings([c[0] for c in cat.CITIES]), p.city),
        text.date_iso((p.signup + text.TZ_OFFSET) // 86400),
        text.where(p.churned, "true", "false"),
        text.where(p.churned, text.date_iso(churn_day), ""),
        text.where(p.complaint, "1", "0"),
        text.num(np.round(p.discount_dependency * 1000)),
        text.where(p.late_delivery, "1", "0"),
        text.num(np.round(p.app_trend * 1000)),
        text.where(p.has_account, p.account_ids(idx), ""),
        text.where(p.is_member, p.card_ids(idx), ""),
        text.where(p.in_crm, "true", "false"),
        text.where(p.family_phone, "true", "false"),
        text.num(orders_online),
        text.num(orders_store),
        _incident_date(p.complaint, p.complaint_at),
        _incident_date(p.late_delivery, p.late_delivery_at),
    ]
    # discount_dependency and app_engagement_trend are written in thousandths as integers
    # would be awkward to read; format them as decimals instead.
    columns[10] = _decimal3(p.discount_dependency)
    columns[12] = _decimal3(p.app_trend)
    header = [
        "person_id", "customer_type", "household_id", "gender", "birth_date", "city",
        "signup_date", "churned", "churn_date", *cat.CHURN_DRIVER_NAMES, "account_id",
        "member_card", "in_crm", "family_phone", "eshop_orders", "pos_orders",
        "complaint_date", "late_delivery_date",
    ]  # fmt: skip
    write_csv(out / "people.csv", header, columns)


def _incident_date(happened: np.ndarray, at: np.ndarray) -> pa.Array:
    """The (UTC) day of a planted incident, as ``churn_date``; empty when there was none."""
    day = np.where(happened, at // 86400, 0)
    return text.where(happened, text.date_iso(day), "")


def _decimal3(x: np.ndarray) -> pa.Array:
    m = np.round(np.asarray(x) * 1000).astype(np.int64)
    body = text.join([text.num(np.abs(m) // 1000), text.padded(np.abs(m) % 1000, 3)], ".")
    return text.where(m < 0, text.join(["-", body]), body)


def write_campaigns(p: People, out: Path, arms: list[tuple[np.ndarray, np.ndarray]]) -> None:
    cols: list[list[pa.Array]] = [[], [], []]
    for c, (eligible, treated) in zip(cat.CAMPAIGNS, arms, strict=True):
        who = np.flatnonzero(eligible)
        cols[0].append(pa.repeat(c.name, len(who)))
        cols[1].append(p.person_ids(who))
        cols[2].append(text.where(treated[who], "treatment", "control"))
    write_csv(
        out / "campaigns.csv",
        ["campaign", "person_id", "arm"],
        [pa.concat_arrays(c) for c in cols],
    )


def write_params(out: Path, seed: int, counts: dict[str, object]) -> None:
    params = {
        "as_of": cat.AS_OF,
        "time_span": ["2024-01-01", "2025-12-31"],
        "seed": seed,
        **cat.params_dict(),
        "store_phones": [str(STORE_PHONE_BASE + s + 1) for s in range(sum(cat.STORES_PER_CITY))],
        "counts": counts,
    }
    (out / "params.json").write_text(json.dumps(params, ensure_ascii=False, indent=2) + "\n")
