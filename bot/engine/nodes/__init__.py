"""Node kinds, one per module, registered by the key that marks them in YAML.

Every module in this package is imported here, so adding a kind is adding a file.
"""

import importlib
import pkgutil

from bot.engine.nodes.base import REGISTRY, NodeKind

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "NodeKind"]
