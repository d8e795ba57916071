"""Lanes: a campaign's batches go to the send queue a few at a time, so campaigns take turns.

RQ runs jobs in the order they were queued. Queueing all of a big campaign's batches at
launch would put a small campaign launched after it behind every one of them: it would
wait for the big one to finish. Instead a campaign has ``lanes`` batches in the queue (or
running) at a time; the others wait in a sorted set in Redis. When a batch's first run
ends, it queues the campaign's next waiting batch at the *back* of the queue, behind
whatever other campaigns queued meanwhile: with one campaign the workers stay busy, with
several they serve them in turn. Within one second, campaigns sharing a sender already
share its pace fairly: each batch reserves its slots from the same GCRA schedule.

The database stays the truth: the waiting set only orders work. If Redis loses it, the
reconciler finds batches with pending rows and no job and queues them again through
``queue``; it also refills a campaign's lanes when a chain broke (a worker killed
between its batch's end and queueing the next).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from campaigns import planner
from campaigns.models import Campaign

# The waiting set outlives any campaign's sending; renewed whenever batches are added.
WAITING_TTL_S = 14 * 24 * 3600


def waiting_key(campaign_id: int) -> str:
    """The Redis sorted set of a campaign's batches waiting for a lane (score: batch number)."""
    return f"canvass:batches-waiting:{campaign_id}"


def queue(conn: Any, campaign: Campaign, batches: Iterable[int], lanes: int) -> int:
    """Queue the lowest ``lanes`` of ``batches`` now and keep the rest waiting; return how many were queued now.

    Safe to call again with batches already queued or waiting (a resume, the reconciler):
    a batch job claims its rows, so a batch queued twice sends nothing twice.
    """
    ordered = sorted(set(batches))
    if not ordered:
        return 0
    now, later = ordered[:lanes], ordered[lanes:]
    if later:
        key = waiting_key(campaign.id)
        pipe = conn.pipeline(transaction=False)
        pipe.zadd(key, {str(b): b for b in later})
        pipe.zrem(key, *[str(b) for b in now])
        pipe.expire(key, WAITING_TTL_S)
        pipe.execute()
    else:
        conn.zrem(waiting_key(campaign.id), *[str(b) for b in now])
    return planner.enqueue(conn, campaign, now)


def next_batch(conn: Any, campaign: Campaign, count: int = 1) -> list[int]:
    """Queue the campaign's next ``count`` waiting batches (at the back of the queue); return them."""
    if count <= 0:
        return []
    taken = [int(float(score)) for _, score in conn.zpopmin(waiting_key(campaign.id), count)]
    planner.enqueue(conn, campaign, taken)
    return taken


def waiting(conn: Any, campaign_id: int) -> set[int]:
    """The batches of a campaign waiting for a lane."""
    return {int(b) for b in conn.zrange(waiting_key(campaign_id), 0, -1)}


def forget(conn: Any, campaign_id: int) -> None:
    """Drop a stopped campaign's waiting batches (aborted or ended: nothing more is sent)."""
    conn.delete(waiting_key(campaign_id))
