"""Bulk readers: files and SQL tables → Arrow batches of text columns with line numbers.

Why not DuckDB's own ``read_csv``: it gives line numbers only for rejected rows, needs a
downloaded extension for GBK, and the PySpark backend has to load the same files.  So files
are cut into blocks at line boundaries (NumPy over the bytes), each block is decoded
(UTF-8, GBK …) and parsed by PyArrow's C++ CSV parser, and every row keeps its physical
line number.  Rows with the wrong number of fields, and lines of a UTF-8 file that are not
UTF-8, come back separately, with their line and text, for the quarantine.  JSONL lines
become a single text column with zero copies; the JSON itself is parsed in the engine.  No
Python loop runs per row, except over the lines of a block that fails the UTF-8 check and
over the lines with an odd number of quotes, where a quoted CSV value may hold a line break
(:func:`_continued_lines`; such a record is read whole and located at its first line).
Files ending in ``.gz``, ``.bz2`` or ``.xz`` are read through a decompressor.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import datetime
import glob
import gzip
import hashlib
import io
import itertools
import json
import lzma
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from xml.etree import ElementTree

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from loupe.config import SourceSettings
from loupe.errors import SourceError
from loupe.warehouse import quiet_duckdb

BLOCK_BYTES = 64 << 20

#: The most lines one quoted CSV value may span (:func:`_continued_lines`).
MAX_RECORD_LINES = 1000

T = TypeVar("T")
_NOTHING: Any = object()


class Digest(Protocol):
    """A running content hash (a ``hashlib`` object)."""

    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


# Give freed Arrow buffers back to the system at once: blocks come and go by the hundred.
with contextlib.suppress(AttributeError, NotImplementedError, pa.ArrowNotImplementedError):
    pa.jemalloc_set_decay_ms(0)
LINE = "_line"


@dataclass
class Batch:
    """Rows read from one block of one file."""

    file: str
    rows: pa.Table
    """Text columns as in the source, plus ``_line`` (int64)."""
    invalid: list[tuple[int, str, str]] = field(default_factory=list)
    """(line, raw text, reason) of rows that could not be split into fields."""
    utf8: bool = False
    """Whether the block was read as UTF-8 though its source declares another encoding: its
    bytes are UTF-8 text (:func:`utf8_instead`)."""


def find_files(source: SourceSettings, root: Path) -> list[Path]:
    """Files matching the source's path or glob, sorted; a clear error when there are none."""
    assert source.path is not None
    pattern = source.path if Path(source.path).is_absolute() else str(root / source.path)
    files = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
    if not files:
        raise SourceError(
            f"Source {source.name!r}: no file matches {source.path!r}",
            where=pattern,
            fix="check [[sources]] path in loupe.toml (relative to the project folder)",
        )
    return files


@contextlib.contextmanager
def readable(source: SourceSettings, path: Path) -> Iterator[None]:
    """Turn a failure to read ``path`` into a :class:`SourceError` naming the source and the
    file: the file was removed or replaced after it was listed, cannot be read by this user,
    or (Parquet) is not a Parquet file."""
    try:
        yield
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise SourceError(
            f"Source {source.name!r}: cannot read {path.name}: {why}",
            where=str(path),
            fix="check that the file is there and readable, then run `loupe ingest` again "
            "(files already loaded whole are skipped, rows already loaded count as duplicates)",
        ) from None
    except (EOFError, lzma.LZMAError) as exc:  # a compressed file cut short or damaged
        raise SourceError(
            f"Source {source.name!r}: cannot read {path.name}: {exc}",
            where=str(path),
            fix="check the compressed file (gzip -t, xz -t …); it may be incomplete",
        ) from None
    except pa.ArrowInvalid as exc:
        raise SourceError(
            f"Source {source.name!r}: {path.name} is not a readable {source.format} file: {exc}",
            where=str(path),
            fix="check the file and the source's `format` in loupe.toml",
        ) from None


def guarded(source: SourceSettings, path: Path, batches: Iterator[Batch]) -> Iterator[Batch]:
    """``batches``, with a failure to read ``path`` while they are read made a
    :class:`SourceError` (see :func:`readable`)."""
    with readable(source, path):
        yield from batches


def new_digest() -> Digest:
    """The content hash behind a file's fingerprint (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(digest_size=16)


def fingerprint(path: Path) -> str:
    """Content hash of a file, so a re-run recognises files it has loaded.

    Line-based files (CSV, TSV, JSONL) that must be read anyway are hashed as they are read
    instead (``digest`` of :func:`read_csv` and :func:`read_lines`), with the same result.
    """
    h = new_digest()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


#: Compressed text files, by suffix: read as their content (``orders.csv.gz``).  Exports and
#: Segment's S3 copies are often gzipped.
#: (Each is opened and closed by :func:`_text_bytes`'s ``with``.)
_DECOMPRESS: dict[str, Callable[[Any], io.BufferedIOBase]] = {
    ".gz": lambda f: gzip.GzipFile(fileobj=f),
    ".bz2": lambda f: bz2.BZ2File(f),
    ".xz": lambda f: lzma.LZMAFile(f),  # noqa: SIM115
}


def compressed(path: Path) -> bool:
    """Whether ``path`` is read through a decompressor (by its suffix)."""
    return path.suffix.lower() in _DECOMPRESS


class _Hashing(io.RawIOBase):
    """A file whose bytes are fed to ``digest`` as they are read, so that a compressed file's
    fingerprint is that of its bytes on disk, as :func:`fingerprint` computes it."""

    def __init__(self, raw: io.BufferedIOBase, digest: Digest | None) -> None:
        self.raw, self.digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        if n and self.digest is not None:
            self.digest.update(memoryview(buffer)[:n])
        return n


@contextlib.contextmanager
def _text_bytes(path: Path, digest: Digest | None = None) -> Iterator[io.BufferedIOBase]:
    """The bytes of a text file's content: decompressed when its suffix says so."""
    with path.open("rb") as raw:
        if not compressed(path):
            yield raw
            return
        hashing = _Hashing(raw, digest)
        with _DECOMPRESS[path.suffix.lower()](hashing) as f:
            yield f
        if digest is not None:  # bytes after the compressed stream, if any
            while more := raw.read(BLOCK_BYTES):
                digest.update(more)


def _blocks(
    path: Path, digest: Digest | None = None, newline: bytes = b"\n"
) -> Iterator[tuple[int, memoryview | bytes]]:
    """(first line number, bytes) blocks of whole lines; ``digest``, when given, is fed every
    byte of the file once, in order, so it ends equal to :func:`fingerprint`'s hash.
    ``newline`` is the byte that ends a line (``\r`` in a classic Mac file: :func:`_newline`).

    A block ends at the last line break it read; the file is then sought back to the start
    of the partial line after it, which the next block reads again.  Carrying that line over
    instead (joining it to the next read, then cutting the block from the rest) copied every
    block twice: a quarter of the time of reading a JSONL file.
    """
    if compressed(path):
        yield from _decompressed_blocks(path, digest, newline)
        return
    line = 1
    with path.open("rb") as f:
        while chunk := f.read(BLOCK_BYTES):
            cut = chunk.rfind(newline)
            while cut < 0 and (more := f.read(BLOCK_BYTES)):  # a line longer than a block
                chunk += more
                cut = chunk.rfind(newline)
            if cut < 0:  # the last line, without a line break
                if digest is not None:
                    digest.update(chunk)
                yield line, chunk + newline
                return
            end = cut + 1
            if end < len(chunk):
                f.seek(end - len(chunk), io.SEEK_CUR)
            block = memoryview(chunk)[:end]
            if digest is not None:
                digest.update(block)
            yield line, block
            line += chunk.count(newline, 0, end)


