"""Project scaffolding: the commented ``loupe.toml`` that ``loupe init`` writes, and the
source declarations of the synthetic company used by ``loupe demo``.
"""

from __future__ import annotations

from pathlib import Path

from loupe.config import CONFIG_NAME, parse_settings
from loupe.errors import ConfigError

HEADER = """\
# loupe.toml: one project = one warehouse + the sources that feed it.
# Paths are relative to this folder.  Validate with `loupe sources` (lists what is declared).

[project]
name = "{name}"
timezone = "Asia/Shanghai"     # zone of timestamps written without an offset
base_currency = "CNY"          # amounts are converted to this currency by `loupe quality`
default_region = "CN"          # phone numbers without a country code are read in this region

[warehouse]
backend = "duckdb"             # "duckdb" (embedded, default) or "pyspark" (local or cluster)
path = "loupe.duckdb"          # DuckDB file
# spark_master = "local[2]"    # PySpark: master URL; tables are Parquet under spark_dir
# spark_dir = "spark"

[currency_rates]               # units of base currency per unit of each other currency
USD = 7.1
HKD = 0.91

[quality]
outlier_threshold = 5.0        # robust z-score (median/MAD) above which a value is flagged
order_total_tolerance = 0.02   # order amount vs sum of its lines, relative
freshness_days = 2             # a table whose newest row is older is flagged stale

[identity]
# An identifier carried by more distinct records than this is "shared" and does not link.
max_records_per_identifier = {{ email = 5, phone = 5, anonymous_id = 1, user_id = 10 }}
source_priority = [{priority}]   # most trusted first
probabilistic = true           # Splink matching on name, birth date, city, gender
match_threshold = 0.99         # link pairs whose match probability is at least this
# customers_from_orders = true  # orders-only projects: a customer per order user id / e-mail / phone
"""

EXAMPLE_SOURCES = """
# Each [[sources]] maps one file (or glob), table or event stream onto a canonical table.
# [sources.columns] is canonical column = source column; [sources.constants] fixes a value.
# formats: csv, tsv, excel (a sheet: `sheet`, `header_row`), jsonl (keys or a.b paths),
# parquet, sql (an Ibis URL + table), segment (Segment JSON lines). .gz/.bz2/.xz files are
# read decompressed.

# [[sources]]
# name = "crm"
# table = "contacts"
# format = "csv"
# path = "data/crm_customers.csv"
# encoding = "utf-8"           # or gbk, gb18030 …
# delimiter = ";"              # a European Excel export; then often also:
# decimal = ","                # 1.234,50 (csv/tsv)
# date_order = "dmy"           # 05.03.2024 is 5 March ("mdy": 3 May); ISO dates read either way
# [sources.columns]
# source_key = "crm_id"
# email = "email"
# phone = "mobile"
# name = "name"
# signup_at = "registered_at"

# [[sources]]
# name = "web"
# format = "segment"           # events; identify traits also become contact profiles
# path = "data/web_events_*.jsonl"

# [[sources]]
# name = "erp_orders"
# table = "orders"
# format = "sql"
# connection = "postgres://user:password@localhost:5432/erp"
# sql_table = "orders"
# [sources.columns]
# order_id = "id"
# ordered_at = "created_at"
# amount = "total"
"""


