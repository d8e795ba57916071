"""Flows kept in the database as immutable versions."""

from __future__ import annotations

import dataclasses
import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.engine import Flow, load_text
from bot.models import FlowVersion


@dataclasses.dataclass(frozen=True)
class Stored:
    """What storing a flow did."""

    name: str
    version: int
    changed: bool


def store(session: Session, flow: Flow, source: str, *, path: str | None = None, by: str | None = None) -> Stored:
    """Store ``source`` as the next version of ``flow.name`` unless it equals the latest."""
    checksum = hashlib.sha256(source.encode("utf-8")).hexdigest()
    latest = latest_version(session, flow.name)
    if latest is not None and latest.checksum == checksum:
        return Stored(flow.name, latest.version, changed=False)
    version = (latest.version if latest else 0) + 1
    session.add(
        FlowVersion(name=flow.name, version=version, checksum=checksum, source=source, path=path, created_by=by)
    )
    session.flush()
    return Stored(flow.name, version, changed=True)


def latest_version(session: Session, name: str) -> FlowVersion | None:
    """The newest stored version of a flow, if any."""
    newest = select(func.max(FlowVersion.version)).where(FlowVersion.name == name).scalar_subquery()
    return session.scalar(select(FlowVersion).where(FlowVersion.name == name, FlowVersion.version == newest))


def load_stored(session: Session, name: str, version: int | None = None) -> Flow | None:
    """A stored flow (the newest, or the given version), parsed and checked."""
    if version is None:
        row = latest_version(session, name)
    else:
        row = session.scalar(select(FlowVersion).where(FlowVersion.name == name, FlowVersion.version == version))
    if row is None:
        return None
    return load_text(row.source, f"{row.name}@v{row.version}")
