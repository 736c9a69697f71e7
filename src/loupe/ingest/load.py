"""``loupe ingest``: load every declared source into ``raw_<table>``, reconciled.

For each source, the new files (by name, size and modification time, then by content
fingerprint: see :func:`_new_files`) are read in bulk into memory as Arrow text columns, mapped
and typed in the engine, and split three ways:

* rows with a reason (wrong field count, unparseable date or number, negative quantity,
  broken JSON or a line that is not a JSON object, missing required value, undecodable
  bytes) → ``quarantine``;
* rows whose content hash is already loaded for that source, or repeats earlier in the
  batch → counted as ``duplicates``, not loaded;
* the rest → appended to ``raw_<table>``.

So ``read == loaded + quarantined + duplicates`` for every source, and loading the same
files again reads nothing new.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loupe.config import Settings, SourceSettings
from loupe.errors import SourceError
from loupe.ingest import mapping, readers
from loupe.warehouse import Warehouse, stage_run, utcnow
from loupe.warehouse import functions as fn
from loupe.warehouse.schemas import (
    INGESTED_FILES,
    LINEAGE,
    QUARANTINE,
    RAW_COLUMNS,
    schema,
    version_order,
)

Progress = Callable[[str, int, int], None]
TYPED = "_ingest_typed"
PARSED = "_ingest_parsed"
PROFILES = "_ingest_profiles"
ROW = "_row"
"""Position of a staged row in its chunk: how a rejected row's text is found again."""
STAGE_BATCH_ROWS = 1 << 16
"""Rows per record batch of a staged chunk (DuckDB scans one batch per thread)."""
CHUNK_BYTES = 1 << 30
"""Bytes of text read, typed and committed at a time (memory stays bounded on large sources,
and on large files: a chunk may end inside a file)."""
LINE_FORMATS = ("csv", "tsv", "jsonl", "segment")
"""Formats read by block, whose files are hashed as they are read."""


@dataclass(frozen=True)
class NewFile:
    """A file of a source to read: its size and modification time when it was listed, and
    its fingerprint when it had to be computed before reading (``None``: while reading)."""

    path: Path
    size: int
    modified_ns: int
    fingerprint: str | None


@dataclass(frozen=True)
class ReadFile:
    """A file all of whose rows have been read, as ``ingested_files`` records it."""

    fingerprint: str
    rows: int
    size: int | None = None
    modified_ns: int | None = None


T = TypeVar("T")


@dataclass
class Chunk:
    """Rows of a source read into memory: see :func:`_staged_chunks`."""

    rows: pa.Table | None
    files: list[tuple[str, ReadFile]]
    """The files whose last row is in it: name and record.  (Not a dict by name: two files
    of one name in different folders of a glob, ``data/*/orders.csv``, are two records.)"""
    unsplit: list[dict[str, Any]]
    """Rows that could not be split into fields: location, raw text and reason."""


@dataclass
class SourceReport:
    source: str
    table: str
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    profiles: int | None = None
    """For Segment sources: contact (profile) versions taken from identify calls."""
    forgotten: int | None = None
    """With ``reload``: the rows loaded before that were deleted, so that every file of the
    source is read again (its profile versions included, for a Segment source)."""
    read_as_utf8: list[str] = field(default_factory=list)
    """Files of a source declared in another encoding that were read as UTF-8, their bytes
    being UTF-8 text (:func:`loupe.ingest.readers.utf8_instead`)."""

    @property
    def reconciled(self) -> bool:
        return self.read == self.loaded + self.quarantined + self.duplicates


@dataclass
class IngestReport:
    batch: str
    sources: dict[str, SourceReport]

    def to_dict(self) -> dict[str, Any]:
        keys = ("read", "loaded", "quarantined", "duplicates")
        total = {k: sum(getattr(s, k) for s in self.sources.values()) for k in keys}
        return {
            "batch": self.batch,
            "sources": {
                name: {**asdict(s), "reconciled": s.reconciled} for name, s in self.sources.items()
            },
            "total": total,
        }


def ingest(
    wh: Warehouse,
    only: list[str] | None = None,
    progress: Progress | None = None,
    reload: bool = False,
    limit: int | None = None,
) -> IngestReport:
    """Load the sources declared in ``loupe.toml`` (or those named in ``only``).

    With ``reload``, each source first forgets what it loaded (:func:`forget`), so all its
    files are read again: after a change to its settings (mapping, ``decimal``,
    ``date_order``, ``timezone``, ``encoding``), which does not change the files and so
    would not make ingest read them.

    With ``limit``, at most that many rows of each source are read, its files in name order,
    and a file read in part is not recorded as read: for a preview into a throwaway
    warehouse (:mod:`loupe.ingest.preview`).
    """
    settings = wh.settings
    sources = declared_sources(settings, only)
    batch = uuid.uuid4().hex[:12]
    report = IngestReport(batch, {})
    tables = sorted({f"raw_{s.target_table}" for s in sources})
    if reload:  # a source without files stops here, before anything is forgotten
        for source in sources:
            if source.format != "sql":
                readers.find_files(source, settings.root)
    with stage_run(wh, "ingest", [s.name for s in sources], ["quarantine", *tables]) as run:
        for source in sources:
            report.sources[source.name] = SourceReport(source.name, source.target_table)
            if source.format == "segment":
                report.sources[source.name].profiles = 0
            if reload:
                report.sources[source.name].forgotten = forget(wh, source)
        _load_sources(wh, sources, report, batch, progress, limit)
        run.rows_in = sum(s.read for s in report.sources.values())
        run.rows_out = sum(s.loaded for s in report.sources.values())
        for name in (PARSED, TYPED, PROFILES):
            wh.drop(name)
    return report


