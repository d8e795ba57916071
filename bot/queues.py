"""The RQ queues canvass uses, in the order workers take them."""

from __future__ import annotations

# Replies from flows first, then bulk sends, then calls, then housekeeping.
QUEUE_NAMES = ("high", "sends", "calls", "default")
SCHEDULER_HEARTBEAT = "canvass:scheduler:heartbeat"