def demo_sources(data: str = "data") -> str:
    """``[[sources]]`` for the files ``loupe generate`` writes into folder ``data``."""
    d = data.rstrip("/")
    return f"""
[[sources]]
name = "crm"
table = "contacts"
format = "csv"
path = "{d}/crm_customers.csv"
[sources.columns]
source_key = "crm_id"
name = "name"
gender = "gender"
birth_date = "birth_date"
email = "email"
phone = "mobile"
city = "city"
region = "province"
country = "country"
signup_at = "registered_at"
updated_at = "updated_at"

[[sources]]
name = "eshop_accounts"
table = "contacts"
format = "csv"
path = "{d}/eshop_accounts.csv"
[sources.columns]
source_key = "account_id"
user_id = "account_id"
email = "email"
phone = "phone"
name = "real_name"
gender = "gender"
birth_date = "birthday"
city = "city"
signup_at = "created_at"
updated_at = "last_login_at"

[[sources]]
name = "pos_members"
table = "contacts"
format = "csv"
encoding = "gbk"
path = "{d}/pos_members.csv.gz"     # gzipped: read through a decompressor
[sources.columns]
source_key = "会员卡号"
phone = "手机号"
name = "姓名"
gender = "性别"
birth_date = "生日"
signup_at = "开卡时间"
[sources.constants]
country = "CN"

[[sources]]
name = "web"
format = "segment"
path = "{d}/web_events_*.jsonl"

[[sources]]
name = "app"
format = "segment"
path = "{d}/app_events_*.jsonl"

[[sources]]
name = "eshop_orders"
table = "orders"
format = "csv"
path = "{d}/eshop_orders.csv"
contact_source = "eshop_accounts"
[sources.columns]
order_id = "order_no"
source_key = "account_id"
user_id = "account_id"
email = "email"
phone = "phone"
ordered_at = "order_time"
amount = "total_amount"
currency = "currency"
coupon_code = "coupon_code"
discount = "discount_amount"
channel = "platform"
status = "status"

[[sources]]
name = "eshop_order_lines"
table = "order_items"
format = "csv"
path = "{d}/eshop_order_lines.csv"
[sources.columns]
order_id = "order_no"
line_no = "line_no"
product_id = "sku"
quantity = "qty"
unit_price = "unit_price"
discount = "line_discount"

[[sources]]
name = "pos_transactions"
table = "orders"
format = "csv"
encoding = "gbk"
path = "{d}/pos_transactions.csv"
contact_source = "pos_members"
[sources.columns]
order_id = "小票号"
store_id = "门店编号"
source_key = "会员卡号"
phone = "手机号"
ordered_at = "交易时间"
amount = "金额"
currency = "币种"
[sources.constants]
channel = "store"
status = "completed"

[[sources]]
name = "pos_lines"
table = "order_items"
format = "csv"
encoding = "gbk"
path = "{d}/pos_lines.csv"
[sources.columns]
order_id = "小票号"
line_no = "行号"
product_id = "商品编码"
quantity = "数量"
unit_price = "单价"
discount = "折扣"

[[sources]]
name = "products"
table = "products"
format = "csv"
path = "{d}/products.csv"
[sources.columns]
product_id = "sku"
name = "name"
name_en = "name_en"
category = "category"
brand = "brand"
price = "price"
currency = "currency"

[[sources]]
name = "marketing_spend"
table = "marketing_spend"
format = "excel"
path = "{d}/marketing_spend.xlsx"
sheet = "每日明细"               # the daily rows; the first sheet is a summary
header_row = 3                 # a title and a blank row come first
[sources.columns]
date = "date"
channel = "channel"
campaign = "campaign"
spend = "spend"
impressions = "impressions"
clicks = "clicks"
currency = "currency"

[[sources]]
name = "consents"
table = "consents"
format = "csv"
path = "{d}/consents.csv"
[sources.columns]
identifier = "identifier"
identifier_type = "identifier_type"
purpose = "purpose"
granted = "granted"
ts = "ts"
origin = "source"

[[sources]]
name = "reviews"
table = "feedback"
format = "csv"
path = "{d}/reviews.csv"
contact_source = "eshop_accounts"
[sources.columns]
feedback_id = "review_id"
source_key = "account_id"
user_id = "account_id"
phone = "phone"
product_id = "sku"
rating = "rating"
text = "text"
lang = "lang"
ts = "created_at"
channel = "channel"
"""


DEMO_PRIORITY = '"crm", "eshop_accounts", "pos_members", "app", "web"'


def example_toml(name: str) -> str:
    return HEADER.format(name=name, priority="") + EXAMPLE_SOURCES


def demo_toml(name: str, data: str = "data") -> str:
    return HEADER.format(name=name, priority=DEMO_PRIORITY) + demo_sources(data)


def write_config(folder: Path, text: str, *, force: bool = False) -> Path:
    """Write ``loupe.toml`` in ``folder`` after checking that it validates."""
    import tomllib

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_NAME
    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists",
            where=str(path),
            fix="edit it, or pass --force to overwrite it",
        )
    parse_settings(tomllib.loads(text), folder, str(path))
    path.write_text(text, encoding="utf-8")
    return path
