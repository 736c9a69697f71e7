"""One synthetic company per test process, shared by the recovery tests of profile and
segments (generating and resolving it takes about half a minute), with its planted truth
mapped onto resolved customers."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

import pandas as pd

from loupe.config import load_settings
from loupe.pipeline import run_pipeline
from loupe.profile import build_profile
from loupe.warehouse import Warehouse
from tests.test_pipeline import make_project

CUSTOMERS = 1_000
SEED = 7


@cache
def company(customers: int = CUSTOMERS) -> tuple[Path, Warehouse, pd.DataFrame]:
    """``(root, warehouse, truth)``: the profile is built; ``truth`` has one row per customer
    (``customer_id`` plus the majority person's row of ``truth/people.csv``).  One company per
    size and process."""
    root = Path(tempfile.mkdtemp(prefix="loupe-company-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    make_project(root, customers, seed=SEED)
    toml = root / "loupe.toml"
    # deterministic links are enough here and keep the fixture fast
    toml.write_text(toml.read_text().replace("probabilistic = true", "probabilistic = false"))
    wh = Warehouse.open(load_settings(root))
    run_pipeline(wh, ["ingest", "quality", "identity"])
    build_profile(wh)
    return root, wh, truth_by_customer(root, wh)


def truth_by_customer(root: Path, wh: Warehouse) -> pd.DataFrame:
    """The majority person of each customer's records, with that person's planted truth."""
    links = wh.to_pandas(wh.table("identity_links").filter(lambda t: t.id_type == "record"))
    records = pd.read_csv(root / "data" / "truth" / "records.csv", dtype=str)
    records["id_value"] = records["source"] + ":" + records["source_key"]
    both = links.merge(records, on="id_value")
    counts = both.groupby(["customer_id", "person_id"]).size().reset_index(name="n")
    counts = counts.sort_values(["customer_id", "n", "person_id"])
    majority = counts.drop_duplicates("customer_id", keep="last")
    people = pd.read_csv(root / "data" / "truth" / "people.csv", dtype={"person_id": str})
    people["churn_date"] = pd.to_datetime(people["churn_date"])
    return majority[["customer_id", "person_id"]].merge(people, on="person_id")
