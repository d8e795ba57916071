"""What every exporter shares: the registry, the rows of a campaign in chunks, and cells."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, ClassVar, TypeVar

from sqlalchemy import case, func, null, select
from sqlalchemy.orm import Session

from bot.engine import Flow
from bot.flowlibrary import FlowLibrary
from bot.models import Answer, Contact, FlowSession, FunnelEvent
from campaigns.exporters.cells import iso_sql
from campaigns.models import Campaign, Recipient
from ivr.models import Call

REGISTRY: dict[str, type[Exporter]] = {}
CHUNK = 5000
T = TypeVar("T")
_END = object()


def register(cls: type[Exporter]) -> type[Exporter]:
    """Class decorator: make an exporter available under its ``name``."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"exporter {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """Up to ``CHUNK`` recipients in id order, with the funnel steps and answers of their sessions.

    A recipient is a row of ``contact_id, phone, name, channel, attempts, status, error_code,
    error_msg, queued_at, sent_at, delivered_at, read_at, replied_at, completed_at,
    session_id, id`` (by position or by name): ``error_code`` is the skip code of a skipped
    voter, times are ISO text (``iso_sql``), ``completed_at`` is when the voter's flow
    ended by completing.
    """

    recipients: Sequence[Any]
    funnel: dict[int, dict[str, str]]  # recipient id -> step -> when it was reached (ISO text)
    answers: dict[int, dict[str, Any]]  # recipient id -> save name -> the latest answer


class Exporter(abc.ABC):
    """Writes one campaign's rows to a stream."""

    name: ClassVar[str]
    media_type: ClassVar[str]
    binary: ClassVar[bool] = False

    def __init__(self, db: Session, campaign: Campaign) -> None:
        self.db = db
        self.campaign = campaign
        found = FlowLibrary(db).get(campaign.flow_name, campaign.flow_version) if campaign.flow_name else None
        self.flow: Flow | None = found[0] if found else None
        self.steps: list[str] = list(self.flow.funnel) if self.flow else []
        self.saves: list[str] = []
        for node in self.flow.nodes.values() if self.flow else ():
            save = getattr(node, "save", None)
            if isinstance(save, str) and save not in self.saves:
                self.saves.append(save)

    @abc.abstractmethod
    def write(self, out: IO[Any]) -> int:
        """Write the export; return the number of rows written."""

    def chunks(self) -> Iterator[Chunk]:
        """The campaign's recipients in id order, a chunk at a time, with funnel and answers.

        Don't use the session until the chunks are all read: on PostgreSQL the next chunk is
        read on a thread while the caller writes this one.
        """
        dialect = self.db.get_bind().dialect.name
        return ahead(self._chunks(dialect)) if dialect == "postgresql" else self._chunks(dialect)

    def _chunks(self, dialect: str) -> Iterator[Chunk]:

        def iso(column: Any, name: str) -> Any:
            return iso_sql(column, dialect).label(name)

        completed = case((FlowSession.end_reason == "completed", FlowSession.ended_at), else_=null())
        hangup_node = case((FlowSession.end_reason == "call_ended", Call.last_node), else_=null())
        stmt = (
            select(
                Recipient.contact_id,
                Contact.phone,
                Contact.name,
                Recipient.channel,
                Recipient.attempts,
                Recipient.status,
                func.coalesce(func.nullif(Recipient.error_code, ""), Recipient.skip_code).label("error_code"),
                Recipient.error_msg,
                iso(Recipient.queued_at, "queued_at"),
                iso(Recipient.sent_at, "sent_at"),
                iso(Recipient.delivered_at, "delivered_at"),
                iso(Recipient.read_at, "read_at"),
                iso(FlowSession.replied_at, "replied_at"),
                iso(completed, "completed_at"),
                # A call campaign's two voice columns (its last call), between the times and the ids.
                *((Call.answered_by, Call.duration_s, hangup_node) if self.campaign.channel == "voice" else ()),
                Recipient.session_id,
                Recipient.id,
            )
            .join(Contact, Contact.id == Recipient.contact_id)
            .outerjoin(FlowSession, FlowSession.id == Recipient.session_id)
            .where(Recipient.campaign_id == self.campaign.id)
            .order_by(Recipient.id)
        )
        if self.campaign.channel == "voice":
            stmt = stmt.outerjoin(Call, Call.id == Recipient.call_id)
        mine = Recipient.campaign_id == self.campaign.id
        reached = (
            select(Recipient.id, FunnelEvent.step, iso_sql(FunnelEvent.reached_at, dialect))
            .join(Recipient, Recipient.session_id == FunnelEvent.session_id)
            .where(mine)
            .order_by(Recipient.id)
        )
        given = (
            select(Recipient.id, Answer.name, Answer.value)
            .join(Recipient, Recipient.session_id == Answer.session_id)
            .where(mine)
            .order_by(Recipient.id, Answer.id)
        )
        # Three streams in recipient id order, read side by side: funnel steps and answers are
        # taken up to each chunk's last recipient. (Looking them up per chunk, by an IN list of
        # 5,000 session ids or by the chunk's id range, cost ~50 ms a chunk on PostgreSQL: the
        # binding, or a plan that scanned the whole funnel table for every chunk.) On the
        # session's connection, not through the ORM, whose loading of a row cost more than the
        # rest of its work.
        conn = self.db.connection()
        streamed = {"yield_per": CHUNK}
        recipients = conn.execute(stmt, execution_options=streamed)
        funnel = _Following(conn.execute(reached, execution_options=streamed) if self.steps else ())
        answers = _Following(conn.execute(given, execution_options=streamed) if self.saves else ())
        for rows in recipients.partitions():
            last = rows[-1].id
            steps: dict[int, dict[str, str]] = {}
            for rid, step, at in funnel.upto(last):
                steps.setdefault(rid, {})[step] = at
            saved: dict[int, dict[str, Any]] = {}
            for rid, name, value in answers.upto(last):
                saved.setdefault(rid, {})[name] = value  # the latest answer wins
            yield Chunk(rows, steps, saved)


def ahead(chunks: Iterator[T]) -> Iterator[T]:
    """Yield from ``chunks``, making the next item on a thread while the caller uses this one.

    PostgreSQL computes a server-side cursor's rows only when they are fetched, so reading a
    chunk is mostly waiting, and writing one is Python's work: side by side, the database
    works on the other core (for a million rows, about 6 s of its CPU) instead of in turn.
    Only one thread at a time runs ``chunks``, so the connection is never used by two.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="canvass-export")
    try:
        upcoming = pool.submit(next, chunks, _END)
        while (item := upcoming.result()) is not _END:
            upcoming = pool.submit(next, chunks, _END)
            yield item  # type: ignore[misc]
    finally:
        pool.shutdown(wait=True)  # the thread finishes the item it is making
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class _Following:
    """Rows of a query in recipient id order (the id first), handed out up to a given id."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self.rows = iter(rows)
        self.head = next(self.rows, None)

    def upto(self, last: int) -> Iterator[Any]:
        """The rows of recipients up to ``last`` not handed out yet."""
        while self.head is not None and self.head[0] <= last:
            yield self.head
            self.head = next(self.rows, None)
