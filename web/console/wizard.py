"""The campaign wizard: ``/campaigns/new``, then one server-rendered form per step.

basics -> audience -> message (template and variables; a call's options instead) ->
flow -> schedule -> budget -> review. The draft campaign is created by the first step
and saved by every next one (``campaigns.editing``), so closing the browser loses
nothing and going back shows what was saved. A step whose form is wrong is shown again
as typed, with each error next to its field (HTTP 422). "Edit" on a draft or ready
campaign opens any step. The review launches, schedules or sends a test through the
same actions as the campaign page's buttons.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import distinct, select

from bot import saved_segments
from bot.db import utcnow
from bot.flowlibrary import FlowLibrary
from bot.models import Contact, FlowVersion, Sender
from bot.phones import InvalidPhone
from bot.segments import SegmentError
from bot.segments import count as segment_count
from campaigns import budgets, editing, forecast, operations, placeholders, planner, templates, variables
from campaigns.lifecycle import TransitionRefused
from campaigns.models import Campaign, Template, TemplateStatus, TemplateVersion
from campaigns.operations import CampaignError
from web.auth.access import requires
from web.console import bp, budget_form
from web.console import wizard_steps as steps
from web.console.campaign_actions import ACTIONS, FORMS
from web.console.segment_form import describe
from web.context import db_session, runtime
from web.errors import NotFound
from web.models import Role

STEP_NAMES = ", ".join(steps.STEPS)


def _campaign(campaign_id: int) -> Campaign:
    campaign = db_session().get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"There is no campaign {campaign_id}.")
    return campaign


def _step_url(c: Campaign, step: str) -> str:
    return url_for("console.wizard_step", campaign_id=c.id, step=step)


def _page(step: str, c: Campaign | None, form: dict[str, Any], errors: dict[str, str], status: int = 200) -> Any:
    """Render one step with what it needs to show."""
    context: dict[str, Any] = {}
    s = db_session()
    if step == "basics":
        context["senders"] = s.scalars(select(Sender).order_by(Sender.channel, Sender.address)).all()
        context["channels"] = steps.fields.CHANNELS
    elif c is not None:
        context.update(EXTRAS[step](c, form))
    return (
        render_template(
            f"console/wizard_{step}.html",
            c=c,
            step=step,
            steps=steps.STEPS,
            titles=steps.TITLES,
            form=form,
            errors=errors,
            **context,
        ),
        status,
    )


def _audience_extras(c: Campaign, form: dict[str, Any]) -> dict[str, Any]:
    # The saved segments to choose from, each described in words (as the segments page does).
    saved = [(seg.name, describe(seg.spec)) for seg in saved_segments.listing(db_session())]
    reading = steps.read_audience(form)
    if reading.errors or "segment" not in reading.changes:
        return {"count": None, "saved_segments": saved}
    try:
        return {"count": segment_count(db_session(), reading.changes["segment"]), "saved_segments": saved}
    except SegmentError:
        return {"count": None, "saved_segments": saved}


def _approved(c: Campaign) -> list[tuple[int, str, str]]:
    """(template id, name, language) of every approved version on the campaign's channel."""
    rows = db_session().execute(
        select(distinct(Template.id), Template.name, TemplateVersion.language)
        .join(TemplateVersion, TemplateVersion.template_id == Template.id)
        .where(Template.channel == c.channel, TemplateVersion.status == TemplateStatus.APPROVED.value)
        .order_by(Template.name, TemplateVersion.language)
    )
    return [(tid, name, language) for tid, name, language in rows]


def _chosen(form: dict[str, Any]) -> TemplateVersion | None:
    template_id, _, language = str(form.get("template", "")).partition(":")
    if not template_id.isdigit() or not language:
        return None
    return templates.latest_version(db_session(), int(template_id), language, approved=True)


def _message_extras(c: Campaign, form: dict[str, Any]) -> dict[str, Any]:
    if c.channel == "voice":
        return {"on_machine": steps.voice_options.ON_MACHINE}
    version = _chosen(form)
    numbers = sorted(set(placeholders.placeholders(version.body))) if version else []
    preview = None
    if version is not None:
        preview = {"samples": placeholders.render(version.body, version.samples or {}) if numbers else version.body}
        sample = _sample_voter(c)
        reading = steps.read_template(form, numbers)
        bound = variables.parse(reading.changes.get("variables") or {})
        if sample is not None and not reading.errors and set(bound) >= {str(n) for n in numbers}:
            found = variables.Values(db_session(), bound, [sample]).for_contact(sample.id)
            preview["voter"] = sample
            preview["text"] = placeholders.render(version.body, found) if found is not None else None
    return {"templates": _approved(c), "version": version, "numbers": numbers, "kinds": steps.KINDS, "preview": preview}


