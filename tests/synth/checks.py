"""An independent, row-by-row reader of the generated files (slow on purpose, tests only)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from datetime import datetime
from pathlib import Path

HEADERS = {
    "crm_customers.csv": "crm_id,name,gender,birth_date,email,mobile,city,province,country,member_level,registered_at,updated_at",
    "eshop_accounts.csv": "account_id,email,phone,nickname,real_name,gender,birthday,city,created_at,last_login_at",
    "eshop_orders.csv": "order_no,account_id,email,phone,order_time,total_amount,currency,coupon_code,discount_amount,platform,ship_city,status",
    "eshop_order_lines.csv": "order_no,line_no,sku,qty,unit_price,line_discount",
    "pos_members.csv.gz": "会员卡号,手机号,姓名,性别,生日,开卡门店,开卡时间",
    "pos_transactions.csv": "小票号,门店编号,门店名称,会员卡号,手机号,交易时间,金额,币种,支付方式",
    "pos_lines.csv": "小票号,行号,商品编码,数量,单价,折扣",
    "products.csv": "sku,name,name_en,category,brand,price,currency",
    "consents.csv": "identifier,identifier_type,purpose,granted,ts,source",
    "reviews.csv": "review_id,account_id,phone,sku,rating,text,lang,created_at,channel",
}
GBK = {"pos_members.csv.gz", "pos_transactions.csv", "pos_lines.csv"}
SOURCE = {
    "crm_customers.csv": "crm",
    "eshop_accounts.csv": "eshop_accounts",
    "eshop_orders.csv": "eshop_orders",
    "eshop_order_lines.csv": "eshop_order_lines",
    "pos_members.csv.gz": "pos_members",
    "pos_transactions.csv": "pos_transactions",
    "pos_lines.csv": "pos_lines",
}
REQUIRED_TS = {
    "crm_customers.csv": ["registered_at"],
    "eshop_accounts.csv": ["created_at"],
    "eshop_orders.csv": ["order_time"],
    "pos_members.csv.gz": ["开卡时间"],
    "pos_transactions.csv": ["交易时间"],
}
OPTIONAL_TS = {
    "crm_customers.csv": ["updated_at"],
    "eshop_accounts.csv": ["last_login_at"],
    "consents.csv": ["ts"],
    "reviews.csv": ["created_at"],
}
DATES = {
    "crm_customers.csv": ["birth_date"],
    "eshop_accounts.csv": ["birthday"],
    "pos_members.csv.gz": ["生日"],
}
QTY = {"eshop_order_lines.csv": "qty", "pos_lines.csv": "数量"}
NUMBERS = {
    "eshop_orders.csv": ["total_amount", "discount_amount"],
    "eshop_order_lines.csv": ["line_no", "unit_price", "line_discount"],
    "pos_transactions.csv": ["金额"],
    "pos_lines.csv": ["行号", "单价", "折扣"],
    "products.csv": ["price"],
    "reviews.csv": ["rating"],
}


def parse_ts(value: str) -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z",
                "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S.%f%z"):  # fmt: skip
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            pass
    return None


def parse_date(value: str) -> datetime | None:
    m = re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日", value)
    if m:
        value = "-".join(m.groups())
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            pass
    return None


def read_bytes(path: Path) -> bytes:
    """A file's bytes, decompressed when its name ends in ``.gz``."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def read_lines(path: Path) -> list[str]:
    raw = read_bytes(path)
    assert raw.endswith(b"\n"), path
    text = raw.decode("gbk" if path.name in GBK else "utf-8")
    lines = text.split("\n")[:-1]
    assert all(line for line in lines), f"blank line in {path.name}"
    return lines


def read_records(path: Path) -> list[tuple[int, list[str]]]:
    """(first line, fields) of every record of a CSV file, header included: a quoted value
    may hold a line break (the reviews' follow-ups), so a record may span lines."""
    text = "\n".join(read_lines(path)) + "\n"
    reader = csv.reader(io.StringIO(text, newline=""))
    records, line = [], 1
    for fields in reader:
        records.append((line, fields))
        line = reader.line_num + 1
    return records


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], set[tuple[str, str]]]:
    """Header, well-formed rows (line number, fields) and detected (location, kind) problems."""
    records = read_records(path)
    header = records[0][1]
    good, bad = [], set()
    col = {name: i for i, name in enumerate(header)}
    for ln, fields in records[1:]:
        loc = f"{path.name}:{ln}"
        if len(fields) != len(header):
            bad.add((loc, "wrong_column_count"))
            continue
        if any(parse_ts(fields[col[c]]) is None for c in REQUIRED_TS.get(path.name, [])):
            bad.add((loc, "bad_date"))
            continue
        if path.name in QTY and int(fields[col[QTY[path.name]]]) < 0:
            bad.add((loc, "negative_quantity"))
            continue
        for c in OPTIONAL_TS.get(path.name, []):
            assert fields[col[c]] == "" or parse_ts(fields[col[c]]), (loc, c)
        for c in DATES.get(path.name, []):
            assert fields[col[c]] == "" or parse_date(fields[col[c]]), (loc, c)
        for c in NUMBERS.get(path.name, []):
            float(fields[col[c]])
        if path.name in QTY:
            int(fields[col[QTY[path.name]]])
        good.append((ln, fields))
    return header, good, bad


def read_events(path: Path) -> tuple[list[dict], set[tuple[str, str]]]:
    good, bad = [], set()
    for ln, line in enumerate(read_lines(path), start=1):
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            bad.add((f"{path.name}:{ln}", "broken_json"))
    return good, bad


def norm_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    for prefix in ("0086", "86"):
        if len(digits) > 11 and digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits


def norm_email(value: str) -> str:
    return value.strip().lower()


def read_spend(
    path: Path,
) -> tuple[list[str], list[tuple[int, list[object]]], list[tuple[object, ...]]]:
    """Header, (row number, cells) of the daily sheet, and the summary sheet's rows, of the
    spend workbook, read by openpyxl (Loupe reads spreadsheets with python-calamine)."""
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["汇总", "每日明细"], book.sheetnames
    summary = list(book["汇总"].iter_rows(values_only=True))
    rows = list(book["每日明细"].iter_rows(values_only=True))
    book.close()
    assert str(rows[0][0]).startswith("营销投放花费") and not any(rows[1])
    header = [str(v) for v in rows[2]]
    return header, [(n, list(r)) for n, r in enumerate(rows[3:], start=4)], summary
