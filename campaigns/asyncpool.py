"""A batch job's sends as coroutines on one event loop: ``SendPool``'s interface, no threads.

For a provider with an asynchronous send (``send_async``: the Twilio messaging channels)
the job's sends run on an event loop in a thread of its own, one loop per process shared
by every job the process runs; the job's thread submits sends and collects their
outcomes exactly as with ``campaigns.sendpool.SendPool``. At most ``size`` sends of a pool
run at once (the others wait, in order, as sends wait for a free thread); a send raising
instead of returning an outcome is handed to the job (``raise_failure``) once collected.

A forked process starts without the parent's loop (its thread does not exist there).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

from campaigns.sendpool import Failed, Outcomes

T = TypeVar("T")


class _Loop:
    """The process's event loop, run by a daemon thread started on first use."""

    _current: ClassVar[_Loop | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="async-sends", daemon=True)
        self.thread.start()

    # A forked child's copy of the parent's loop: kept, never run nor collected (closing it
    # would take the parent's sockets out of the epoll set the two processes share).
    _inherited: ClassVar[list[_Loop]] = []

    @classmethod
    def get(cls) -> _Loop:
        """The running loop, started now if there is none (or if its thread died)."""
        with cls._lock:
            if cls._current is None or not cls._current.thread.is_alive():
                if cls._current is not None:
                    cls._inherited.append(cls._current)  # stopped; its sends were answered or lost
                cls._current = cls()
            return cls._current

    @classmethod
    def forget(cls) -> None:
        if cls._current is not None:
            cls._inherited.append(cls._current)
        cls._current = None
        cls._lock = threading.Lock()


class AsyncSendPool(Outcomes[T]):
    """Up to ``size`` sends at once, each a coroutine on the process's event loop."""

    def __init__(self, size: int, name: str) -> None:
        super().__init__()
        self.size = size
        self.name = name
        self._runner = _Loop.get()
        self._loop = self._runner.loop
        self._limit: asyncio.Semaphore | None = None  # made on the loop
        self._tasks: set[asyncio.Task[None]] = set()  # held while they run (the loop keeps weak ones)

    def submit(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> None:
        """Run ``await fn(*args)`` on the loop once fewer than ``size`` of this pool's sends run."""
        self._loop.call_soon_threadsafe(self._start, fn, args)
        self._submitted += 1  # after: a job timeout between the two never leaves a send counted that never runs

    def _start(self, fn: Callable[..., Coroutine[Any, Any, T]], args: tuple[Any, ...]) -> None:
        task = self._loop.create_task(self._run(fn, args), name=self.name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, fn: Callable[..., Coroutine[Any, Any, T]], args: tuple[Any, ...]) -> None:
        if self._limit is None:
            self._limit = asyncio.Semaphore(self.size)
        async with self._limit:
            try:
                result: T | Failed = await fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the job, which raises it
                result = Failed(exc)
        self._done.put(result)

    def wait_all(self, timeout: float) -> bool:
        """``Outcomes.wait_all``; raises if the loop's thread died with sends of this pool unfinished."""
        if self.finished() < self.in_flight and not self._runner.thread.is_alive():
            raise RuntimeError("the sends' event loop stopped: the rows in flight are left to the reconciler")
        return super().wait_all(timeout)

    def close(self, wait: bool = True) -> None:
        """Wait for the sends submitted to finish (a job's end never leaves one running unseen).

        Not when the job failed (``wait`` false, ``__exit__`` with an exception): the job
        already waited as long as a send may take; the rest finish on the loop unseen.
        """
        while wait and not self.wait_all(timeout=1.0):
            pass

    @classmethod
    def lend(cls, size: int, name: str) -> AsyncSendPool[T]:
        """A pool for one job (``SendPool.lend``'s signature; nothing to keep between jobs here)."""
        return cls(size, name)

    def __enter__(self) -> AsyncSendPool[T]:
        return self

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        self.close(wait=failed is None)


os.register_at_fork(after_in_child=_Loop.forget)
