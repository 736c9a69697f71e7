"""Quality: standardisation, deduplication, flags and the quality report.

Reads only ``raw_<table>``; publishes the canonical tables (``contacts``, ``orders`` …) that
every later stage reads, plus ``quality_metrics``.

>>> from loupe.quality import normalise_phone
>>> normalise_phone("0086 138-0013-8000", "CN")
'+8613800138000'
"""

from loupe.quality.report import ColumnQuality, QualityReport, TableQuality
from loupe.quality.stage import run_quality
from loupe.quality.standardise import (
    normalise_email,
    normalise_gender,
    normalise_phone,
    parse_date,
)

__all__ = [
    "ColumnQuality",
    "QualityReport",
    "TableQuality",
    "normalise_email",
    "normalise_gender",
    "normalise_phone",
    "parse_date",
    "run_quality",
]
