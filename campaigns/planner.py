"""The planner: at launch, one recipient row per voter of the audience, in one SQL statement.

``INSERT INTO campaign_recipients ... SELECT ... FROM contacts WHERE <segment>``: the
database decides each voter's skip code and batch number, so planning a million voters
never loops over them in Python. A voter is skipped (first match wins):

    opted_out          the consent ledger says opted out
    outside_blackout   a blackout for the voter (their constituency's silence before the
                       poll) lasts past the campaign's deadline
    invalid_number     the number is not a valid number (kind unknown)
    not_mobile         WhatsApp or SMS to a line that is not a mobile (landlines are for calls)
    no_whatsapp        WhatsApp to a number known not to have it
    handoff_open       a person is talking with the voter (an open handoff case)
    engaged_elsewhere  the voter is in another live campaign (active, paused, or completed
                       and not yet ended); test campaigns never engage anyone
    missing_variable   a variable of the template has no value for this voter

Pending rows are numbered into batches of ``batch_size`` in contact order; each batch is
one RQ job ``batch-{campaign}-{n}``, queued with ``enqueue_many``. Planning twice is
harmless: the rows exist already, so nothing is inserted again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from rq import Queue
from sqlalchemy import ColumnElement, and_, case, exists, false, func, insert, literal, not_, null, or_, select, text
from sqlalchemy.orm import Session, aliased

from bot.db import utcnow
from bot.models import ConsentStatus, Contact, HandoffCase
from bot.phones import MOBILE_KINDS
from bot.segments import condition
from bot.sendwindows import Policy
from campaigns import budgets, pricing, variables
from campaigns.compliance import blacked_out_until_deadline, never_open
from campaigns.lifecycle import ENGAGING
from campaigns.models import Campaign, Recipient, RecipientStatus, SkipCode

SEND_QUEUE = "sends"
# At most this many rows a batch: at a fast pace a batch of 500 lasted about a second on
# one worker, and each job's end (its last sends drained, the next job set up) cost the
# whole 40,000-voter benchmark 7-10 points of the raw loop's rate (bench/RESULTS.md); with
# 2,000 a job lasts seconds, which still lets a campaign launched meanwhile take its turn
# soon. A job that runs short of time queues the rest of its batch (campaigns.dispatch).
MIN_BATCH, MAX_BATCH = 20, 2000
# About this many seconds of sending per batch job: long enough to amortise the job,
# short enough that a crash or a pause redoes little.
BATCH_SECONDS = 60
# RQ kills a job that outlives its timeout, and a send cut off that way is left "sending"
# (then "unknown"). So a batch job gets three times its pace time plus this margin, which
# must exceed the longest a provider call may take (TWILIO_TIMEOUT_S, at most
# bot.settings.MAX_TWILIO_TIMEOUT_S): ``check_job_timeouts`` holds the worker to it.
JOB_MARGIN_S = 300


@dataclasses.dataclass(frozen=True)
class Plan:
    """What launching produced."""

    total: int
    pending: int
    skipped: dict[str, int]
    batches: list[int]


def batch_size(pace_per_s: float) -> int:
    """Recipients per batch job for a pace."""
    return int(min(MAX_BATCH, max(MIN_BATCH, pace_per_s * BATCH_SECONDS)))


def skip_checks(
    campaign: Campaign,
    dialect: str,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
    closed: dict[str, int] | None = None,
) -> list[tuple[SkipCode, ColumnElement[bool]]]:
    """The SQL test of every skip code, in the order they are applied.

    ``closed``: time zones where the windows never overlap (``compliance.closed_zones``):
    their voters can never be sent within the law, like those a blackout holds past the deadline.
    """
    other = aliased(Recipient)
    others = aliased(Campaign)
    checks: list[tuple[SkipCode, ColumnElement[bool]]] = [
        (SkipCode.OPTED_OUT, Contact.consent == ConsentStatus.OPTED_OUT.value),
        (
            SkipCode.OUTSIDE_BLACKOUT,
            or_(blacked_out_until_deadline(policy or Policy(), campaign, now or utcnow()), never_open(closed or {})),
        ),
        (SkipCode.INVALID_NUMBER, Contact.phone_kind.in_(("unknown", "invalid"))),
    ]
    if campaign.channel in ("whatsapp", "sms"):
        checks.append((SkipCode.NOT_MOBILE, Contact.phone_kind.not_in(sorted(MOBILE_KINDS))))
    if campaign.channel == "whatsapp":
        checks.append((SkipCode.NO_WHATSAPP, Contact.whatsapp.is_(False)))
    checks.append(
        (SkipCode.HANDOFF_OPEN, exists().where(HandoffCase.contact_id == Contact.id, HandoffCase.status == "open"))
    )
    if not campaign.is_test:
        engaged = (
            select(literal(1))
            .select_from(other)
            .join(others, others.id == other.campaign_id)
            .where(
                other.contact_id == Contact.id,
                other.campaign_id != campaign.id,
                other.status != RecipientStatus.SKIPPED.value,
                others.is_test.is_(False),
                others.status.in_([s.value for s in ENGAGING]),
            )
        )
        checks.append((SkipCode.ENGAGED_ELSEWHERE, engaged.exists()))
    bindings = variables.parse(campaign.variables)
    present = variables.present(bindings)
    checks.append((SkipCode.MISSING_VARIABLE, not_(present)))
    return checks


def audience(db: Session, campaign: Campaign, region_numbers: list[str] | None = None) -> ColumnElement[bool]:
    """Who the campaign is for: its segment, or for a test campaign its test numbers.

    A saved segment the campaign names (``{segment: NAME}``) is read as it is now: the
    planner calls this once, at launch, when it writes the recipients.
    """
    if campaign.is_test:
        return Contact.phone.in_(region_numbers or []) if region_numbers else false()
    return condition(db, campaign.segment)


def plan(
    db: Session,
    campaign: Campaign,
    *,
    test_phones: list[str] | None = None,
    now: dt.datetime | None = None,
    policy: Policy | None = None,
    segments: int = 1,
    closed: dict[str, int] | None = None,
) -> Plan:
    """Insert the campaign's recipient rows (once) and report what they are.

    ``segments``: how many SMS segments one message takes (its price is per segment).
    With a budget, the voters past the cap of the campaign's channel (its own or the
    total, the lower) in send order are skipped with ``over_budget``.
    """
    now = now or utcnow()
    size = campaign.batch_size or batch_size(campaign.pace_per_s)
    campaign.batch_size = size
    already = db.scalar(select(func.count()).select_from(Recipient).where(Recipient.campaign_id == campaign.id))
    if not already:
        dialect = db.get_bind().dialect.name
        checks = skip_checks(campaign, dialect, policy, now, closed)
        skip = case(*[(cond, literal(code.value)) for code, cond in checks], else_=null())
        price, joins = pricing.unit_price(campaign.channel, segments)
        voters = (
            pricing.with_prices(
                select(Contact.id.label("contact_id"), skip.label("skip_code"), price.label("cost")).select_from(
                    Contact
                ),
                joins,
            )
            .where(audience(db, campaign, test_phones))
            .cte("voters")
        )
        if dialect == "postgresql" or db.get_bind().dialect.server_version_info >= (3, 35):
            # Materialized, the skip CASE (with its subqueries) runs once per voter. Inlined as
            # a subquery, PostgreSQL ran it once for each of the five outer expressions naming
            # skip_code (1 M voters: 18.6 s of CPU instead of 11.9 s), SQLite twice (3.7 s vs 2.9 s).
            voters = voters.prefix_with("MATERIALIZED")
        if dialect == "postgresql":
            # Room to hash the skip subqueries once (a million voters' ward tags fit in it)
            # rather than probe an index per voter, and for most of the batch-number sort;
            # for this transaction only (the default is 4 MB).
            db.execute(text("SET LOCAL work_mem = '64MB'"))
        waiting = voters.c.skip_code.is_(None)
        number = func.row_number().over(partition_by=waiting, order_by=voters.c.contact_id) - 1
        rows = select(
            literal(campaign.id),
            voters.c.contact_id,
            case((waiting, number // size), else_=null()),
            literal(campaign.channel),
            case((waiting, literal(RecipientStatus.PENDING.value)), else_=literal(RecipientStatus.SKIPPED.value)),
            voters.c.skip_code,
            literal(0),
            case((waiting, literal(now, type_=Recipient.queued_at.type)), else_=null()),
            case((waiting, voters.c.cost), else_=null()),
        )
        columns = [
            "campaign_id",
            "contact_id",
            "batch",
            "channel",
            "status",
            "skip_code",
            "attempts",
            "queued_at",
            "cost_micros",
        ]
        db.execute(insert(Recipient).from_select(columns, rows))
        budgets.cap(db, campaign)
    return summary(db, campaign)


def summary(db: Session, campaign: Campaign) -> Plan:
    """Counts of the planned rows, and the batches that still hold pending rows."""
    rows = db.execute(
        select(Recipient.status, Recipient.skip_code, func.count())
        .where(Recipient.campaign_id == campaign.id)
        .group_by(Recipient.status, Recipient.skip_code)
    ).all()
    skipped = {code: n for status, code, n in rows if status == RecipientStatus.SKIPPED and code}
    pending = sum(n for status, _, n in rows if status == RecipientStatus.PENDING)
    batches = list(
        db.scalars(
            select(Recipient.batch)
            .where(and_(Recipient.campaign_id == campaign.id, Recipient.status == RecipientStatus.PENDING.value))
            .group_by(Recipient.batch)
            .order_by(Recipient.batch)
        )
    )
    return Plan(
        total=sum(n for *_, n in rows), pending=pending, skipped=skipped, batches=[b for b in batches if b is not None]
    )


def job_id(campaign_id: int, batch: int) -> str:
    """The fixed RQ job id of a batch (RQ allows letters, digits, _ and -)."""
    return f"batch-{campaign_id}-{batch}"


def job_timeout(campaign: Campaign) -> int:
    """Seconds RQ lets one batch job of ``campaign`` run (its first run, a retry, a window's wait)."""
    size = campaign.batch_size or MAX_BATCH
    return int(size / max(campaign.pace_per_s, 0.01) * 3 + JOB_MARGIN_S)


def check_job_timeouts(twilio_timeout_s: float) -> None:
    """Refuse a provider timeout that a batch job might not outlive (issue 6: a cut-off send)."""
    if not twilio_timeout_s < JOB_MARGIN_S:
        raise ValueError(
            f"TWILIO_TIMEOUT_S ({twilio_timeout_s:g} s) must be shorter than a batch job's margin ({JOB_MARGIN_S} s)"
        )


def enqueue(conn: object, campaign: Campaign, batches: list[int]) -> int:
    """Queue one send job per batch in one round trip; return how many were queued."""
    if not batches:
        return 0
    queue = Queue(SEND_QUEUE, connection=conn)  # type: ignore[arg-type]
    timeout = job_timeout(campaign)
    queue.enqueue_many(
        [
            Queue.prepare_data(
                "campaigns.tasks.send_batch",
                args=(campaign.id, n),
                job_id=job_id(campaign.id, n),
                timeout=timeout,
                result_ttl=3600,
                failure_ttl=7 * 24 * 3600,
            )
            for n in batches
        ]
    )
    return len(batches)


def requeue_at(conn: Any, campaign: Campaign, batch: int, when: dt.datetime) -> None:
    """Queue a batch for ``when``: its waiting voters' send window opens (or their blackout ends).

    A moment already come puts it at the back of the queue at once: the rest of a batch whose
    job ran short of time or made way for replies.
    """
    queue = Queue(SEND_QUEUE, connection=conn)
    timeout = job_timeout(campaign)
    if when > utcnow():
        job = f"{job_id(campaign.id, batch)}-w{int(when.timestamp())}"
        queue.enqueue_at(when, "campaigns.tasks.send_batch", campaign.id, batch, job_id=job, job_timeout=timeout)
        return
    # Milliseconds: a job that hands over at once may be queued again within the second.
    job = f"{job_id(campaign.id, batch)}-w{time.time_ns() // 1_000_000}"
    queue.enqueue("campaigns.tasks.send_batch", campaign.id, batch, job_id=job, job_timeout=timeout)


def requeue_later(conn: Any, campaign: Campaign, batch: int) -> None:
    """Queue a batch again after a back-off (its retryable failures are pending again)."""
    attempt = int(conn.incr(f"canvass:batch-retries:{campaign.id}:{batch}"))
    conn.expire(f"canvass:batch-retries:{campaign.id}:{batch}", 7 * 24 * 3600)
    delay = dt.timedelta(seconds=min(600, 30 * 2 ** (attempt - 1)))
    Queue(SEND_QUEUE, connection=conn).enqueue_in(
        delay,
        "campaigns.tasks.send_batch",
        campaign.id,
        batch,
        job_id=f"{job_id(campaign.id, batch)}-r{attempt}",
        job_timeout=job_timeout(campaign),
    )
