"""The campaign wizard's forms: each step's fields filled from a campaign, and read back into columns.

A step reads its form into a :class:`Reading`: what was typed (shown again when something
is wrong, so nothing is lost), the campaign columns it sets, and an error per form field.
Every value is checked by ``campaigns.fields`` — the same checks as a YAML spec — and
after saving, ``campaigns.readiness`` names what is still missing; its problems start
with their field (``sender: ...``), so each is shown next to the field on its step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.contacts import parse_tag
from bot.sendwindows import PRESETS
from campaigns import fields, voice_options
from campaigns.models import Campaign

STEPS = ("basics", "audience", "message", "flow", "schedule", "budget", "review")
TITLES = {
    "basics": "Basics",
    "audience": "Audience",
    "message": "Message",
    "flow": "Flow",
    "schedule": "Schedule",
    "budget": "Budget",
    "review": "Review",
}
# The fields each step sets: readiness problems about them are shown on that step.
FIELDS = {
    "basics": ("name", "description", "channel", "sender", "test", "test_numbers"),
    "audience": ("audience",),
    "message": ("template", "language", "variables", "voice"),
    "flow": ("flow",),
    "schedule": ("pace", "schedule", "deadline", "send_window", "blackouts"),
    "budget": ("budget",),
}
CONSENT = {"not_opted_out": {"not": {"consent": "opted_out"}}, "opted_in": {"consent": "opted_in"}}
KINDS = ("contact:name", "contact:phone", "contact:language", "tag", "field", "answer", "text")
PACE_UNITS = {"s": "a second", "min": "a minute", "h": "an hour"}
VOICE_FIELDS = ("attempts", "retry_after", "ring_timeout", "max_concurrent", "on_machine", "machine_message")
BLACKOUT_ROWS = 1  # empty rows offered below the blackouts already set
LOCAL = "%Y-%m-%dT%H:%M"


@dataclasses.dataclass
class Reading:
    """A step's form read back: what was typed, the columns it sets, errors by form field."""

    form: dict[str, Any]
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    def take(self, key: str, value: Any) -> None:
        """Check one spec key as ``campaigns.fields`` does; keep its columns or its error."""
        try:
            self.changes.update(fields.check(key, value))
        except fields.FieldError as exc:
            self.errors.setdefault(form_field(exc.field), exc.message)


def form_field(field: str) -> str:
    """The form field an error's field belongs to: ``variables.2.tag`` -> ``variables.2``."""
    if field.startswith("variables."):
        return ".".join(field.split(".")[:2])
    if field.startswith("send_window"):
        return "send_window"
    if field.startswith("blackouts["):
        return field.split("]")[0] + "]"
    if field == "budget.total":  # the total's box is the budget step's first field
        return "budget"
    return field


def problem_errors(problems: list[str], step: str) -> dict[str, str]:
    """Readiness problems about ``step``'s fields, by form field."""
    out: dict[str, str] = {}
    for problem in problems:
        field, _, message = problem.partition(": ")
        if re.split(r"[.\[]", field, maxsplit=1)[0] in FIELDS.get(step, ()):
            key = form_field(field)
            out[key] = f"{out[key]}; {message}" if key in out else message
    return out


def _split(text: str) -> list[str]:
    return [n for n in re.split(r"[,;\s]+", text or "") if n]


# --- basics -------------------------------------------------------------------------


def fill_basics(c: Campaign | None) -> dict[str, Any]:
    """The basics form of a campaign (empty for a new one)."""
    if c is None:
        return {"name": "", "description": "", "channel": "whatsapp", "sender": "", "kind": "real", "test_numbers": ""}
    return {
        "name": c.name,
        "description": c.description or "",
        "channel": c.channel,
        "sender": str(c.sender_id or ""),
        "kind": "test" if c.is_test else "real",
        "test_numbers": ", ".join(c.test_numbers or []),
    }


