"""``generate_company``: draw the company and write every source file plus the ground truth."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from loupe.errors import LoupeError
from loupe.synth import catalog as cat
from loupe.synth import extras, truth
from loupe.synth.behaviour import BLOCK, Orders, campaign_arms, make_orders, make_products
from loupe.synth.events import OnlineOrders, write_month
from loupe.synth.people import make_people, rng_for
from loupe.synth.sources import prepare_orders, write_accounts, write_crm, write_members
from loupe.synth.writer import Prepared, SourceFile

Progress = Callable[[str, int, int], None]
T = TypeVar("T")

CSV_FILES = {  # file name -> (source, header, encoding, malformed kinds {kind: column})
    "crm_customers.csv": ("crm", "crm_id,name,gender,birth_date,email,mobile,city,province,country,member_level,registered_at,updated_at", "utf-8", {"wrong_column_count": None, "bad_date": 10}),
    "eshop_accounts.csv": ("eshop_accounts", "account_id,email,phone,nickname,real_name,gender,birthday,city,created_at,last_login_at", "utf-8", {"wrong_column_count": None, "bad_date": 8}),
    "eshop_orders.csv": ("eshop_orders", "order_no,account_id,email,phone,order_time,total_amount,currency,coupon_code,discount_amount,platform,ship_city,status", "utf-8", {"wrong_column_count": None, "bad_date": 4}),
    "eshop_order_lines.csv": ("eshop_order_lines", "order_no,line_no,sku,qty,unit_price,line_discount", "utf-8", {"wrong_column_count": None, "negative_quantity": 3}),
    "pos_members.csv.gz": ("pos_members", "会员卡号,手机号,姓名,性别,生日,开卡门店,开卡时间", "gbk", {"wrong_column_count": None, "bad_date": 6}),
    "pos_transactions.csv": ("pos_transactions", "小票号,门店编号,门店名称,会员卡号,手机号,交易时间,金额,币种,支付方式", "gbk", {"wrong_column_count": None, "bad_date": 5}),
    "pos_lines.csv": ("pos_lines", "小票号,行号,商品编码,数量,单价,折扣", "gbk", {"wrong_column_count": None, "negative_quantity": 3}),
    "products.csv": ("products", "sku,name,name_en,category,brand,price,currency", "utf-8", {}),
    "consents.csv": ("consents", "identifier,identifier_type,purpose,granted,ts,source", "utf-8", {}),
    "reviews.csv": ("reviews", "review_id,account_id,phone,sku,rating,text,lang,created_at,channel", "utf-8", {}),
}  # fmt: skip
CLEAN_FILES = {"products.csv", "consents.csv"}
MULTILINE_FILES = {"reviews.csv"}  # follow-up reviews: a quoted text with a line break
#: The POS system's member export arrives gzipped (written so: ``SourceFile`` on a ``.gz`` name).
#: The marketing team's spend is a workbook, not a CSV file (:func:`extras.write_spend`).
SPEND_FILE = "marketing_spend.xlsx"

#: Months of events written side by side at most (each holds its month's sessions in memory).
MAX_EVENT_THREADS = 2


def _event_threads() -> int:
    return max(1, min(MAX_EVENT_THREADS, os.cpu_count() or 1))


@dataclass(frozen=True)
class GenerateReport:
    """What :func:`generate_company` wrote.

    Attributes
    ----------
    out
        The output folder.
    customers
        Number of persons drawn.
    files
        File name to data rows written (header excluded; duplicates and malformed rows included).
    bad_rows
        Number of planted malformed rows (``truth/bad_rows.csv``).
    records
        Number of person records in ``truth/records.csv``.
    """

    out: Path
    customers: int
    files: dict[str, int] = field(default_factory=dict)
    bad_rows: int = 0
    records: int = 0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def _in_order(work: Callable[[int], T], n: int, threads: int) -> Iterator[T]:
    """``work(0) … work(n - 1)`` in order, computed by ``threads`` threads that run ahead
    of the caller by ``threads`` items at most (so at most ``threads + 1`` are held)."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="loupe-generate") as pool:
        ahead = deque(pool.submit(work, i) for i in range(min(threads, n)))
        for i in range(n):
            current = ahead.popleft().result()
            if i + threads < n:
                ahead.append(pool.submit(work, i + threads))
            yield current
            del current


