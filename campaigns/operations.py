"""What operators do to campaigns: create, launch, schedule, pause, resume, abort, end, clone.

Each operation is one transaction; jobs are queued only after it commits (a job that
ran before the commit would find the campaign not yet active). The CLI, the console and
the REST API all call these.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.flowlibrary import FlowLibrary
from bot.models import FlowSession, Sender
from bot.phones import InvalidPhone, PhoneParser
from bot.runtime import Runtime
from bot.segments import count as segment_count
from bot.sendwindows import Policy
from campaigns import (
    budgets,
    call_dispatch,
    compliance,
    fallback,
    lanes,
    lifecycle,
    planner,
    pricing,
    readiness,
    sms_costs,
    templates,
)
from campaigns.lifecycle import TransitionRefused
from campaigns.models import Campaign, CampaignStatus, Recipient, Template, TemplateVersion

log = logging.getLogger(__name__)
S = CampaignStatus
COPY_FIELDS = (
    "description",
    "channel",
    "sender_id",
    "template_id",
    "template_language",
    "variables",
    "segment",
    "flow_name",
    "flow_node",
    "pace_per_s",
    "test_numbers",
    "is_test",
    "voice",
)


class CampaignError(ValueError):
    """An operation cannot be done; the message says why and what to do."""


def find(db: Session, campaign_id: int) -> Campaign:
    """The campaign, or a ``CampaignError`` naming the id."""
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"no campaign {campaign_id}")
    return campaign


def resolve(db: Session, fields: dict[str, Any], *, region: str) -> dict[str, Any]:
    """Turn a spec's names (sender number, template name) into ids; unknown ones become problems later."""
    out = {k: v for k, v in fields.items() if k not in ("sender", "template", "language", "flow", "fallback")}
    out["flow_name"] = fields.get("flow")
    out["sender_id"] = _sender_for(db, fields.get("sender"), fields.get("channel"), region)
    out["template_id"], out["template_language"] = _template_for(db, fields.get("template"), fields.get("language"))
    step = fields.get("fallback")
    if step:
        template_id, language = _template_for(db, step.get("template"), step.get("language"))
        out["fallback"] = {
            "channel": step["channel"],
            "sender_id": _sender_for(db, step.get("sender"), step["channel"], region),
            "template_id": template_id,
            "language": language,
            "variables": step.get("variables"),
            "after_s": step.get("after_s"),
        }
    return out


def _sender_for(db: Session, sender: Any, channel: str | None, region: str) -> int | None:
    if sender is not None:
        return _sender_id(db, str(sender), channel, region)
    if not channel:
        return None
    # One healthy sender on the channel: take it, as a person would.
    found = db.scalars(select(Sender.id).where(Sender.channel == channel, Sender.healthy.is_(True))).all()
    return found[0] if len(found) == 1 else None


def _template_for(db: Session, name: str | None, language: str | None) -> tuple[int | None, str | None]:
    if not name:
        return None, language
    template_id = db.scalar(select(Template.id).where(Template.name == name))
    if template_id is None:
        raise CampaignError(f"template: no template named {name!r} (canvass templates list)")
    if not language:
        languages = set(db.scalars(select(TemplateVersion.language).where(TemplateVersion.template_id == template_id)))
        language = languages.pop() if len(languages) == 1 else None
    return template_id, language


def _sender_id(db: Session, text: str, channel: str | None, region: str) -> int:
    if text.isdigit() and len(text) < 8 and db.get(Sender, int(text)):
        return int(text)
    try:
        e164 = PhoneParser(region).parse(text.removeprefix("whatsapp:")).e164
    except InvalidPhone as exc:
        raise CampaignError(f"sender: {text!r}: {exc.reason}") from None
    stmt = select(Sender.id).where(Sender.address == e164)
    if channel:
        stmt = stmt.where(Sender.channel == channel)
    sender_id = db.scalar(stmt)
    if sender_id is None:
        raise CampaignError(
            f"sender: {e164} is not a {channel or ''} sender (canvass senders add {e164} --channel {channel})"
        )
    return sender_id


