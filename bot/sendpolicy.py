"""The organisation's send policy: windows and blackouts stored in the database.

Every campaign obeys them on top of the deployment's settings (``CANVASS_SEND_WINDOW``,
``CANVASS_BLACKOUTS``) and its own (``campaigns.compliance.policy_for``). An admin edits
them in the console; a change holds from the next batch a worker runs, because the policy
is read afresh when a batch starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.contacts import normalize_tag_name
from bot.models import PolicyBlackout, PolicyWindow
from bot.sendwindows import PRESETS, Blackout, Policy, PolicyError, SendWindow, parse_windows


@dataclasses.dataclass(frozen=True)
class OrgPolicy:
    """The stored rows and the policy they make (rows for the console, policy for sending)."""

    windows: list[tuple[PolicyWindow, SendWindow]]
    blackouts: list[tuple[PolicyBlackout, Blackout]]

    @property
    def policy(self) -> Policy:
        """The windows and blackouts as a ``Policy``."""
        return Policy(windows=tuple(w for _, w in self.windows), blackouts=tuple(b for _, b in self.blackouts))


def load(db: Session) -> OrgPolicy:
    """Every stored window and blackout, checked as they are read (two small queries)."""
    windows = [(row, _window(row)) for row in db.scalars(select(PolicyWindow).order_by(PolicyWindow.id))]
    blackouts = [
        (row, Blackout(row.starts_at, row.ends_at, row.tag, row.value, row.reason))
        for row in db.scalars(select(PolicyBlackout).order_by(PolicyBlackout.starts_at, PolicyBlackout.id))
    ]
    return OrgPolicy(windows, blackouts)


def org_policy(db: Session) -> Policy:
    """The organisation's windows and blackouts as one ``Policy``."""
    return load(db).policy


def _window(row: PolicyWindow) -> SendWindow:
    if row.preset:
        return PRESETS[row.preset]
    spec = {"start": row.start, "end": row.end, **({"timezone": row.timezone} if row.timezone else {})}
    return parse_windows(spec)[0]


def add_window(
    db: Session, *, preset: str = "", start: str = "", end: str = "", timezone: str = "", by: str | None = None
) -> PolicyWindow:
    """Store a window: a preset name, or start and end (HH:MM) with an optional time zone.

    Raises ``PolicyError`` whose ``field`` is ``preset``, ``start``, ``end`` or ``timezone``.
    """
    preset, start, end, timezone = preset.strip(), start.strip(), end.strip(), timezone.strip()
    if preset:
        if preset not in PRESETS:
            raise PolicyError("preset", f"unknown preset {preset!r} (one of {', '.join(PRESETS)})")
        if db.scalar(select(PolicyWindow.id).where(PolicyWindow.preset == preset)) is not None:
            raise PolicyError("preset", f"{preset} is already in the policy")
        row = PolicyWindow(preset=preset, created_by=by)
    else:
        if not start and not end:
            raise PolicyError("preset", "pick a preset, or give a start and an end time")
        try:
            [window] = parse_windows({"start": start, "end": end, **({"timezone": timezone} if timezone else {})}, "")
        except PolicyError as exc:
            # parse_windows names ".start", ".end", ".timezone" or (an empty window) "send_window".
            field = exc.field.lstrip(".") if exc.field.lstrip(".") in ("start", "end", "timezone") else "end"
            raise PolicyError(field, str(exc).split(": ", 1)[-1]) from None
        row = PolicyWindow(
            start=window.start.strftime("%H:%M"), end=window.end.strftime("%H:%M"), timezone=window.zone, created_by=by
        )
    db.add(row)
    db.flush()
    return row


def local_moment(value: str, zone: str, field: str) -> dt.datetime:
    """A wall-clock time (``2026-11-18T18:00``, as a browser's datetime-local sends it) in ``zone``, as UTC."""
    text = value.strip()
    if not text:
        raise PolicyError(field, "give a date and time")
    try:
        naive = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PolicyError(field, f"a date and time such as 2026-11-18T18:00, got {value!r}") from None
    if naive.tzinfo is not None:
        return naive.astimezone(dt.UTC)
    try:
        tz = ZoneInfo(zone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError("timezone", f"unknown time zone {zone!r} (e.g. Asia/Kolkata)") from None
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def add_blackout(
    db: Session,
    *,
    starts: str,
    ends: str,
    timezone: str,
    tag: str = "",
    value: str = "",
    reason: str = "",
    by: str | None = None,
) -> PolicyBlackout:
    """Store a blackout from ``starts`` to ``ends`` (local times in ``timezone``), for all or for tag=value.

    Raises ``PolicyError`` whose ``field`` is ``from``, ``to``, ``timezone``, ``tag``, ``value`` or ``reason``.
    """
    start_at = local_moment(starts, timezone, "from")
    end_at = local_moment(ends, timezone, "to")
    tag, value, reason = tag.strip(), value.strip(), reason.strip()
    if end_at <= start_at:
        raise PolicyError("to", "a blackout must end after it starts")
    if tag and not value:
        raise PolicyError("value", f"give the value of {tag!r} whose voters are silenced (e.g. pune-central)")
    if value and not tag:
        raise PolicyError("tag", "give the tag the value belongs to (e.g. constituency)")
    if tag:
        try:
            tag = normalize_tag_name(tag)  # as contacts' tags are stored: the blackout finds them
        except ValueError as exc:
            raise PolicyError("tag", str(exc)) from None
    if len(value) > 200 or len(reason) > 200:
        raise PolicyError("value" if len(value) > 200 else "reason", "at most 200 characters")
    row = PolicyBlackout(
        starts_at=start_at, ends_at=end_at, tag=tag or None, value=value or None, reason=reason, created_by=by
    )
    db.add(row)
    db.flush()
    return row


def remove(db: Session, model: type[PolicyWindow] | type[PolicyBlackout], row_id: int) -> Any:
    """Delete a stored window or blackout; returns it (None when there was none)."""
    row = db.get(model, row_id)
    if row is not None:
        db.delete(row)
        db.flush()
    return row


def describe_window(row: PolicyWindow) -> str:
    """``india_election`` or ``09:00-21:00 Asia/Kolkata`` (``voter's time`` without a zone)."""
    if row.preset:
        return row.preset
    zone = row.timezone or "voter's own time"
    return f"{row.start}-{row.end} {zone}"