def _sample_voter(c: Campaign) -> Contact | None:
    """The first voter of the audience, to show the message as they would get it."""
    s = db_session()
    try:
        who = planner.audience(s, c, operations.phones_for_test(c, runtime().settings.default_region))
        return s.scalar(select(Contact).where(who).order_by(Contact.id).limit(1))
    except (SegmentError, InvalidPhone):
        return None


def _flow_extras(c: Campaign, form: dict[str, Any]) -> dict[str, Any]:
    s = db_session()
    library = FlowLibrary(s)
    flows = []
    for name in s.scalars(select(distinct(FlowVersion.name)).order_by(FlowVersion.name)):
        found = library.get(name)
        if found is not None:
            flows.append({"flow": found[0], "version": found[1], "fits": c.channel in found[0].channels})
    return {"flows": flows}


def _forecast_extras(c: Campaign, form: dict[str, Any]) -> dict[str, Any]:
    return {"forecast": forecast.forecast(db_session(), runtime().settings, c)}


def _budget_extras(c: Campaign, form: dict[str, Any]) -> dict[str, Any]:
    return {**_forecast_extras(c, form), "channels": budget_form.channels(c)}


def _schedule_extras(c: Campaign, form: dict[str, Any]) -> dict[str, Any]:
    return {"presets": steps.window_presets(), "units": steps.PACE_UNITS}


def _review_extras(c: Campaign, form: dict[str, Any]) -> dict[str, Any]:
    s = db_session()
    version = None
    if c.template_id and c.template_language:
        version = templates.latest_version(s, c.template_id, c.template_language, approved=True)
    return {
        **_forecast_extras(c, form),
        "sender": s.get(Sender, c.sender_id) if c.sender_id else None,
        "template": s.get(Template, c.template_id) if c.template_id else None,
        "version": version,
        "audience": steps.fill_audience(c),
        "budget": budgets.Budget.of(c).as_spec(),
    }


EXTRAS = {
    "audience": _audience_extras,
    "message": _message_extras,
    "flow": _flow_extras,
    "schedule": _schedule_extras,
    "budget": _budget_extras,
    "review": _review_extras,
}


def _fill(step: str, c: Campaign) -> dict[str, Any]:
    """The step's form as the campaign has it now."""
    if step == "basics":
        return steps.fill_basics(c)
    if step == "audience":
        return steps.fill_audience(c)
    if step == "message":
        return steps.fill_message(c)
    if step == "flow":
        return {"flow": c.flow_name or "", **({f"at.{c.flow_name}": c.flow_node or ""} if c.flow_name else {})}
    if step == "schedule":
        zone = forecast.audience_zone(db_session(), c, runtime().settings.default_region)
        return steps.fill_schedule(c, zone)
    if step == "budget":
        return budget_form.fill(c)
    return {}


def _read(step: str, c: Campaign) -> steps.Reading:
    """The posted form of ``step`` read into campaign columns."""
    form = request.form
    if step == "basics":
        return steps.read_basics(form)
    if step == "audience":
        return steps.read_audience(form)
    if step == "message" and c.channel == "voice":
        return steps.read_voice(form)
    if step == "message":
        version = _chosen(dict(form))
        numbers = sorted(set(placeholders.placeholders(version.body))) if version else []
        reading = steps.read_template(form, numbers)
        if form.get("go") == "pick":  # a template was chosen: show its variables, keep what still fits
            typed = {} if reading.errors else reading.changes["variables"]
            kept = {k: v for k, v in {**(c.variables or {}), **typed}.items() if int(k) in numbers}
            reading.changes["variables"], reading.errors = kept, {}
        return reading
    if step == "flow":
        name = form.get("flow", "").strip()
        node = form.get(f"at.{name}", "").strip()
        return steps.Reading({"flow": name, f"at.{name}": node}, {"flow_name": name or None, "flow_node": node or None})
    if step == "schedule":
        return steps.read_schedule(form, utcnow())
    return budget_form.read(form, budget_form.channels(c))


