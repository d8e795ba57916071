"""Small jobs the worker tests enqueue (importable by a worker process)."""

import time

from bot import runtime


def record(key: str, value: str) -> None:
    runtime.current().redis.rpush(key, value)


def slow_write(key: str, seconds: float) -> None:
    time.sleep(seconds)
    runtime.current().redis.set(key, "done")


def record_pid(key: str) -> None:
    """Record the id of the process that ran the job."""
    import os

    runtime.current().redis.rpush(key, str(os.getpid()))
