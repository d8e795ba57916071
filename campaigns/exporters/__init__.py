"""Campaign exports, one format per module, registered by name (``csv``, ``floip``).

Every exporter streams: it reads the campaign's rows in chunks and writes as it goes,
so memory stays flat whatever the size of the campaign.
"""

from __future__ import annotations

import importlib
import pkgutil

from campaigns.exporters.base import REGISTRY, Exporter

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "Exporter"]
