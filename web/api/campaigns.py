"""REST API: campaigns (create, launch, test, schedule, pause, resume, abort, end, clone, stats, export)."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request
from sqlalchemy import select

from bot.engine.errors import FlowInvalid
from campaigns import budgets, call_analytics, operations, progress, spec
from campaigns.models import Campaign, CampaignStatus
from campaigns.planner import Plan
from web.api import bp, json_body, one_or_404, yaml_text_body
from web.api.paging import keyset
from web.auth.access import requires
from web.context import db_session, runtime
from web.downloads import csv_download, floip_download
from web.errors import BadInput, Conflict
from web.models import Role

S = CampaignStatus


def iso(value: Any) -> str | None:
    """A UTC time as the API writes it."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def campaign_json(c: Campaign) -> dict[str, Any]:
    """A campaign as the API shows it."""
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "status": c.status,
        "problems": list(c.problems or []),
        "test": c.is_test,
        "test_numbers": list(c.test_numbers or []),
        "parent_id": c.parent_id,
        "channel": c.channel,
        "sender_id": c.sender_id,
        "template_id": c.template_id,
        "language": c.template_language,
        "template_version_id": c.template_version_id,
        "variables": c.variables,
        "audience": c.segment,
        "flow": c.flow_name,
        "flow_version": c.flow_version,
        "flow_node": c.flow_node,
        "pace_per_s": c.pace_per_s,
        "scheduled_at": iso(c.scheduled_at),
        "created_at": iso(c.created_at),
        "launched_at": iso(c.launched_at),
        "completed_at": iso(c.completed_at),
        "ended_at": iso(c.ended_at),
        "aborted_at": iso(c.aborted_at),
        "planned": c.planned,
        # As the spec writes it: {"total": "1000", "whatsapp": "600", "sms": "400"} (amounts as text).
        "budget": budgets.Budget.of(c).as_spec(),
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    """What a launch planned."""
    return {"total": plan.total, "pending": plan.pending, "skipped": plan.skipped, "batches": len(plan.batches)}


def _campaign(campaign_id: int) -> Campaign:
    return one_or_404(Campaign, campaign_id, what="campaign", field="campaign_id")


def _spec_from_request() -> dict[str, Any]:
    """A campaign spec, as YAML (``application/yaml``) or JSON with the same keys."""
    text = yaml_text_body("a campaign spec")
    try:
        return spec.parse(text, "spec")
    except FlowInvalid as exc:
        first = exc.problems[0]
        field = first.message.split(":", 1)[0] if ":" in first.message else "spec"
        raise BadInput("; ".join(p.message for p in exc.problems), field=field) from None


@bp.get("/campaigns")
@requires(Role.VIEWER)
def list_campaigns() -> Any:
    """Campaigns, newest first; ``?status=active`` filters."""
    stmt = select(Campaign)
    if status := request.args.get("status"):
        if status not in {s.value for s in S}:
            raise BadInput(f"must be one of {', '.join(s.value for s in S)}", field="status")
        stmt = stmt.where(Campaign.status == status)
    shown, cursor = keyset(stmt, Campaign.id, descending=True)
    return jsonify({"campaigns": [campaign_json(c) for c in shown], "next_cursor": cursor})


@bp.post("/campaigns")
@requires(Role.OPERATOR)
def create_campaign() -> Any:
    """Create a campaign from a spec (the YAML spec format, or the same keys in JSON)."""
    fields = _spec_from_request()
    s = db_session()
    campaign = operations.create(s, fields, region=runtime().settings.default_region, user=g.user.email)
    s.commit()
    return jsonify(campaign_json(campaign)), 201


@bp.get("/campaigns/<int:campaign_id>")
@requires(Role.VIEWER)
def get_campaign(campaign_id: int) -> Any:
    """A campaign with its live numbers."""
    campaign = _campaign(campaign_id)
    return jsonify({**campaign_json(campaign), "stats": _stats(campaign)})


@bp.get("/campaigns/<int:campaign_id>/stats")
@requires(Role.VIEWER)
def campaign_stats(campaign_id: int) -> Any:
    """Counts by status and skip code, rates, spend, why some were not sent, and the ETA."""
    return jsonify(_stats(_campaign(campaign_id)))


def _stats(campaign: Campaign) -> dict[str, Any]:
    s = db_session()
    numbers = progress.measure(s, campaign)
    stats = {**numbers.as_dict(), "eta": progress.eta_json(progress.eta_for(s, runtime().settings, campaign))}
    if campaign.channel == "voice":
        stats["calls"] = call_analytics.measure(s, campaign).to_dict()
    return stats


