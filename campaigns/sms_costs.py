"""An SMS's real cost, known only at send time, and the budget it must still fit.

At launch every voter's SMS is priced from the template's *sample* text (``planner``,
``budgets.cap``): one price per segment, times the segments of the sample. The text a
voter gets is rendered with their own values, and may take more segments than the
sample (a name in Devanagari turns a 1-segment GSM-7 text into 2 UCS-2 segments) or
fewer. So a batch job counts each rendered text's segments as it claims the voters; a
row whose count differs from the sample's is priced again (price per segment of the
voter's country, now, times its segments) and its cost corrected in the claim's own
transaction: spend is the provider's bill, not the estimate. A row already corrected
(sent again after a retry) is priced the same and changes no more.

With a budget, a correction that costs more must fit what is left of it. What is left is
kept in one row per campaign (``BudgetRoom``, made at launch), which a claim with
corrections updates once its rows are won, with a conditional UPDATE: ``micros >= need``.
It is a lower bound — failures and skips that free money are not given back — so when a
reservation does not fit, the row is locked and counted again from the recipients' costs
(exact then: a claim that reserved before holds the lock until it commits; one that
reserves after sees the new count), unless it was counted less than ``RECOUNT_S`` ago.
The claim then keeps the rows whose extra fits, in recipient order, and gives the others
up: skipped ``over_budget``, never sent (``charge``). The rows are locked before the room,
in every claim. A fallback move, which commits costs too, takes the same lock and leaves
the room to be counted again (``forget``).

The pre-launch estimate stays an estimate from the sample; the console and CLI say so.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot import bulk
from bot.db import utcnow
from bot.models import Contact
from campaigns import budgets, pricing, sms_segments, templates
from campaigns.models import BudgetRoom, Campaign, Recipient, RecipientStatus, SkipCode, TemplateVersion

R = Recipient.__table__
ROOM = BudgetRoom.__table__
C = Contact.__table__


# How long a count of what is left is trusted when a reservation does not fit it: near the
# cap every chunk with a longer text would otherwise add up the whole campaign again.
RECOUNT_S = dt.timedelta(seconds=5)


def corrections(db: Session, channel: str, version: TemplateVersion | None, texts: Mapping[int, str]) -> dict[int, int]:
    """By recipient id, how much more (or less) its SMS costs than stored: rows whose text differs only.

    ``texts``: the rendered text by recipient id. A voter whose country has no SMS price,
    or whose row has no cost, is left as it is (the launch did not price it either).
    """
    if channel != "sms" or version is None or not texts:
        return {}
    planned = templates.segments(version)
    odd = {rid: n for rid, text in texts.items() if (n := sms_segments.segments(text)) != planned}
    if not odd:
        return {}
    pg = bulk.postgresql(db)
    stored = db.execute(_stored(pg), {"ids": bulk.ids(pg, list(odd))}).all()
    out: dict[int, int] = {}
    for rid, cost, fallback_cost, price in stored:
        part = fallback_cost if fallback_cost is not None else cost  # this attempt's part of the cost
        if part is None or price is None:
            continue
        if delta := price * odd[rid] - part:
            out[rid] = delta
    return out


def capped(campaign: Campaign, channel: str) -> bool:
    """Whether a budget line (the total or ``channel``'s own cap) holds ``channel``'s costs."""
    return budgets.Budget.of(campaign).cap(channel) is not None


def charge(db: Session, campaign: Campaign, channel: str, won: Sequence[int], deltas: Mapping[int, int]) -> list[int]:
    """Correct the costs of the rows just claimed (``won``); return those kept.

    With a budget the extra is reserved first; when it does not fit, what is left is read
    (the room locked: counted again unless counted in the last ``RECOUNT_S``) and the rows
    whose extra does not fit, in recipient order, are given up: ``over_budget``.
    """
    mine = {rid: deltas[rid] for rid in won if rid in deltas}
    if not mine:
        return list(won)
    if capped(campaign, channel) and not _reserved(db, campaign.id, sum(mine.values())):
        left = _left(db, campaign, channel)
        keep, over = _fit(won, mine, left)
        if over:
            _unclaim(db, over)
        mine = {rid: d for rid, d in mine.items() if rid not in over}
        db.execute(update(ROOM).where(ROOM.c.campaign_id == campaign.id).values(micros=left - sum(mine.values())))
        won = keep
    if mine:
        rows, stmt = _correct(bulk.postgresql(db))
        rows.execute(db, stmt, [{"rid": rid, "delta": d} for rid, d in sorted(mine.items())])
    return list(won)


def _reserved(db: Session, campaign_id: int, need: int) -> bool:
    """Take ``need`` millionths from the room in one conditional UPDATE (a negative ``need`` gives back)."""
    where = ROOM.c.campaign_id == campaign_id
    if need <= 0:
        if need:
            db.execute(update(ROOM).where(where, ROOM.c.micros.is_not(None)).values(micros=ROOM.c.micros - need))
        return True
    return bool(
        db.execute(update(ROOM).where(where, ROOM.c.micros >= need).values(micros=ROOM.c.micros - need)).rowcount
    )


def _left(db: Session, campaign: Campaign, channel: str) -> int:
    """What is left, the room locked: as stored when counted less than ``RECOUNT_S`` ago, else counted again."""
    micros, counted_at = lock(db, campaign)
    if micros is not None and counted_at is not None and utcnow() - counted_at < RECOUNT_S:
        return int(micros)
    return recount(db, campaign, channel, locked=True)


def _fit(won: Sequence[int], deltas: Mapping[int, int], left: int) -> tuple[list[int], list[int]]:
    """The rows whose extra fits ``left`` in recipient order, and the others."""
    keep: list[int] = []
    over: list[int] = []
    for rid in sorted(won):
        extra = deltas.get(rid, 0)
        if extra > 0 and extra > left:  # a row that costs no more than its estimate always fits
            over.append(rid)
            continue
        left -= extra
        keep.append(rid)
    return keep, over


def _unclaim(db: Session, rids: Sequence[int]) -> None:
    """Give up rows claimed in this transaction whose cost does not fit: skipped, ``over_budget``, never sent."""
    db.execute(
        update(R)
        .where(R.c.id == bindparam("rid"), R.c.status == RecipientStatus.SENDING.value)
        .values(
            status=RecipientStatus.SKIPPED.value,
            skip_code=SkipCode.OVER_BUDGET.value,
            batch=None,
            attempts=R.c.attempts - 1,
            message_id=None,
            session_id=None,
            sending_at=None,
            queued_at=None,
            retry_at=None,
        ),
        [{"rid": rid} for rid in rids],
    )


def recount(db: Session, campaign: Campaign, channel: str, *, locked: bool = False) -> int:
    """Lock the campaign's room, count what is left from the recipients' costs, store it and return it."""
    if not locked:
        lock(db, campaign)
    left = budgets.room(db, campaign, channel)
    assert left is not None, "recount: the campaign has no cap on this channel"
    db.execute(update(ROOM).where(ROOM.c.campaign_id == campaign.id).values(micros=left, counted_at=utcnow()))
    return left


def lock(db: Session, campaign: Campaign) -> tuple[int | None, dt.datetime | None]:
    """Lock the campaign's room row (made when missing) until the transaction ends; its micros and count time."""
    if not db.execute(select(ROOM.c.campaign_id).where(ROOM.c.campaign_id == campaign.id)).first():
        make(db, campaign.id)
    row = db.execute(
        select(ROOM.c.micros, ROOM.c.counted_at).where(ROOM.c.campaign_id == campaign.id).with_for_update()
    ).one()
    return row[0], row[1]


def make(db: Session, campaign_id: int) -> None:
    """The campaign's room row, not yet counted (at launch; made here too for a campaign launched before)."""
    dialect = postgresql if bulk.postgresql(db) else sqlite
    db.execute(dialect.insert(ROOM).values(campaign_id=campaign_id).on_conflict_do_nothing())


def forget(db: Session, campaign: Campaign) -> None:
    """Leave the room to be counted again (costs were committed outside a reservation)."""
    db.execute(update(ROOM).where(ROOM.c.campaign_id == campaign.id).values(micros=None))


@functools.cache
def _stored(pg: bool) -> Any:
    """The rows' stored costs and their voters' SMS price a segment (one statement, built once)."""
    price, joins = pricing.unit_price("sms")
    stmt = select(R.c.id, R.c.cost_micros, R.c.fallback_cost_micros, price).select_from(
        R.join(C, C.c.id == R.c.contact_id)
    )
    return pricing.with_prices(stmt, joins).where(bulk.any_of(R.c.id, "ids", pg))


@functools.cache
def _correct(pg: bool) -> tuple[bulk.Rows, Any]:
    """The UPDATE adding each row's correction to its costs, one statement for a chunk on PostgreSQL."""
    rows = bulk.Rows(pg, "corrected", rid=BigInteger(), delta=BigInteger())
    this = case((R.c.fallback_cost_micros.is_(None), None), else_=R.c.fallback_cost_micros + rows.c.delta)
    values = {"cost_micros": R.c.cost_micros + rows.c.delta, "fallback_cost_micros": this}
    return rows, update(R).where(rows.match(R.c.id, "rid")).values(values)
