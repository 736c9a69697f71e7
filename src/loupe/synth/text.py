"""Column-wise text building: ids, amounts, dates and timestamps as Arrow string arrays.

Everything here works on whole NumPy/Arrow columns; nothing loops over rows.  Dates and
timestamps are written digit by digit into a ``uint8`` matrix of ASCII codes, which is an
order of magnitude faster than ``strftime``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TZ_OFFSET = 8 * 3600  # Asia/Shanghai, no DST
_ZERO = ord("0")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

Col: TypeAlias = pa.Array | str


def strings(values: Sequence[str] | np.ndarray) -> pa.Array:
    """A small lookup table (list of Python strings) as an Arrow string array."""
    return pa.array(list(values), type=pa.string())


def lookup(table: pa.Array, index: np.ndarray) -> pa.Array:
    """``table[index]`` for an integer index column."""
    return table.take(pa.array(np.asarray(index, dtype=np.int64)))


def join(parts: Sequence[Col], sep: str = "") -> pa.Array:
    """Concatenate columns and literal strings element-wise."""
    arrays = [p for p in parts if not isinstance(p, str)]
    if not arrays:
        raise ValueError("join needs at least one array")
    return pc.binary_join_element_wise(*parts, sep, null_handling="replace", null_replacement="")


def where(mask: np.ndarray, yes: Col, no: Col) -> pa.Array:
    """Element-wise choice between two columns (or literals)."""
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), yes, no)


def styled(style: np.ndarray, variants: Sequence[Callable[[np.ndarray], pa.Array]]) -> pa.Array:
    """Row ``i`` spelt by ``variants[style[i]]``; each variant is built only for its rows.

    ``variants[k](rows)`` returns the strings of the given row indices.
    """
    style = np.asarray(style)
    out = variants[0](np.arange(len(style)))
    for k in range(1, len(variants)):
        mask = style == k
        if mask.any():
            out = pc.replace_with_mask(out, pa.array(mask), variants[k](np.flatnonzero(mask)))
    return out


def choose(index: np.ndarray, options: Sequence[pa.Array]) -> pa.Array:
    """Row ``i`` takes ``options[index[i]][i]``."""
    return pc.choose(pa.array(np.asarray(index, dtype=np.int8)), *options)


def num(values: np.ndarray) -> pa.Array:
    """Integers as decimal strings."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def padded(values: np.ndarray, width: int, prefix: str = "") -> pa.Array:
    """Zero-padded decimal ids such as ``P0000001``."""
    values = np.asarray(values, dtype=np.int64)
    mat = np.empty((len(values), width), dtype=np.uint8)
    _put_digits(mat, 0, values, width)
    arr = _matrix_to_strings(mat)
    return join([prefix, arr]) if prefix else arr


def hex_ids(words: np.ndarray) -> pa.Array:
    """Rows of uint64 words (shape ``(n, k)``) as ``16*k`` lowercase hex digits."""
    words = np.atleast_2d(np.asarray(words, dtype=np.uint64))
    n, k = words.shape
    mat = np.empty((n, 16 * k), dtype=np.uint8)
    for j in range(k):
        for d in range(16):
            shift = np.uint64(4 * (15 - d))
            mat[:, 16 * j + d] = _HEX[((words[:, j] >> shift) & np.uint64(15)).astype(np.intp)]
    return _matrix_to_strings(mat)


def uuids(words: np.ndarray) -> pa.Array:
    """Two uint64 words per row formatted as a UUID ``8-4-4-4-12``."""
    h = hex_ids(words)
    parts = [pc.utf8_slice_codeunits(h, a, b) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20))]
    return join([*parts, pc.utf8_slice_codeunits(h, 20, 32)], "-")


