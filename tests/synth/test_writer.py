"""SourceFile: chunks prepared out of order and committed in order write the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from loupe.synth import text
from loupe.synth.writer import SourceFile

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
    # the planted rows are where the truth says, in the file as committed
    rows = committed.path.read_bytes().decode("gbk").splitlines()
    wrong = np.concatenate([lines for kind, lines in committed.bad if kind == "wrong_column_count"])
    assert len(wrong) >= 3
    assert all(rows[line - 1].count(",") != 1 for line in wrong.tolist())


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