def _open(out: Path, name: str, seed: int) -> SourceFile:
    source, header, encoding, kinds = CSV_FILES[name]
    return SourceFile(
        out, name, source, header.split(","), encoding, dict(kinds),
        duplicates=name not in CLEAN_FILES, multiline=name in MULTILINE_FILES, seed=seed,
    )  # fmt: skip


def generate_company(
    out: str | Path,
    customers: int = 20_000,
    seed: int = 0,
    progress: Progress | None = None,
) -> GenerateReport:
    """Generate the synthetic bilingual omni-channel retailer with its ground truth.

    Parameters
    ----------
    out
        Folder to write into (created if missing); ``truth/`` goes inside it.
    customers
        Number of persons (1M gives about 10M orders and 50M events).
    seed
        Random seed; the same ``(customers, seed)`` writes byte-identical files.
    progress
        Called as ``progress(step, done, total)`` after each file or chunk is written.

    Returns
    -------
    GenerateReport
        Rows written per file, planted malformed rows and person records.
    """
    if customers < 1:
        raise LoupeError(
            f"customers must be at least 1, got {customers}", fix="pass --customers 1000 or more"
        )
    out = Path(out)
    try:
        (out / "truth").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LoupeError(f"cannot create the output folder: {exc}", where=str(out)) from exc
    n_blocks = -(-customers // BLOCK)
    total = 3 + n_blocks + len(cat.MONTHS) + 4 + 1
    done = 0

    def step(name: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(name, done, total)

    p = make_people(customers, seed)
    prod = make_products(seed)
    arms = campaign_arms(p, seed)
    files = {name: _open(out, name, seed) for name in CSV_FILES}
    rows: dict[str, int] = {}
    write_crm(p, files["crm_customers.csv"], seed)
    step("crm_customers.csv")
    write_accounts(p, files["eshop_accounts.csv"], seed)
    step("eshop_accounts.csv")
    write_members(p, files["pos_members.csv.gz"], seed)
    step("pos_members.csv.gz")

    order_files = {
        "eshop_orders": files["eshop_orders.csv"],
        "eshop_order_lines": files["eshop_order_lines.csv"],
        "pos_transactions": files["pos_transactions.csv"],
        "pos_lines": files["pos_lines.csv"],
    }
    parts: dict[str, list[np.ndarray]] = {k: [] for k in OnlineOrders.__dataclass_fields__}
    seeds = extras.ReviewSeeds()
    n_online = np.zeros(customers, dtype=np.int64)
    n_store = np.zeros(customers, dtype=np.int64)
    offset = 0

    def block_orders(b: int) -> tuple[Orders, dict[str, Prepared | None]]:
        o = make_orders(p, prod, b, seed, arms)
        return o, prepare_orders(p, prod, o, order_files, b, seed)

    # The next blocks (as many as event months run side by side) are drawn and formatted in
    # threads while this one is written and added up: each block has its own seeded
    # generators and chunk numbers, so the files are the same as one block after another
    # (the orders took 12.6 s of 45.6 s at 200k customers on one core, two-thirds of it
    # drawing and formatting).
    for b, (o, prepared) in enumerate(_in_order(block_orders, n_blocks, _event_threads())):
        for key, chunk in prepared.items():
            order_files[key].commit(chunk)
        on = np.flatnonzero(o.platform < 2)
        n_online += np.bincount(o.person[on], minlength=customers)
        n_store += np.bincount(o.person[o.platform == 2], minlength=customers)
        pos = np.full(len(o), -1, dtype=np.int64)
        pos[on] = np.arange(len(on)) + offset
        ln = np.flatnonzero(o.platform[o.line_order] < 2)
        for k, v in (
            ("person", o.person[on]), ("time", o.time[on]), ("platform", o.platform[on]),
            ("number", o.number[on]), ("total", o.total[on]), ("currency", o.currency[on]),
            ("campaign", o.coupon[on] - 1), ("line_order", pos[o.line_order[ln]]),
            ("line_sku", o.line_sku[ln]), ("line_qty", o.line_qty[ln]),
            ("line_price", o.line_price[ln]),
        ):  # fmt: skip
            parts[k].append(v)
        offset += len(on)
        seeds.add(o, rng_for(seed, 63, b))
        step(f"orders block {b + 1}/{n_blocks}")
    online = OnlineOrders(**{k: np.concatenate(v) for k, v in parts.items()})
    online.campaign[online.campaign < -1] = -1
    del parts

    clicks = np.zeros(((cat.END - cat.START) // 86400, len(cat.CHANNELS)), dtype=np.int64)
    identified: dict[str, list[np.ndarray]] = {"web": [], "app": []}
    event_files: list[SourceFile] = []

    def month_events(month: int) -> tuple[dict[str, SourceFile], np.ndarray, dict[str, Any]]:
        """Write one month's event files; its clicks and identified persons come back to be
        added up, so months share no state and may run side by side."""
        y, m = cat.MONTHS[month]
        month_files = {
            src: SourceFile(
                out,
                f"{src}_events_{y}-{m:02d}.jsonl",
                src,
                None,
                "utf-8",
                {"broken_json": None},
                seed=seed,
            )
            for src in ("web", "app")
        }
        month_clicks = np.zeros_like(clicks)
        month_identified: dict[str, list[np.ndarray]] = {"web": [], "app": []}
        write_month(p, prod, online, month, seed, month_files, month_clicks, month_identified)
        for f in month_files.values():
            f.close()
        return month_files, month_clicks, month_identified

    # Months run in threads: each draws from its own seeded generator and writes its own
    # files, so the output is byte-identical to one month after another, and most of the
    # work (Arrow string kernels, NumPy on large arrays, file writes) releases the GIL.
    pool = ThreadPoolExecutor(max_workers=_event_threads())
    try:
        results = pool.map(month_events, range(len(cat.MONTHS)))
        for (y, m), (month_files, month_clicks, month_identified) in zip(
            cat.MONTHS, results, strict=True
        ):
            clicks += month_clicks
            for src, persons in month_identified.items():
                identified[src] += persons
            event_files += month_files.values()
            step(f"events {y}-{m:02d}")
    finally:  # on an error or Ctrl-C, months not yet started are not written
        pool.shutdown(wait=True, cancel_futures=True)

    extras.write_products(prod, files["products.csv"])
    step("products.csv")
    sends = [int(t.sum()) for _, t in arms]
    spend_rows = extras.write_spend(clicks, sends, out / SPEND_FILE, seed)
    step(SPEND_FILE)
    extras.write_consents(p, files["consents.csv"], seed)
    step("consents.csv")
    extras.write_reviews(p, prod, seeds, files["reviews.csv"], seed)
    step("reviews.csv")
    for f in files.values():
        f.close()

    all_files = [*files.values(), *event_files]
    rows = {f.name: f.data_rows for f in all_files}
    rows[SPEND_FILE] = spend_rows
    t_out = out / "truth"
    contacts = [files[n] for n in ("crm_customers.csv", "eshop_accounts.csv", "pos_members.csv.gz")]
    records = truth.write_records(p, t_out, contacts, identified)
    bad = truth.write_bad_rows(t_out, all_files)
    truth.write_people(p, t_out, n_online, n_store)
    truth.write_campaigns(p, t_out, arms)
    counts = {"customers": customers, "records": records, "bad_rows": bad, "files": rows}
    truth.write_params(t_out, seed, counts)
    step("truth")
    return GenerateReport(out=out, customers=customers, files=rows, bad_rows=bad, records=records)
