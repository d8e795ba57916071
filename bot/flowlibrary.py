"""The stored flows a process runs: parsed once per version, found by name or trigger."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.engine import Flow, load_text
from bot.models import FlowVersion

_cache: dict[tuple[str, int], Flow] = {}
# A flow loaded with `canvass flows load` is used by every process within this many seconds.
FRESH_S = 2.0
_latest_cache: tuple[float, dict[str, int]] | None = None
_lock = threading.Lock()


class FlowLibrary:
    """Flows as stored in the database (``canvass flows load``), newest versions by default."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._latest: dict[str, int] | None = None

    def latest_versions(self) -> dict[str, int]:
        """Name -> newest version (read at most every ``FRESH_S`` seconds per process)."""
        global _latest_cache
        if self._latest is None and _latest_cache is not None and time.monotonic() - _latest_cache[0] < FRESH_S:
            self._latest = _latest_cache[1]
        if self._latest is None:
            rows = self.session.execute(
                select(FlowVersion.name, func.max(FlowVersion.version)).group_by(FlowVersion.name)
            )
            self._latest = {str(name): int(version) for name, version in rows}
            _latest_cache = (time.monotonic(), self._latest)
        return self._latest

    def get(self, name: str, version: int | None = None) -> tuple[Flow, int] | None:
        """A flow (the newest, or the given version) with its version number."""
        if version is None:
            version = self.latest_versions().get(name)
            if version is None:
                return None
        key = (name, version)
        with _lock:
            flow = _cache.get(key)
        if flow is None:
            row = self.session.scalar(
                select(FlowVersion).where(FlowVersion.name == name, FlowVersion.version == version)
            )
            if row is None:
                return None
            flow = load_text(row.source, f"{name}@v{version}")
            with _lock:
                _cache[key] = flow
        return flow, version

    def subflows(self) -> dict[str, Flow]:
        """Every newest flow by name, for subflow nodes."""
        found = (self.get(name) for name in self.latest_versions())
        return {f.name: f for f, _ in (x for x in found if x is not None)}

    def triggered_by(self, text: str, channel: str) -> tuple[Flow, int] | None:
        """The flow whose keyword is the message's first word on this channel."""
        first = (text or "").strip().split(maxsplit=1)
        word = first[0].casefold() if first else ""
        if not word:
            return None
        for name in sorted(self.latest_versions()):
            found = self.get(name)
            if found and word in found[0].triggers.get("keywords", {}).get(channel, []):
                return found
        return None

    def default(self) -> tuple[Flow, int] | None:
        """The flow declared ``default: true`` (the first by name, if several)."""
        for name in sorted(self.latest_versions()):
            found = self.get(name)
            if found and found[0].triggers.get("default"):
                return found
        return None

    def by_number(self, number: str) -> tuple[Flow, int] | None:
        """The flow mapped to one of our numbers (inbound calls and messages)."""
        for name in sorted(self.latest_versions()):
            found = self.get(name)
            if found and number in found[0].triggers.get("numbers", []):
                return found
        return None


def clear_cache() -> None:
    """Forget parsed flows and the newest versions (tests, and after loading flows)."""
    global _latest_cache
    with _lock:
        _cache.clear()
        _latest_cache = None


__all__: list[Any] = ["FlowLibrary", "clear_cache"]
