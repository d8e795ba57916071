"""Finding flow files, and the clock the hosts hand to the engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path


def flow_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every ``*.yaml`` / ``*.yml`` file among ``paths`` (folders are searched recursively)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            yield path


def now_iso() -> str:
    """The current UTC time as ISO-8601 with Z, as the engine's events carry it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
