"""The moving parts of an import: parsing on every core, writing on one connection.

The main thread reads the file and hands chunks to worker processes (phone parsing is
the costly part); a writer thread stages their output and applies it batch by batch.
The database works on one batch while the workers parse the next, and a bounded queue
between them keeps memory flat.
"""

from __future__ import annotations

import collections
import multiprocessing
import queue
import resource
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from bot.contacts import Tag
from bot.db import Database
from bot.import_rows import Layout, RowParser
from bot.import_staging import Batch, Staging, encode_batch

CHUNK_ROWS = 4000
APPLY_ROWS = 100_000
_DONE = object()

_worker_parser: RowParser | None = None
_worker_dialect = ""


def _init_worker(region: str, layout: Layout | None, dialect: str, tags: list[Tag]) -> None:
    global _worker_parser, _worker_dialect
    _worker_parser = RowParser(region, layout, tags)
    _worker_dialect = dialect


def _parse_in_worker(chunk: list[tuple[int, list[str]]]) -> tuple[int, Batch, int]:
    assert _worker_parser is not None
    # Encoding for the database here, on the worker's core, keeps the main process
    # (which reads the file) from becoming the bottleneck.
    batch = encode_batch(_worker_dialect, *_worker_parser.parse_chunk(chunk))
    return len(chunk), batch, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """Group rows into lists of ``size``."""
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parsed_batches(
    rows: Iterator[Any],
    region: str,
    layout: Layout | None,
    dialect: str,
    workers: int,
    peak: list[int],
    tags: list[Tag] | None = None,
) -> Iterator[tuple[int, Batch]]:
    """Yield ``(rows in chunk, encoded batch)`` in file order.

    With several workers, a few chunks are in flight at most; a worker that dies
    raises BrokenProcessPool here instead of leaving the import waiting forever.
    """
    if workers <= 1:
        parser = RowParser(region, layout, tags or [])
        for chunk in chunks(rows, CHUNK_ROWS):
            yield len(chunk), encode_batch(dialect, *parser.parse_chunk(chunk))
        return
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(region, layout, dialect, tags or [])
    ) as pool:
        pending: collections.deque[Future[tuple[int, Batch, int]]] = collections.deque()

        def take() -> tuple[int, Batch]:
            n, batch, rss = pending.popleft().result()
            peak[0] = max(peak[0], rss)
            return n, batch

        for chunk in chunks(rows, CHUNK_ROWS):
            pending.append(pool.submit(_parse_in_worker, chunk))
            if len(pending) >= workers * 4:
                yield take()
        while pending:
            yield take()


class Writer(threading.Thread):
    """Owns the import's connection and transaction; stages and applies batches.

    ``finish`` (called on the writer's connection, inside the transaction, after the
    last batch) writes the rejects before the commit.
    """

    def __init__(self, db: Database, finish: Callable[[Staging], None]) -> None:
        super().__init__(name="import-writer", daemon=True)
        self.db = db
        self.finish = finish
        self.inbox: queue.Queue[Any] = queue.Queue(maxsize=16)
        self.error: BaseException | None = None
        self.abort = threading.Event()
        self.dialect = db.dialect
        self.result: tuple[int, int, int] | None = None
        # (imported, updated, rejected) so far, after each applied batch: read by the
        # main thread for progress reports (one tuple, replaced whole, so never torn).
        self.so_far: tuple[int, int, int] = (0, 0, 0)

    def put(self, item: Any) -> None:
        """Hand a batch over, waiting while the queue is full; re-raise a writer failure."""
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.inbox.put(item, timeout=0.2)
                return
            except queue.Full:
                if not self.is_alive():
                    raise RuntimeError("the import writer stopped") from self.error

    def run(self) -> None:
        """Stage and apply until the end marker; keep any failure for the main thread."""
        try:
            with self.db.engine.connect() as conn:
                try:
                    with conn.begin():
                        staging = Staging(conn)
                        pending = 0
                        while True:
                            item = self.inbox.get()
                            if self.abort.is_set():
                                raise _Aborted
                            if item is _DONE:
                                break
                            n, batch = item
                            staging.add(batch)
                            pending += n
                            if pending >= APPLY_ROWS:
                                staging.apply()
                                pending = 0
                                self.so_far = (staging.imported, staging.updated, staging.reject_count())
                        staging.apply()
                        rejected = staging.reject_count()
                        if rejected:
                            self.finish(staging)
                        self.result = (staging.imported, staging.updated, rejected)
                finally:
                    conn.rollback()
                    Staging.drop_tables(conn)
                    conn.commit()
                if self.result is not None and self.result[0] >= APPLY_ROWS:
                    # Fresh statistics after a big load, so that segment counts plan well
                    # straight away instead of after the next autovacuum.
                    conn.exec_driver_sql("ANALYZE contacts")
                    conn.exec_driver_sql("ANALYZE contact_tags")
                    conn.commit()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises
            self.error = exc

    def close(self) -> tuple[int, int, int]:
        """Send the end marker, wait, and return (imported, updated, rejected)."""
        self.put(_DONE)
        self.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        """Stop without committing (the main thread failed)."""
        self.abort.set()
        while self.is_alive():
            try:
                self.inbox.put(_DONE, timeout=0.2)
                break
            except queue.Full:
                continue
        self.join()


class _Aborted(Exception):
    """The main thread gave up; roll back."""