def create(db: Session, fields: dict[str, Any], *, region: str, user: str | None = None) -> Campaign:
    """Create a campaign from checked spec fields; it is ready at once when nothing is missing."""
    campaign = Campaign(status=S.DRAFT.value, created_by=user, problems=[], **resolve(db, fields, region=region))
    db.add(campaign)
    db.flush()
    refresh(db, campaign, region=region)
    return campaign


def refresh(db: Session, campaign: Campaign, *, region: str) -> list[str]:
    """Recheck a draft or ready campaign and move it between draft and ready accordingly."""
    found = readiness.problems(db, campaign, region=region)
    campaign.problems = found
    db.flush()
    if campaign.status == S.DRAFT and not found:
        lifecycle.move(db, campaign, S.READY)
    elif campaign.status == S.READY and found:
        lifecycle.move(db, campaign, S.DRAFT)
    return found


def launch(rt: Runtime, campaign_id: int, *, now: dt.datetime | None = None) -> planner.Plan:
    """Launch now (ready or scheduled -> active): pin versions, plan recipients, queue batches.

    Launching an active campaign again only queues its pending batches again (harmless:
    the jobs claim their rows).
    """
    now = now or utcnow()
    region = rt.settings.default_region
    with rt.db.session(write=True) as db:
        campaign = find(db, campaign_id)
        policy, closed = compliance.policy_for(rt.settings, campaign, db), {}
        if campaign.status not in (S.ACTIVE, S.PAUSED):
            _check_launchable(db, campaign, region)
            closed = _closed_zones(db, campaign, policy, region, now)
            _pin(db, campaign, now)
            lifecycle.move(db, campaign, S.ACTIVE, now=now)
        elif campaign.status == S.PAUSED:
            raise CampaignError(
                f"campaign {campaign.id} is paused: resume it instead (canvass campaigns resume {campaign.id})"
            )
        test_phones = phones_for_test(campaign, region)
        segments = _segments(db, campaign)
        plan = planner.plan(
            db, campaign, test_phones=test_phones, now=now, policy=policy, segments=segments, closed=closed
        )
        campaign.planned = plan.total
        if budgets.Budget.of(campaign):
            sms_costs.make(db, campaign.id)  # what is left for costs found at send time (campaigns.sms_costs)
        if not plan.pending:
            complete_if_done(db, campaign.id)
    if campaign.channel == "voice" and plan.pending:
        _prerender(rt, campaign)
    lanes.queue(rt.redis, campaign, plan.batches, rt.settings.campaign_lanes)
    return plan


def _prerender(rt: Runtime, campaign: Campaign) -> None:
    """Render every static prompt of a call campaign's flow before its first call is placed."""
    from ivr.prompts import PromptAudio

    with rt.db.session() as db:
        found = FlowLibrary(db).get(campaign.flow_name or "", campaign.flow_version)
    if found is None or rt.settings.tts == "twilio":
        return
    try:
        report = PromptAudio(rt.settings.var_dir, rt.settings.tts).prerender(found[0])
    except Exception:  # a voice that cannot render: the calls speak with <Say>, the campaign goes on
        log.exception("campaign %s: its prompts could not be rendered; calls will use <Say>", campaign.id)
        return
    log.info("campaign %s: prompts %s", campaign.id, report.summary())


def _check_launchable(db: Session, campaign: Campaign, region: str) -> None:
    if not lifecycle.allowed(campaign.status, S.ACTIVE) and campaign.status != S.DRAFT:
        raise TransitionRefused(campaign.id, campaign.status, S.ACTIVE)
    found = readiness.problems(db, campaign, region=region)
    if campaign.status == S.DRAFT and not found:
        lifecycle.move(db, campaign, S.READY)  # it became complete since it was last checked
    if found:
        campaign.problems = found
        raise CampaignError(f"campaign {campaign.id} cannot be launched:\n  " + "\n  ".join(found))
    if not campaign.is_test and not segment_count(db, campaign.segment):
        raise CampaignError(f"campaign {campaign.id} cannot be launched: its audience is empty")