def _decompressed_blocks(
    path: Path, digest: Digest | None, newline: bytes = b"\n"
) -> Iterator[tuple[int, memoryview | bytes]]:
    """:func:`_blocks` of a compressed file: a decompressing stream cannot seek back cheaply,
    so the partial line at the end of a block is carried into the next one (a copy, small
    beside the decompression)."""
    line, rest = 1, b""
    with _text_bytes(path, digest) as f:
        while chunk := f.read(BLOCK_BYTES):
            chunk = rest + chunk
            cut = chunk.rfind(newline)
            if cut < 0:  # a line longer than a block
                rest = chunk
                continue
            block, rest = chunk[: cut + 1], chunk[cut + 1 :]
            yield line, block
            line += block.count(newline)
    if rest:  # the last line, without a line break
        yield line, rest + newline


_UTF8_BOM = "\ufeff".encode()

#: Bytes looked at to tell how a text file ends its lines.
_NEWLINE_SNIFF = 1 << 20


def _newline(path: Path) -> bytes:
    """The byte that ends the lines of a delimited text file: ``\r`` for a classic Mac file
    (Excel's "CSV (Macintosh)", whose lines end in CR alone), otherwise ``\n``.  Decided by
    the file's first MB: CRs and no LF."""
    with _text_bytes(path) as f:
        head = f.read(_NEWLINE_SNIFF)
    return b"\r" if b"\r" in head and b"\n" not in head else b"\n"


def _line_spans(block: memoryview | bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without the newline or CR) offsets of each line."""
    arr = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    has_cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13)
    return starts, ends - has_cr


def reads_as_is(encoding: str) -> bool:
    """Whether a source's bytes are read as they are, not decoded: UTF-8, and ASCII (a subset
    of it, checked as such by :func:`_valid_text`)."""
    return _codec(encoding) in ("utf-8", "ascii")


def _decode(block: memoryview | bytes, encoding: str) -> tuple[memoryview | bytes, bool]:
    """``block`` as UTF-8, and whether it was UTF-8 already though ``encoding`` is another
    (:func:`utf8_instead`): then it is read as it is."""
    if reads_as_is(encoding):
        return block, False
    if utf8_instead(block):
        return block, True
    # Undecodable bytes become U+FFFD; the loader quarantines rows containing one.
    return codecs.decode(block, encoding, errors="replace").encode("utf-8"), False


def utf8_instead(data: memoryview | bytes) -> bool:
    """Whether bytes that their source declares in another encoding (GBK, Big5, cp1252 …)
    are UTF-8 text: valid UTF-8 with characters beyond ASCII, in two lines or more, or in one
    line where each is a Chinese character, a Western letter or sign, or a byte order mark.

    The case: a POS export declared GBK that its vendor, or a user saving it from Excel as
    "CSV UTF-8", turned into UTF-8.  Read as GBK, a UTF-8 Chinese name is other Chinese
    characters (张伟 becomes 寮犱紵), which load without a sign; only the lines where the
    bytes happen not to pair up were quarantined.  Text in those encodings is almost never
    valid UTF-8: of the 1,786 distinct Chinese names and store names of the demo's POS
    members, 5 are, each alone (郑伟, whose GBK bytes read in UTF-8 as Hebrew and Greek ``֣ΰ``),
    and none of its 1,933 lines.  So one value that is valid UTF-8 by chance is not enough:
    the characters must be in two lines, or make sense in one.  What is left: a one-line
    file whose only such text is a GBK name of characters whose bytes read as Latin letters
    (毛 as ``ë``) is read as UTF-8.  The opposite, a UTF-8 source whose file is GBK, is
    not read in GBK: which encoding a line that is not UTF-8 is in can only be guessed, so
    its lines are quarantined with the guess (:func:`reads_as`).

    Cost: Arrow's validator stops at the first byte that is not UTF-8; 7 ms for a 33 MB GBK
    block, against 141 ms to decode it.
    """
    if not len(data):
        return False
    arr = np.frombuffer(data, dtype=np.uint8)
    if int(arr.max()) < 0x80 or not _valid_text(data, "utf-8"):
        return False
    high = arr >= 0x80
    first, last = int(high.argmax()), len(arr) - 1 - int(high[::-1].argmax())
    span = bytes(data[first : last + 1])  # a lead byte to the last byte of a character
    if b"\n" in span:
        return True
    return all(_utf8_sense(c) for c in span.decode("utf-8") if ord(c) > 0x7F)


def _valid_text(data: memoryview | bytes, encoding: str) -> bool:
    """Whether ``data``, read as it is (:func:`reads_as_is`), is valid in ``encoding``.

    UTF-8 is checked by Arrow's validator (vectorised C++), ASCII by the largest byte.  Such
    a source is not decoded (the bytes go to PyArrow and the engine as they are), so an
    invalid byte would stop PyArrow's CSV parser, or DuckDB, with an error about the whole
    file, and a byte above 127 in an ASCII source would pass unseen; a block that fails this
    check has its broken lines quarantined instead (:func:`_broken_lines`).  Other encodings
    are decoded with replacement characters, which the loader quarantines.
    """
    if not len(data):
        return True
    if _codec(encoding) == "ascii":
        return int(np.frombuffer(data, dtype=np.uint8).max()) < 0x80
    offsets = pa.py_buffer(np.array([0, len(data)], np.int64))
    arr = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        arr.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _codec(encoding: str) -> str:
    return codecs.lookup(encoding).name


def _broken_lines(
    block: memoryview | bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    numbers: np.ndarray,
    keep: np.ndarray,
    encoding: str,
) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """``keep`` without the lines of ``block`` that are not valid in ``encoding`` (UTF-8 or
    ASCII), and those lines as (line, text read as UTF-8 with replacement characters, reason)
    for the quarantine.

    Only for a block that failed :func:`_valid_text`, so this loop over its lines runs on
    broken files alone.
    """
    view = memoryview(block)
    codec = _codec(encoding)
    invalid: list[tuple[int, str, str]] = []
    keep = keep.copy()
    for i in np.flatnonzero(keep).tolist():
        line = view[starts[i] : ends[i]]
        try:
            str(line, codec)
        except UnicodeDecodeError:
            keep[i] = False
            text = str(line, "utf-8", "replace")
            reason = f"bytes not valid {encoding}"
            guess = reads_as(bytes(line))
            invalid.append(
                (int(numbers[i]), text, f"{reason}: reads as {guess}" if guess else reason)
            )
    return keep, invalid


def reads_as(line: bytes) -> str | None:
    """The encoding a line that is not valid in its source's encoding reads plausibly in, of
    utf-8 (for an ascii source), gbk, cp1252, big5 and shift_jis, tried in that order; or
    None.

    Any bytes decode in some encoding, so a reading counts only when every character beyond
    ASCII is of the script the encoding is for: Chinese characters and punctuation for gbk
    (and every pair of bytes in GB2312's common zone, both bytes from 0xA1: Latin-1 text such
    as ``Müller`` also decodes as GBK, with a second byte below 0x80) and for big5; kana and
    kanji for shift_jis; Latin-1 letters and Western punctuation for cp1252 (Big5's first
    bytes read in cp1252 as signs such as ``¤`` and ``¥``, not letters).  One line can
    mislead (a UTF-8 character cut in two reads as one GBK character), so the quarantine hints
    at an encoding only when most of a source's undecodable rows agree
    (:mod:`loupe.ingest.quarantine`).  Korean EUC-KR text also reads as GBK.
    """
    for encoding, plausible in _READINGS:
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError:
            continue
        beyond = [c for c in text if ord(c) > 0x7F]
        if beyond and all(plausible(c) for c in beyond) and _zone_ok(encoding, line):
            return encoding
    return None


def _in(*ranges: tuple[int, int]) -> Callable[[str], bool]:
    return lambda c: any(lo <= ord(c) <= hi for lo, hi in ranges)


#: Chinese characters, CJK punctuation and full-width forms (not half-width katakana).
_CJK = ((0x4E00, 0x9FFF), (0x3000, 0x303F), (0xFF01, 0xFF5E), (0xFFE0, 0xFFE6))
#: Latin-1 letters (not × and ÷), and the signs and punctuation of Western text.
_LATIN = (
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0xFF),
    *((c, c) for c in (0xA0, 0xA3, 0xA9, 0xAE, 0xB0, 0x2022, 0x2026, 0x20AC, 0x2122)),
    (0x2013, 0x2014),
    (0x2018, 0x201E),
)
#: In this order: a UTF-8 character cut short before an ASCII byte (``\xc3V``) reads as
#: Big5 as well as Latin-1, and Big5 text reads as Shift JIS kanji; Shift JIS text does not
#: read as Big5 (its first bytes are below Big5's).
_READINGS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("utf-8", lambda c: True),  # for an ascii source
    ("gbk", _in(*_CJK)),
    ("cp1252", _in(*_LATIN)),
    ("big5", _in(*_CJK)),
    ("shift_jis", _in(*_CJK, (0x3040, 0x30FF))),
)


_utf8_sense = _in(*_CJK, *_LATIN, (0xFEFF, 0xFEFF))  # and a byte order mark


def _zone_ok(encoding: str, line: bytes) -> bool:
    """For gbk: every two-byte character has both bytes in 0xA1-0xFE (GB2312's zone)."""
    if encoding != "gbk":
        return True
    i, n = 0, len(line)
    while i < n:
        if line[i] < 0x80:
            i += 1
            continue
        if i + 1 >= n or line[i] < 0xA1 or line[i + 1] < 0xA1:
            return False
        i += 2
    return True


def _record_of(continued: np.ndarray) -> np.ndarray:
    """Each line's record in a CSV block: a line that does not continue one opens one."""
    return np.cumsum(~continued) - 1


def _by_record(
    block: memoryview | bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    numbers: np.ndarray,
    parsed: np.ndarray,
    continued: np.ndarray,
    ok: np.ndarray,
    broken: list[tuple[int, str, str]],
) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """:func:`_broken_lines`' result by record instead of by line, for a CSV block where
    quoted values span lines (``continued``): a record with a broken line loses all its
    lines, and is quarantined once, at its first line, with the text of all of them.
    (Line by line, such a record was quarantined once per broken line, at that line, and the
    text of its other lines was lost.)"""
    record = _record_of(continued)
    bad = parsed & np.isin(record, record[parsed & ~ok])
    why = {line: reason for line, _, reason in broken}
    view = memoryview(block)
    out: list[tuple[int, str, str]] = []
    for r in np.unique(record[bad]).tolist():
        lines = np.flatnonzero(bad & (record == r)).tolist()
        text = "\n".join(str(view[starts[i] : ends[i]], "utf-8", "replace") for i in lines)
        reason = next(why[int(numbers[i])] for i in lines if int(numbers[i]) in why)
        out.append((int(numbers[lines[0]]), text, reason))
    return ok & ~bad, out


def marking_last(items: Iterator[T]) -> Iterator[tuple[T, bool]]:
    """Each item, and whether it is the last: the next one is read before an item is given
    out."""
    current = next(items, _NOTHING)
    while current is not _NOTHING:
        after = next(items, _NOTHING)
        yield current, after is _NOTHING
        current = after


def _continued_lines(
    block: memoryview | bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    delimiter: str,
    last: bool,
    thorough: bool = False,
) -> tuple[np.ndarray, int, list[int], bool]:
    """Which lines of a CSV block continue a record begun on an earlier line (a quoted value
    holding a line break, as spreadsheets write notes and addresses); how many of the
    block's lines form whole records (a record still open at the end of a block that is not
    the file's last is left for the next block); the lines that open a quoted value never
    closed within :data:`MAX_RECORD_LINES` lines or by the end of the file; and whether the
    block holds a quote at all.

    Only a line with an odd number of quote characters can open such a record, unless it
    also holds a stray quote (``1,12" pizza,"a note…``); the odd lines are found by a
    vectorised count (most blocks have none), then read character by character as PyArrow
    reads them: a quote opens a value only at the start of a field (``12" pizza`` is text),
    and a doubled quote inside a value is one quote.  ``thorough`` reads every line with a
    quote that way, for a block whose rows did not align with its lines.
    """
    n = len(starts)
    continued = np.zeros(n, dtype=bool)
    quotes = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 34)
    if not len(quotes):
        return continued, n, [], False
    per_line = np.bincount(np.searchsorted(starts, quotes, side="right") - 1, minlength=n)
    view = memoryview(block)
    sep = ord(delimiter)
    unclosed: list[int] = []
    after = 0  # lines before this one are settled
    openers = per_line if thorough else per_line % 2
    for i in np.flatnonzero(openers).tolist():  # rare, so a loop
        if i < after or not _ends_quoted(view[starts[i] : ends[i]], sep, False):
            continue
        j = i + 1
        while j < n and j - i < MAX_RECORD_LINES:
            if not _ends_quoted(view[starts[j] : ends[j]], sep, True):
                break
            j += 1
        if j < n and j - i < MAX_RECORD_LINES:  # closed on line j
            continued[i + 1 : j + 1] = True
            after = j + 1
        elif j >= n and not last and n - i < MAX_RECORD_LINES:  # open at the block's end
            return continued, i, unclosed, True
        else:
            unclosed.append(i)
    return continued, n, unclosed, True


