"""Writing source files chunk by chunk, planting exact duplicates and malformed rows.

A :class:`SourceFile` knows its header, encoding and which malformed kinds it receives; it
keeps the line count so that every planted row gets an exact ``<file>:<line>`` location.
A file whose name ends in ``.gz`` is written gzip-compressed, with no name and no time in
its gzip header, so the same seed still writes the same bytes.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loupe.synth import catalog as cat
from loupe.synth import text
from loupe.synth.people import rng_for

BadKind = Literal["wrong_column_count", "bad_date", "negative_quantity", "broken_json"]
MIN_BAD_PER_KIND = 3
BAD_DATES = ("2024-13-45", "not a date", "2025-02-30 25:61:00", "32/13/2024", "N/A")


@dataclass
class SourceFile:
    """One output file.

    Parameters
    ----------
    kinds
        Malformed kinds planted in this file; ``bad_date`` and ``negative_quantity`` name the
        column they corrupt.
    duplicates
        Whether exact duplicate lines are planted.
    multiline
        Whether a row's quoted values may hold line breaks, so that it spans lines (its
        location is its first line).
    """

    out: Path
    name: str
    source: str
    header: list[str] | None  # None for JSONL
    encoding: str = "utf-8"
    kinds: dict[str, int | None] = field(default_factory=dict)
    duplicates: bool = True
    multiline: bool = False
    seed: int = 0
    lines: int = 0  # lines written so far (header included)
    rows: int = 0  # rows written so far (planted duplicates included)
    chunks: int = 0  # number of the next chunk
    bad: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (kind, line numbers)
    keys: list[tuple[pa.Array, np.ndarray]] = field(default_factory=list)  # well-formed records

    def __post_init__(self) -> None:
        self.path = self.out / self.name
        self._raw = self.path.open("wb")
        self._fh: BinaryIO | gzip.GzipFile = self._raw
        if self.name.endswith(".gz"):  # gzip's own level, not Python's 9: 0.26 s per 5 MB, not 0.38
            self._fh = gzip.GzipFile("", "wb", compresslevel=6, fileobj=self._raw, mtime=0)
        if self.header is not None:
            self._write_bytes(",".join(self.header).encode(self.encoding) + b"\n")
            self.lines = 1

    @property
    def data_rows(self) -> int:
        return self.rows

    def _write_bytes(self, data: bytes | pa.Buffer) -> None:
        self._fh.write(data)

    def close(self) -> None:
        self._fh.close()
        self._raw.close()  # a GzipFile leaves the file it was given open

    def write(
        self,
        columns: list[pa.Array] | None = None,
        *,
        lines: pa.Array | None = None,
        keys: pa.Array | None = None,
        persons: np.ndarray | None = None,
        protect: np.ndarray | None = None,
    ) -> None:
        """Write one chunk of rows given as CSV field columns or ready-made lines.

        ``keys`` are the record keys of the rows (collected for ``truth/records.csv`` unless the
        row is made malformed); ``protect`` marks rows that must stay well-formed.
        """
        self.commit(
            self.prepare(
                self.chunks, columns, lines=lines, keys=keys, persons=persons, protect=protect
            )
        )

    def prepare(
        self,
        chunk: int,
        columns: list[pa.Array] | None = None,
        *,
        lines: pa.Array | None = None,
        keys: pa.Array | None = None,
        persons: np.ndarray | None = None,
        protect: np.ndarray | None = None,
    ) -> Prepared | None:
        """Chunk number ``chunk`` made ready to write (None when it has no rows): its planted
        rows chosen and its lines encoded.  It reads nothing that :meth:`commit` changes, so
        the chunks of one file may be prepared in threads and committed in order."""
        if lines is None:
            assert columns is not None
            lines = text.join(columns, ",")
        n = len(lines)
        if n == 0:
            return None
        # Seeded by the name without ".gz": compressing a file does not change its rows.
        rng = rng_for(self.seed, 50, zlib.crc32(self.name.removesuffix(".gz").encode()), chunk)
        free = np.ones(n, dtype=bool) if protect is None else ~np.asarray(protect, dtype=bool)
        kind_of = np.full(n, -1, dtype=np.int64)
        kind_names = list(self.kinds)
        for k in range(len(kind_names)):
            want = int(n * cat.SHARE_DIRT["malformed_row"]) + (
                MIN_BAD_PER_KIND if chunk == 0 else 0
            )
            cand = np.flatnonzero(free & (kind_of < 0))
            chosen = rng.choice(cand, size=min(want, len(cand)), replace=False)
            kind_of[chosen] = k
        for k, kind in enumerate(kind_names):
            rows = np.flatnonzero(kind_of == k)
            if not len(rows):
                continue
            at, m, col = pa.array(rows), len(rows), self.kinds[kind]
            if kind == "broken_json":
                sub_lines = lines.take(at)
                cut = rng.random(m) < 0.5
                new = text.where(cut, _prefix(sub_lines, 40), _prefix(sub_lines, 90))
            else:
                assert columns is not None
                sub = [c.take(at) for c in columns]
                if kind == "bad_date":
                    assert col is not None
                    sub[col] = text.lookup(text.strings(BAD_DATES), rng.integers(0, 5, m))
                    new = text.join(sub, ",")
                elif kind == "negative_quantity":
                    assert col is not None
                    sub[col] = text.join(["-", sub[col]])
                    new = text.join(sub, ",")
                else:  # wrong_column_count: an extra field or the last one dropped
                    extra = rng.random(m) < 0.5
                    new = text.where(
                        extra, text.join([*sub, "EXTRA"], ","), text.join(sub[:-1], ",")
                    )
            lines = pc.replace_with_mask(lines, pa.array(kind_of == k), new)
        spans = np.ones(n, dtype=np.int64)
        if self.multiline:
            spans += pc.count_substring(lines, "\n").to_numpy(zero_copy_only=False)
        counts = np.ones(n, dtype=np.int64)
        if self.duplicates:
            dup = (kind_of < 0) & (rng.random(n) < cat.SHARE_DIRT["exact_duplicate_row"])
            counts[dup] = 2
        kept = None
        if keys is not None and persons is not None:
            good = kind_of < 0
            kept = (keys.filter(pa.array(good)), np.asarray(persons)[good])
        if self.duplicates:
            lines = lines.take(pa.array(np.repeat(np.arange(n), counts)))
        data: bytes | pa.Buffer = text.lines_to_bytes(lines)
        if self.encoding != "utf-8":
            data = bytes(data).decode("utf-8").encode(self.encoding)
        return Prepared(chunk, data, counts, spans, kind_of, kept)

    def commit(self, chunk: Prepared | None) -> None:
        """Write a chunk :meth:`prepare` made, numbering its lines after those written."""
        if chunk is None:
            return
        if chunk.chunk < self.chunks:  # a chunk number seeds its planting: one use each
            raise ValueError(f"{self.name}: chunk {chunk.chunk} committed after {self.chunks - 1}")
        taken = chunk.counts * chunk.spans  # lines of each row, its duplicate included
        line_of_row = self.lines + 1 + np.cumsum(taken) - taken
        for k, kind in enumerate(self.kinds):
            self.bad.append((kind, line_of_row[chunk.kind_of == k]))
        if chunk.keys is not None:
            self.keys.append(chunk.keys)
        self._write_bytes(chunk.data)
        self.lines += int(taken.sum())
        self.rows += int(chunk.counts.sum())
        self.chunks = chunk.chunk + 1


@dataclass(frozen=True)
class Prepared:
    """One chunk of a :class:`SourceFile`, ready to write.

    Attributes
    ----------
    chunk
        Its number in the file (it seeds the planting, so the file is the same however the
        chunks were prepared).
    data
        The encoded lines, planted duplicates included.
    counts
        Copies written of each row (2 for a planted duplicate).
    spans
        Lines each copy takes (more than one when a quoted value holds line breaks).
    kind_of
        Index of the malformed kind planted in each row (-1: well-formed).
    keys
        Record keys and persons of the well-formed rows, when given.
    """

    chunk: int
    data: bytes | pa.Buffer
    counts: np.ndarray
    spans: np.ndarray
    kind_of: np.ndarray
    keys: tuple[pa.Array, np.ndarray] | None


def _prefix(lines: pa.Array, length: int) -> pa.Array:
    return pc.utf8_slice_codeunits(lines, 0, length)


def bad_rows_table(files: list[SourceFile]) -> pa.Table:
    """``source, location, kind`` for every planted malformed row, by file and line."""
    parts = []
    for f in files:
        for kind, lines in f.bad:
            if len(lines):
                parts.append((f.source, f.name, kind, lines))
    parts.sort(key=lambda x: x[1])
    empty = np.zeros(0, dtype=np.int64)
    names = np.concatenate([np.full(len(x[3]), i) for i, x in enumerate(parts)] or [empty])
    lines = np.concatenate([x[3] for x in parts] or [empty]).astype(np.int64)
    file_rank = np.unique([x[1] for x in parts], return_inverse=True)[1] if parts else np.array([])
    order = np.lexsort((lines, file_rank[names.astype(np.int64)] if len(names) else names))
    names, lines = names[order].astype(np.int64), lines[order]
    src = text.lookup(text.strings([x[0] for x in parts]), names)
    fname = text.lookup(text.strings([x[1] for x in parts]), names)
    kind = text.lookup(text.strings([x[2] for x in parts]), names)
    loc = text.join([fname, text.num(lines)], ":")
    return pa.table({"source": src, "location": loc, "kind": kind})