def _closed_zones(db: Session, campaign: Campaign, policy: Policy, region: str, now: dt.datetime) -> dict[str, int]:
    """The audience's zones where the windows never overlap; refused when that is all of them."""
    if not policy.windows:
        return {}
    zones = compliance.zones_of(db, planner.audience(db, campaign, phones_for_test(campaign, region)))
    closed = compliance.closed_zones(policy, zones, now)
    if closed and len(closed) == len(zones):
        raise CampaignError(f"campaign {campaign.id} cannot be launched: {compliance.closed_message(closed)}")
    return closed


def _pin(db: Session, campaign: Campaign, now: dt.datetime) -> None:
    """Fix the template version and flow version this campaign sends and runs."""
    assert campaign.flow_name
    if campaign.channel != "voice":  # a call has no template: the flow speaks
        assert campaign.template_id is not None and campaign.template_language
        version = templates.latest_version(db, campaign.template_id, campaign.template_language, approved=True)
        assert version is not None  # readiness checked it
        if version.used_at is None:
            version.used_at = now
        campaign.template_version_id = version.id
    if campaign.fallback and campaign.fallback.get("template_id"):
        step = dict(campaign.fallback)
        backup = templates.latest_version(db, step["template_id"], step["language"], approved=True)
        assert backup is not None  # readiness checked it
        if backup.used_at is None:
            backup.used_at = now
        campaign.fallback = {**step, "template_version_id": backup.id}  # a new dict: the JSON column sees it
    found = FlowLibrary(db).get(campaign.flow_name)
    assert found is not None
    campaign.flow_version = found[1]


def _segments(db: Session, campaign: Campaign) -> int:
    """How many price units one message takes: SMS segments of the template's text, else 1."""
    return templates.price_units(db, campaign.channel, campaign.template_version_id)


def estimate(db: Session, campaign: Campaign, *, region: str, fallback: bool = False) -> pricing.Estimate:
    """What sending to the campaign's audience once would cost (with ``fallback``: its fallback's message).

    An upper bound: voters who will be skipped are counted too (for the fallback: as if
    every voter needed it).
    """
    channel, version = templates.attempt_version(db, campaign, fallback=fallback)
    segments = templates.segments(version) if version is not None and channel == "sms" else 1
    who = planner.audience(db, campaign, phones_for_test(campaign, region))
    return pricing.estimate(db, channel, who, segments)


def phones_for_test(campaign: Campaign, region: str) -> list[str] | None:
    """A test campaign's numbers in E.164 (None for a real campaign); raises ``InvalidPhone``."""
    if not campaign.is_test:
        return None
    parser = PhoneParser(region)
    return [parser.parse(n).e164 for n in campaign.test_numbers]


def schedule(rt: Runtime, campaign_id: int, at: dt.datetime, *, now: dt.datetime | None = None) -> Campaign:
    """Ready -> scheduled: the scheduler launches it at ``at``."""
    now = now or utcnow()
    if at <= now:
        raise CampaignError(f"{at.isoformat()} is in the past: launch it now instead")
    with rt.db.session(write=True) as db:
        campaign = find(db, campaign_id)
        if campaign.status == S.READY:
            _check_launchable(db, campaign, rt.settings.default_region)
        lifecycle.move(db, campaign, S.SCHEDULED, scheduled_at=at)
        return campaign


def simple_move(rt: Runtime, campaign_id: int, target: CampaignStatus, **values: Any) -> Campaign:
    """Unschedule (-> ready), pause, complete: a move and nothing else."""
    with rt.db.session(write=True) as db:
        campaign = find(db, campaign_id)
        lifecycle.move(db, campaign, target, **values)
        return campaign


def resume(rt: Runtime, campaign_id: int) -> planner.Plan:
    """Paused -> active, and queue the batches that still have pending rows."""
    with rt.db.session(write=True) as db:
        campaign = find(db, campaign_id)
        lifecycle.move(db, campaign, S.ACTIVE, launched_at=campaign.launched_at)
        plan = planner.summary(db, campaign)
    lanes.queue(rt.redis, campaign, plan.batches, rt.settings.campaign_lanes)
    return plan