def _ends_quoted(line: memoryview, sep: int, quoted: bool) -> bool:
    """Whether a CSV line, begun inside a quoted value or not, ends inside one."""
    return _read_quotes(bytes(line), sep, quoted)[0]


def _read_quotes(text: bytes, sep: int, quoted: bool) -> tuple[bool, bool]:
    """Read CSV text, begun inside a quoted value or not, as PyArrow reads it: whether it ends
    inside a quoted value, and whether it holds a CR that is not part of a CR LF outside
    one.  A quote opens a value only at the start of a field (``12" pizza`` is text), and a
    doubled quote inside a value is one quote."""
    k, n = 0, len(text)
    field_start, lone_cr = not quoted, False
    while k < n:
        c = text[k]
        if quoted:
            if c == 34:
                if k + 1 < n and text[k + 1] == 34:  # a doubled quote: one quote in the value
                    k += 2
                    continue
                quoted = False
        elif c == 34 and field_start:
            quoted = True
        elif c == 13 and not (k + 1 < n and text[k + 1] == 10):
            lone_cr = True
        field_start = not quoted and c in (sep, 10)
        k += 1
    return quoted, lone_cr


def _joined_lines(
    block: memoryview | bytes, starts: np.ndarray, ends: np.ndarray, keep: np.ndarray
) -> bytes:
    """The ``keep`` lines of ``block``, each ended by a line break."""
    view = memoryview(block)
    return b"".join(bytes(view[a:b]) + b"\n" for a, b in zip(starts[keep], ends[keep], strict=True))


def _no_rows(header: list[str]) -> pa.Table:
    return pa.table(
        {**{h: pa.array([], pa.string()) for h in header}, LINE: pa.array([], pa.int64())}
    )