def money(cents: np.ndarray) -> pa.Array:
    """Integer cents as an amount with two decimals (``-12.05``)."""
    cents = np.asarray(cents, dtype=np.int64)
    neg = cents < 0
    a = np.abs(cents)
    body = join([num(a // 100), padded(a % 100, 2)], ".")
    return where(neg, join(["-", body]), body) if neg.any() else body


def mix_u64(x: np.ndarray, key: int) -> np.ndarray:
    """A bijective 64-bit mix (splitmix64 finaliser): distinct inputs give distinct outputs."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + np.uint64((key * 0x9E3779B97F4A7C15) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


# --- calendar --------------------------------------------------------------------------------


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm."""
    z = np.asarray(days, dtype=np.int64) + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def days_from_civil(y: int, m: int, d: int) -> int:
    """(year, month, day) to days since 1970-01-01."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def epoch(y: int, m: int, d: int) -> int:
    """Seconds since the epoch at UTC midnight of a date."""
    return days_from_civil(y, m, d) * 86400


DateStyle = int  # 0 iso, 1 slash, 2 compact, 3 chinese
DATE_STYLES = ("2024-03-05", "2024/3/5", "20240305", "2024年3月5日")
TS_STYLES = ("2024-03-05 10:00:00 (local)", "2024-03-05T02:00:00Z", "2024-03-05T10:00:00+08:00")


def _put_digits(mat: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    v = np.asarray(values, dtype=np.int64).copy()
    for k in range(width - 1, -1, -1):
        mat[:, col + k] = _ZERO + (v % 10)
        v //= 10


def _matrix_to_strings(mat: np.ndarray) -> pa.Array:
    n, w = mat.shape
    if n == 0:
        return pa.array([], type=pa.string())
    data = pa.py_buffer(np.ascontiguousarray(mat).tobytes())
    offsets = pa.py_buffer(np.arange(0, (n + 1) * w, w, dtype=np.int32).tobytes())
    return pa.StringArray.from_buffers(n, offsets, data)


def _ymd_hms_matrix(secs: np.ndarray, sep: str, with_ms: np.ndarray | None) -> np.ndarray:
    secs = np.asarray(secs, dtype=np.int64)
    days = np.floor_divide(secs, 86400)
    rem = secs - days * 86400
    y, m, d = civil(days)
    width = 19 + (4 if with_ms is not None else 0)
    mat = np.empty((len(secs), width), dtype=np.uint8)
    _put_digits(mat, 0, y, 4)
    mat[:, 4] = ord("-")
    _put_digits(mat, 5, m, 2)
    mat[:, 7] = ord("-")
    _put_digits(mat, 8, d, 2)
    mat[:, 10] = ord(sep)
    _put_digits(mat, 11, rem // 3600, 2)
    mat[:, 13] = ord(":")
    _put_digits(mat, 14, (rem // 60) % 60, 2)
    mat[:, 16] = ord(":")
    _put_digits(mat, 17, rem % 60, 2)
    if with_ms is not None:
        mat[:, 19] = ord(".")
        _put_digits(mat, 20, with_ms, 3)
    return mat


def ts_utc_z(secs: np.ndarray, ms: np.ndarray | None = None) -> pa.Array:
    """``2024-03-05T02:00:00Z`` (or ``...00.123Z`` with milliseconds)."""
    mat = _ymd_hms_matrix(secs, "T", ms)
    return join([_matrix_to_strings(mat), "Z"])


def ts_local(secs: np.ndarray) -> pa.Array:
    """Naive Asia/Shanghai wall time ``2024-03-05 10:00:00``."""
    return _matrix_to_strings(_ymd_hms_matrix(np.asarray(secs) + TZ_OFFSET, " ", None))


def ts_offset(secs: np.ndarray, ms: np.ndarray | None = None) -> pa.Array:
    """``2024-03-05T10:00:00+08:00``."""
    mat = _ymd_hms_matrix(np.asarray(secs) + TZ_OFFSET, "T", ms)
    return join([_matrix_to_strings(mat), "+08:00"])


def ts_mixed(secs: np.ndarray, style: np.ndarray) -> pa.Array:
    """Timestamps in the style chosen per row (0 local, 1 UTC ``Z``, 2 ``+08:00``)."""
    secs = np.asarray(secs)
    return styled(
        style,
        [lambda i: ts_local(secs[i]), lambda i: ts_utc_z(secs[i]), lambda i: ts_offset(secs[i])],
    )


def date_iso(days: np.ndarray) -> pa.Array:
    y, m, d = civil(days)
    mat = np.empty((len(y), 10), dtype=np.uint8)
    _put_digits(mat, 0, y, 4)
    mat[:, 4] = ord("-")
    _put_digits(mat, 5, m, 2)
    mat[:, 7] = ord("-")
    _put_digits(mat, 8, d, 2)
    return _matrix_to_strings(mat)


def date_mixed(days: np.ndarray, style: np.ndarray) -> pa.Array:
    """Dates in the style chosen per row (see :data:`DATE_STYLES`); local calendar days."""
    days = np.asarray(days, dtype=np.int64)

    def slash(i: np.ndarray, sep: str, tail: str = "") -> pa.Array:
        y, m, d = civil(days[i])
        if tail:
            return join([num(y), "年", num(m), "月", num(d), "日"])
        return join([num(y), num(m), num(d)], sep)

    def compact(i: np.ndarray) -> pa.Array:
        iso = date_iso(days[i])
        return pc.utf8_replace_slice(pc.utf8_replace_slice(iso, 4, 5, ""), 6, 7, "")

    return styled(
        style,
        [
            lambda i: date_iso(days[i]),
            lambda i: slash(i, "/"),
            compact,
            lambda i: slash(i, "", "日"),
        ],
    )


def phone_mixed(digits: pa.Array, style: np.ndarray) -> pa.Array:
    """Chinese mobile numbers (11 digits) in five spellings chosen per row.

    0 ``13800138000``, 1 ``+86 138-0013-8000``, 2 ``0086 13800138000``, 3 ``138 0013 8000``,
    4 ``+8613800138000``.
    """

    def parts(i: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        d = digits.take(pa.array(i))
        return (
            d,
            pc.utf8_slice_codeunits(d, 0, 3),
            pc.utf8_slice_codeunits(d, 3, 7),
            pc.utf8_slice_codeunits(d, 7, 11),
        )

    def dashed(i: np.ndarray) -> pa.Array:
        _, a, b, c = parts(i)
        return join(["+86 ", join([a, b, c], "-")])

    def spaced(i: np.ndarray) -> pa.Array:
        _, a, b, c = parts(i)
        return join([a, b, c], " ")

    return styled(
        style,
        [
            lambda i: digits.take(pa.array(i)),
            dashed,
            lambda i: join(["0086 ", digits.take(pa.array(i))]),
            spaced,
            lambda i: join(["+86", digits.take(pa.array(i))]),
        ],
    )


def email_mixed(email: pa.Array, style: np.ndarray) -> pa.Array:
    """Emails with dirt chosen per row: 0 clean, 1 upper case, 2 capitalised + trailing space,
    3 leading space, 4 capitalised local part with upper-case domain."""

    def sub(i: np.ndarray) -> pa.Array:
        return email.take(pa.array(i))

    def upper_domain(i: np.ndarray) -> pa.Array:
        local_domain = pc.split_pattern(sub(i), "@", max_splits=1)
        local = pc.utf8_capitalize(pc.list_element(local_domain, 0))
        return join([local, pc.utf8_upper(pc.list_element(local_domain, 1))], "@")

    return styled(
        style,
        [
            sub,
            lambda i: pc.utf8_upper(sub(i)),
            lambda i: join([pc.utf8_capitalize(sub(i)), " "]),
            lambda i: join([" ", sub(i)]),
            upper_domain,
        ],
    )


def lines_to_bytes(lines: pa.Array) -> pa.Buffer:
    """Lines joined with (and ended by) newlines as one buffer, no per-row Python objects."""
    if len(lines) == 0:
        return pa.py_buffer(b"")
    joined = pc.binary_join_element_wise(lines, "\n", "")
    bufs = joined.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32)
    start, end = int(offsets[joined.offset]), int(offsets[joined.offset + len(joined)])
    return bufs[2].slice(start, end - start)
