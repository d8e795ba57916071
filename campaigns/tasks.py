"""RQ jobs of campaigns: thin, idempotent, taking ids (job ids ``batch-{campaign}-{n}``)."""

from __future__ import annotations

from typing import Any

from bot import runtime
from campaigns.dispatch import send_batch as _send_batch


def send_batch(campaign_id: int, batch: int) -> dict[str, Any]:
    """Send one batch of a campaign; running it twice sends nobody twice (rows are claimed)."""
    rt = runtime.current()
    return _send_batch(rt.db, rt.settings, rt.redis, campaign_id, batch)
