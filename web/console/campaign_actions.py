"""The campaign page's buttons: launch, schedule, pause, resume, abort, end, clone, send a test.

Each is a POST form with the session's CSRF token, for operators and above. The work is
done by ``campaigns.operations`` (the same calls as the CLI and the REST API); a refused
move or an incomplete campaign is flashed to the operator with the reason, and the
browser goes back to the campaign page (or to the new campaign, for clone and test).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from flask import flash, g, redirect, request, url_for

from bot.runtime import Runtime
from campaigns import operations, spec
from campaigns.lifecycle import TransitionRefused
from campaigns.models import Campaign, CampaignStatus
from campaigns.operations import CampaignError
from campaigns.planner import Plan
from web.auth.access import requires
from web.console import bp
from web.context import db_session, runtime
from web.errors import NotFound
from web.models import Role

S = CampaignStatus
# What an action does: (runtime, campaign id, form, user) -> (message, campaign to show next).
Run = Callable[[Runtime, int, Mapping[str, str], str], tuple[str, int]]
OFFSET = re.compile(r"^(Z|[+-]\d{2}:\d{2})$")
MAX_TEST_NUMBERS = 10


@dataclasses.dataclass(frozen=True)
class Action:
    """A button (or a small form) on the campaign page."""

    name: str
    label: str
    statuses: frozenset[str]  # the campaign statuses that show it
    run: Run
    style: str = ""  # "", "secondary" or "danger"
    confirm: str | None = None  # asked in the browser before posting (when JavaScript runs)


def _plan_text(plan: Plan) -> str:
    skipped = ", ".join(f"{code} {n}" for code, n in sorted(plan.skipped.items()))
    text = f"{plan.total} recipients, {plan.pending} to send in {len(plan.batches)} batch(es)"
    return text + (f"; skipped: {skipped}" if skipped else "")


def _launch(rt: Runtime, cid: int, form: Mapping[str, str], user: str) -> tuple[str, int]:
    return f"Launched: {_plan_text(operations.launch(rt, cid))}.", cid


def _recheck(rt: Runtime, cid: int, form: Mapping[str, str], user: str) -> tuple[str, int]:
    with rt.db.session(write=True) as db:
        found = operations.refresh(db, operations.find(db, cid), region=rt.settings.default_region)
    if found:
        return f"Still a draft: {len(found)} problem(s) to fix, listed below.", cid
    return "Ready to launch.", cid


def _move(target: CampaignStatus, message: str) -> Run:
    def run(rt: Runtime, cid: int, form: Mapping[str, str], user: str) -> tuple[str, int]:
        operations.simple_move(rt, cid, target)
        return message, cid

    return run


def _resume(rt: Runtime, cid: int, form: Mapping[str, str], user: str) -> tuple[str, int]:
    plan = operations.resume(rt, cid)
    return f"Resumed: {plan.pending} still to send.", cid


def _stop(target: CampaignStatus, message: str) -> Run:
    def run(rt: Runtime, cid: int, form: Mapping[str, str], user: str) -> tuple[str, int]:
        operations.stop(rt, cid, target)
        return message, cid

    return run


def _clone(rt: Runtime, cid: int, form: Mapping[str, str], user: str) -> tuple[str, int]:
    copy = operations.clone(rt, cid, user=user)
    return f"Cloned as campaign {copy.id} ({copy.status}).", copy.id


def _schedule(rt: Runtime, cid: int, form: Mapping[str, str], user: str) -> tuple[str, int]:
    at, offset = form.get("at", "").strip(), (form.get("offset", "").strip() or "Z")
    if not at:
        raise CampaignError("Launch at: pick a date and time.")
    if not OFFSET.match(offset):
        raise CampaignError(f"UTC offset: write it as +05:30, -04:00 or Z; got {offset!r}.")
    try:
        when = spec.parse_when(at + offset)
    except ValueError as exc:
        raise CampaignError(f"Launch at: {exc}") from None
    operations.schedule(rt, cid, when)
    return f"Scheduled: it launches at {when:%Y-%m-%d %H:%M} UTC.", cid


def _test(rt: Runtime, cid: int, form: Mapping[str, str], user: str) -> tuple[str, int]:
    numbers = [n for n in re.split(r"[,;\s]+", form.get("numbers", "")) if n]
    if not numbers:
        raise CampaignError("Test numbers: write one or more phone numbers (contacts already), separated by commas.")
    if len(numbers) > MAX_TEST_NUMBERS:
        raise CampaignError(f"Test numbers: at most {MAX_TEST_NUMBERS} at a time; got {len(numbers)}.")
    copy, plan = operations.test_send(rt, cid, numbers, user=user)
    return f"Test campaign {copy.id}: {_plan_text(plan)}.", copy.id


def _statuses(*statuses: CampaignStatus) -> frozenset[str]:
    return frozenset(s.value for s in statuses)


ALL = _statuses(*S)
# Buttons, in the order the page shows them.
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("recheck", "Check again", _statuses(S.DRAFT), _recheck),
        Action("launch", "Launch now", _statuses(S.READY, S.SCHEDULED), _launch, confirm="Start sending now?"),
        Action(
            "unschedule", "Unschedule", _statuses(S.SCHEDULED), _move(S.READY, "Unscheduled: ready again."), "secondary"
        ),
        Action("pause", "Pause", _statuses(S.ACTIVE), _move(S.PAUSED, "Paused: sending stops within a second.")),
        Action("resume", "Resume", _statuses(S.PAUSED), _resume),
        Action(
            "end",
            "End",
            _statuses(S.COMPLETED),
            _stop(S.ENDED, "Ended: its voters are released for other campaigns."),
            "secondary",
            confirm="End the campaign? Conversations still open in its flow end too.",
        ),
        Action("clone", "Clone", ALL, _clone, "secondary"),
        Action(
            "abort",
            "Abort",
            _statuses(S.DRAFT, S.READY, S.SCHEDULED, S.ACTIVE, S.PAUSED),
            _stop(S.ABORTED, "Aborted: nothing more is sent."),
            "danger",
            confirm="Abort the campaign for good? Nothing more will be sent.",
        ),
    )
}
# Small forms with inputs of their own.
FORMS: dict[str, Action] = {
    "schedule": Action("schedule", "Schedule", _statuses(S.READY), _schedule),
    "test": Action("test", "Send test", ALL - _statuses(S.DRAFT), _test, "secondary"),
}
NAMES = ", ".join([*ACTIONS, *FORMS])


@bp.post(f"/campaigns/<int:campaign_id>/<any({NAMES}):action>")
@requires(Role.OPERATOR)
def campaign_action(campaign_id: int, action: str) -> Any:
    """Do one lifecycle action and flash what happened (or why it could not)."""
    if db_session().get(Campaign, campaign_id) is None:
        raise NotFound(f"There is no campaign {campaign_id}.")
    chosen = ACTIONS.get(action) or FORMS[action]
    shown = campaign_id
    try:
        message, shown = chosen.run(runtime(), campaign_id, request.form, g.user.email)
    except (TransitionRefused, CampaignError) as exc:
        flash(str(exc), "error")
    else:
        flash(message, "info")
    return redirect(url_for("console.campaign", campaign_id=shown))
