"""Block reading: every line comes back once, whole, with its own line number, however the
blocks fall (inside a line, on a line break, or shorter than a line)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loupe.config import SourceSettings
from loupe.ingest import readers

LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(LINE, min_size=1, max_size=25),
    block=st.integers(min_value=1, max_value=64),
    crlf=st.booleans(),
    final_break=st.booleans(),
)
def test_read_lines_keeps_every_line_and_its_number(
    tmp_path_factory, lines, block, crlf, final_break
):
    path = tmp_path_factory.mktemp("r") / "x.jsonl"
    sep = "\r\n" if crlf else "\n"
    path.write_bytes((sep.join(lines) + (sep if final_break else "")).encode("utf-8"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "BLOCK_BYTES", block)
        got = [
            (n, t)
            for b in readers.read_lines(path)
            for n, t in zip(b.rows["_line"].to_pylist(), b.rows["raw"].to_pylist(), strict=True)
        ]
    # blank lines are not rows; the others keep their physical line number
    assert got == [(i + 1, t) for i, t in enumerate(lines) if t]


def test_read_csv_numbers_rows_across_small_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "BLOCK_BYTES", 7)
    path = tmp_path / "a.csv"
    path.write_text("id,name\n1,Ann\n\n2,a much longer name than a block\n3,x,extra\n4,Dee")
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    header, batches = readers.read_csv(source, path)
    assert header == ["id", "name"]
    rows, invalid = [], []
    for b in batches:
        rows += list(zip(b.rows["_line"].to_pylist(), b.rows["name"].to_pylist(), strict=True))
        invalid += [(line, text) for line, text, _ in b.invalid]
    assert rows == [(2, "Ann"), (4, "a much longer name than a block"), (6, "Dee")]
    assert invalid == [(5, "3,x,extra")]


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(LINE, max_size=25),
    block=st.integers(min_value=1, max_value=64),
    crlf=st.booleans(),
    final_break=st.booleans(),
    encoding=st.sampled_from(["utf-8", "gbk"]),
)
def test_a_file_hashed_while_read_has_its_whole_file_fingerprint(
    tmp_path_factory, lines, block, crlf, final_break, encoding
):
    """Ingest hashes a line-based file as it reads it, instead of reading it twice: the
    digest must take every byte once, in order (blocks are cut at line breaks and the file
    is sought back), the bytes as stored (before decoding), the last line without the
    line break the reader adds to it."""
    path = tmp_path_factory.mktemp("d") / "x.jsonl"
    sep = "\r\n" if crlf else "\n"
    text = sep.join(lines) + (sep if final_break else "")
    path.write_bytes(text.encode(encoding, errors="replace"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "BLOCK_BYTES", block)
        digest = readers.new_digest()
        for _ in readers.read_lines(path, encoding, digest):
            pass
    assert digest.hexdigest() == readers.fingerprint(path)


def test_a_csv_file_hashed_while_read_has_its_whole_file_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "BLOCK_BYTES", 7)
    path = tmp_path / "a.csv"
    path.write_bytes(
        "id,name\r\n1,王伟\n\n2,a much longer name than a block\n3,x,extra\n4,Dee".encode("gbk")
    )
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv", encoding="gbk")
    digest = readers.new_digest()
    _header, batches = readers.read_csv(source, path, digest)
    assert sum(b.rows.num_rows for b in batches) == 3
    assert digest.hexdigest() == readers.fingerprint(path)


@pytest.mark.parametrize("text", ["id,name\n", "id,name", "id,name\r\n\n\n", "\ufeffid,name\n"])
def test_a_csv_file_with_only_its_header_has_no_rows(tmp_path, text):
    """An export with no rows (a day without orders) is a file with a header and nothing
    else: PyArrow refuses an empty body ("Empty CSV file"), which ingest printed as a
    traceback."""
    path = tmp_path / "a.csv"
    path.write_text(text)
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    header, batches = readers.read_csv(source, path)
    assert header == ["id", "name"]
    assert [b.rows.num_rows for b in batches] == []
