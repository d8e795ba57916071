"""The moving parts of an import: parsing on every core, writing on one connection.

The main thread reads the file and hands pieces of it to worker processes, which split
them into rows and parse those (phone parsing is the costly part; see
``bot.import_source``); a writer thread stages their output and applies it batch by batch.
The database works on one batch while the workers parse the next, and a bounded queue
between them keeps memory flat.
"""

from __future__ import annotations

import collections
import csv
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
from bot.import_source import Piece, count_rows, split_piece
from bot.import_staging import Batch, IdBlock, Staging, encode_batch

APPLY_ROWS = 100_000
_DONE = object()


class _PieceParser:
    """Splits, parses and encodes pieces of one import (one per worker process)."""

    def __init__(self, is_txt: bool, region: str, layout: Layout | None, dialect: str, tags: list[Tag]) -> None:
        self.is_txt = is_txt
        self.rows = RowParser(region, layout, tags)
        self.dialect = dialect

    def __call__(self, piece: Piece, ids: IdBlock | None) -> tuple[int, Batch]:
        rows = split_piece(piece, self.is_txt)
        if isinstance(ids, tuple):
            ids = range(ids[0], ids[0] + ids[1])
        if ids is not None and len(ids) != len(rows):
            raise RuntimeError(f"{len(ids)} contact ids drawn for a piece of {len(rows)} rows")
        # Encoding for the database here, on the worker's core, keeps the main process
        # (which reads the file) from becoming the bottleneck.
        return len(rows), encode_batch(self.dialect, *self.rows.parse_chunk(rows, ids))


_worker: _PieceParser | None = None


def _init_worker(field_limit: int, *args: Any) -> None:
    global _worker
    csv.field_size_limit(field_limit)
    _worker = _PieceParser(*args)


def _parse_in_worker(piece: Piece, ids: IdBlock | None) -> tuple[int, Batch, int]:
    assert _worker is not None
    n, batch = _worker(piece, ids)
    return n, batch, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def parsed_batches(
    pieces: Iterator[Piece],
    is_txt: bool,
    region: str,
    layout: Layout | None,
    dialect: str,
    workers: int,
    peak: list[int],
    tags: list[Tag] | None = None,
    ids: Callable[[int], IdBlock] | None = None,
) -> Iterator[tuple[int, Batch]]:
    """Yield ``(rows in piece, encoded batch)`` in file order.

    ``ids`` draws contact ids for a number of rows (PostgreSQL): each row gets one.

    With several workers, a few pieces are in flight at most; a worker that dies
    raises BrokenProcessPool here instead of leaving the import waiting forever.
    """
    args = (is_txt, region, layout, dialect, tags or [])
    if workers <= 1:
        parse = _PieceParser(*args)
        for piece in pieces:
            yield parse(piece, ids(count_rows(piece)) if ids else None)
        return
    ctx = multiprocessing.get_context("forkserver")
    # The server imports the parsing code once; each worker starts from a copy of it.
    ctx.set_forkserver_preload(["bot.import_pipeline"])
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(csv.field_size_limit(), *args)
    ) as pool:
        pending: collections.deque[Future[tuple[int, Batch, int]]] = collections.deque()

        def take() -> tuple[int, Batch]:
            n, batch, rss = pending.popleft().result()
            peak[0] = max(peak[0], rss)
            return n, batch

        for piece in pieces:
            pending.append(pool.submit(_parse_in_worker, piece, ids(count_rows(piece)) if ids else None))
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
