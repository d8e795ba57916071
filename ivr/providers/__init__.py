"""Providers that carry calls, one per module, registered by name (``sandbox``, ``twilio``).

Voice lives here rather than in ``bot.channels``; the interface mirrors the messaging
providers' and reuses their errors. Every module in this package is imported here, so
adding a provider is adding a file.
"""

import importlib
import pkgutil

from ivr.providers.base import REGISTRY, CallRequest, CallStatusUpdate, PlacedCall, VoiceProvider, VoiceRequest

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "forms"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "CallRequest", "CallStatusUpdate", "PlacedCall", "VoiceProvider", "VoiceRequest"]