def read_basics(form: Mapping[str, str]) -> Reading:
    """Name, description, real or test (with numbers), channel, sender."""
    r = Reading({k: form.get(k, "").strip() for k in fill_basics(None)})
    for key in ("name", "description", "channel"):
        r.take(key, r.form[key])
    sender = r.form["sender"]
    if sender and not sender.isdigit():
        r.errors["sender"] = "choose one of the senders listed"
    r.changes["sender_id"] = int(sender) if sender.isdigit() else None
    test = r.form["kind"] == "test"
    r.changes["is_test"] = test
    r.take("test_numbers", _split(r.form["test_numbers"]) if test else [])
    return r


# --- audience -----------------------------------------------------------------------


def _condition(text: str) -> dict[str, Any]:
    tag = parse_tag(text)  # raises ValueError naming the tag
    if tag.value is None:
        return {"tag": tag.name}
    values = [v.strip() for v in tag.value.split("|") if v.strip()]
    return {"tag": tag.name, "eq": values[0]} if len(values) == 1 else {"tag": tag.name, "in": values}


def _text(cond: Mapping[str, Any]) -> str | None:
    """``ward=3`` for a condition the rows can show, else None."""
    if set(cond) == {"tag"}:
        return str(cond["tag"])
    if set(cond) == {"tag", "eq"}:
        return f"{cond['tag']}={cond['eq']}"
    if set(cond) == {"tag", "in"} and isinstance(cond["in"], list):
        return f"{cond['tag']}={'|'.join(map(str, cond['in']))}"
    return None


AUDIENCE_FIELDS = ("saved", "include", "match", "exclude", "consent", "advanced")


def fill_audience(c: Campaign) -> dict[str, Any]:
    """The audience form: a saved segment and condition rows when the segment fits them, else YAML."""
    form = {"saved": "", "include": "", "match": "all", "exclude": "", "consent": "not_opted_out", "advanced": ""}
    segment = c.segment
    if segment is None:
        return form
    form["consent"] = "any"
    parts = segment["all"] if isinstance(segment, dict) and set(segment) == {"all"} else [segment] if segment else []
    include: list[str] = []
    exclude: list[str] = []
    for part in parts:
        consent = next((k for k, v in CONSENT.items() if v == part), None)
        group = next((k for k in ("any", "all") if isinstance(part, dict) and set(part) == {k}), None)
        if consent:
            form["consent"] = consent
        elif isinstance(part, dict) and set(part) == {"segment"} and not form["saved"]:
            form["saved"] = str(part["segment"])
        elif group and not include and all(_text(p) for p in part[group]):
            include, form["match"] = [_text(p) or "" for p in part[group]], group
        elif isinstance(part, dict) and set(part) == {"not"} and _text(part["not"]):
            exclude.append(_text(part["not"]) or "")
        elif _text(part):
            include.append(_text(part) or "")
        else:
            return {**form, "consent": "any", "advanced": yaml.safe_dump(segment, sort_keys=False).strip()}
    return {**form, "include": ", ".join(include), "exclude": ", ".join(exclude)}


def read_audience(form: Mapping[str, str]) -> Reading:
    """A saved segment, tags to include (all or any of them), tags to exclude, consent; or YAML.

    The saved segment, by name (``{segment: NAME}``), is one more condition beside the rows.
    """
    r = Reading({k: form.get(k, "").strip() for k in AUDIENCE_FIELDS})
    if r.form["advanced"]:
        try:
            r.take("audience", yaml.safe_load(r.form["advanced"]))
        except yaml.YAMLError as exc:
            r.errors["audience"] = f"not a segment in YAML: {str(exc).splitlines()[0]}"
        return r
    parts: list[Any] = [{"segment": r.form["saved"]}] if r.form["saved"] else []
    for key in ("include", "exclude"):
        try:
            conds = [_condition(t) for t in r.form[key].split(",") if t.strip()]
        except ValueError as exc:
            r.errors[key] = str(exc)
            continue
        if key == "exclude":
            parts += [{"not": cond} for cond in conds]
        elif len(conds) > 1:
            parts.append({"any" if r.form["match"] == "any" else "all": conds})
        else:
            parts += conds
    if r.form["consent"] in CONSENT:
        parts.append(CONSENT[r.form["consent"]])
    if not r.errors:
        r.take("audience", "all" if not parts else parts[0] if len(parts) == 1 else {"all": parts})
    return r


