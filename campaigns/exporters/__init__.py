"""Campaign exports, one format per module, registered by name (``csv``, ``floip``).

Every exporter streams: it reads the campaign's rows in chunks and writes as it goes,
so memory stays flat whatever the size of the campaign. Beside them: ``base`` (the
registry, chunks of rows), ``cells`` (each cell rule in Python and in SQL) and
``funnel_copy`` (the funnel CSV written by PostgreSQL itself).
"""

from __future__ import annotations

import importlib
import pkgutil

from campaigns.exporters.base import REGISTRY, Exporter

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "Exporter"]
