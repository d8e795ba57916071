"""What every exporter shares: the registry, the rows of a campaign in chunks, and cells."""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import IO, Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine import Flow
from bot.flowlibrary import FlowLibrary
from bot.models import Answer, Contact, FlowSession, FunnelEvent
from campaigns.models import Campaign, Recipient

REGISTRY: dict[str, type[Exporter]] = {}
CHUNK = 5000


def register(cls: type[Exporter]) -> type[Exporter]:
    """Class decorator: make an exporter available under its ``name``."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"exporter {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def iso(value: dt.datetime | None) -> str:
    """``2026-11-23T06:41:00Z`` (UTC, seconds), or empty."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


@dataclasses.dataclass
class Row:
    """One recipient with its contact, session, funnel steps and answers."""

    recipient: Any  # a Row of the query below (attribute access)
    funnel: dict[str, dt.datetime]
    answers: dict[str, Any]


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

    def rows(self) -> Iterator[list[Row]]:
        """The campaign's recipients in id order, a chunk at a time, with funnel and answers."""
        stmt = (
            select(
                Recipient.id,
                Recipient.contact_id,
                Contact.phone,
                Contact.name,
                Recipient.channel,
                Recipient.attempts,
                Recipient.status,
                Recipient.skip_code,
                Recipient.error_code,
                Recipient.error_msg,
                Recipient.queued_at,
                Recipient.sent_at,
                Recipient.delivered_at,
                Recipient.read_at,
                Recipient.session_id,
                FlowSession.replied_at,
                FlowSession.ended_at,
                FlowSession.end_reason,
            )
            .join(Contact, Contact.id == Recipient.contact_id)
            .outerjoin(FlowSession, FlowSession.id == Recipient.session_id)
            .where(Recipient.campaign_id == self.campaign.id)
            .order_by(Recipient.id)
        )
        result = self.db.execute(stmt.execution_options(yield_per=CHUNK))
        for chunk in result.partitions():
            sessions = [r.session_id for r in chunk if r.session_id is not None]
            funnel: dict[int, dict[str, dt.datetime]] = {}
            answers: dict[int, dict[str, Any]] = {}
            if sessions and self.steps:
                for sid, step, at in self.db.execute(
                    select(FunnelEvent.session_id, FunnelEvent.step, FunnelEvent.reached_at).where(
                        FunnelEvent.session_id.in_(sessions)
                    )
                ):
                    funnel.setdefault(sid, {})[step] = at
            if sessions and self.saves:
                for sid, name, value in self.db.execute(
                    select(Answer.session_id, Answer.name, Answer.value)
                    .where(Answer.session_id.in_(sessions))
                    .order_by(Answer.id)
                ):
                    answers.setdefault(sid, {})[name] = value  # the latest answer wins
            yield [Row(r, funnel.get(r.session_id, {}), answers.get(r.session_id, {})) for r in chunk]
