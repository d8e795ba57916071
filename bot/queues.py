"""The RQ queues canvass uses, in the order workers take them."""

from __future__ import annotations

# Replies from flows first, then bulk sends, then calls, then housekeeping.
QUEUE_NAMES = ("high", "sends", "calls", "default")
SCHEDULER_HEARTBEAT = "canvass:scheduler:heartbeat"
REPLIES = QUEUE_NAMES[0]

_served: tuple[str, ...] = ()


def serve(names: tuple[str, ...]) -> None:
    """Say which queues the worker of this process takes (``worker.run_worker``)."""
    global _served
    _served = tuple(names)


def serves(name: str) -> bool:
    """Whether the worker of this process takes ``name`` (False outside a worker)."""
    return name in _served