def read_csv(
    source: SourceSettings, path: Path, digest: Digest | None = None
) -> tuple[list[str], Iterator[Batch]]:
    """Header and batches of a delimited text file (``digest``: see :func:`_blocks`).

    An empty file (no byte but white space) has no header and no rows: ``[]`` and no batch.
    A blank first line before other lines is a :class:`SourceError`: the header is missing.
    """
    delimiter = delimiter_of(source)
    # (The encoding is a known text codec: settings check it, SourceSettings._known_encoding.)
    newline = _newline(path)
    with _text_bytes(path) as f:
        first = bytes(_decode(_first_line(f, newline), source.encoding)[0]).decode(
            "utf-8", "replace"
        )
        blank = not first.strip("\ufeff \t\r\n")
        if blank and not any(more.strip() for more in iter(lambda: f.read(BLOCK_BYTES), b"")):
            return [], _fed(_blocks(path, digest, newline))
    if blank:
        raise SourceError(
            f"Source {source.name!r}: the first line of {path.name} is blank",
            where=f"{path.name}:1",
            fix="the first line of a CSV file names its columns; remove the blank line",
        )
    header = _distinct_names(source, header_names(first, delimiter), path)

    def batches() -> Iterator[Batch]:
        carry, carry_line = b"", 0  # an open record, read again with the next block
        for (first_line, raw), last in marking_last(_blocks(path, digest, newline)):
            if newline != b"\n":  # a CR is not part of a character in any allowed encoding
                raw = bytes(raw).replace(newline, b"\n")
            block, utf8 = _decode(raw, source.encoding)
            if carry:
                block, first_line, carry = carry + bytes(block), carry_line, b""
            try:
                batch, rest = _csv_block(source, header, path.name, block, first_line, last)
            except _Misaligned:  # a stray quote hid a multi-line value: read every quote
                try:
                    batch, rest = _csv_block(
                        source, header, path.name, block, first_line, last, thorough=True
                    )
                except _Misaligned:
                    raise SourceError(
                        f"Source {source.name!r}: could not align rows with lines in {path.name}",
                        where=f"{path.name}:{first_line}",
                        fix="check the file's quoting: a quoted value is closed by a quote",
                    ) from None
            if rest is not None:
                carry, carry_line = rest
            if batch is not None:
                batch.utf8 = utf8
                yield batch

    return header, batches()


class _Misaligned(Exception):
    """PyArrow read a different number of rows from a CSV block than the lines said."""


def _csv_block(
    source: SourceSettings,
    header: list[str],
    name: str,
    block: memoryview | bytes,
    first_line: int,
    last: bool,
    thorough: bool = False,
) -> tuple[Batch | None, tuple[bytes, int] | None]:
    """The rows of one CSV block (``None`` when it has none), and the record left open at its
    end with its first line number, to be read again with the next block.

    Raises :class:`_Misaligned` when PyArrow's rows do not match the lines.  Read again
    ``thorough``, the block has every line with a quote examined (a line with a stray quote
    that also opens a multi-line value has an even number of quotes, so the quick count
    misses it), and its records with a CR inside a line, outside quotes, quarantined.
    """
    delimiter = delimiter_of(source)
    starts, ends = _line_spans(block)
    continued, complete, unclosed, quoted = _continued_lines(
        block, starts, ends, delimiter, last, thorough
    )
    rest = None
    if complete < len(starts):
        rest = bytes(block[int(starts[complete]) :]), first_line + complete
        block = block[: int(starts[complete])]
        starts, ends, continued = starts[:complete], ends[:complete], continued[:complete]
    numbers = np.arange(first_line, first_line + len(starts), dtype=np.int64)
    keep = (ends > starts) & ~continued  # rows: blank lines are not rows
    if first_line == 1:
        keep[0] = False  # the header
    if not keep.any():  # only the header, or blank lines: PyArrow refuses an empty body
        return None, rest
    invalid: list[tuple[int, str, str]] = []
    body: memoryview | bytes = block
    if first_line == 1:
        body = block[int(starts[1]) :] if len(starts) > 1 else b""
    if unclosed:  # PyArrow would read the rest of the block into that value
        keep[unclosed] = False
        invalid = [
            (
                int(numbers[i]),
                bytes(block[int(starts[i]) : int(ends[i])]).decode("utf-8", "replace"),
                "quoted value not closed",
            )
            for i in unclosed
        ]
        if not keep.any():
            return Batch(name, _no_rows(header), invalid), rest
        body = _joined_lines(block, starts, ends, keep | continued)
    parsed = keep | continued
    if thorough:  # PyArrow ends a row at a CR that is not part of a CR LF, outside quotes
        parsed, split = _split_by_cr(block, starts, ends, numbers, parsed, continued, delimiter)
        if split:
            invalid += split
            keep &= parsed
            if not keep.any():
                return Batch(name, _no_rows(header), invalid), rest
            body = _joined_lines(block, starts, ends, parsed)
    if reads_as_is(source.encoding) and not _valid_text(body, source.encoding):
        ok, broken = _broken_lines(block, starts, ends, numbers, parsed, source.encoding)
        if continued.any():
            ok, broken = _by_record(block, starts, ends, numbers, parsed, continued, ok, broken)
        invalid += broken
        keep &= ok
        if not keep.any():
            return Batch(name, _no_rows(header), invalid), rest
        body = _joined_lines(block, starts, ends, ok)
    # PyArrow numbers rows among the non-blank lines it parses (1-based).
    nonblank = numbers[keep]
    bad: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        index = (row.number or 0) - 1
        line = int(nonblank[index]) if 0 <= index < len(nonblank) else -1
        reason = (
            f"wrong number of fields: expected {row.expected_columns}, found {row.actual_columns}"
        )
        invalid.append((line, row.text, reason))
        bad.append(index)
        return "skip"

    table = pacsv.read_csv(
        pa.BufferReader(body),
        read_options=pacsv.ReadOptions(
            column_names=header, use_threads=False, block_size=max(len(body), 1) + 1
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter,
            invalid_row_handler=on_invalid,
            newlines_in_values=bool(continued.any()),
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],  # keep "N/A", "NULL"… verbatim; typing decides
        ),
    )
    if bad and max(bad) >= len(nonblank):  # PyArrow read more rows than there are lines
        raise _Misaligned
    lines = np.delete(nonblank, bad) if bad else nonblank
    if len(lines) != table.num_rows or (
        quoted and not _spans_agree(table, continued, lines - first_line)
    ):
        raise _Misaligned
    return Batch(name, table.append_column(LINE, pa.array(lines)), invalid), rest


def _split_by_cr(
    block: memoryview | bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    numbers: np.ndarray,
    parsed: np.ndarray,
    continued: np.ndarray,
    delimiter: str,
) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """``parsed`` without the records holding a CR that is not part of a CR LF outside a
    quoted value, and those records for the quarantine, each at its first line.

    PyArrow ends a row at such a CR (a line break of a classic Mac file, or a stray one
    pasted into a value), so that record's rows cannot be matched with its line number.
    Only for a block whose rows did not align with its lines.
    """
    crs = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 13)
    line = np.searchsorted(starts, crs, side="right") - 1
    inside = line[crs < ends[line]]  # the CR of a CR LF lies at the line's end
    if not len(inside):
        return parsed, []
    record = _record_of(continued)
    view, sep = memoryview(block), ord(delimiter)
    drop = np.zeros(len(starts), dtype=bool)
    out: list[tuple[int, str, str]] = []
    for r in np.unique(record[inside]).tolist():
        lines = np.flatnonzero(parsed & (record == r)).tolist()
        text = b"\n".join(bytes(view[starts[i] : ends[i]]) for i in lines)
        if lines and _read_quotes(text, sep, False)[1]:
            drop[lines] = True
            reason = "line break (CR) inside a row, outside quotes"
            out.append((int(numbers[lines[0]]), text.decode("utf-8", "replace"), reason))
    return parsed & ~drop, out


