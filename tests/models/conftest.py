"""Fixtures of the CLV model tests: the CDNOW sample read from tests/data (never /work/shared)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pandas as pd
import pytest

from loupe.models import (
    SummarySpec,
    calibration_holdout_summary,
    execute_summary,
    read_transactions_file,
)

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow" / "CDNOW_sample.txt"
CAL_END = dt.date(1997, 9, 30)
HOLDOUT_END = dt.date(1998, 6, 30)


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    """Calibration/holdout summary of CDNOW built from the raw purchases (weeks = days / 7)."""
    con = ibis.duckdb.connect()
    table = read_transactions_file(
        con,
        CDNOW,
        customer_col="col2",
        date_col="col3",
        amount_col="col5",
        sep="whitespace",
        header=False,
        date_format="%Y%m%d",
    )
    spec = SummarySpec(
        calibration_end=CAL_END,
        customer_col="customer_id",
        date_col="ordered_at",
        amount_col="amount",
        time_unit="week",
        holdout_end=HOLDOUT_END,
    )
    return execute_summary(con, calibration_holdout_summary(table, spec))