@bp.route("/campaigns/new", methods=["GET", "POST"])
@requires(Role.OPERATOR)
def wizard_new() -> Any:
    """The first step: a draft campaign is created when it is saved."""
    if request.method == "GET":
        return _page("basics", None, steps.fill_basics(None), {})
    s = db_session()
    reading = steps.read_basics(request.form)
    if not reading.errors:
        fields = {k: v for k, v in reading.changes.items() if k != "sender_id"}
        sender = reading.changes.get("sender_id")
        c = operations.create(
            s,
            {**fields, "sender": None if sender is None else str(sender), "segment": None},
            region=runtime().settings.default_region,
            user=g.user.email,
        )
        reading.errors = steps.problem_errors(c.problems, "basics")
        if not reading.errors:
            s.commit()
            flash(f"Draft campaign {c.id} saved. Next: who it is for.", "info")
            return redirect(_step_url(c, "audience"))
        s.rollback()
    return _page("basics", None, reading.form, reading.errors, 422)


@bp.get("/campaigns/<int:campaign_id>/edit")
@requires(Role.OPERATOR)
def wizard_start(campaign_id: int) -> Any:
    """Edit a campaign: the wizard's first step."""
    return redirect(_step_url(_campaign(campaign_id), "basics"))


@bp.route(f"/campaigns/<int:campaign_id>/edit/<any({STEP_NAMES}):step>", methods=["GET", "POST"])
@requires(Role.OPERATOR)
def wizard_step(campaign_id: int, step: str) -> Any:
    """One step of the wizard for a draft or ready campaign: show it, or save it and move on."""
    c = _campaign(campaign_id)
    if not editing.editable(c):
        flash(f"Campaign {c.id} is {c.status}: only drafts and ready campaigns can be edited.", "error")
        return redirect(url_for("console.campaign", campaign_id=c.id))
    if request.method == "GET":
        return _page(step, c, _fill(step, c), {})
    if step == "review":
        return _finish(c)
    s = db_session()
    go = request.form.get("go", "next")
    reading = _read(step, c)
    if not reading.errors:
        found = editing.update(s, c, reading.changes, region=runtime().settings.default_region)
        reading.errors = {} if go == "pick" else steps.problem_errors(found, step)
        if not reading.errors:
            s.commit()
            at = steps.STEPS.index(step)
            target = step if go == "pick" else steps.STEPS[max(at - 1, 0) if go == "back" else at + 1]
            return redirect(_step_url(c, target))
        s.rollback()
    return _page(step, c, reading.form, reading.errors, 422)


def _finish(c: Campaign) -> Any:
    """The review's buttons: keep it as it is, launch (or schedule) it, or send a test."""
    go = request.form.get("go", "draft")
    rt, user = runtime(), g.user.email
    s = db_session()
    found = operations.refresh(s, c, region=rt.settings.default_region)
    s.commit()
    if go == "draft":
        state = "ready to launch" if not found else f"a draft ({len(found)} thing(s) to finish)"
        flash(f"Saved: campaign {c.id} is {state}.", "info")
        return redirect(url_for("console.campaign", campaign_id=c.id))
    try:
        if go == "test":
            message, shown = FORMS["test"].run(rt, c.id, request.form, user)
        elif c.scheduled_at is not None and c.scheduled_at > utcnow():
            at = {"at": c.scheduled_at.strftime("%Y-%m-%dT%H:%M"), "offset": "Z"}
            message, shown = FORMS["schedule"].run(rt, c.id, at, user)
        else:
            message, shown = ACTIONS["launch"].run(rt, c.id, request.form, user)
    except (TransitionRefused, CampaignError) as exc:
        flash(str(exc), "error")
        return redirect(_step_url(c, "review"))
    flash(message, "info")
    return redirect(url_for("console.campaign", campaign_id=shown))


@bp.get("/campaigns/<int:campaign_id>/edit/audience/count")
@requires(Role.OPERATOR)
def wizard_audience_count(campaign_id: int) -> Any:
    """The audience step's live preview: how many contacts the form's conditions select now."""
    _campaign(campaign_id)
    reading = steps.read_audience(request.args)
    if reading.errors:
        field, message = next(iter(reading.errors.items()))
        return jsonify({"count": None, "field": field, "error": message})
    try:
        found = segment_count(db_session(), reading.changes["segment"])
    except SegmentError as exc:
        return jsonify({"count": None, "field": "audience", "error": str(exc)})
    return jsonify({"count": found, "text": f"{found:,} contact{'s' if found != 1 else ''}"})