@bp.delete("/campaigns/<int:campaign_id>")
@requires(Role.OPERATOR)
def delete_campaign(campaign_id: int) -> Any:
    """Delete a draft."""
    campaign = _campaign(campaign_id)
    if campaign.status != S.DRAFT:
        # As every other move its status refuses: a conflict with its state, not bad input.
        raise Conflict(
            f"campaign {campaign_id} is {campaign.status}: only drafts can be deleted (abort it instead)",
            field="status",
            code="campaign_status",
        )
    operations.remove(runtime(), campaign_id)
    return Response(status=204)


@bp.get("/campaigns/<int:campaign_id>/estimate")
@requires(Role.VIEWER)
def campaign_estimate(campaign_id: int) -> Any:
    """What sending to the audience would cost, by country."""
    found = operations.estimate(db_session(), _campaign(campaign_id), region=runtime().settings.default_region)
    return jsonify(found.as_dict())


@bp.post("/campaigns/<int:campaign_id>/launch")
@requires(Role.OPERATOR)
def launch_campaign(campaign_id: int) -> Any:
    """Launch now: plan the recipients and queue the sends."""
    _campaign(campaign_id)
    plan = operations.launch(runtime(), campaign_id)
    return jsonify({"campaign": campaign_json(_fresh(campaign_id)), "plan": plan_json(plan)})


@bp.post("/campaigns/<int:campaign_id>/test")
@requires(Role.OPERATOR)
def test_campaign(campaign_id: int) -> Any:
    """Send to test numbers only (a test campaign of its own): ``{"numbers": [...]}``."""
    _campaign(campaign_id)
    numbers = json_body().get("numbers")
    if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
        raise BadInput("must be a non-empty list of phone numbers (contacts already)", field="numbers")
    copy, plan = operations.test_send(runtime(), campaign_id, numbers, user=g.user.email)
    return jsonify({"campaign": campaign_json(copy), "plan": plan_json(plan)}), 201


@bp.post("/campaigns/<int:campaign_id>/schedule")
@requires(Role.OPERATOR)
def schedule_campaign(campaign_id: int) -> Any:
    """Launch at a time: ``{"at": "2026-12-01T09:00:00+05:30"}``."""
    _campaign(campaign_id)
    try:
        at = spec.parse_when(json_body().get("at"))
    except ValueError as exc:
        raise BadInput(str(exc), field="at") from None
    operations.schedule(runtime(), campaign_id, at)
    return jsonify(campaign_json(_fresh(campaign_id)))


def _fresh(campaign_id: int) -> Campaign:
    # The operation committed in a transaction of its own: start a new one to see it.
    db_session().rollback()
    return _campaign(campaign_id)


def _action(name: str, target: CampaignStatus) -> None:
    def view(campaign_id: int) -> Any:
        _campaign(campaign_id)
        rt = runtime()
        if target in (S.ABORTED, S.ENDED):
            operations.stop(rt, campaign_id, target)
        elif target == S.ACTIVE:
            operations.resume(rt, campaign_id)
        else:
            operations.simple_move(rt, campaign_id, target)
        return jsonify(campaign_json(_fresh(campaign_id)))

    view.__name__ = f"{name}_campaign"
    view.__doc__ = f"{name.capitalize()} the campaign."
    bp.post(f"/campaigns/<int:campaign_id>/{name}")(requires(Role.OPERATOR)(view))


for _name, _target in (
    ("unschedule", S.READY),
    ("pause", S.PAUSED),
    ("resume", S.ACTIVE),
    ("abort", S.ABORTED),
    ("end", S.ENDED),
):
    _action(_name, _target)


@bp.post("/campaigns/<int:campaign_id>/clone")
@requires(Role.OPERATOR)
def clone_campaign(campaign_id: int) -> Any:
    """A new campaign with the same settings."""
    _campaign(campaign_id)
    copy = operations.clone(runtime(), campaign_id, user=g.user.email)
    return jsonify(campaign_json(copy)), 201


@bp.get("/campaigns/<int:campaign_id>/export.csv")
@requires(Role.VIEWER)
def export_csv(campaign_id: int) -> Any:
    """The per-voter funnel CSV, streamed (constant memory whatever the campaign's size)."""
    _campaign(campaign_id)
    return csv_download(campaign_id)


@bp.get("/campaigns/<int:campaign_id>/export.zip")
@requires(Role.VIEWER)
def export_floip(campaign_id: int) -> Any:
    """The answers as a FLOIP Flow Results package (zip: datapackage.json + CSV)."""
    return floip_download(_campaign(campaign_id))
