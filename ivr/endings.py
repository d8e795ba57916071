"""Calls whose end was recorded but not yet applied: their flows end here, many a round.

The status webhook's fast path (``ivr.quickstatus``) only records a call's end and marks
it (``Call.settle_due_at``). The scheduler's ``call-ends`` task calls ``finish_ended``
every half second: each marked call is locked, its stored keypad steps applied and its flow
ended where the voter left (``CallDesk.finish``), by chunks of calls in one transaction;
one bad call cannot hold back the others (it is logged and tried again next round).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.conversations import action_bridge
from bot.runtime import Runtime
from ivr.calls import CallDesk
from ivr.links import CallLinks
from ivr.models import Call

log = logging.getLogger(__name__)


def finish_calls(rt: Runtime) -> int:
    """The scheduler's ``call-ends`` task: ``finish_ended`` with this deployment's desk."""
    links, region, actions = CallLinks.of(rt.settings), rt.settings.default_region, action_bridge(rt)
    return finish_ended(rt.db.session, lambda db: CallDesk(db, links=links, region=region, actions=actions))


def finish_ended(
    db_factory: Callable[..., Any],
    desk: Callable[[Session], CallDesk],
    limit: int = 500,
    chunk: int = 10,
    pause: Callable[[float], None] = time.sleep,
) -> int:
    """End the flows of up to ``limit`` marked calls, oldest end first; return how many.

    ``db_factory(write=True)`` opens a transaction; ``desk(db)`` makes the ``CallDesk``
    for it. ``chunk`` calls are ended together: one transaction, a statement per table
    for all of them (``steplog.settle_many``). When that fails, they are ended one at a
    time, so that a call that fails is logged and tried again next round, alone. After
    each chunk the task ``pause``s as long as the chunk took: a burst of ended calls
    (hundreds a second in a busy hour) then costs the live calls' webhooks little
    latency (measured: p99 at 450 requests a second 13–15 ms with small chunks and
    pauses, 21–40 ms with chunks of 50 and none; bench/RESULTS.md).
    """
    with db_factory() as db:
        ids = db.scalars(
            select(Call.id).where(Call.settle_due_at.is_not(None)).order_by(Call.settle_due_at).limit(limit)
        ).all()
    finished = 0
    for start in range(0, len(ids), chunk):
        began = time.monotonic()
        finished += _finish_chunk(db_factory, desk, ids[start : start + chunk])
        if start + chunk < len(ids):
            # The webhooks share the database and the cores: leave them as long again.
            pause(time.monotonic() - began)
    return finished


def _finish_chunk(db_factory: Callable[..., Any], desk: Callable[[Session], CallDesk], part: list[int]) -> int:
    try:
        with db_factory(write=True) as db:
            return desk(db).finish(part)
    except Exception as exc:  # noqa: BLE001 - one call at a time finds the one that fails
        why = f"{type(exc).__name__}: {exc}"
        log.warning("%d call(s) could not be ended together (%s); one at a time", len(part), why)
    finished = 0
    for call_id in part:
        try:
            with db_factory(write=True) as db:
                finished += desk(db).finish([call_id])
        except Exception:
            log.exception("call %s: its end could not be applied; tried again next round", call_id)
    return finished
