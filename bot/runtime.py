"""The resources one canvass process shares: settings, database, Redis.

``web.create_app`` and the worker start build one ``Runtime`` each; RQ jobs reach the
worker's through :func:`current`. Nothing here is created at import time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import redis

from bot.db import Database
from bot.settings import Settings


@dataclasses.dataclass
class Runtime:
    """Settings plus the connections built from them."""

    settings: Settings
    db: Database
    redis: redis.Redis
    # Made on first use and kept for the process (e.g. the custom-actions bridge).
    services: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """Connect (lazily: nothing is dialled until first use)."""
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            redis=redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3),
        )

    def close(self) -> None:
        """Release pooled connections (and whatever services hold)."""
        for service in self.services.values():
            if hasattr(service, "close"):
                service.close()
        self.services.clear()
        self.db.dispose()
        self.redis.close()


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    """Make ``runtime`` the one jobs in this process use."""
    global _current
    _current = runtime


def current() -> Runtime:
    """The installed runtime; raises if the process never installed one."""
    if _current is None:
        raise RuntimeError("no canvass runtime installed: start jobs through worker.py or canvass worker")
    return _current
