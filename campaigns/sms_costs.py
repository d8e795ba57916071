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
kept in one row per campaign (``BudgetRoom``), which every claim with corrections
updates with a conditional UPDATE: ``micros >= need``. It is a lower bound — failures
and skips that free money are not given back — so when a reservation does not fit, the
row is locked and counted again from the recipients' costs (exact then: a claim that
reserved before holds the lock until it commits, one that reserves after sees the new
count). Still short, the claim is undone to its savepoint and made again with the room
locked: the voters whose cost fits are sent, in recipient order, the others skipped
``over_budget`` (``fit``). A fallback move, which commits costs too, takes the same lock
and leaves the room to be counted again (``forget``).

The pre-launch estimate stays an estimate from the sample; the console and CLI say so.
"""

from __future__ import annotations

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


class NoRoom(Exception):
    """The corrected costs of a claim do not fit what is left of the budget."""


def corrections(
    db: Session, channel: str, version: TemplateVersion | None, texts: Sequence[tuple[int, str, str]]
) -> dict[int, int]:
    """By recipient id, how much more (or less) its SMS costs than stored: rows whose text differs only.

    ``texts``: (recipient id, phone, rendered text). A voter whose country has no SMS price,
    or whose row has no cost, is left as it is (the launch did not price it either).
    """
    if channel != "sms" or version is None or not texts:
        return {}
    planned = templates.segments(version)
    odd = {rid: (phone, n) for rid, phone, text in texts if (n := sms_segments.segments(text)) != planned}
    if not odd:
        return {}
    pg = bulk.postgresql(db)
    stored = db.execute(_stored(pg), {"ids": bulk.ids(pg, list(odd))}).all()
    out: dict[int, int] = {}
    for rid, cost, fallback_cost, price in stored:
        part = fallback_cost if fallback_cost is not None else cost  # this attempt's part of the cost
        _, segments = odd[rid]
        if part is None or price is None:
            continue
        if delta := price * segments - part:
            out[rid] = delta
    return out


def capped(campaign: Campaign, channel: str) -> bool:
    """Whether a budget line (the total or ``channel``'s own cap) holds ``channel``'s costs."""
    budget = budgets.Budget.of(campaign)
    return budget.total is not None or channel in budget.by_channel


def apply(db: Session, campaign: Campaign, channel: str, deltas: Mapping[int, int]) -> None:
    """Correct the costs of the claimed rows in ``deltas``; with a budget, reserve the extra first.

    Raises NoRoom (nothing written) when the extra does not fit what is left of the budget.
    """
    if not deltas:
        return
    if capped(campaign, channel):
        reserve(db, campaign, channel, sum(deltas.values()))
    rows, stmt = _correct(bulk.postgresql(db))
    rows.execute(db, stmt, [{"rid": rid, "delta": d} for rid, d in sorted(deltas.items())])


def reserve(db: Session, campaign: Campaign, channel: str, need: int) -> None:
    """Take ``need`` millionths from what is left (a negative ``need`` gives them back); raise NoRoom."""
    where = ROOM.c.campaign_id == campaign.id
    if need <= 0:
        if need:
            db.execute(update(ROOM).where(where, ROOM.c.micros.is_not(None)).values(micros=ROOM.c.micros - need))
        return
    if db.execute(update(ROOM).where(where, ROOM.c.micros >= need).values(micros=ROOM.c.micros - need)).rowcount:
        return
    left = recount(db, campaign, channel)
    if left < need:
        raise NoRoom(f"campaign {campaign.id}: {need} more millionths do not fit the {left} left")
    db.execute(update(ROOM).where(where).values(micros=left - need))


def recount(db: Session, campaign: Campaign, channel: str) -> int:
    """Lock the campaign's room, count what is left from the recipients' costs, store it and return it."""
    lock(db, campaign)
    left = budgets.room(db, campaign, channel)
    assert left is not None, "recount: the campaign has no cap on this channel"
    db.execute(update(ROOM).where(ROOM.c.campaign_id == campaign.id).values(micros=left, counted_at=utcnow()))
    return left


def lock(db: Session, campaign: Campaign) -> None:
    """Lock the campaign's room row (made when missing) until the transaction ends."""
    dialect = postgresql if bulk.postgresql(db) else sqlite
    db.execute(dialect.insert(ROOM).values(campaign_id=campaign.id).on_conflict_do_nothing())
    db.execute(select(ROOM.c.campaign_id).where(ROOM.c.campaign_id == campaign.id).with_for_update())


def forget(db: Session, campaign: Campaign) -> None:
    """Leave the room to be counted again (costs were committed outside a reservation)."""
    db.execute(update(ROOM).where(ROOM.c.campaign_id == campaign.id).values(micros=None))


def fit(db: Session, campaign: Campaign, channel: str, rows: Sequence[int], deltas: Mapping[int, int]) -> list[int]:
    """Of ``rows`` (recipient ids), those whose corrected cost fits what is left (counted, locked).

    In recipient order, as the launch's cap: the others are skipped ``over_budget``.
    """
    left = recount(db, campaign, channel)
    kept: list[int] = []
    over: list[dict[str, int]] = []
    for rid in sorted(rows):
        extra = deltas.get(rid, 0)
        if extra > left:
            over.append({"rid": rid})
            continue
        left -= extra
        kept.append(rid)
    if over:
        db.execute(
            update(R)
            .where(R.c.id == bindparam("rid"), R.c.status == RecipientStatus.PENDING.value)
            .values(status=RecipientStatus.SKIPPED.value, skip_code=SkipCode.OVER_BUDGET.value, batch=None),
            over,
        )
    return kept


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
