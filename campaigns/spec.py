"""Campaign spec files: a campaign written in YAML (``canvass campaigns create SPEC.yaml``).

Every problem is reported at once as ``path:line:col: message``. The spec is checked
here for its own shape, each key as ``campaigns.fields`` checks it (the console's wizard
checks its forms the same way); whether the sender, template and flow it names exist (and are
usable) is checked against the database by ``campaigns.readiness``. The format, with an
example per channel, is in campaigns/README.md.
"""

from __future__ import annotations

from typing import Any

from bot.engine.errors import FlowInvalid, Loc, Problem
from bot.engine.yamlsafe import LocDict, load
from bot.sendwindows import parse_when
from campaigns import budgets, fallback, fields, variables
from campaigns.fields import parse_pace

__all__ = ["parse", "parse_pace", "parse_when"]

KEYS = {
    "name",
    "description",
    "channel",
    "sender",
    "template",
    "language",
    "variables",
    "audience",
    "flow",
    "schedule",
    "pace",
    "test",
    "test_numbers",
    "send_window",
    "blackouts",
    "deadline",
    "budget",
    "fallback",
    "voice",
}
FALLBACK_KEYS = {"channel", "sender", "template", "language", "variables", "after"}
CHANNELS = fields.CHANNELS
MAX_TEST_NUMBERS = fields.MAX_TEST_NUMBERS
# Keys checked only when given (the others have a meaning when left out).
OPTIONAL = ("budget", "pace", "schedule", "deadline")


def parse(text: str, path: str) -> dict[str, Any]:
    """Read a campaign spec; return the campaign's fields, or raise ``FlowInvalid``."""
    data, problems = load(text, path)
    if problems:
        raise FlowInvalid(problems)
    if not isinstance(data, dict):
        raise FlowInvalid([Problem(path, Loc(1, 1), "a campaign spec is a mapping (name, channel, template, ...)")])

    def bad(key: str, message: str) -> None:
        problems.append(Problem(path, data.value_loc(key), f"{key}: {message}"))

    for key in data:
        if key not in KEYS:
            problems.append(
                Problem(path, data.key_loc(key), f"unknown key {key!r} (expected one of {', '.join(sorted(KEYS))})")
            )
    out: dict[str, Any] = {}

    def in_budget(field: str) -> Loc:
        # A problem with one part of a budget (budget.sms) points at that part.
        budget, part = data.get("budget"), field.partition(".")[2]
        return budget.value_loc(part) if part and isinstance(budget, LocDict) else data.value_loc("budget")

    def take(key: str, value: Any) -> None:
        try:
            out.update(fields.check(key, value))
        except fields.FieldError as exc:
            problems.append(Problem(path, in_budget(exc.field) if key == "budget" else data.value_loc(key), str(exc)))

    for key in ("name", "description", "channel", "variables"):
        take(key, _plain(data.get(key)))
    channel = data.get("channel")
    out["channel"] = channel
    sender = data.get("sender")
    if sender is not None and not isinstance(sender, str | int):
        bad("sender", "the sender's number (as in canvass senders list) or its id")
    out["sender"] = None if sender is None else str(sender)
    template = data.get("template")
    language = data.get("language")
    if isinstance(template, dict):
        language = template.get("language", language)
        template = template.get("name")
    if template is not None and not isinstance(template, str):
        bad("template", "a template name, or {name: ..., language: ...}")
    out["template"], out["language"] = template, (str(language) if language else None)
    if "audience" not in data:
        problems.append(Problem(path, data.loc, "audience: required (a segment, or `audience: all` for every contact)"))
    else:
        take("audience", _plain(data["audience"]))
    flow, node = data.get("flow"), None
    if isinstance(flow, dict):
        flow, node = flow.get("name"), flow.get("at")
    if (flow is not None and not isinstance(flow, str)) or (node is not None and not isinstance(node, str)):
        bad("flow", "the name of a loaded flow (canvass flows load), or {name: ..., at: NODE}")
    out["flow"], out["flow_node"] = flow, node
    take("send_window", _plain(data.get("send_window")))
    take("blackouts", _plain(data.get("blackouts")))
    if channel == "voice" or data.get("voice") is not None:
        if channel != "voice":
            bad("voice", "only a call campaign (channel: voice) takes voice options")
        take("voice", _plain(data.get("voice")))
    if data.get("fallback") is not None:
        out["fallback"] = _fallback(data["fallback"], lambda message: bad("fallback", message))
    for key in OPTIONAL:
        if data.get(key) is not None:
            take(key, _plain(data[key]))
    if out.get("budget_by_channel") and channel in CHANNELS:
        used = [channel, *([out["fallback"]["channel"]] if out.get("fallback") else [])]
        for field, message in budgets.unused_channels(out["budget_by_channel"], used):
            problems.append(Problem(path, in_budget(field), f"{field}: {message}"))
    out["is_test"] = bool(data.get("test", False))
    take("test_numbers", _plain(data.get("test_numbers")))
    if out["is_test"] and not out.get("test_numbers"):
        bad("test", "a test campaign needs test_numbers")
    if problems:
        raise FlowInvalid(problems)
    return out


def _fallback(raw: Any, bad: Any) -> dict[str, Any] | None:
    """The fallback step as plain data (names still to resolve), or None after reporting."""
    if not isinstance(raw, dict):
        bad("a mapping: {channel: sms, sender: ..., template: ..., after: 2h}")
        return None
    unknown = sorted(set(raw) - FALLBACK_KEYS)
    if unknown:
        bad(f"unknown key {unknown[0]!r} (expected one of {', '.join(sorted(FALLBACK_KEYS))})")
        return None
    if raw.get("channel") not in CHANNELS:
        bad(f"channel must be one of {', '.join(CHANNELS)}; got {raw.get('channel')!r}")
        return None
    template, language = raw.get("template"), raw.get("language")
    if isinstance(template, dict):
        template, language = template.get("name"), template.get("language", language)
    out: dict[str, Any] = {
        "channel": raw["channel"],
        "sender": None if raw.get("sender") is None else str(raw["sender"]),
        "template": template,
        "language": language,
    }
    try:
        out["variables"] = (
            variables.dump(variables.parse(_plain(raw["variables"]), field="fallback.variables"))
            if "variables" in raw
            else None
        )
        out["after_s"] = fallback.parse_after(raw["after"]) if raw.get("after") is not None else None
    except (variables.BindingError, ValueError) as exc:
        bad(str(exc))
        return None
    return out


def _plain(value: Any) -> Any:
    """Located YAML containers as plain dicts and lists (stored as JSON)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