def _spans_agree(table: pa.Table, continued: np.ndarray, index: np.ndarray) -> bool:
    """Whether each row PyArrow read holds as many line breaks as the lines after its own
    (``index`` in the block) that :func:`_continued_lines` found continuing it.

    The row count alone misses a quoted value that a line with a stray quote opens on the
    block's last line: PyArrow reads it to the end of the block as one row.
    """
    settled = np.append(np.flatnonzero(~continued), len(continued))
    expected = settled[np.searchsorted(settled, index, side="right")] - index - 1
    found = np.zeros(table.num_rows, dtype=np.int64)
    for column in table.columns:
        found += pc.count_substring(column, "\n").fill_null(0).to_numpy()
    return bool(np.array_equal(found, expected))


def first_line(path: Path) -> bytes:
    """The bytes of a text file's first line (decompressed), without its line break."""
    newline = _newline(path)
    with _text_bytes(path) as f:
        return _first_line(f, newline).rstrip(b"\r\n")


def header_names(line: str, delimiter: str) -> list[str]:
    """The column names of a CSV header line (a byte order mark and the line break dropped,
    each name trimmed)."""
    text = line.lstrip("\ufeff").rstrip("\r\n")
    return [name.strip() for name in next(csv.reader([text], delimiter=delimiter), [])]


def _fed(blocks: Iterator[tuple[int, memoryview | bytes]]) -> Iterator[Batch]:
    """No batch, once ``blocks`` are read (they feed the file's digest)."""
    for _ in blocks:
        pass
    yield from ()


def _first_line(f: io.BufferedIOBase, newline: bytes) -> bytes:
    """The first line of ``f``, read up to ``newline`` (kept when it is LF)."""
    if newline == b"\n":
        return f.readline()
    head = b""
    while (more := f.read(1 << 16)) and newline not in more:
        head += more
    return head + more.split(newline, 1)[0]


def delimiter_of(source: SourceSettings) -> str:
    """The delimiter of a CSV or TSV source: its own, or the format's."""
    return source.delimiter or ("\t" if source.format == "tsv" else ",")


def _distinct_names(source: SourceSettings, header: list[str], path: Path) -> list[str]:
    """``header`` with a repeated name numbered from its second time on (``note``,
    ``note.1``), as pandas reads it; a mapped name that repeats is a :class:`SourceError`,
    since which of the columns is meant cannot be known.  (Until 2026-12-07 a repeated name
    stopped the ingest with PyArrow's "duplicate field names" traceback.)"""
    seen: dict[str, list[str]] = {}
    names: list[str] = []
    for name in header:
        given = seen.setdefault(name, [])
        new, n = name, len(given)
        while new in names or (n and new in header):  # "note.1" may be in the file already
            new = f"{name}.{n}"
            n += 1
        given.append(new)
        names.append(new)
    repeated = [c for c in dict.fromkeys(source.columns.values()) if len(seen.get(c, [])) > 1]
    if repeated:
        name = repeated[0]
        raise SourceError(
            f"Source {source.name!r}: column {name!r} appears {len(seen[name])} times in the "
            f"header of {path.name}, and it is mapped",
            where=f"{path.name}:1",
            fix=f"rename the columns in the file, or map {seen[name][1]!r} for the second one",
        )
    return names


def read_lines(
    path: Path, encoding: str = "utf-8", digest: Digest | None = None
) -> Iterator[Batch]:
    """Non-blank lines of a text file (JSONL) as one ``raw`` column (``digest``: see
    :func:`_blocks`); the elements of a file that is one JSON array instead
    (:func:`_array_elements`)."""
    blocks = _blocks(path, digest)
    first = next(blocks, None)
    if first is None:
        return
    head = bytes(first[1][:64]).lstrip(_UTF8_BOM).lstrip()
    if head.startswith(b"["):
        yield from _array_elements(path.name, itertools.chain([first], blocks), encoding)
        return
    for first_line, raw in itertools.chain([first], blocks):
        block, utf8 = _decode(raw, encoding)
        if first_line == 1 and bytes(block[:3]) == _UTF8_BOM:  # Windows tools write one
            block = block[3:]
        valid = not reads_as_is(encoding) or _valid_text(block, encoding)
        split = _split_lines(block, first_line) if valid else None
        invalid: list[tuple[int, str, str]] = []
        if split is not None:
            lines, numbers = split
        else:  # bytes not valid in the encoding, or CR LF line breaks
            lines, numbers, invalid = _lines_by_span(block, first_line, None if valid else encoding)
        yield Batch(path.name, pa.table({"raw": lines, LINE: pa.array(numbers)}), invalid, utf8)


#: White space between a JSON array's elements (and a byte order mark before it).
_JSON_SPACE = re.compile("[ \t\r\n\ufeff]*")
#: Characters of a broken JSON array's rest kept in the quarantine (the file has all of it).
ARRAY_REST_CHARS = 10_000


def _array_elements(
    name: str, blocks: Iterator[tuple[int, memoryview | bytes]], encoding: str
) -> Iterator[Batch]:
    """The elements of a file that is one JSON array (``[{…}, {…}]``, as an API or a
    spreadsheet tool exports records), each as a ``raw`` row at the line it starts on.

    A JSON source is read line by line, and such a file, pretty-printed, used to be
    quarantined line by line as broken JSON (17 rows for 3 orders).  The elements are found
    with the standard library's JSON scanner (``raw_decode``, in C), which parses each one
    only to find where it ends; the engine parses it again, as it does a line, so the
    elements take the way of JSON lines from there (a value that is not an object is
    quarantined as such).  The text is held a block (64 MB) at a time, and an element may
    span blocks.  A syntax error ends the reading: what is left, from the element it is in,
    is one quarantined row (the reason says where; a JSON array cannot be read on past an
    error as lines can), and so is any text after the array's end.
    """
    decoder = json.JSONDecoder()
    text, pos = "", 0
    seen, seen_line = 0, 1  # text[seen] is on line seen_line
    valid, utf8 = True, False

    def pull() -> bool:
        """Append the next block to the text not read yet; False at the end of the file."""
        nonlocal text, pos, seen, seen_line, valid, utf8
        nxt = next(blocks, None)
        if nxt is None:
            return False
        block, as_utf8 = _decode(nxt[1], encoding)
        utf8 |= as_utf8
        valid &= not reads_as_is(encoding) or _valid_text(block, encoding)
        seen_line += text.count("\n", seen, pos)
        text, pos, seen = text[pos:] + bytes(block).decode("utf-8", "replace"), 0, 0
        return True

    def line_at(i: int) -> int:
        """The line of text[i], for i from the last one asked on."""
        nonlocal seen, seen_line
        seen_line += text.count("\n", seen, i)
        seen = i
        return seen_line

    def rest(i: int, reason: str) -> tuple[int, str, str]:
        """The text from ``i`` to the end of the file (up to ARRAY_REST_CHARS) for the
        quarantine; the file is read to its end, since the digest takes every byte."""
        left = text[i : i + ARRAY_REST_CHARS]
        for _, raw in blocks:
            if len(left) < ARRAY_REST_CHARS:
                more = bytes(_decode(raw, encoding)[0]).decode("utf-8", "replace")
                left += more[: ARRAY_REST_CHARS - len(left)]
        return line_at(i), left.strip(), reason

    rows: list[str] = []
    numbers: list[int] = []
    invalid: list[tuple[int, str, str]] = []
    state = "start"  # then "first" (after [), "item" (after ,), "next" (after an item), "end"
    pull()
    while True:
        i = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]  # always matches
        if i == len(text):
            if rows or invalid:
                yield _array_batch(name, rows, numbers, invalid, utf8)
                rows, numbers, invalid = [], [], []
            pos = i
            if pull():
                continue
            if state != "end":
                invalid.append((line_at(i), "", "broken JSON array: the file ends before its ]"))
            break
        c = text[i]
        if state == "end":
            invalid.append(rest(i, "text after the end of the JSON array"))
            break
        if state == "start":  # read_lines saw that the first character is [
            state, pos = "first", i + 1
        elif c == "]" and state in ("first", "next"):
            state, pos = "end", i + 1
        elif state == "next":
            if c != ",":
                invalid.append(rest(i, f"broken JSON array: , or ] expected, not {c!r}"))
                break
            state, pos = "item", i + 1
        else:
            try:
                end = decoder.raw_decode(text, i)[1]
            except json.JSONDecodeError as exc:
                if len(text) - i <= 2 * BLOCK_BYTES and pull():  # the element may go on
                    continue
                start = line_at(i)
                at = start + text.count("\n", i, exc.pos)
                invalid.append(rest(i, f"broken JSON array: {exc.msg} (line {at})"))
                break
            element, number = text[i:end], line_at(i)
            ascii_only = _codec(encoding) == "ascii"
            if not valid and ("\ufffd" in element or (ascii_only and not element.isascii())):
                invalid.append((number, element, f"bytes not valid {encoding}"))
            else:
                rows.append(element)
                numbers.append(number)
            state, pos = "next", end
    if rows or invalid:
        yield _array_batch(name, rows, numbers, invalid, utf8)


