"""Import contacts from a CSV or TXT file: streamed, parsed on every core, all or nothing.

The file is read once, in chunks; worker processes parse the phone numbers (the costly
part); the parsed rows stream into staging tables; the upsert runs at the end, inside the
same transaction. Memory stays flat whatever the file's size, and a crash at any point
leaves the database untouched.
"""

from __future__ import annotations

import codecs
import collections
import csv
import dataclasses
import io
import multiprocessing
import os
import resource
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from bot.contacts import Tag
from bot.db import Database
from bot.import_rows import Layout, RowParser, printable
from bot.import_staging import Staging, encode_batch
from bot.spreadsheet import formula_safe

TXT_LIMIT = 10 * 1024 * 1024
CHUNK_ROWS = 4000
SNIFF_BYTES = 64 * 1024


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (nothing was imported)."""


@dataclasses.dataclass
class ImportReport:
    """The outcome of one import."""

    imported: int
    updated: int
    rejected: int
    encoding: str
    seconds: float
    rejects_path: Path | None
    # Largest resident set of a parsing worker process (KiB; 0 when parsed in-process).
    worker_peak_rss_kb: int = 0

    @property
    def rows(self) -> int:
        """Rows read (imported + updated + rejected)."""
        return self.imported + self.updated + self.rejected


ProgressFn = Callable[[int], None]

_worker_parser: RowParser | None = None


_worker_dialect = ""


def _init_worker(region: str, layout: Layout | None, dialect: str) -> None:
    global _worker_parser, _worker_dialect
    _worker_parser = RowParser(region, layout)
    _worker_dialect = dialect


def _parse_in_worker(chunk: list[tuple[int, list[str]]]):  # type: ignore[no-untyped-def]
    assert _worker_parser is not None
    # Encoding for the database here, on the worker's core, keeps the main process
    # (which reads the file and feeds the database) from becoming the bottleneck.
    batch = encode_batch(_worker_dialect, *_worker_parser.parse_chunk(chunk))
    return batch, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def detect_encoding(sample: bytes) -> str:
    """Guess a file's encoding from its first bytes.

    Returns ``utf-8-sig`` when the sample is UTF-8 (a cut last character is fine), else
    ``cp1252`` (Excel's "CSV" on Windows, a superset of Latin-1's printable range).
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def import_file(
    db: Database,
    path: str | Path,
    *,
    region: str,
    tags: list[Tag] | None = None,
    encoding: str = "auto",
    rejects_path: str | Path | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import ``path``; write rejected rows (with line and reason) to ``rejects_path``.

    Raises ``ImportFileError`` when the file as a whole is unusable (missing, too large,
    no phone column); then nothing is imported.
    """
    started = time.perf_counter()
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read ({exc.strerror})") from None
    is_txt = path.suffix.lower() == ".txt"
    if is_txt and size > TXT_LIMIT:
        raise ImportFileError(f"{path}: a .txt list may be at most 10 MB, this one is {size / 1e6:.1f} MB; use a CSV")
    with path.open("rb") as raw:
        if encoding == "auto":
            encoding = detect_encoding(raw.read(SNIFF_BYTES))
            raw.seek(0)
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ImportFileError(f"--encoding: unknown encoding {encoding!r}") from None
        text = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
        rows = _read_rows(text, is_txt, path)
        layout = next(rows)
        header = ["phone"] if layout is None else layout.header
        out = Path(rejects_path) if rejects_path else path.with_name(path.stem + ".rejects.csv")
        tmp = out.with_name(out.name + ".partial")
        peak = [0]
        try:
            imported, updated, rejected = _run(
                db,
                rows,
                region,
                layout,
                tags or [],
                workers,
                _Progress(raw, progress),
                lambda rejects: _write_rejects(tmp, header, rejects),
                peak,
            )
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    if rejected:
        os.replace(tmp, out)
    return ImportReport(
        imported,
        updated,
        rejected,
        encoding,
        time.perf_counter() - started,
        out if rejected else None,
        worker_peak_rss_kb=peak[0],
    )


def _read_rows(text: io.TextIOWrapper, is_txt: bool, path: Path) -> Iterator:  # type: ignore[type-arg]
    """Yield the layout first, then ``(line, cells)`` for every data row."""
    if is_txt:
        yield None
        for number, line in enumerate(text, start=1):
            yield number, [line.rstrip("\r\n")]
        return
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{path}: the file is empty") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}:1: {exc}") from None
    try:
        yield Layout.from_header(header)
    except ValueError as exc:
        raise ImportFileError(f"{path}: {exc}") from None
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"{path}:{line}: {exc} (nothing was imported)") from None
        yield line, cells
        line = reader.line_num + 1


class _Progress:
    def __init__(self, raw: io.BufferedReader, callback: ProgressFn | None) -> None:
        self.raw = raw
        self.callback = callback

    def tick(self) -> None:
        if self.callback is not None:
            self.callback(self.raw.tell())


def _chunks(rows: Iterator, size: int = CHUNK_ROWS) -> Iterator[list]:  # type: ignore[type-arg]
    chunk: list = []  # type: ignore[type-arg]
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse_in_pool(rows, region, layout, workers, dialect, peak):  # type: ignore[no-untyped-def]
    """Parse chunks on ``workers`` processes, in file order, a few chunks ahead at most.

    A worker that dies raises BrokenProcessPool here (the import then rolls back)
    instead of leaving the import waiting forever.
    """
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(region, layout, dialect)
    ) as pool:
        pending: collections.deque[Future] = collections.deque()  # type: ignore[type-arg]
        for chunk in _chunks(rows):
            pending.append(pool.submit(_parse_in_worker, chunk))
            if len(pending) >= workers * 3:
                yield _note_peak(pending.popleft().result(), peak)
        while pending:
            yield _note_peak(pending.popleft().result(), peak)


def _note_peak(result, peak):  # type: ignore[no-untyped-def]
    batch, rss_kb = result
    peak[0] = max(peak[0], rss_kb)
    return batch


def _run(db, rows, region, layout, tags, workers, progress, write_rejects, peak):  # type: ignore[no-untyped-def]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    with db.engine.connect() as conn:
        try:
            with conn.begin():
                staging = Staging(conn)
                if workers <= 1:
                    parser = RowParser(region, layout)
                    for chunk in _chunks(rows):
                        staging.add(encode_batch(staging.dialect, *parser.parse_chunk(chunk)))
                        progress.tick()
                else:
                    for batch in _parse_in_pool(rows, region, layout, workers, staging.dialect, peak):
                        staging.add(batch)
                        progress.tick()
                imported, updated = staging.apply(tags)
                rejected = staging.reject_count()
                # Written before the commit (to a temporary name), so that a failure
                # here imports nothing rather than losing the reasons.
                if rejected:
                    write_rejects(staging.rejects())
        finally:
            conn.rollback()
            Staging.drop_tables(conn)
            conn.commit()
    return imported, updated, rejected


def _write_rejects(tmp: Path, header: list[str], rejects: Iterator[tuple[int, str, list[str]]]) -> None:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line", "reason", *header])
        for line, reason, cells in rejects:
            writer.writerow([line, formula_safe(reason), *(formula_safe(c) for c in printable(cells))])