# --- message: template and variables, or a call's voice options ----------------------


def fill_message(c: Campaign) -> dict[str, Any]:
    """The template chosen, each binding, and a call campaign's options."""
    form: dict[str, Any] = {"template": f"{c.template_id}:{c.template_language}" if c.template_id else ""}
    for number, binding in (c.variables or {}).items():
        kind = next(k for k in binding if k != "default")
        form[f"variables.{number}.kind"] = f"contact:{binding[kind]}" if kind == "contact" else kind
        form[f"variables.{number}.value"] = "" if kind == "contact" else binding[kind]
        form[f"variables.{number}.default"] = binding.get("default") or ""
    options = c.voice or voice_options.DEFAULTS
    for key in VOICE_FIELDS:
        value = options.get(key, options.get(f"{key}_s"))
        form[f"voice.{key}"] = _duration(value) if key in ("retry_after", "ring_timeout") else (value or "")
    form["voice.machine_detection"] = bool(options.get("machine_detection"))
    form["voice.opt_out_digit"] = options.get("opt_out_digit") or ""
    return form


def _duration(seconds: int | None) -> str:
    if not seconds:
        return ""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def read_template(form: Mapping[str, str], numbers: list[int]) -> Reading:
    """The template (``id:language``) and a binding for each of its ``numbers``."""
    r = Reading({k: v.strip() for k, v in form.items() if k == "template" or k.startswith("variables.")})
    template_id, _, language = r.form.get("template", "").partition(":")
    if r.form.get("template") and not (template_id.isdigit() and language):
        r.errors["template"] = "choose one of the templates listed"
    r.changes["template_id"] = int(template_id) if template_id.isdigit() else None
    r.changes["template_language"] = language or None
    raw: dict[str, Any] = {}
    for n in numbers:
        kind = r.form.get(f"variables.{n}.kind", "")
        value = r.form.get(f"variables.{n}.value", "")
        if kind not in KINDS:
            r.errors[f"variables.{n}"] = "choose where its value comes from"
            continue
        binding = {"contact": kind.split(":")[1]} if kind.startswith("contact:") else {kind: value}
        if r.form.get(f"variables.{n}.default"):
            binding["default"] = r.form[f"variables.{n}.default"]
        raw[str(n)] = binding
    r.take("variables", raw)
    return r


def read_voice(form: Mapping[str, str]) -> Reading:
    """A call campaign's options (empty fields keep the defaults)."""
    r = Reading({k: v.strip() for k, v in form.items() if k.startswith("voice.")})
    r.form["voice.machine_detection"] = form.get("voice.machine_detection") == "on"
    raw: dict[str, Any] = {"machine_detection": r.form["voice.machine_detection"]}
    for key in (*VOICE_FIELDS, "opt_out_digit"):
        value = r.form.get(f"voice.{key}", "")
        if value:
            number = key in ("attempts", "max_concurrent") and value.isdigit()
            raw[key] = int(value) if number else value
    r.take("voice", raw)
    return r


# --- schedule, pace, send windows, blackouts, deadline -----------------------------