def _array_batch(
    name: str, rows: list[str], numbers: list[int], invalid: list[tuple[int, str, str]], utf8: bool
) -> Batch:
    table = pa.table({"raw": pa.array(rows, pa.string()), LINE: pa.array(numbers, pa.int64())})
    return Batch(name, table, list(invalid), utf8)


def _split_lines(block: memoryview | bytes, first_line: int) -> tuple[pa.Array, np.ndarray] | None:
    """The non-blank lines of ``block`` (valid UTF-8, ending in LF) and their numbers; None
    when a line ends in CR LF.

    Arrow's ``split_pattern`` cuts the block in one pass of C++, copying each line once.
    Finding the line breaks with NumPy and taking each line by its span (the way kept for
    blocks with CR or invalid bytes, :func:`_lines_by_span`) made the reader thread spend 6.5
    CPU-seconds per GB of events, 3.7 of them there.
    """
    whole = pa.LargeStringArray.from_buffers(
        1, pa.py_buffer(np.array([0, len(block)], dtype=np.int64)), pa.py_buffer(block)
    )
    parts = pc.split_pattern(whole, "\n")
    lines = parts.values.slice(0, len(parts.values) - 1)  # the block ends in LF: "" after it
    if pc.any(pc.ends_with(lines, "\r")).as_py():
        return None  # the spans leave the CR out
    numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    filled = pc.binary_length(lines).to_numpy(zero_copy_only=False) > 0
    if not filled.all():  # blank lines are not rows
        lines, numbers = lines.filter(pa.array(filled)), numbers[filled]
    return lines.cast(pa.string()), numbers


def _lines_by_span(
    block: memoryview | bytes, first_line: int, encoding: str | None
) -> tuple[pa.Array, np.ndarray, list[tuple[int, str, str]]]:
    """The non-blank lines of ``block`` taken by their spans, without a CR before the LF,
    and their numbers; with an ``encoding``, lines not valid in it are left out and returned
    for the quarantine (:func:`_broken_lines`)."""
    starts, ends = _line_spans(block)
    keep = ends > starts
    numbers = np.arange(first_line, first_line + len(keep), dtype=np.int64)
    invalid: list[tuple[int, str, str]] = []
    if encoding is not None:
        keep, invalid = _broken_lines(block, starts, ends, numbers, keep, encoding)
    starts, ends, numbers = starts[keep], ends[keep], numbers[keep]
    # A large_string array over the block whose offsets delimit each line and each gap
    # between lines (the line breaks); taking every other item leaves the lines.
    offsets = np.empty(2 * len(starts), dtype=np.int64)
    offsets[0::2], offsets[1::2] = starts, ends
    full = pa.LargeStringArray.from_buffers(
        2 * len(starts) - 1 if len(starts) else 0,
        pa.py_buffer(offsets),
        pa.py_buffer(block),
    )
    lines = full.take(pa.array(np.arange(0, 2 * len(starts), 2), type=pa.int64()))
    return lines.cast(pa.string()), numbers, invalid


