"""The sending threads of a batch job: a queue of sends in, a queue of outcomes out.

``concurrent.futures.ThreadPoolExecutor`` made a ``Future`` (with its own condition and
lock) for every send, and the job found the finished ones by asking each future in flight
whether it was done, several times a chunk: at several hundred sends a second that was a
few per cent of the job's CPU, spent on bookkeeping. Here a thread puts each outcome on
one queue as it finishes, and the job takes what is there.

An exception raised by a send is handed to the job once collected (``raise_failure``
raises it), as ``Future.result`` did: a send is expected to turn every error into an
outcome, and the outcomes collected with it are stored first.

A worker runs batch job after batch job in one process: ``SendPool.lend`` hands each job
the threads the last one left idle (a pool is given back only when every send was
collected) instead of starting up to 96 threads for every batch and joining them at its
end. Pools are never shared by two jobs at once, and a forked process starts afresh.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T")

_STOP = None
POLL_S = 0.005
# Idle pools kept for the next job, by size: one per job running at once is plenty.
SPARE = 2


class Failed:
    """A send that raised instead of returning an outcome."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Outcomes(Generic[T]):
    """What every pool keeps: the sends submitted, and the outcomes finished, on one queue.

    A pool's sends put their outcomes (or ``Failed``) on ``_done``; the job's thread
    counts what it submits and collects.
    """

    def __init__(self) -> None:
        self._done: queue.SimpleQueue[T | Failed] = queue.SimpleQueue()
        self._submitted = 0  # by the job's thread only
        self._collected = 0
        self._failures: list[BaseException] = []

    @property
    def in_flight(self) -> int:
        """Sends submitted and not yet collected (running, queued, or finished and waiting)."""
        return self._submitted - self._collected

    def finished(self) -> int:
        """Sends finished and not yet collected."""
        return self._done.qsize()

    def collect(self) -> list[T]:
        """The outcomes finished so far; a send that raised is kept for ``raise_failure``.

        Never raises: the outcomes finished beside a send that raised are the job's to
        store (the rows they settle must not be left "sending").
        """
        out: list[T] = []
        while True:
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                break
            self._collected += 1
            if isinstance(item, Failed):
                self._failures.append(item.error)
            else:
                out.append(item)
        return out

    def raise_failure(self) -> None:
        """Raise the first send collected that raised (once), as ``Future.result`` would."""
        if self._failures:
            first, self._failures = self._failures[0], []
            raise first

    def wait_all(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every send submitted to finish; True when they have.

        Looks every few milliseconds (only the batch's last sends are waited for this way):
        a condition notified by every send would cost each send a lock.
        """
        deadline = time.monotonic() + timeout
        while self.finished() < self.in_flight:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL_S, left))
        return True


class SendPool(Outcomes[T]):
    """Up to ``size`` threads, started as sends arrive, each running the next send queued."""

    _spare: ClassVar[dict[int, list[SendPool[Any]]]] = {}
    _spare_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, size: int, name: str) -> None:
        super().__init__()
        self.size = size
        self.name = name
        self._lent = False
        self._tasks: queue.SimpleQueue[tuple[Callable[..., T], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Released by a thread each time it is free for the next send (as in the standard
        # library's pool): a send goes to a free thread before a new one is started, so a
        # fast provider is served by as few threads as it needs (fewer to contend for the GIL).
        self._idle = threading.Semaphore(0)

    def submit(self, fn: Callable[..., T], *args: Any) -> None:
        """Queue ``fn(*args)``; a thread is started when none is free (up to ``size``)."""
        self._tasks.put((fn, args))
        self._submitted += 1  # after: a job timeout between the two never leaves a send counted that never runs
        if self._idle.acquire(timeout=0):
            return
        if len(self._threads) < self.size:
            thread = threading.Thread(target=self._run, name=f"{self.name}_{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self, wait: bool = True) -> None:
        """Stop the threads once the sends queued have run; wait for them (if ``wait``)."""
        for _ in self._threads:
            self._tasks.put(_STOP)
        if wait:
            for thread in self._threads:
                thread.join()
        self._threads.clear()

    @classmethod
    def lend(cls, size: int, name: str) -> SendPool[T]:
        """A pool of ``size`` threads for one job: an idle one a finished job gave back, or a new one.

        Used as a context manager, it is given back on exit when every send was collected
        (else closed, as a pool made directly always is).
        """
        with cls._spare_lock:
            spare = cls._spare.get(size)
            pool = spare.pop() if spare else None
        if pool is None:
            pool = cls(size, name)
        else:
            pool.name = name
            for i, thread in enumerate(pool._threads):
                thread.name = f"{name}_{i}"
        pool._lent = True
        return pool

    def __enter__(self) -> SendPool[T]:
        return self

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        # A job failing does not wait for its sends (one may be stuck): they stop once done.
        if failed is not None:
            self.close(wait=False)
            return
        if self._lent and self.in_flight == 0 and all(t.is_alive() for t in self._threads):
            self._lent = False
            with self._spare_lock:
                spare = self._spare.setdefault(self.size, [])
                if len(spare) < SPARE:
                    spare.append(self)
                    return
        self.close()

    @classmethod
    def _forget_spare(cls) -> None:
        """In a forked child: the parent's idle threads do not exist here."""
        cls._spare = {}
        cls._spare_lock = threading.Lock()

    def _run(self) -> None:
        while (task := self._tasks.get()) is not _STOP:
            fn, args = task
            try:
                result: T | Failed = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the job, which raises it
                result = Failed(exc)
            self._idle.release()  # free before its outcome is seen: the next send may take it
            self._done.put(result)


os.register_at_fork(after_in_child=SendPool._forget_spare)
