"""RQ jobs of voice: thin, idempotent, taking ids (job ids ``call-back-{call}``)."""

from __future__ import annotations

from bot import runtime
from ivr.placing import place_callback


def call_back(call_id: int) -> str:
    """Place a call-back (a missed-call line's); running it twice dials once."""
    rt = runtime.current()
    return place_callback(rt.db, rt.settings, rt.redis, call_id)
