"""Writing a generated spreadsheet (``.xlsx``) with openpyxl, the same bytes for the same rows.

openpyxl stamps a workbook with the time it is saved, twice: in its document properties and
in the date of every member of the zip archive.  The generator promises the same files for
the same seed, so both are set to one fixed time here.  The rows are written in openpyxl's
write-only mode (a row at a time, not a sheet held in memory); the generated workbook is a
marketing team's few thousand rows, whatever the number of customers.
"""

from __future__ import annotations

import datetime
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: The time written into the workbook: the earliest a zip archive can hold.
FIXED_TIME = datetime.datetime(1980, 1, 1)


class _FixedTimeZip(zipfile.ZipFile):
    """A zip archive whose members all carry :data:`FIXED_TIME`, whether added from text
    (``writestr``) or from a file on disk (``write``: openpyxl's write-only sheets)."""

    def _member(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=FIXED_TIME.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        return info

    def writestr(  # type: ignore[override]
        self, zinfo_or_arcname: str | zipfile.ZipInfo, data: str | bytes, *args: Any, **kw: Any
    ) -> None:
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            zinfo_or_arcname = self._member(zinfo_or_arcname)
        super().writestr(zinfo_or_arcname, data, *args, **kw)

    def write(self, filename: Any, arcname: Any = None, *args: Any, **kw: Any) -> None:
        name = str(arcname if arcname is not None else filename)
        self.writestr(self._member(name), Path(filename).read_bytes())


def write(path: Path, sheets: Mapping[str, Iterable[list[Any]]]) -> None:
    """Write ``sheets`` (name to rows, in order) as an ``.xlsx`` workbook at ``path``.

    Cells keep their Python types: numbers are numbers, a ``datetime.date`` a date cell
    (shown ``yyyy-mm-dd``); an empty row is a blank row.
    """
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    book = Workbook(write_only=True)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.properties.created = book.properties.modified = FIXED_TIME
    with _FixedTimeZip(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(book, archive).write_data()