def declared_sources(settings: Settings, only: list[str] | None = None) -> list[SourceSettings]:
    """The sources of ``loupe.toml`` (those named in ``only``, each of which must be declared);
    a clear error when there are none."""
    sources = settings.sources if not only else [settings.source(n) for n in only]
    if not sources:
        raise SourceError(
            "No sources are declared",
            where=str(settings.root / "loupe.toml"),
            fix="add [[sources]] entries (see `loupe init` for an example)",
        )
    return sources


def forget(wh: Warehouse, source: SourceSettings) -> int:
    """Delete what ``source`` loaded: its rows in its ``raw_`` table (and, for a Segment
    source, the profile versions it gave ``raw_contacts``), its quarantined rows and its
    files in ``ingested_files``.  Returns the ``raw_`` rows deleted.  The next ingest then
    reads every file of the source as new."""
    tables = {f"raw_{source.target_table}"}
    if source.format == "segment":
        tables.add("raw_contacts")
    gone = sum(wh.delete_rows(t, "source", [source.name]) for t in sorted(tables))
    wh.delete_rows("quarantine", "source", [source.name])
    wh.delete_rows("ingested_files", "source", [source.name])
    return gone


def _new_files(wh: Warehouse, source: SourceSettings, rep: SourceReport) -> list[NewFile]:
    """The source's files not loaded yet; the others go to ``rep.skipped_files``.

    A file is skipped when a file of the same name, size and modification time was loaded
    (the quick check of rsync and make), or when its content was loaded under any name (its
    fingerprint).  Only files that could match a loaded one by content are hashed here: those
    whose size equals a loaded file's or another new file's (and all of them while older
    records have no size).  The others cannot have been loaded, and a line-based file is
    hashed as it is read: hashing every file first read the whole input twice (46.6 s of the
    1M-customer ingest, 28 GB).  A Parquet file is hashed here, since it is not read by block.
    """
    files = readers.find_files(source, wh.settings.root)
    stats = {p: _stat(source, p) for p in files}
    seen = wh.to_pandas(
        wh.table("ingested_files")
        .filter(ibis._.source == source.name)
        .select("file", "fingerprint", "size", "modified_ns")
    )
    known = seen.dropna(subset=["size", "modified_ns"])
    unsized = set(zip(seen["file"], seen["fingerprint"], strict=True)).difference(
        zip(known["file"], known["fingerprint"], strict=True)
    )  # (file, fingerprint) recorded before sizes were
    unchanged = {
        (str(f), int(n), int(m))
        for f, n, m in zip(known["file"], known["size"], known["modified_ns"], strict=True)
    }
    loaded = set(seen["fingerprint"])
    candidates = [
        p for p in files if (p.name, stats[p].st_size, stats[p].st_mtime_ns) not in unchanged
    ]
    sizes = Counter(stats[p].st_size for p in candidates)
    loaded_sizes = {int(n) for n in known["size"]}
    by_block = source.format in LINE_FORMATS
    to_hash = [
        p
        for p in candidates
        if not by_block
        or unsized
        or stats[p].st_size in loaded_sizes
        or sizes[stats[p].st_size] > 1
    ]
    # Hashing releases the GIL, so files are hashed side by side (one per core, at most four
    # reading at once): the 2.8 GB of the 100k-customer company took 6-8 s in one thread and
    # 2.8 s in two.
    workers = max(1, min(len(to_hash), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        fps = pool.map(lambda p: _fingerprint(source, p), to_hash)
        hashed = dict(zip(to_hash, fps, strict=True))
    new = []
    listed = set(candidates)
    sized: dict[tuple[str, str], tuple[int, int]] = {}
    for path in files:
        st = stats[path]
        fp = hashed.get(path)
        if path not in listed or (fp is not None and fp in loaded):
            rep.skipped_files.append(path.name)
            if (path.name, fp) in unsized:
                sized[(path.name, str(fp))] = (st.st_size, st.st_mtime_ns)
            continue
        if fp is not None:
            loaded.add(fp)  # the same content twice under two names loads once
        new.append(NewFile(path, st.st_size, st.st_mtime_ns, fp))
    if sized:
        _record_sizes(wh, source.name, sized)
    return new


def _stat(source: SourceSettings, path: Path) -> os.stat_result:
    with readers.readable(source, path):
        return path.stat()


def _fingerprint(source: SourceSettings, path: Path) -> str:
    with readers.readable(source, path):
        return readers.fingerprint(path)


def _record_sizes(
    wh: Warehouse, source: str, sized: dict[tuple[str, str], tuple[int, int]]
) -> None:
    """Give rows of ``ingested_files`` recorded before migration 7 the size and modification
    time of their file, found unchanged by its content, so the next run skips it unopened."""
    fill = ibis.memtable(
        pa.table(
            {
                "_file": [f for f, _ in sized],
                "_fingerprint": [fp for _, fp in sized],
                "_size": [n for n, _ in sized.values()],
                "_modified_ns": [m for _, m in sized.values()],
            }
        )
    )
    files = wh.table("ingested_files")
    match = (
        (files.source == source)
        & (files.file == fill._file)
        & (files.fingerprint == fill._fingerprint)
        & files["size"].isnull()
    )
    j = files.left_join(fill, match)
    filled = j.mutate(
        size=j["size"].fill_null(j._size), modified_ns=j.modified_ns.fill_null(j._modified_ns)
    )
    wh.replace("ingested_files", filled.select(*INGESTED_FILES).cast(schema(INGESTED_FILES)))


def _batches(
    source: SourceSettings, path: Path, digest: readers.Digest | None
) -> Iterator[readers.Batch]:
    """The file's batches; a file that cannot be read (gone since it was listed, not readable,
    not Parquet) is a :class:`SourceError` naming it, here or when its batches are read."""
    if source.format in ("csv", "tsv"):
        with readers.readable(source, path):
            header, batches = readers.read_csv(source, path, digest)
            if header:  # an empty file has none, and no rows
                _check_csv_mapping(source, header, path)  # may read the header again
    elif source.format in ("jsonl", "segment"):
        if source.format == "jsonl":
            mapping.check_mapping(source, None, where=path.name)
        batches = readers.read_lines(path, source.encoding, digest)
    elif source.format in ("parquet", "excel"):
        read = readers.read_parquet if source.format == "parquet" else readers.read_excel
        with readers.readable(source, path):
            header, batches = read(source, path)
        mapping.check_mapping(source, header, where=path.name)
    else:
        raise AssertionError(source.format)
    return readers.guarded(source, path, batches)


#: Encodings a CSV export may be in instead of the declared one, most common first.
_OTHER_ENCODINGS = ("utf-8", "gbk", "gb18030", "big5", "shift_jis", "euc-kr", "cp1252")


def _encoding_that_maps(source: SourceSettings, path: Path) -> str | None:
    """Another encoding in which the file's header holds every mapped column (a GBK export
    declared UTF-8, or the other way round), or None."""
    import codecs

    first = readers.first_line(path)
    wanted = set(source.columns.values())
    declared = codecs.lookup(source.encoding).name
    for encoding in _OTHER_ENCODINGS:
        if codecs.lookup(encoding).name == declared:
            continue
        try:
            text = first.decode(encoding)
        except UnicodeDecodeError:
            continue
        if wanted and wanted <= set(readers.header_names(text, readers.delimiter_of(source))):
            return encoding
    return None


#: Delimiters a CSV export may use instead of the declared one (Excel in a locale whose
#: decimal mark is a comma writes ';').
_OTHER_DELIMITERS = (";", "\t", "|")


def _check_csv_mapping(source: SourceSettings, header: list[str], path: Path) -> None:
    """:func:`mapping.check_mapping`; when mapped columns are missing, an error names the
    encoding in which the header holds them, or the delimiter a header read as one column
    holds, instead of listing the header as it was misread."""
    try:
        mapping.check_mapping(source, header, where=path.name)
    except SourceError:
        missing = set(source.columns.values()) - set(header)
        encoding = _encoding_that_maps(source, path) if missing else None
        if encoding is not None:
            raise SourceError(
                f"Source {source.name!r}: the mapped columns are not in the header of "
                f"{path.name} read as {source.encoding}, but are when it is read as {encoding}",
                where=path.name,
                fix=f'set `encoding = "{encoding}"` on the source in loupe.toml',
            ) from None
        found = [d for d in _OTHER_DELIMITERS if len(header) == 1 and d in header[0]]
        if not found:
            raise
        shown = "\\t" if found[0] == "\t" else found[0]
        fix = f'set `delimiter = "{shown}"` on the source in loupe.toml'
        if found[0] == ";" and source.decimal == ".":
            fix += ', and `decimal = ","` if its numbers are written 12,50'
        raise SourceError(
            f"Source {source.name!r}: the header of {path.name} is one column, "
            f'{header[0]!r}; its columns look separated by "{shown}"',
            where=path.name,
            fix=fix,
        ) from None


@dataclass
class _Input:
    """A file (or SQL table) to read: its batches, and what ``ingested_files`` will record."""

    name: str
    batches: Iterator[readers.Batch]
    file: NewFile | None = None
    digest: readers.Digest | None = None

    def done(self, rows: int) -> ReadFile:
        """The record of the input once all its ``rows`` are read (the digest is complete)."""
        if self.file is None:
            return ReadFile("", rows)
        fp = self.file.fingerprint
        if fp is None:
            assert self.digest is not None
            fp = self.digest.hexdigest()
        return ReadFile(fp, rows, self.file.size, self.file.modified_ns)


def _inputs(source: SourceSettings, files: list[NewFile], root: Path) -> list[_Input]:
    """The new input of a source (its ``files`` not loaded yet, :func:`_new_files`), file by
    file; a SQL source's database file, if it has one, is found from the project folder
    ``root``.

    A CSV file's header is read and checked against the mapping here, before any row of the
    source is loaded."""
    if source.format == "sql":
        return [_Input(source.sql_table or "", readers.read_sql(source, root))]
    inputs = []
    for f in files:
        digest = readers.new_digest() if f.fingerprint is None else None
        inputs.append(_Input(f.path.name, _batches(source, f.path, digest), f, digest))
    return inputs


def _staged_chunks(
    source: SourceSettings,
    rep: SourceReport,
    inputs: list[_Input],
    limit: int | None = None,
) -> Iterator[Chunk]:
    """The input read into memory as text columns, about :data:`CHUNK_BYTES` at a time.

    Yields a :class:`Chunk` per chunk: its rows (``None`` when it holds none), the files
    whose last row it holds (so a file is recorded once all its rows are in, with the
    fingerprint computed as it was read), and the rows that could not be split into fields,
    for the caller to quarantine.  A chunk may end inside a file.

    It never touches the warehouse, and of ``rep`` it counts only ``read``: it runs in a
    reader thread of its own (:func:`_read_ahead`) while the caller types and commits the
    chunk before.

    With ``limit``, it stops once that many rows are read (:func:`_head`).
    """
    quarantined: list[dict[str, Any]] = []
    checked = False
    pending: list[pa.Table] = []
    size = 0
    files: list[tuple[str, ReadFile]] = []

    def chunk() -> Chunk:
        if not pending:
            return Chunk(None, files, quarantined)
        rows = pa.concat_tables(pending, promote_options="default")
        rows = rows.append_column(ROW, pa.array(np.arange(rows.num_rows, dtype=np.int64)))
        # DuckDB scans an Arrow table one record batch per thread, and a CSV file under
        # 64 MB is read as one batch: typing 2.75M order lines ran on one core (9.9 s).
        # Slices of STAGE_BATCH_ROWS rows (views, no copy) let every core take a share.
        rows = pa.Table.from_batches(rows.to_batches(max_chunksize=STAGE_BATCH_ROWS))
        return Chunk(rows, files, quarantined)

    for source_input in inputs:
        read_before = rep.read
        recorded = False
        # The next batch is read before one is given out, so a file ends (its digest
        # complete) in the chunk holding its last row. Recorded with the next chunk instead,
        # a file whose last row closed a chunk was read again, its rows counted as
        # duplicates, by a re-run after a failure in between.
        for b, last in readers.marking_last(source_input.batches):
            cut = False
            if limit is not None:
                b, cut = _head(b, limit - rep.read)
                last = last and not cut  # a file read in part is not recorded
            # (``pa.repeat``: a Python list of the name per row took 1.2 s per 3M rows)
            name_col = pa.repeat(pa.scalar(b.file, pa.string()), b.rows.num_rows)
            rows = b.rows.append_column("_file", name_col)
            if source.format == "sql" and not checked:
                header = [c for c in b.rows.column_names if c != readers.LINE]
                mapping.check_mapping(source, header, source.sql_table or "")
                checked = True
            if rows.num_rows:
                pending.append(rows)
                size += rows.nbytes
            rep.read += rows.num_rows + len(b.invalid)
            if b.utf8 and b.file not in rep.read_as_utf8:
                rep.read_as_utf8.append(b.file)
            quarantined += [
                {"location": f"{b.file}:{line}", "raw": raw, "reason": reason}
                for line, raw, reason in b.invalid
            ]
            if last:  # recorded with the chunk that holds its last row, not the next one
                files.append((source_input.name, source_input.done(rep.read - read_before)))
                recorded = True
            if cut or (limit is not None and rep.read >= limit):
                yield chunk()
                return
            if size >= CHUNK_BYTES:
                yield chunk()
                quarantined, pending, size, files = [], [], 0, []
        if not recorded:  # no batch at all (an empty file)
            files.append((source_input.name, source_input.done(rep.read - read_before)))
    yield chunk()


def _head(b: readers.Batch, room: int) -> tuple[readers.Batch, bool]:
    """The first ``room`` rows of a batch, those it split into fields and those it could not
    together, in line order; and whether any were left out."""
    if b.rows.num_rows + len(b.invalid) <= room:
        return b, False
    lines = np.concatenate(
        [b.rows[readers.LINE].to_numpy(), np.array([i[0] for i in b.invalid], dtype=np.int64)]
    )
    last = int(np.sort(lines)[room - 1]) if room > 0 else -1
    rows = b.rows.filter(pc.less_equal(b.rows[readers.LINE], last))
    return readers.Batch(b.file, rows, [i for i in b.invalid if i[0] <= last]), True


def _raw_text(source: SourceSettings, rows: pa.Table, index: np.ndarray) -> pa.Array:
    """The text, as read, of the staged ``rows`` at positions ``index``: the line of a JSON
    source; for the others the fields joined by the delimiter (without quotes)."""
    if source.format in ("jsonl", "segment"):
        cols = ["raw"]
    else:
        cols = [c for c in rows.column_names if c not in (readers.LINE, "_file", ROW)]
    taken = _take(rows.select(cols), index)
    if source.format in ("jsonl", "segment"):
        return taken.column("raw").combine_chunks()
    sep = source.delimiter or ("\t" if source.format == "tsv" else ",")
    parts = [pc.fill_null(taken.column(c), "") for c in cols]
    return pc.binary_join_element_wise(*parts, sep).combine_chunks()


def _take(rows: pa.Table, index: np.ndarray) -> pa.Table:
    """``rows.take(index)``, taken chunk by chunk: Arrow joins the chunks of a column into
    one before taking from it, a copy of the whole column (2.2 s for a few rows of 1 GB)."""
    batches = rows.to_batches()
    bounds = np.cumsum([0] + [b.num_rows for b in batches])
    which = np.searchsorted(bounds, index, side="right") - 1
    order = np.argsort(which, kind="stable")
    index, which = index[order], which[order]
    parts = [
        batches[k].take(pa.array(index[which == k] - bounds[k])) for k in np.unique(which).tolist()
    ]
    taken = pa.Table.from_batches(parts, schema=rows.schema)
    return taken.take(pa.array(np.argsort(order)))  # back in the order of ``index``


def _quarantine_rows(wh: Warehouse, source: str, rows: list[dict[str, Any]], batch: str) -> None:
    now = utcnow()
    table = pa.Table.from_pylist(
        [{"source": source, **r, "loaded_at": now, "batch": batch} for r in rows]
    )
    wh.append("quarantine", ibis.memtable(table).cast(schema(QUARANTINE)), count=False)


def _load_sources(
    wh: Warehouse,
    sources: list[SourceSettings],
    report: IngestReport,
    batch: str,
    progress: Progress | None,
    limit: int | None = None,
) -> None:
    """Load the sources' new input, one chunk at a time, into ``report``'s source reports.

    A chunk is read, typed and committed before the next is read, so memory and the work
    tables hold about :data:`CHUNK_BYTES` of text whatever the size of the source or of its
    files.  A row repeating one of an earlier chunk is found among the rows that chunk
    committed, so chunks count duplicates exactly as one pass would; a file is recorded once
    the chunk holding its last row lands.

    The files of every source are listed first, since that asks the warehouse
    (``ingested_files``); the reader thread then runs through the sources one after another,
    a chunk ahead of the loading, so the first chunk of a source is read while the last one
    of the source before it is loaded.  Read source by source, the loading waited for the
    first chunk of each: 14 of the 77 s of the 100k-customer ingest.
    """
    listed = [(s, report.sources[s.name]) for s in sources]
    files = [[] if s.format == "sql" else _new_files(wh, s, rep) for s, rep in listed]

    def chunks() -> Iterator[tuple[int, Chunk]]:
        for i, ((source, rep), new) in enumerate(zip(listed, files, strict=True)):
            inputs = _inputs(source, new, wh.settings.root)
            for chunk in _staged_chunks(source, rep, inputs, limit):
                yield i, chunk

    # The bar counts inputs (files, and a SQL source's table) as they land: by source, it
    # stood still through the events, most of the run.
    steps = sum(len(new) for new in files) + sum(s.format == "sql" for s in sources)
    done = 0
    if progress:
        progress("ingest", 0, steps)
    for i, chunk in _read_ahead(chunks()):
        source, rep = listed[i]
        rep.files += [name for name, _ in chunk.files]
        if chunk.unsplit:
            _quarantine_rows(wh, source.name, chunk.unsplit, batch)
            rep.quarantined += len(chunk.unsplit)
        if chunk.rows is not None:
            _load_staged(wh, source, rep, batch, chunk.rows)
        _record_files(wh, source, chunk.files, batch)
        done += len(chunk.files)
        if progress and chunk.files:
            progress("ingest", done, steps)
        del chunk  # only this chunk and the one being read are held
    if progress:  # complete also when nothing was new, or a limit left files unread
        progress("ingest", max(steps, 1), max(steps, 1))


def _read_ahead(chunks: Iterator[T]) -> Iterator[T]:
    """The chunks of ``chunks``, each next one read in a thread while the caller works on
    the one it was given.

    Reading (file blocks, line splitting, PyArrow's CSV parser) mostly runs without the
    GIL, and the engine's typing and commit leave a core idle part of the time: at 100k
    customers the ingest kept the two cores 160% busy, not 200%.  One chunk is read ahead,
    no more, so memory holds two chunks of text at most.  An error in the reader (a bad
    header, an unknown encoding) is raised here, in the caller's thread.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="loupe-read") as pool:
        ahead = pool.submit(next, chunks, None)
        while (chunk := ahead.result()) is not None:
            ahead = pool.submit(next, chunks, None)
            yield chunk
            del chunk  # not held while waiting for the next one: two chunks, not three


def _load_staged(
    wh: Warehouse, source: SourceSettings, rep: SourceReport, batch: str, rows: pa.Table
) -> None:
    """Type, check and commit a chunk's rows (text columns, in memory, numbered by ``_row``).

    The typing queries read the rows where they are (:meth:`Warehouse.reading`): on DuckDB
    that is a scan of the Arrow buffers, with no copy into a staging table first (that copy
    was read once, by the typing).  Measured, the saving is within the host's noise: 142-158 s
    against 155-157 s at 100k customers, and no gain at 1M (docs/architecture-notes.md).

    The work tables carry ``_row`` instead of the rows' text, and a rejected row's text is
    taken from ``rows`` by it (:func:`_quarantine`).  Copying the text of every row into the
    work tables, for the 0.1% that are rejected, was a fifth of the typing's cost
    (docs/ingest.md).
    """
    with wh.reading(rows) as staged:
        typed = _typed(wh, source, rep, batch, staged, rows)
    loaded, dupes, bad = _commit(wh, typed, source, source.target_table, batch, rows)
    rep.loaded += loaded
    rep.duplicates += dupes
    rep.quarantined += bad
    if source.format == "segment":
        assert rep.profiles is not None
        rep.profiles += _load_profiles(wh, typed, source, batch, rows)


def _typed(
    wh: Warehouse,
    source: SourceSettings,
    rep: SourceReport,
    batch: str,
    staged: ir.Table,
    rows: pa.Table,
) -> ir.Table:
    """The staged rows mapped and typed, with their row hash, in the work table TYPED."""
    backend = wh.backend
    if source.format in ("segment", "jsonl"):
        # Parse the JSON into text columns once, in a table of its own: typing then reads
        # plain columns (DuckDB would otherwise re-extract a field in every CASE branch).
        # Each document is validated once, in the same pass: a broken one is parsed as NULL
        # and flagged, then quarantined from the parsed table (validating the staged rows
        # a second time to find the broken ones cost 1.4 s per 2M events).
        checked = staged.select("_file", "_line", ROW, "raw", _why=_json_problem(staged, backend))
        ok = checked._why.isnull()
        docs = checked.select("_file", "_line", ROW, "_why", raw=ibis.ifelse(ok, checked.raw, None))
        if source.format == "segment":
            texts = mapping.segment_texts(docs, backend)
        else:
            texts = mapping.json_texts(docs, source, backend)
        parsed = wh.scratch(PARSED, docs.select("_file", "_line", ROW, "_why", **texts))
        broken = parsed.filter(parsed._why.notnull())
        rep.quarantined += _quarantine(wh, source, broken, broken._why, batch, rows)
        valid = parsed.filter(parsed._why.isnull())
        parsed_texts = {name: valid[name] for name in texts}
        typed = mapping.map_columns(valid, source, wh.settings, backend, parsed_texts)
    else:
        typed = mapping.map_columns(staged, source, wh.settings, backend)
    typed = wh.scratch(TYPED, _with_hash(typed, source.target_table))
    wh.drop(PARSED)
    return typed


def _json_problem(staged: ir.Table, backend: str) -> ir.StringValue:
    """Why a staged line is not a JSON object (NULL when it is one): ``not a JSON object`` (an
    array, a string, a number, ``null`` or plain text, parseable or not) or ``broken JSON``
    (an object cut short or malformed)."""
    raw = staged["raw"]
    # Only a line that does not start with "{" is trimmed (the CASE evaluates it alone).
    is_object = ibis.cases((raw.startswith("{"), True), else_=fn.strip(raw).startswith("{"))
    return ibis.cases(
        (~is_object.fill_null(False), "not a JSON object"),
        (~fn.json_valid(raw, backend), "broken JSON"),
        else_=ibis.null("string"),
    )


def _quarantine(
    wh: Warehouse,
    source: SourceSettings,
    bad: ir.Table,
    reason: ir.StringValue,
    batch: str,
    rows: pa.Table,
) -> int:
    """Quarantine the rows of ``bad`` (which has ``_file``, ``_line`` and ``_row``) with
    ``reason``, their text taken from the staged ``rows``; return how many."""
    found = wh.to_arrow(bad.select("_file", "_line", ROW, _reason=reason))
    if not found.num_rows:
        return 0
    found = found.sort_by([("_file", "ascending"), ("_line", "ascending")])
    location = pc.binary_join_element_wise(
        found["_file"], pc.cast(found["_line"], pa.string()), ":"
    )
    text = _raw_text(source, rows, found[ROW].to_numpy())
    table = pa.table(
        {
            "source": pa.repeat(pa.scalar(source.name, pa.string()), found.num_rows),
            "location": location,
            "raw": text,
            "reason": found["_reason"],
            "loaded_at": pa.repeat(pa.scalar(utcnow()), found.num_rows),
            "batch": pa.repeat(pa.scalar(batch, pa.string()), found.num_rows),
        }
    )
    wh.append("quarantine", table.cast(schema(QUARANTINE).to_pyarrow()), count=False)
    return found.num_rows


def _with_hash(typed: ir.Table, table: str) -> ir.Table:
    """``typed`` with ``_row_hash``, the content hash of its canonical columns.

    Computed where the typed rows are materialised, so the commit reads it instead of hashing
    twice (once to count distinct rows, once to append them).
    """
    return typed.mutate(_row_hash=fn.row_hash([typed[c] for c in RAW_COLUMNS[table]]))


def _commit(
    wh: Warehouse,
    typed: ir.Table,
    source: SourceSettings,
    table: str,
    batch: str,
    rows: pa.Table,
) -> tuple[int, int, int]:
    """Quarantine rejected rows, skip duplicates, append the rest; return the three counts.

    ``typed`` carries ``_row_hash`` (:func:`_with_hash`) and ``_row``.
    """
    is_bad = typed[mapping.REASON].notnull()
    counts = wh.to_pandas(typed.aggregate(n_bad=is_bad.sum().fill_null(0), n_all=typed.count()))
    n_bad = int(counts["n_bad"].iloc[0])
    n_good = int(counts["n_all"].iloc[0]) - n_bad
    if n_bad:
        bad = typed.filter(is_bad)
        _quarantine(wh, source, bad, bad[mapping.REASON], batch, rows)
    first = _first_of_repeats(wh, typed.filter(~is_bad))
    columns = list(RAW_COLUMNS[table])
    target = wh.table(f"raw_{table}")
    # No DISTINCT on the loaded hashes: an anti-join does not need one, and without it DuckDB
    # builds its hash table on the new chunk instead of on every row the source loaded so far
    # (a 700k-row chunk against 5.5M loaded events: 1.25 s with DISTINCT, 0.35 s without).
    existing = target.filter(target["source"] == source.name).select("_row_hash")
    fresh = first.anti_join(existing, "_row_hash")
    now = utcnow()
    new = fresh.select(
        *columns,
        _file=fresh["_file"],
        _line=fresh["_line"],
        _batch=ibis.literal(batch),
        _loaded_at=ibis.literal(now),
        _row_hash=fresh["_row_hash"],
    ).cast({**RAW_COLUMNS[table], **LINEAGE})
    loaded = wh.append(f"raw_{table}", new)
    return loaded, n_good - loaded, n_bad


def _first_of_repeats(wh: Warehouse, rows: ir.Table) -> ir.Table:
    """``rows`` without the repeats of a row: of each hash, the row read first (lowest
    ``_row``: files in name order, lines in order).

    One aggregate over the hashes finds the repeated ones and the row each keeps; that small
    result is matched against the rows.  This aggregate is the only pass over the hashes: a
    count of distinct hashes, to skip it when nothing repeats, cost as much as it does (0.55 s
    per 2.7M hashes), and most sources do repeat rows.  A row-number window over every row (an
    earlier form) sorted them all: 9.4 of 12.6 CPU-seconds of committing 2.3M events with 7k
    repeats.  (Built in one statement, DuckDB materialised all the rows to read them twice.)
    """
    repeats = wh.to_pandas(
        rows.group_by(_h=rows["_row_hash"]).having(rows.count() > 1).agg(_keep=rows[ROW].min())
    )
    if repeats.empty:
        return rows
    keep = ibis.memtable(repeats, schema={"_h": "string", "_keep": "int64"})
    j = rows.left_join(keep, rows["_row_hash"] == keep._h)
    kept = j.filter(j._keep.isnull() | (j[ROW] == j._keep))
    return kept.drop("_h", "_keep")


def _load_profiles(
    wh: Warehouse, events: ir.Table, source: SourceSettings, batch: str, rows: pa.Table
) -> int:
    """Contact versions from identify calls with traits (Segment user profiles).

    An identify call is a new version of its user's profile only when the profile it gives
    differs from the user's previous one, apart from the time (``updated_at``): apps call
    identify at every login, and at 1M customers 6.9M calls carried 1.16M distinct profiles.
    Storing each call as a version made ``raw_contacts`` 2.7 times the size of its distinct
    records, and quality then ranked the repeats only to discard them.  The previous version is
    the user's previous call in this chunk (by time, then line), or else the version quality
    would keep of those loaded before (:func:`_latest_versions`), so a user who changes an
    e-mail and changes it back gets three versions, and the latest is the one in force.

    A rejected version is quarantined with the text of its identify call (its line).
    """
    ident = events.filter(
        (events["type"] == "identify")
        & events["user_id"].notnull()
        & events["traits"].notnull()
        & events[mapping.REASON].isnull()
    )
    # A call whose traits text repeats the user's previous call in the chunk gives the same
    # profile: it is dropped before the typing (one month of app events at 1M customers: 96.7k
    # of 129.1k calls are typed).
    # (A column first, then the filter: Ibis puts a window inside a filter in a subquery
    # that Spark cannot resolve.)
    order = [ident["ts"], ident[ROW]]
    ident = ident.mutate(_previous=ident["traits"].lag().over(group_by="user_id", order_by=order))
    ident = ident.filter(ident._previous.isnull() | (ident._previous != ident["traits"]))
    ident = ident.drop("_previous")
    profile_source = source.model_copy(update={"table": "contacts", "format": "jsonl"})
    texts: dict[str, ir.Value] = dict(mapping.segment_profile_texts(ident, wh.backend))
    texts["updated_at"] = ident["ts"]
    profiles = _with_hash(
        mapping.map_columns(ident, profile_source, wh.settings, wh.backend, texts), "contacts"
    )
    # Materialised once: the commit reads it three times (counts, quarantine, append), and
    # the typing and validation of every trait would otherwise run each time.
    typed = wh.scratch(PROFILES, _changed_versions(wh, profiles, source.name))
    loaded, _, _ = _commit(wh, typed, profile_source, "contacts", batch, rows)
    return loaded


#: The columns of a contact version that make it differ from the previous one: all but the
#: time it was seen (and the source, which is the same).
_PROFILE_CONTENT = [c for c in RAW_COLUMNS["contacts"] if c not in ("source", "updated_at")]


def _changed_versions(wh: Warehouse, profiles: ir.Table, source: str) -> ir.Table:
    """The typed profile versions (rejected ones included) whose content differs from their
    user's previous version: the previous row of the user here, by ``updated_at`` and
    ``_row``, or for the user's first row the latest version loaded before."""
    content = fn.row_hash([profiles[c] for c in _PROFILE_CONTENT])
    t = profiles.mutate(_content=content)
    previous = t._content.lag().over(group_by=t["source_key"], order_by=[t["updated_at"], t[ROW]])
    t = t.mutate(_previous=previous)
    loaded = _latest_versions(wh, source, t.select(_key=t["source_key"]).distinct())
    j = t.left_join(loaded, t["source_key"] == loaded._key)
    before = ibis.coalesce(j._previous, j._loaded)
    keep = j[mapping.REASON].notnull() | before.isnull() | (before != j._content)
    return j.filter(keep).drop("_content", "_previous", "_key", "_loaded")


def _latest_versions(wh: Warehouse, source: str, keys: ir.Table) -> ir.Table:
    """``(_key, _loaded)``: for each user of ``keys`` with versions of ``source`` in
    ``raw_contacts``, the content hash of the version quality keeps (``version_order``)."""
    target = wh.table("raw_contacts")
    mine = target.filter(target["source"] == source)
    mine = mine.semi_join(keys, mine["source_key"] == keys._key)
    order = version_order("contacts")
    ranked = mine.mutate(
        _rank=ibis.row_number().over(group_by=mine["source_key"], order_by=order),
        _loaded=fn.row_hash([mine[c] for c in _PROFILE_CONTENT]),
    )
    latest = ranked.filter(ranked._rank == 0)
    return latest.select(_key=latest["source_key"], _loaded=latest._loaded)


def _record_files(
    wh: Warehouse, source: SourceSettings, files: list[tuple[str, ReadFile]], batch: str
) -> None:
    if source.format == "sql" or not files:
        return
    now = utcnow()
    rows = [
        {
            "source": source.name,
            "file": name,
            "fingerprint": f.fingerprint,
            "rows": f.rows,
            "batch": batch,
            "loaded_at": now,
            "size": f.size,
            "modified_ns": f.modified_ns,
        }
        for name, f in files
    ]
    table = pa.Table.from_pylist(rows, schema=schema(INGESTED_FILES).to_pyarrow())
    wh.append("ingested_files", table, count=False)
