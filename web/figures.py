"""Figures too slow to compute on every page view, kept in Redis for every web process.

On a million voters some counts take most of a second (the dashboard's totals, the
audience of a campaign not launched yet). They are computed once, kept for a while in
Redis — so every web process shows the same number — and the page says how fresh they
are. Without Redis, the figure is simply computed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from web.context import runtime

KEY = "canvass:{}"


def remembered(name: str, compute: Callable[[], Any], ttl_s: int) -> Any:
    """``compute()`` (JSON-able), or its value from Redis when computed less than ``ttl_s`` ago."""
    conn, key = runtime().redis, KEY.format(name)
    try:
        kept = conn.get(key)
    except RedisError:
        return compute()
    if kept is not None:
        return json.loads(kept)
    value = compute()
    with contextlib.suppress(RedisError):
        conn.set(key, json.dumps(value), ex=ttl_s)
    return value
