"""SourceFile: chunks prepared out of order and committed in order write the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from loupe.synth import text
from loupe.synth.writer import BAD_DATES, SourceFile

KINDS: dict[str, int | None] = {"wrong_column_count": None, "bad_date": 1}


def _chunk(i: int, n: int = 400) -> list[pa.Array]:
    return [text.num(np.arange(n) + 1000 * i), text.strings(["2024-01-02"] * n)]


def _open(folder: Path) -> SourceFile:
    folder.mkdir()
    return SourceFile(folder, "orders.csv", "shop", ["id", "day"], "gbk", dict(KINDS), seed=3)


def test_prepared_out_of_order_and_committed_in_order_equals_writing(tmp_path: Path) -> None:
    written = _open(tmp_path / "w")
    for i in range(3):
        written.write(_chunk(i))
    written.close()

    committed = _open(tmp_path / "c")
    prepared = {i: committed.prepare(i, _chunk(i)) for i in (2, 0, 1)}
    for i in range(3):
        committed.commit(prepared[i])
    committed.close()

    assert committed.path.read_bytes() == written.path.read_bytes()
    assert committed.lines == written.lines
    for (kind_c, lines_c), (kind_w, lines_w) in zip(committed.bad, written.bad, strict=True):
        assert kind_c == kind_w
        assert lines_c.tolist() == lines_w.tolist()
    # Checked against the input, not the other path: every row, in order, once or twice
    # (a planted duplicate follows its row); the planted rows at the lines the truth gives.
    rows = committed.path.read_bytes().decode("gbk").splitlines()
    assert rows[0] == "id,day"
    planted = {
        kind: np.concatenate([lines for k, lines in committed.bad if k == kind]).tolist()
        for kind in KINDS
    }
    assert all(len(lines) >= 3 for lines in planted.values())
    ids = [row.split(",")[0] for row in rows[1:]]
    firsts = [x for k, x in enumerate(ids) if k == 0 or x != ids[k - 1]]
    assert firsts == [str(1000 * i + k) for i in range(3) for k in range(400)]
    assert len(ids) - len(firsts) > 0  # some duplicates were planted
    assert all(rows[line - 1].count(",") != 1 for line in planted["wrong_column_count"])
    assert all(rows[line - 1].split(",")[1] in BAD_DATES for line in planted["bad_date"])
    bad_lines = {line for lines in planted.values() for line in lines}
    good = [row for n, row in enumerate(rows[1:], start=2) if n not in bad_lines]
    assert all(row.split(",")[1:] == ["2024-01-02"] for row in good)


def test_a_chunk_number_is_committed_once(tmp_path: Path) -> None:
    f = _open(tmp_path / "x")
    first, again = f.prepare(0, _chunk(0)), f.prepare(0, _chunk(0))
    f.commit(first)
    with pytest.raises(ValueError, match="chunk 0"):
        f.commit(again)
    f.close()


def test_an_empty_chunk_writes_nothing(tmp_path: Path) -> None:
    f = _open(tmp_path / "e")
    assert f.prepare(0, [pa.array([], pa.string()), pa.array([], pa.string())]) is None
    f.commit(None)
    f.close()
    assert f.lines == 1  # the header
    assert f.chunks == 0
