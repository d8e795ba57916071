"""Providers that carry messages, one per module, registered by name.

Every module in this package is imported here, so adding a provider is adding a file.
"""

import importlib
import pkgutil

from bot.channels.base import REGISTRY, Provider, SendError

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "Provider", "SendError"]
