"""Block reading: every line comes back once, whole, with its own line number, however the
blocks fall (inside a line, on a line break, or shorter than a line)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loupe.config import SourceSettings
from loupe.errors import SourceError
from loupe.ingest import readers

LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=30,
)


#: A line's text for the JSONL reader: a CR may sit anywhere in it, even last.
TEXT_WITH_CR = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(st.tuples(TEXT_WITH_CR, st.sampled_from(["\n", "\r\n"])), min_size=1),
    block=st.integers(min_value=1, max_value=64),
    final_break=st.booleans(),
)
def test_read_lines_keeps_every_line_and_its_number(tmp_path_factory, lines, block, final_break):
    """Lines end in LF or CR LF, mixed in one file; a CR elsewhere is part of the text.  One
    CR before the LF is dropped, as is the line break itself (a block with no CR at a line's
    end is cut by Arrow, one with one by its spans: both ways are taken here)."""
    path = tmp_path_factory.mktemp("r") / "x.jsonl"
    text = "".join(t + end for t, end in lines)
    if not final_break:
        text = text.removesuffix(lines[-1][1])
    path.write_bytes(text.encode("utf-8"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "BLOCK_BYTES", block)
        got = [
            (n, t)
            for b in readers.read_lines(path)
            for n, t in zip(b.rows["_line"].to_pylist(), b.rows["raw"].to_pylist(), strict=True)
        ]
    expected = [(t + end).removesuffix("\n").removesuffix("\r") for t, end in lines]
    if not final_break:  # the last line, written without its line break, is read with one
        expected[-1] = lines[-1][0].removesuffix("\r")
    # blank lines are not rows; the others keep their physical line number
    assert got == [(i + 1, t) for i, t in enumerate(expected) if t]


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


VALUE = st.text(
    alphabet=st.sampled_from(list('ab ,"\n王')), max_size=12
)  # quotes, commas and line breaks, which the csv module quotes


@settings(max_examples=80, deadline=None)
@given(
    records=st.lists(st.tuples(VALUE, VALUE), min_size=1, max_size=12),
    block=st.integers(min_value=1, max_value=48),
)
def test_quoted_values_with_line_breaks_are_read_whole(tmp_path_factory, records, block):
    """A quoted value may hold line breaks (spreadsheets write notes and addresses so): the
    record is read whole, with the line number of its first line, however the blocks fall.
    Until 2026-12-07 such a file stopped the ingest ("could not align rows with lines")."""
    import csv
    import io

    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(
        [("id", "note", "name"), *[(str(i), a, b) for i, (a, b) in enumerate(records)]]
    )
    path = tmp_path_factory.mktemp("q") / "a.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "BLOCK_BYTES", block)
        _, batches = readers.read_csv(source, path)
        got = [row for b in batches for row in b.rows.to_pylist()]
    line, expected = 2, []
    for i, (a, b) in enumerate(records):
        expected.append({"id": str(i), "note": a or None, "name": b or None, "_line": line})
        written = io.StringIO()
        csv.writer(written, lineterminator="\n").writerow((str(i), a, b))
        line += written.getvalue().count("\n")
    assert got == expected


def test_a_stray_quote_is_text_and_an_unclosed_one_quarantines_its_line(tmp_path, monkeypatch):
    """A quote inside an unquoted value is text (``12" pizza``), as PyArrow reads it; a quoted
    value that no quote closes within MAX_RECORD_LINES lines, or by the end of the file, is
    quarantined with its line, and the lines after it are read as rows."""
    monkeypatch.setattr(readers, "MAX_RECORD_LINES", 3)
    path = tmp_path / "a.csv"
    lines = [
        "id,note",
        '1,12" pizza',
        '2,"opened',
        "3,a",
        "4,b",
        "5,c",
        '6,"two',
        'lines"',
        '7,"never closed',
    ]
    path.write_text("\n".join(lines) + "\n")
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    _, batches = readers.read_csv(source, path)
    rows, invalid = [], []
    for b in batches:
        rows += [(r["_line"], r["id"], r["note"]) for r in b.rows.to_pylist()]
        invalid += [(line, reason) for line, _, reason in b.invalid]
    assert rows == [
        (2, "1", '12" pizza'),
        (4, "3", "a"),
        (5, "4", "b"),
        (6, "5", "c"),
        (7, "6", "two\nlines"),
    ]
    assert invalid == [(3, "quoted value not closed"), (9, "quoted value not closed")]

    path.write_text('id,note\n1,"the only row, never closed\n')  # a block left without rows
    _, batches = readers.read_csv(source, path)
    got = [(b.rows.num_rows, [(line, reason) for line, _, reason in b.invalid]) for b in batches]
    assert got == [(0, [(2, "quoted value not closed")])]


@pytest.mark.parametrize("block", [64 << 20, 7])
def test_a_broken_byte_in_a_multi_line_value_quarantines_its_record_once(
    tmp_path, monkeypatch, block
):
    """A record whose quoted value spans lines, with a byte that is not UTF-8 on any of its
    lines, is quarantined once, at its first line, with the text of all its lines; the
    records around it load."""
    monkeypatch.setattr(readers, "BLOCK_BYTES", block)
    path = tmp_path / "a.csv"
    path.write_bytes(
        b'id,note\n1,ok\n2,"first\nsecond \xff\nthird"\n3,"bad \xfe\nboth \xfd"\n4,fine\n'
    )
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    _, batches = readers.read_csv(source, path)
    rows, invalid = [], []
    for b in batches:
        rows += [(r["_line"], r["id"], r["note"]) for r in b.rows.to_pylist()]
        invalid += b.invalid
    assert rows == [(2, "1", "ok"), (8, "4", "fine")]
    assert invalid == [
        (3, '2,"first\nsecond \ufffd\nthird"', "bytes not valid utf-8: reads as cp1252"),
        (6, '3,"bad \ufffd\nboth \ufffd"', "bytes not valid utf-8: reads as cp1252"),
    ]


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        ("王伟,上海市", "gbk", "gbk"),
        ("（北京）王3", "gbk", "gbk"),
        ("Müller,Köln", "cp1252", "cp1252"),  # ü then l: not a GB2312 pair
        ("Crème brûlée, Françoise", "cp1252", "cp1252"),
        ("€ 12,50 – Straße", "cp1252", "cp1252"),
        ("臺北市,張偉", "big5", "big5"),  # reads as Shift JIS kanji too
        ("陳大文,香港", "big5", "big5"),
        ("こんにちは,東京", "shift_jis", "shift_jis"),
        ("カタカナ", "shift_jis", "shift_jis"),
        ("Zoë", "utf-8", "utf-8"),  # for an ascii source
        ("서울", "euc-kr", "gbk"),  # a limit: EUC-KR Hangul sits in GB2312's zone
    ],
)
def test_the_encoding_a_broken_line_reads_in(text, encoding, expected):
    assert readers.reads_as(text.encode(encoding)) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("张伟,上海\n李娜,北京\n".encode(), True),
        ("M1,张伟\n".encode(), True),  # one line: Chinese characters make sense
        ("Crème brûlée\n".encode(), True),
        (b"\xef\xbb\xbfid,name\n", True),  # Excel's "CSV UTF-8": a byte order mark
        ("Дмитрий\nИван\n".encode(), True),  # two lines
        ("Дмитрий\n".encode(), False),  # a limit: one line of Cyrillic is not evidence enough
        ("M1,郑伟\n".encode("gbk"), False),  # valid UTF-8 by chance: Hebrew and Greek
        ("M1,郑伟\nM2,张伟\n".encode("gbk"), False),
        ("M1,Wang Wei\n".encode("gbk"), False),  # ASCII reads the same either way
        (b"", False),
    ],
)
def test_bytes_declared_in_another_encoding_that_are_utf8_text(data, expected):
    assert readers.utf8_instead(data) is expected


def test_a_gbk_source_reads_a_utf8_file_as_utf8_and_says_so(tmp_path, monkeypatch):
    """Block by block: a GBK file and a UTF-8 file of one source both read right, and the
    UTF-8 one's batches are marked; so are a JSON source's."""
    monkeypatch.setattr(readers, "BLOCK_BYTES", 24)
    text = "card,name\nM1,张伟\nM2,李娜\nM3,Anna\n"
    (tmp_path / "a.csv").write_bytes(text.encode("gbk"))
    (tmp_path / "b.csv").write_bytes(text.encode("utf-8"))
    source = SourceSettings(name="s", table="contacts", format="csv", path="*.csv", encoding="gbk")
    for name, utf8 in (("a.csv", False), ("b.csv", True)):
        header, batches = readers.read_csv(source, tmp_path / name)
        got = list(batches)
        assert header == ["card", "name"]
        assert [r["name"] for b in got for r in b.rows.to_pylist()] == ["张伟", "李娜", "Anna"]
        assert {b.utf8 for b in got if "张伟" in b.rows["name"].to_pylist()} == {utf8}
    (tmp_path / "e.jsonl").write_bytes('{"name": "张伟"}\n{"name": "李娜"}\n'.encode())
    got = list(readers.read_lines(tmp_path / "e.jsonl", "gbk"))
    assert [r["raw"] for b in got for r in b.rows.to_pylist()] == [
        '{"name": "张伟"}',
        '{"name": "李娜"}',
    ]
    assert all(b.utf8 for b in got)


def test_a_line_that_reads_in_no_encoding_plausibly_gets_no_guess():
    assert readers.reads_as(b"U\x81\x8d") is None  # undefined in cp1252, no CJK pair
    assert readers.reads_as(b"Product \xc3Viewed") == "cp1252"  # not Big5's \xc3V


STRAY = st.text(alphabet=st.sampled_from(list('ab ,"\n\r王')), max_size=12)


def _exported(value: str) -> str:
    """A field as an exporter that quotes only what it must writes it: a value holding the
    delimiter or a line break, or starting with a quote; ``12" pizza`` is written as it is."""
    if "," in value or "\n" in value or "\r" in value or value.startswith('"'):
        return '"' + value.replace('"', '""') + '"'
    return value


@settings(max_examples=120, deadline=None)
@given(
    records=st.lists(st.tuples(STRAY, STRAY), min_size=1, max_size=12),
    block=st.integers(min_value=1, max_value=48),
)
def test_stray_quotes_beside_multi_line_values_are_read_whole(tmp_path_factory, records, block):
    """A quote inside an unquoted value (``12" pizza``) on the line where a quoted value
    spanning lines opens leaves that line's quotes even in number, so the quick count misses
    it; the block's rows then do not align with its lines, and it is read again with every
    quote examined.  Each record is read whole, at its first line.  Until 2026-12-07 such a
    file stopped the source ("could not align rows with lines")."""
    lines = ["id,note,name"]
    line, expected = 2, []
    for i, (a, b) in enumerate(records):
        text = ",".join([str(i), _exported(a), _exported(b)])
        lines.append(text)
        expected.append({"id": str(i), "note": a or None, "name": b or None, "_line": line})
        line += text.count("\n") + 1
    path = tmp_path_factory.mktemp("q") / "a.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "BLOCK_BYTES", block)
        _, batches = readers.read_csv(source, path)
        got = [row for b in batches for row in b.rows.to_pylist()]
    assert got == expected


def test_a_stray_quote_before_a_multi_line_value_is_read_as_text(tmp_path):
    """The case that used to stop the source: the stray quote is text, the quoted value that
    follows spans two lines, and the next row keeps its line number."""
    path = tmp_path / "a.csv"
    path.write_text('id,note,x\n1,12" pizza,"two\nlines"\n2,a,b\n')
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    _, batches = readers.read_csv(source, path)
    rows = [(r["_line"], r["id"], r["note"], r["x"]) for b in batches for r in b.rows.to_pylist()]
    assert rows == [(2, "1", '12" pizza', "two\nlines"), (4, "2", "a", "b")]


@pytest.mark.parametrize("block", [64 << 20, 5])
def test_a_classic_mac_file_whose_lines_end_in_cr_is_read_by_its_lines(
    tmp_path, monkeypatch, block
):
    """Excel's "CSV (Macintosh)" ends lines with CR alone.  Its lines are numbered as in any
    other file, a quoted value's line breaks become LF, and the fingerprint is the file's.
    Until 2026-12-07 the header read the whole file as one line: a traceback from the csv
    module ("new-line character seen in unquoted field")."""
    monkeypatch.setattr(readers, "BLOCK_BYTES", block)
    path = tmp_path / "a.csv"
    path.write_bytes('id,note\r1,王伟\r2,"two\rlines"\r\r3,x,extra\r4,last'.encode())
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    digest = readers.new_digest()
    header, batches = readers.read_csv(source, path, digest)
    rows, invalid = [], []
    for b in batches:
        rows += [(r["_line"], r["id"], r["note"]) for r in b.rows.to_pylist()]
        invalid += [(line, reason) for line, _, reason in b.invalid]
    assert header == ["id", "note"]
    assert rows == [(2, "1", "王伟"), (3, "2", "two\nlines"), (7, "4", "last")]
    assert invalid == [(6, "wrong number of fields: expected 2, found 3")]
    assert digest.hexdigest() == readers.fingerprint(path)


@pytest.mark.parametrize(
    ("text", "rows", "quarantined"),
    [
        ("1,a\rb,c\n2,d,e\n", [(3, "2")], [(2, "1,a\rb,c")]),
        ("1,a,b\n2,c\rx\n", [(2, "1")], [(3, "2,c\rx")]),
        (  # in a quoted value a CR is text, and only the record with one outside quotes goes
            '1,"a\rb",c\n2,d\re,f\n3,"g\nh\r",i\n',
            [(2, "1"), (4, "3")],
            [(3, "2,d\re,f")],
        ),
    ],
)
def test_a_cr_inside_a_row_outside_quotes_quarantines_its_record(tmp_path, text, rows, quarantined):
    """PyArrow ends a row at a CR that is not part of a CR LF (pasted from a classic Mac
    file), so the rows of that line cannot be matched with its number: the record goes to
    quarantine at its line, with its text, and the others load.  Until 2026-12-07 the source
    stopped ("could not align rows with lines"), or, with the CR in the file's last row, a
    traceback from NumPy."""
    path = tmp_path / "a.csv"
    path.write_bytes(("id,note,x\n" + text).encode())
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    _, batches = readers.read_csv(source, path)
    got, invalid = [], []
    for b in batches:
        got += [(r["_line"], r["id"]) for r in b.rows.to_pylist()]
        invalid += b.invalid
    assert got == rows
    reason = "line break (CR) inside a row, outside quotes"
    assert invalid == [(line, raw, reason) for line, raw in quarantined]


def test_a_jsonl_file_that_opens_with_a_byte_order_mark_reads_its_first_line(tmp_path):
    """Windows tools write a UTF-8 byte order mark before the first line; it is not part of
    the line.  Until 2026-12-07 the first line went to quarantine as "not a JSON object"."""
    path = tmp_path / "a.jsonl"
    path.write_bytes('\ufeff{"id": 1}\n{"id": 2}\n'.encode())
    digest = readers.new_digest()
    got = [r for b in readers.read_lines(path, digest=digest) for r in b.rows.to_pylist()]
    assert got == [{"raw": '{"id": 1}', "_line": 1}, {"raw": '{"id": 2}', "_line": 2}]
    assert digest.hexdigest() == readers.fingerprint(path)


@pytest.mark.parametrize("content", [b"", b"\n\n", "\ufeff".encode(), b"  \r\n"])
def test_an_empty_csv_file_has_no_header_and_no_rows(tmp_path, content):
    """An export with nothing in it (not even its header) is a file without rows, not a
    mapping error ("column … is not in the file; the file's columns are: ")."""
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    digest = readers.new_digest()
    header, batches = readers.read_csv(source, path, digest)
    assert (header, list(batches)) == ([], [])
    assert digest.hexdigest() == readers.fingerprint(path)


def test_a_blank_first_line_before_rows_is_a_missing_header(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\nid,name\n1,x\n")
    source = SourceSettings(name="s", table="contacts", format="csv", path="a.csv")
    with pytest.raises(SourceError, match=r"the first line of a\.csv is blank"):
        readers.read_csv(source, path)


def test_ods_error_cells_count_repeated_rows_columns_and_covered_cells(tmp_path):
    """LibreOffice writes runs of equal rows and cells once, with a repeat count, and a
    merged cell's covered cells take columns: the error cells' rows and columns count them.
    Errors on another sheet, or text that merely reads like one, are not errors here."""
    import zipfile

    def cell(attrs: str = "", text: str = "") -> str:
        return f"<table:table-cell {attrs}><text:p>{text}</text:p></table:table-cell>"

    error = 'office:value-type="string" office:string-value="" calcext:value-type="error"'
    rows = [
        '<table:table-row table:number-rows-repeated="2"><table:table-cell/></table:table-row>',
        "<table:table-header-rows><table:table-row>"  # row 3, in a header-rows group
        + cell('table:number-columns-repeated="2"')
        + cell(error, "#REF!")
        + "</table:table-row></table:table-header-rows>",
        "<table:table-row>"  # row 4: A and B merged, then an error in C
        + cell('table:number-columns-spanned="2" office:value-type="string"', "x")
        + "<table:covered-table-cell/>"
        + cell(error, "#N/A")
        + cell('office:value-type="string"', "#DIV/0!")  # a text, not an error
        + "</table:table-row>",
        '<table:table-row table:number-rows-repeated="2">'  # rows 5 and 6
        + cell(error, "#DIV/0!")
        + cell(f'table:number-columns-repeated="2" {error}', "#VALUE!")
        + "</table:table-row>",
        '<table:table-row table:number-rows-repeated="1048569"><table:table-cell/>'
        "</table:table-row>",
    ]
    other = f"<table:table table:name='Other'><table:table-row>{cell(error, '#N/A')}"
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0">'
        f"<office:body><office:spreadsheet>{other}</table:table-row></table:table>"
        f'<table:table table:name="Data">{"".join(rows)}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    path = tmp_path / "book.ods"
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("content.xml", content)
    div, value = (0, "#DIV/0!"), [(1, "#VALUE!"), (2, "#VALUE!")]
    assert readers._error_cells(path, "Data") == {
        3: [(2, "#REF!")],
        4: [(2, "#N/A")],
        5: [div, *value],
        6: [div, *value],
    }
    assert readers._error_cells(path, "Other") == {1: [(0, "#N/A")]}
    assert readers._error_cells(path.with_suffix(".xlsb"), "Data") == {}  # not searched


@pytest.mark.parametrize("block", [64 << 20, 40])
def test_a_json_array_file_gives_its_elements_at_the_lines_they_start_on(
    tmp_path, monkeypatch, block
):
    """Pretty-printed, an element spans lines (and blocks, at 40 bytes); a value that is not
    an object is still a row (the engine quarantines it, as it does such a line)."""
    monkeypatch.setattr(readers, "BLOCK_BYTES", block)
    path = tmp_path / "a.json"
    path.write_text(
        '\ufeff[\n  {\n    "id": "O1", "note": "a, ] b"\n  },\n  {"id": "王伟"},\n  7,\n'
        '  {"id": "O3",\n   "tags": [1, {"x": "}"}]}\n]\n'
    )
    got = list(readers.read_lines(path))
    rows = [(r[readers.LINE], r["raw"]) for b in got for r in b.rows.to_pylist()]
    assert rows == [
        (2, '{\n    "id": "O1", "note": "a, ] b"\n  }'),
        (5, '{"id": "王伟"}'),
        (6, "7"),
        (7, '{"id": "O3",\n   "tags": [1, {"x": "}"}]}'),
    ]
    assert not any(b.invalid for b in got)


@pytest.mark.parametrize(
    ("text", "invalid"),
    [
        ("[]", []),
        ("  [ ]\n\n", []),
        ('[{"a": 1},\n {"a": 2,,}\n, {"a": 3}]', [(2, '{"a": 2,,}\n, {"a": 3}]', "broken JSON array: Expecting property name enclosed in double quotes (line 2)")]),
        ('[{"a": 1}\n {"a": 2}]', [(2, '{"a": 2}]', "broken JSON array: , or ] expected, not '{'")]),
        ('[{"a": 1}]\n{"a": 2}\n', [(2, '{"a": 2}', "text after the end of the JSON array")]),
        ('[{"a": 1},\n', [(2, "", "broken JSON array: the file ends before its ]")]),
    ],
)  # fmt: skip
def test_a_broken_json_array_quarantines_what_is_left_once(tmp_path, text, invalid):
    path = tmp_path / "a.json"
    path.write_text(text)
    got = list(readers.read_lines(path))
    assert [i for b in got for i in b.invalid] == invalid
    rows = [r["raw"] for b in got for r in b.rows.to_pylist()]
    assert rows == ([] if text.strip() in ("[]", "[ ]") else ['{"a": 1}'])


def test_a_json_array_with_bytes_not_valid_utf8_quarantines_those_elements(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b'[{"a": "ok"},\n {"a": "bad \xff"},\n {"a": "\xe7\x8e\x8b"}]')
    got = list(readers.read_lines(path))
    assert [r["raw"] for b in got for r in b.rows.to_pylist()] == ['{"a": "ok"}', '{"a": "王"}']
    assert [i for b in got for i in b.invalid] == [
        (2, '{"a": "bad \ufffd"}', "bytes not valid utf-8")
    ]