def _local(value: dt.datetime | None, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime(LOCAL) if value else ""


def fill_schedule(c: Campaign, zone: str) -> dict[str, Any]:
    """Times are shown in ``zone`` (the audience's), with the pace in its most readable unit."""
    pace = c.pace_per_s or 1.0
    unit = "s" if pace >= 1 else "min" if (pace * 60) >= 1 else "h"
    per = {"s": 1, "min": 60, "h": 3600}[unit]
    windows = list(c.send_windows or [])
    preset = next((w for w in windows if isinstance(w, str)), "")
    custom = next((w for w in windows if isinstance(w, dict)), {})
    form: dict[str, Any] = {
        "when": "at" if c.scheduled_at else "now",
        "at": _local(c.scheduled_at, zone),
        "timezone": zone,
        "pace": f"{pace * per:g}",
        "pace_unit": unit,
        "window": preset,
        "window_start": custom.get("start", ""),
        "window_end": custom.get("end", ""),
        "window_zone": custom.get("timezone", ""),
        "deadline": _local(c.deadline, zone),
    }
    blackouts = list(c.blackouts or [])
    for i, b in enumerate(blackouts + [{}] * BLACKOUT_ROWS):
        for key in ("from", "to"):
            form[f"blackouts[{i}].{key}"] = _local(dt.datetime.fromisoformat(b[key]), zone) if b.get(key) else ""
        for key in ("tag", "value", "reason"):
            form[f"blackouts[{i}].{key}"] = b.get(key) or ""
    form["blackout_rows"] = len(blackouts) + BLACKOUT_ROWS
    return form


def read_schedule(form: Mapping[str, str], now: dt.datetime) -> Reading:
    """When to launch, the pace, the send windows, blackouts and the deadline."""
    r = Reading({k: v.strip() for k, v in form.items() if k != "csrf_token"})
    rows = sum(1 for k in r.form if k.startswith("blackouts[") and k.endswith("].from"))
    r.form["blackout_rows"] = rows
    try:
        zone = ZoneInfo(r.form.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        r.errors["timezone"] = f"unknown time zone {r.form.get('timezone')!r} (e.g. Asia/Kolkata, UTC)"
        zone = ZoneInfo("UTC")

    def moment(text: str, key: str) -> str | None:
        try:
            return dt.datetime.strptime(text, LOCAL).replace(tzinfo=zone).isoformat() if text else None
        except ValueError:
            r.errors[key] = f"a date and time such as 2026-12-01T09:00, got {text!r}"
            return None

    r.changes["scheduled_at"] = None
    if r.form.get("when") == "at":
        at = moment(r.form.get("at", ""), "schedule")
        if at is None and "schedule" not in r.errors:
            r.errors["schedule"] = "pick the date and time to launch at (or send now)"
        elif at is not None:
            r.take("schedule", at)
            if r.changes.get("scheduled_at") and r.changes["scheduled_at"] <= now:
                r.errors["schedule"] = "it is in the past: choose a later time, or send now"
    r.take("pace", f"{r.form.get('pace', '')}/{r.form.get('pace_unit', 's')}")
    windows: list[Any] = [r.form["window"]] if r.form.get("window") else []
    if r.form.get("window_start") or r.form.get("window_end"):
        custom = {"start": r.form.get("window_start", ""), "end": r.form.get("window_end", "")}
        windows.append({**custom, "timezone": r.form["window_zone"]} if r.form.get("window_zone") else custom)
    r.take("send_window", windows)
    blackouts = []
    for i in range(rows):
        row = {key: r.form.get(f"blackouts[{i}].{key}", "") for key in ("from", "to", "tag", "value", "reason")}
        if not any(row.values()):
            continue
        row["from"], row["to"] = moment(row["from"], f"blackouts[{i}]"), moment(row["to"], f"blackouts[{i}]")
        blackouts.append({k: v for k, v in row.items() if v})
    r.take("blackouts", blackouts)
    deadline = moment(r.form.get("deadline", ""), "deadline")
    if deadline:
        r.take("deadline", deadline)
    else:
        r.changes["deadline"] = None
    return r


def window_presets() -> list[tuple[str, str]]:
    """The send-window presets as (name, what they allow)."""
    return [(name, f"{w.start:%H:%M}–{w.end:%H:%M} {w.zone or 'the voter’s own time'}") for name, w in PRESETS.items()]
