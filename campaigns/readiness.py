"""Is a campaign complete enough to launch? Every missing or unusable part, in plain words.

A draft becomes ready when this finds nothing; launching checks again (a template may
have been rejected, a sender marked unhealthy, a flow deleted since).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.flowlibrary import FlowLibrary
from bot.models import Contact, Sender
from bot.phones import InvalidPhone, PhoneParser
from bot.segments import SegmentError, condition
from campaigns import budgets, placeholders, templates, variables, voice_options
from campaigns.models import Campaign, Template, TemplateStatus, TemplateVersion

SENDABLE = ("whatsapp", "sms", "voice")
# Channels whose first message is an approved template (a call needs none: the flow speaks).
TEMPLATED = ("whatsapp", "sms")


def problems(db: Session, campaign: Campaign, *, region: str) -> list[str]:
    """What stops ``campaign`` from being launched (empty when it is ready)."""
    found: list[str] = []
    if not (campaign.name or "").strip():
        found.append("name: required")
    if campaign.channel not in SENDABLE:
        found.append(f"channel: must be one of {', '.join(SENDABLE)}, got {campaign.channel!r}")
    found += _sender(db, campaign)
    if campaign.channel in TEMPLATED:
        version = None
        try:
            version = _template(db, campaign, found)
        finally:
            found += _variables(campaign, version)
    if campaign.segment is None:
        found.append("audience: required (a segment, or all)")
    else:
        try:
            condition(db, campaign.segment)
        except SegmentError as exc:
            found.append(f"audience: {exc}")
    found += _flow(db, campaign)
    if not campaign.pace_per_s or campaign.pace_per_s <= 0:
        found.append("pace: must be more than 0 messages per second")
    if campaign.is_test:
        found += _test_numbers(db, campaign, region)
    if campaign.fallback:
        found += _fallback(db, campaign)
    found += budgets.problems(db, campaign)
    if campaign.deadline is not None:
        if campaign.deadline <= utcnow():
            found.append("deadline: it has passed")
        elif campaign.scheduled_at is not None and campaign.scheduled_at >= campaign.deadline:
            found.append("schedule: it is after the deadline")
    return found


def _fallback(db: Session, campaign: Campaign) -> list[str]:
    """The fallback step is checked like the campaign itself, its problems prefixed."""
    step = campaign.fallback or {}
    if step.get("channel") == campaign.channel:
        return [f"fallback: it must use another channel than {campaign.channel}"]
    shadow = Campaign(
        channel=step.get("channel"),
        sender_id=step.get("sender_id"),
        template_id=step.get("template_id"),
        template_language=step.get("language"),
        template_version_id=step.get("template_version_id"),
        variables=step.get("variables") or campaign.variables,
        flow_name=campaign.flow_name,
        flow_version=campaign.flow_version,
        flow_node=campaign.flow_node,
    )
    found: list[str] = []
    if shadow.channel not in TEMPLATED:
        found.append(f"channel: {shadow.channel!r} cannot be a fallback (whatsapp or sms)")
    found += _sender(db, shadow)
    version = _template(db, shadow, found)
    found += _variables(shadow, version) + _flow(db, shadow)
    return [f"fallback: {problem}" for problem in found]


def _sender(db: Session, campaign: Campaign) -> list[str]:
    if campaign.sender_id is None:
        return ["sender: required (canvass senders list shows them)"]
    sender = db.get(Sender, campaign.sender_id)
    if sender is None:
        return [f"sender: {campaign.sender_id} does not exist"]
    out = []
    if sender.channel != campaign.channel:
        out.append(f"sender: {sender.address} is a {sender.channel} sender, the campaign is {campaign.channel}")
    if not sender.healthy:
        out.append(f"sender: {sender.address} is marked unhealthy ({sender.health_note or 'no reason given'})")
    return out


def _template(db: Session, campaign: Campaign, found: list[str]) -> TemplateVersion | None:
    if campaign.template_id is None:
        found.append("template: required")
        return None
    template = db.get(Template, campaign.template_id)
    if template is None:
        found.append(f"template: {campaign.template_id} does not exist")
        return None
    if template.channel != campaign.channel:
        found.append(f"template: {template.name} is for {template.channel}, the campaign is {campaign.channel}")
    if not campaign.template_language:
        found.append(f"language: which language of {template.name}? (template: {{name: ..., language: en}})")
        return None
    if campaign.template_version_id is not None:  # pinned at launch
        return db.get(TemplateVersion, campaign.template_version_id)
    approved = templates.latest_version(db, template.id, campaign.template_language, approved=True)
    if approved is not None:
        return approved
    newest = templates.latest_version(db, template.id, campaign.template_language)
    if newest is None:
        languages = sorted(
            set(db.scalars(select(TemplateVersion.language).where(TemplateVersion.template_id == template.id)))
        )
        has = ", ".join(languages) or "none"
        found.append(f"template: {template.name} has no {campaign.template_language} version (it has {has})")
        return None
    hint = " (canvass templates submit)" if newest.status == TemplateStatus.DRAFT else ""
    reason = f": {newest.status_reason}" if newest.status_reason else ""
    found.append(f"template: {template.name} ({newest.language}) is {newest.status}, not approved{reason}{hint}")
    return newest


def _variables(campaign: Campaign, version: TemplateVersion | None) -> list[str]:
    try:
        bound = variables.parse(campaign.variables)
    except variables.BindingError as exc:
        return [str(exc)]
    if version is None:
        return []
    wanted = {str(n) for n in placeholders.placeholders(version.body)}
    out = [f"variables: {{{{{n}}}}} of the template has no binding" for n in sorted(wanted - set(bound), key=int)]
    out += [f"variables: the template has no {{{{{n}}}}}" for n in sorted(set(bound) - wanted, key=int)]
    return out


def _flow(db: Session, campaign: Campaign) -> list[str]:
    if not campaign.flow_name:
        return ["flow: required (the flow that handles the voters' replies)"]
    found = FlowLibrary(db).get(campaign.flow_name, campaign.flow_version)
    if found is None:
        return [f"flow: {campaign.flow_name!r} is not loaded (canvass flows load)"]
    flow, _ = found
    if campaign.flow_node and campaign.flow_node not in flow.nodes:
        return [f"flow: {flow.name} has no node {campaign.flow_node!r} for the template to stand in for"]
    if campaign.channel in SENDABLE and campaign.channel not in flow.channels:
        return [f"flow: {flow.name} runs on {', '.join(flow.channels)}, not {campaign.channel}"]
    if campaign.channel == "voice":
        return voice_options.clashes(campaign.voice or {}, flow)
    return []


def _test_numbers(db: Session, campaign: Campaign, region: str) -> list[str]:
    if not campaign.test_numbers:
        return ["test_numbers: a test campaign needs at least one number"]
    parser = PhoneParser(region)
    out = []
    for number in campaign.test_numbers:
        try:
            e164 = parser.parse(number).e164
        except InvalidPhone as exc:
            out.append(f"test_numbers: {number!r}: {exc.reason}")
            continue
        if db.scalar(select(Contact.id).where(Contact.phone == e164)) is None:
            out.append(f"test_numbers: {e164} is not a contact (add it: canvass contacts add {e164})")
    return out
