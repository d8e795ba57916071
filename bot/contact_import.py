"""Import contacts from a CSV or TXT file: streamed, parsed on every core, all or nothing.

The file is read in pieces (``bot.import_source``); worker processes split them into rows
and parse those (phone parsing is the costly part); a writer thread stages the parsed rows
and upserts them batch by batch, all inside one transaction (see ``bot.import_pipeline``).
Memory stays flat whatever the file's size, and a crash at any point leaves the database
untouched.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bot.contacts import Tag
from bot.db import Database
from bot.import_pipeline import Writer, parsed_batches
from bot.import_rows import printable
from bot.import_source import FileProblem, read_pieces, read_rows
from bot.import_staging import ContactIds, Staging
from bot.spreadsheet import formula_safe

TXT_LIMIT = 10 * 1024 * 1024
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


@dataclasses.dataclass(frozen=True)
class ImportCounts:
    """How far an import has got: bytes and rows read, and the rows applied so far.

    ``imported``, ``updated`` and ``rejected`` move in steps: they are known once a batch
    of ~100,000 rows is applied, and for the whole file at the end.
    """

    bytes_read: int
    rows: int
    imported: int
    updated: int
    rejected: int


CountsFn = Callable[[ImportCounts], None]


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
    on_counts: CountsFn | None = None,
) -> ImportReport:
    """Import ``path``; write rejected rows (with line and reason) to ``rejects_path``.

    ``progress`` is called with the bytes read after each chunk of rows; ``on_counts``
    with an ``ImportCounts`` then too (a console's progress bar).

    Raises ``ImportFileError`` when the file as a whole is unusable (missing, too large,
    no phone column, broken quoting); then nothing is imported.
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
    if encoding == "auto":
        with path.open("rb") as raw:
            encoding = detect_encoding(raw.read(SNIFF_BYTES))
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ImportFileError(f"--encoding: unknown encoding {encoding!r}") from None
    workers = workers if workers is not None else (os.cpu_count() or 1)
    out = Path(rejects_path) if rejects_path else path.with_name(path.stem + ".rejects.csv")
    tmp = out.with_name(out.name + ".partial")
    peak = [0]

    with _open_text(path, encoding) as text:
        raw = text.buffer
        try:
            layout, pieces = read_pieces(text, is_txt)
        except FileProblem as exc:
            raise ImportFileError(exc.where(path)) from None
        header = ["phone"] if layout is None else layout.header

        def finish(staging: Staging) -> None:
            # Written before the commit (to a temporary name), so that a failure here
            # imports nothing rather than losing the reasons.
            with _open_text(path, encoding) as again:
                _write_rejects(tmp, header, staging.rejects(), read_rows(again, is_txt))

        # Contact ids are drawn ahead on PostgreSQL (see bot.import_staging).
        ids = ContactIds(db) if db.dialect == "postgresql" else None
        writer = Writer(db, finish)
        writer.start()
        read = 0
        try:
            try:
                for n, batch in parsed_batches(pieces, is_txt, region, layout, db.dialect, workers, peak, tags, ids):
                    writer.put((n, batch))
                    read += n
                    if progress is not None:
                        progress(raw.tell())
                    if on_counts is not None:
                        on_counts(ImportCounts(raw.tell(), read, *writer.so_far))
            except FileProblem as exc:
                raise ImportFileError(exc.where(path)) from None
            imported, updated, rejected = writer.close()
        except BaseException:
            writer.cancel()
            tmp.unlink(missing_ok=True)
            raise
        finally:
            if ids is not None:
                ids.close()
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


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    # surrogateescape: a bad byte becomes a marker that rejects its row, not the file.
    return path.open(encoding=encoding, errors="surrogateescape", newline="")


def _write_rejects(
    tmp: Path,
    header: list[str],
    rejects: Iterator[tuple[int, str, list[str] | None]],
    source: Iterator[tuple[int, list[str]]],
) -> None:
    """Write line, reason and the original cells; duplicates' cells come from ``source``."""
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line", "reason", *header])
        for line, reason, cells in rejects:
            if cells is None:
                # Both run in line order, so one pass over the file finds them all.
                for number, found in source:
                    if number == line:
                        cells = found
                        break
            writer.writerow([line, formula_safe(reason), *(formula_safe(c) for c in printable(cells or []))])