def read_parquet(source: SourceSettings, path: Path) -> tuple[list[str], Iterator[Batch]]:
    """Column names and row groups of a Parquet file, as text columns; the 'line' is the
    1-based row number.

    Only the mapped columns are read (a Parquet file is read by column): an export with
    fifty columns of which four are mapped costs four.  Opening the file here, not in the
    batches, makes a file that is not Parquet an error before any row is read.
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = list(pf.schema_arrow.names)

    wanted = [c for c in dict.fromkeys(source.columns.values()) if c in names] or names[:1]
    return names, _numbered_text(path.name, pf.iter_batches(batch_size=1 << 20, columns=wanted))


#: Rows of a worksheet per batch.
SHEET_BATCH_ROWS = 100_000


def read_excel(source: SourceSettings, path: Path) -> tuple[list[str], Iterator[Batch]]:
    """Column names and batches of a spreadsheet's sheet (``.xlsx``, ``.xlsm``, ``.xlsb``,
    ``.xls``, ``.ods``), as text columns; a row's 'line' is its row number in the sheet, as
    the spreadsheet shows it.

    The sheet's first row with a value names the columns, or the source's ``header_row``
    when title rows come first (rows above it are not read).
    Cells become the text a CSV export of them would hold: numbers as written (a whole number
    without ``.0``), dates and times in ISO form (wall-clock time, so read in the source's
    zone), booleans as ``true`` and ``false``, formulas as their last computed value.  Blank
    rows are not rows; a row with values beyond the header's last column has the wrong
    number of fields.

    Read by python-calamine (Rust): 1.5 s for 100k rows of six columns, against 20-25 s by
    openpyxl's read-only mode.  A sheet holds at most 1,048,576 rows, and the loop over them
    here is in Python.
    """
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except CalamineError as exc:
        raise pa.ArrowInvalid(str(exc) or type(exc).__name__) from None  # readable() names it
    if source.sheet is not None and source.sheet not in book.sheet_names:
        raise SourceError(
            f"Source {source.name!r}: {path.name} has no sheet {source.sheet!r}",
            where=str(path),
            fix=f"its sheets are: {', '.join(book.sheet_names)}",
        )
    sheet_name = source.sheet or book.sheet_names[0]
    sheet = book.get_sheet_by_name(sheet_name)
    # calamine's rows start at row 1 but at the sheet's first used column: column A is left
    # out when it is empty, so the error cells' absolute columns are shifted to match
    first_column = sheet.start[1] if sheet.start is not None else 0
    errors = {
        row: [(c - first_column, e) for c, e in cells if c >= first_column]
        for row, cells in _error_cells(path, sheet_name).items()
    }
    rows = enumerate(sheet.iter_rows(), start=1)  # whole rows from the first: Excel's numbers
    if source.header_row is None:
        first = next((r for _, r in rows if any(v != "" for v in r)), [])
    else:
        first = next((r for n, r in rows if n == source.header_row), [])
    width = max((i + 1 for i, v in enumerate(first) if v != ""), default=0)
    header = _distinct_names(source, [_cell_text(v).strip() for v in first[:width]], path)

    mapped = set(source.columns.values())

    def batches() -> Iterator[Batch]:
        columns: list[list[str | None]] = [[] for _ in header]
        lines: list[int] = []
        invalid: list[tuple[int, str, str]] = []
        for number, row in rows:
            filled = [i for i, v in enumerate(row) if v != ""]
            if not filled:
                continue
            if filled[-1] >= width:
                text = ",".join(_cell_text(v) for v in row[: filled[-1] + 1])
                reason = f"wrong number of fields: expected {width}, found {filled[-1] + 1}"
                invalid.append((number, text, reason))
                continue
            in_row = dict(errors.get(number, ()))
            broken = [(c, e) for c, e in in_row.items() if c < width and header[c] in mapped]
            if broken:
                cells = [in_row.get(i, _cell_text(v)) for i, v in enumerate(row)]
                at, error = broken[0]
                reason = f"cell error {error} in {header[at]}"
                invalid.append((number, ",".join(cells[:width]), reason))
                continue
            for i, column in enumerate(columns):
                value = row[i] if i < len(row) else ""
                column.append(None if value == "" else _cell_text(value))
            lines.append(number)
            if len(lines) >= SHEET_BATCH_ROWS:
                yield _sheet_batch(path, header, columns, lines, invalid)
                columns, lines, invalid = [[] for _ in header], [], []
        if lines or invalid:
            yield _sheet_batch(path, header, columns, lines, invalid)

    return header, batches()


#: A cell of a worksheet's XML holding a formula error (``t="e"``), and its value.
_ERROR_CELL = re.compile(rb'<c\b(?=[^>]*\bt="e")([^>]*)>(.*?)</c>', re.S)
_CELL_REF = re.compile(rb'\br="([A-Z]+)(\d+)"')
_CELL_VALUE = re.compile(rb"<v>([^<]*)</v>")


def _error_cells(path: Path, sheet_name: str) -> dict[int, list[tuple[int, str]]]:
    """Row number to ``(column index, error)`` of the cells of a sheet that hold a formula
    error (``#DIV/0!``, ``#N/A``, ``#REF!`` …); rows from 1, columns from 0 at column A.

    python-calamine reads an error cell as an empty one (python-calamine issue 105), so a
    ``#N/A`` from a lookup would load as a missing value, silently; in an ``.ods`` file
    whose error cell LibreOffice stored with a number (``office:value="0"``), as the number.
    Each format's cells are searched here instead, only for their error marks:

    - ``.xlsx``/``.xlsm``: the sheet's XML, one C-level test for ``t="e"`` in the common case
      of none, and a regular expression that stops only at error cells otherwise (100k rows
      of six columns: 0.15 s without errors, 0.29 s with one, against 0.9-1.2 s for calamine
      to read the sheet);
    - ``.ods``: ``content.xml``, the same test for ``value-type="error"`` (LibreOffice's
      ``calcext`` mark; ODF itself has no error type), then the sheet's rows parsed in order
      (100k rows of six columns: 0.13 s without errors, 2.5-2.8 s with one, against 1.2 s
      to read the sheet);
    - ``.xls``: the sheet read by xlrd, the library of that format, whose error cells keep
      their code.  That reads the sheet a second time: 0.8 s of a 1.5-1.7 s read of 65,536
      rows of six columns, the most an ``.xls`` sheet holds.

    ``.xlsb`` is not searched: its error cells still read as empty.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            return _xlsx_errors(path, sheet_name)
        if suffix == ".ods":
            return _ods_errors(path, sheet_name)
        if suffix == ".xls":
            return _xls_errors(path, sheet_name)
    except (zipfile.BadZipFile, KeyError, ValueError, ElementTree.ParseError, _XlsUnreadable):
        pass  # calamine read it; a part it does not need is not ours to judge
    return {}


def _xlsx_errors(path: Path, sheet_name: str) -> dict[int, list[tuple[int, str]]]:
    with zipfile.ZipFile(path) as book:
        part = _sheet_part(book, sheet_name)
        xml = book.read(part) if part is not None else b""
    if b't="e"' not in xml:
        return {}
    found: dict[int, list[tuple[int, str]]] = {}
    for m in _ERROR_CELL.finditer(xml):
        ref, value = _CELL_REF.search(m.group(1)), _CELL_VALUE.search(m.group(2))
        if ref is None:
            continue
        column = 0
        for letter in ref.group(1):
            column = column * 26 + letter - 64
        error = value.group(1).decode() if value else "#VALUE!"
        found.setdefault(int(ref.group(2)), []).append((column - 1, error))
    return found


_ODF_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_ODF_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_ODF_CALC_TYPE = "{urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0}value-type"


def _ods_errors(path: Path, sheet_name: str) -> dict[int, list[tuple[int, str]]]:
    """Error cells of an OpenDocument sheet.  Rows and cells may stand for several
    (``number-rows-repeated``, ``number-columns-repeated``: LibreOffice writes the blank
    rows below the data as one), and a merged cell's covered cells take their columns."""
    with zipfile.ZipFile(path) as book:
        xml = book.read("content.xml")
    if b'value-type="error"' not in xml and b"value-type='error'" not in xml:
        return {}
    table, row_tag = f"{_ODF_TABLE}table", f"{_ODF_TABLE}table-row"
    cells = (f"{_ODF_TABLE}table-cell", f"{_ODF_TABLE}covered-table-cell")
    found: dict[int, list[tuple[int, str]]] = {}
    row = 0
    for _, element in ElementTree.iterparse(io.BytesIO(xml)):  # at each element's end
        if element.tag == table:  # a table's name is known at its end too: keep or start over
            if element.get(f"{_ODF_TABLE}name") == sheet_name:
                return found
            found, row = {}, 0
            element.clear()
            continue
        if element.tag != row_tag:
            continue
        column, errors = 0, []
        for cell in element:
            if cell.tag not in cells:
                continue
            repeat = int(cell.get(f"{_ODF_TABLE}number-columns-repeated", "1"))
            if cell.get(_ODF_CALC_TYPE) == "error":
                text = "".join("".join(p.itertext()) for p in cell.iter(f"{_ODF_TEXT}p"))
                errors += [(column + i, text.strip() or "#VALUE!") for i in range(repeat)]
            column += repeat
        repeat = int(element.get(f"{_ODF_TABLE}number-rows-repeated", "1"))
        for number in range(row + 1, row + repeat + 1) if errors else ():
            found[number] = errors
        row += repeat
        element.clear()
    return {}


class _XlsUnreadable(Exception):
    """xlrd could not read an ``.xls`` file that calamine read."""


def _xls_errors(path: Path, sheet_name: str) -> dict[int, list[tuple[int, str]]]:
    import struct

    import xlrd
    from xlrd.compdoc import CompDocError

    try:
        with open(os.devnull, "w") as quiet:  # xlrd writes its warnings to stdout
            book = xlrd.open_workbook(str(path), on_demand=True, logfile=quiet)
            try:
                sheet = book.sheet_by_name(sheet_name)
            finally:
                book.release_resources()
    except (xlrd.XLRDError, CompDocError, struct.error, ValueError, IndexError) as exc:
        raise _XlsUnreadable from exc
    found: dict[int, list[tuple[int, str]]] = {}
    for r in range(sheet.nrows):
        kinds = sheet.row_types(r)
        if xlrd.XL_CELL_ERROR in kinds:
            codes = sheet.row_values(r)
            found[r + 1] = [
                (c, xlrd.error_text_from_code.get(codes[c], "#VALUE!"))
                for c, kind in enumerate(kinds)
                if kind == xlrd.XL_CELL_ERROR
            ]
    return found


def _sheet_part(book: zipfile.ZipFile, sheet_name: str) -> str | None:
    """The zip member holding the worksheet named ``sheet_name`` (``xl/worksheets/…``)."""
    relation = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    ids = [
        s.get(relation)
        for s in workbook.iter()
        if s.tag.endswith("}sheet") and s.get("name") == sheet_name
    ]
    if not ids:
        return None
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next((r.get("Target") for r in rels if r.get("Id") == ids[0]), None)
    if target is None:
        return None
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _sheet_batch(
    path: Path,
    header: list[str],
    columns: list[list[str | None]],
    lines: list[int],
    invalid: list[tuple[int, str, str]],
) -> Batch:
    table = pa.table({h: pa.array(c, pa.string()) for h, c in zip(header, columns, strict=True)})
    return Batch(path.name, table.append_column(LINE, pa.array(lines, pa.int64())), invalid)


def _cell_text(value: object) -> str:
    """A spreadsheet cell's value as the text a CSV export of it would hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


#: Connection schemes whose "host and path" is a database file.
_FILE_DATABASES = ("sqlite", "duckdb")


def read_sql(source: SourceSettings, root: Path) -> Iterator[Batch]:
    """A table of a SQL database reached through Ibis (PostgreSQL, DuckDB, SQLite …).

    A SQLite or DuckDB file is named after ``sqlite://`` or ``duckdb://``: an absolute path
    (``sqlite:///srv/erp.db``) or one relative to the project folder ``root``
    (``sqlite://data/erp.db``).  It must exist and is opened read-only: Ibis creates an empty
    database at a path that has none, and read ``sqlite:///erp.db`` from the root of the
    file system, so a wrong path used to end in "cannot read table" with an empty file
    left behind.
    """
    import ibis

    assert source.connection and source.sql_table
    scheme, _, rest = source.connection.partition("://")
    path = None
    if scheme in _FILE_DATABASES and rest and rest != ":memory:":
        path = (root / rest).resolve()  # `root / "/srv/erp.db"` is "/srv/erp.db"
        if not path.is_file():
            raise SourceError(
                f"Source {source.name!r}: no database file at {path}",
                where=source.connection,
                fix=f'write `connection = "{scheme}:///absolute/path"` or a path relative '
                "to the project folder",
            )
    try:
        if path is None:
            con = ibis.connect(source.connection)
        elif scheme == "sqlite":
            con = ibis.sqlite.connect(str(path))
        else:
            con = ibis.duckdb.connect(str(path), read_only=True)
        if con.name == "duckdb":
            quiet_duckdb(con)
        table = con.table(source.sql_table)
    except Exception as exc:
        raise SourceError(
            f"Source {source.name!r}: cannot read table {source.sql_table!r}: {exc}",
            where=source.connection.split("@")[-1],
            fix="check `connection` and `sql_table`, and that the database is reachable",
        ) from None
    yield from _numbered_text(source.sql_table, con.to_pyarrow_batches(table, chunk_size=1 << 20))


def _numbered_text(name: str, record_batches: Iterator[pa.RecordBatch]) -> Iterator[Batch]:
    """Typed record batches (Parquet, SQL) as text columns, each row numbered from 1.

    A row with a byte string that is not UTF-8 text (a binary column) goes to quarantine
    with its values, the broken ones with replacement characters.
    """
    row = 1
    for rb in record_batches:
        n = rb.num_rows
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        broken: dict[int, str] = {}  # row index -> the first column whose bytes are broken
        for c in rb.schema.names:
            columns[c], bad = _as_text_checked(rb.column(c))
            for i in bad:
                broken.setdefault(i, c)
        t = pa.table(columns).append_column(LINE, pa.array(np.arange(row, row + n)))
        invalid = []
        if broken:
            at = sorted(broken)
            as_bytes = [pc.cast(columns[c].take(at), pa.binary()).to_pylist() for c in columns]
            for k, i in enumerate(at):
                values = [b"" if col[k] is None else col[k] for col in as_bytes]
                text = b",".join(values).decode("utf-8", "replace")
                invalid.append((row + i, text, f"bytes not valid utf-8 in {broken[i]}"))
            keep = np.ones(n, dtype=bool)
            keep[at] = False
            t = t.filter(pa.array(keep))
        yield Batch(name, t, invalid)
        row += n


def _as_text_checked(col: pa.Array) -> tuple[pa.Array | pa.ChunkedArray, list[int]]:
    """:func:`_as_text`, and the rows of a byte-string column whose bytes are not UTF-8.

    Byte strings are read as UTF-8 text, as Spark's ``binaryAsString`` does: Parquet written
    by Hive or Impala stores text so, without the annotation that says it is text.  (Until
    2026-12-07 one such column stopped the source: the file was "not a readable parquet
    file".)  A UUID (Parquet's logical type, Arrow's ``arrow.uuid``) becomes its usual text.
    """
    if isinstance(col.type, pa.BaseExtensionType):
        if col.type.extension_name == "arrow.uuid":
            return _uuid_text(col.storage), []
        col = col.storage
    kind = col.type
    if not (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_binary_view(kind)
    ):
        return _as_text(col), []
    text = pc.cast(col, pa.string(), safe=False)  # not checked: the check follows
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return text, [i for i, v in enumerate(col.to_pylist()) if v is not None and not _is_utf8(v)]
    return text, []


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _uuid_text(storage: pa.FixedSizeBinaryArray) -> pa.Array:
    """16-byte UUIDs as ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``, vectorised: the hex digits
    by table lookup, the dashes left in place."""
    n, start = len(storage), storage.offset * 16
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[start : start + n * 16]
    pairs = raw.reshape(n, 16)
    digits = np.stack([_HEX[pairs >> 4], _HEX[pairs & 15]], axis=2).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for a, b, k in ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20)):
        out[:, a:b] = digits[:, k : k + b - a]
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(36), n, [None, pa.py_buffer(out)])
    text = fixed.cast(pa.string())
    if storage.null_count:
        text = pc.if_else(storage.is_null(), pa.scalar(None, pa.string()), text)
    return text


def _as_text(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A typed column (Parquet, SQL) as the text the typing reads.

    Timestamps with a zone keep it as an offset (``…T18:00:00.123+0800``): the zone's wall
    time followed by ``Z`` (until 2026-12-07) put a Shanghai timestamp eight hours late.
    Lists, structs and maps become their JSON text (PyArrow cannot cast them to text).
    """
    if pa.types.is_string(col.type):
        return col
    if pa.types.is_large_string(col.type) or pa.types.is_string_view(col.type):
        return col.cast(pa.string())  # one text type: the row text joins columns
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        fmt = "%Y-%m-%d" if pa.types.is_date(col.type) else "%Y-%m-%dT%H:%M:%S"
        if pa.types.is_timestamp(col.type) and col.type.tz is not None:
            return pc.strftime(col, format=fmt + "%z")
        return pc.strftime(col, format=fmt)
    if pa.types.is_nested(col.type):
        return _json_text(col)
    return col.cast(pa.string())


def _json_text(col: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """The JSON text of each value of a nested column, by DuckDB's ``to_json`` (vectorised;
    PyArrow has no JSON writer for arrays)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # see warehouse.quiet_duckdb
        con.register("nested", pa.table({"v": col}))
        text = con.sql("SELECT to_json(v)::VARCHAR AS v FROM nested").to_arrow_table()
        return text.column("v")
    finally:
        con.close()
