"""The send-window policy and blackout periods of the whole organisation (``bot.sendpolicy``).

Every campaign obeys them, on top of the deployment's (``CANVASS_SEND_WINDOW``,
``CANVASS_BLACKOUTS``, shown here read-only) and its own. A batch reads the policy when
it starts, so a blackout added here holds back the sends of running campaigns from their
next batch (a batch re-checks every voter at send time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, g, redirect, request
from sqlalchemy.orm import Session

from bot import sendpolicy
from bot.models import PolicyBlackout, PolicyWindow
from bot.sendwindows import PRESETS, PolicyError
from web import audit
from web.auth.access import requires
from web.console import bp
from web.console.admin import page
from web.context import db_session, runtime
from web.models import Role

ZONES = ("Asia/Kolkata", "UTC", "America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London")
# The zone blackout times are typed in, by default: the deployment's region's, where obvious.
REGION_ZONES = {"IN": "Asia/Kolkata", "GB": "Europe/London", "US": "America/New_York"}


def _page(**ctx: Any) -> Any:
    settings = runtime().settings
    return page(
        "console/admin/policy.html",
        org=sendpolicy.load(db_session()),
        deployment_windows=settings.send_windows,
        deployment_blackouts=settings.blackouts,
        presets=PRESETS,
        zones=ZONES,
        default_zone=REGION_ZONES.get(settings.default_region, "UTC"),
        describe=sendpolicy.describe_window,
        **ctx,
    )


@bp.get("/admin/send-policy")
@requires(Role.ADMIN)
def send_policy() -> Any:
    """The windows and blackouts every campaign obeys."""
    return _page()


def _blackout_words(row: Any) -> str:
    who = f"{row.tag}={row.value}" if row.tag else "everyone"
    return f"{row.starts_at:%Y-%m-%d %H:%M}–{row.ends_at:%Y-%m-%d %H:%M} UTC for {who}"


# What each kind of rule is called, and how its row reads in messages and the audit trail.
KINDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "window": ("send window", sendpolicy.describe_window),
    "blackout": ("blackout", _blackout_words),
}


def _add(kind: str, make: Callable[[Session], Any]) -> Any:
    """Store a rule made from the form, audited; a mistake re-renders the page naming its field."""
    s = db_session()
    name, words = KINDS[kind]
    try:
        row = make(s)
        audit.record(
            s, g.user, f"policy.{kind}.add", words(row), **({"reason": row.reason} if kind == "blackout" else {})
        )
        s.commit()
    except PolicyError as exc:
        s.rollback()
        return _page(errors={exc.field: str(exc)}, form=request.form, which=kind)
    flash(f"Added the {name} {words(row)}.", "info")
    return redirect("/admin/send-policy")


def _remove(kind: str, row: Any) -> Any:
    """Audit and commit the removal of a rule (``row`` is None when it was gone already)."""
    name, words = KINDS[kind]
    if row is not None:
        audit.record(db_session(), g.user, f"policy.{kind}.delete", words(row))
        db_session().commit()
        flash(f"Removed the {name} {words(row)}.", "info")
    return redirect("/admin/send-policy")


@bp.post("/admin/send-policy/windows")
@requires(Role.ADMIN)
def policy_window_add() -> Any:
    """Add a window: a preset, or start and end in a time zone (the voter's own when none)."""
    form = request.form
    return _add(
        "window",
        lambda s: sendpolicy.add_window(
            s,
            preset=form.get("preset", ""),
            start=form.get("start", ""),
            end=form.get("end", ""),
            timezone=form.get("timezone", ""),
            by=g.user.email,
        ),
    )


@bp.post("/admin/send-policy/windows/<int:window_id>/delete")
@requires(Role.ADMIN)
def policy_window_delete(window_id: int) -> Any:
    """Remove a window of the organisation."""
    return _remove("window", sendpolicy.remove(db_session(), PolicyWindow, window_id))


@bp.post("/admin/send-policy/blackouts")
@requires(Role.ADMIN)
def policy_blackout_add() -> Any:
    """Add a blackout, for everyone or for the voters with one valued tag."""
    form = request.form
    return _add(
        "blackout",
        lambda s: sendpolicy.add_blackout(
            s,
            starts=form.get("from", ""),
            ends=form.get("to", ""),
            timezone=form.get("timezone", ""),
            tag=form.get("tag", ""),
            value=form.get("value", ""),
            reason=form.get("reason", ""),
            by=g.user.email,
        ),
    )


@bp.post("/admin/send-policy/blackouts/<int:blackout_id>/delete")
@requires(Role.ADMIN)
def policy_blackout_delete(blackout_id: int) -> Any:
    """Remove a blackout of the organisation."""
    return _remove("blackout", sendpolicy.remove(db_session(), PolicyBlackout, blackout_id))