def stop(rt: Runtime, campaign_id: int, target: CampaignStatus) -> Campaign:
    """Abort, or end a completed campaign: its voters are released, its waiting sessions end."""
    now = utcnow()
    with rt.db.session(write=True) as db:
        campaign = find(db, campaign_id)
        lifecycle.move(db, campaign, target, now=now)
        db.execute(
            update(FlowSession)
            .where(FlowSession.campaign_id == campaign.id, FlowSession.status != "ended")
            .values(status="ended", end_reason=f"campaign_{target.value}", ended_at=now, timeout_at=None)
            .execution_options(synchronize_session=False)
        )
    lanes.forget(rt.redis, campaign.id)
    if target == S.ABORTED and campaign.channel == "voice":
        call_dispatch.hang_up_ringing(rt, campaign.id)
    return campaign


def clone(rt: Runtime, campaign_id: int, *, user: str | None = None, **changes: Any) -> Campaign:
    """A new campaign with the same settings (a draft, or ready when nothing is missing)."""
    with rt.db.session(write=True) as db:
        source = find(db, campaign_id)
        name = changes.pop("name", None) or f"{source.name} (copy)"
        fields = {f: getattr(source, f) for f in COPY_FIELDS} | changes
        if fields.get("fallback"):
            # The copy pins its own versions when it launches.
            fields["fallback"] = {k: v for k, v in fields["fallback"].items() if k != "template_version_id"}
        copy = Campaign(name=name, status=S.DRAFT.value, created_by=user, parent_id=source.id, problems=[], **fields)
        db.add(copy)
        db.flush()
        refresh(db, copy, region=rt.settings.default_region)
        return copy


def test_send(
    rt: Runtime, campaign_id: int, numbers: list[str], *, user: str | None = None
) -> tuple[Campaign, planner.Plan]:
    """Send the campaign to test numbers only, as a test campaign of its own (same rules)."""
    with rt.db.session(write=True) as db:
        name = find(db, campaign_id).name
    copy = clone(rt, campaign_id, user=user, name=f"{name} (test)", is_test=True, test_numbers=list(numbers))
    if copy.status != S.READY:
        raise CampaignError(f"test campaign {copy.id} cannot be sent:\n  " + "\n  ".join(copy.problems))
    return copy, launch(rt, copy.id)


def remove(rt: Runtime, campaign_id: int) -> None:
    """Delete a draft (anything that may have sent is kept for the record)."""
    with rt.db.session(write=True) as db:
        campaign = find(db, campaign_id)
        if campaign.status != S.DRAFT:
            raise CampaignError(
                f"campaign {campaign.id} is {campaign.status}: only drafts can be deleted (abort it instead)"
            )
        db.execute(delete(Campaign).where(Campaign.id == campaign.id))


def complete_if_done(db: Session, campaign_id: int) -> bool:
    """Active -> completed once no row is pending or sending, and no fallback can still come.

    A call campaign's ``sent`` rows are calls still ringing or unanswered: a retry may
    follow, so they keep it going too. The campaign's row is locked first, as a fallback
    move locks it: a move under way (or a pause) is not waited for, the next pass decides.
    """
    # FOR NO KEY UPDATE: the rows that name the campaign (messages, sessions) are still inserted meanwhile.
    mine = select(Campaign.id).where(Campaign.id == campaign_id).with_for_update(skip_locked=True, key_share=True)
    if db.scalar(mine) is None:
        return False
    campaign = db.get(Campaign, campaign_id)
    unsettled = Recipient.status.in_(("pending", "sending"))
    if campaign is not None and campaign.channel == "voice":
        unsettled = or_(unsettled, and_(Recipient.status == "sent", Recipient.channel == "voice"))
    busy = db.scalar(select(func.count()).select_from(Recipient).where(Recipient.campaign_id == campaign_id, unsettled))
    if busy:
        return False
    if campaign is not None and campaign.fallback and fallback.waiting(db, campaign):
        return False
    done = db.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == S.ACTIVE.value)
        .values(status=S.COMPLETED.value, completed_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(done)
