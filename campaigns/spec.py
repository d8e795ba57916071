"""Campaign spec files: a campaign written in YAML (``canvass campaigns create SPEC.yaml``).

Every problem is reported at once as ``path:line:col: message``. The spec is checked
here for its own shape; whether the sender, template and flow it names exist (and are
usable) is checked against the database by ``campaigns.readiness``. The format, with an
example per channel, is in campaigns/README.md.
"""

from __future__ import annotations

import re
from typing import Any

from bot import sendwindows
from bot.engine.errors import FlowInvalid, Loc, Problem
from bot.engine.yamlsafe import load
from bot.segments import SegmentError, check
from bot.sendwindows import parse_when
from campaigns import fallback, pricing, variables, voice_options

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
CHANNELS = ("whatsapp", "sms", "voice")
PACE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/|per\s+)\s*(s|sec|second|m|min|minute|h|hour)\s*$")
PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
MAX_PACE_PER_S = 1000.0
MAX_TEST_NUMBERS = 20


def parse_pace(value: Any) -> float:
    """Messages per second from ``10/s``, ``600/h``, ``30 per minute`` or a plain number (per second)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
    elif isinstance(value, str) and (m := PACE.match(value)):
        rate = float(m.group(1)) / PER[m.group(2)]
    else:
        raise ValueError(f"pace: write it as 10/s, 600/h or 30/min; got {value!r}")
    if not 0 < rate <= MAX_PACE_PER_S:
        raise ValueError(f"pace: must be more than 0 and at most {MAX_PACE_PER_S:g}/s; got {value!r}")
    return rate


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
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        bad("name", "a name of 1 to 120 characters is required")
    else:
        out["name"] = name.strip()
    out["description"] = str(data["description"]) if data.get("description") is not None else None
    channel = data.get("channel")
    if channel not in CHANNELS:
        bad("channel", f"must be one of {', '.join(CHANNELS)}; got {channel!r}")
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
    try:
        out["variables"] = variables.dump(variables.parse(data.get("variables")))
    except variables.BindingError as exc:
        problems.append(Problem(path, data.value_loc("variables"), str(exc)))
    if "audience" not in data:
        problems.append(Problem(path, data.loc, "audience: required (a segment, or `audience: all` for every contact)"))
    else:
        audience = data["audience"]
        segment = {} if audience == "all" else _plain(audience)
        if audience != "all" and (not isinstance(audience, dict) or not audience):
            bad("audience", "a segment such as {tag: volunteer}, or `all` for every contact")
        else:
            try:
                check(segment)
                out["segment"] = segment
            except SegmentError as exc:
                bad("audience", str(exc))
    flow, node = data.get("flow"), None
    if isinstance(flow, dict):
        flow, node = flow.get("name"), flow.get("at")
    if (flow is not None and not isinstance(flow, str)) or (node is not None and not isinstance(node, str)):
        bad("flow", "the name of a loaded flow (canvass flows load), or {name: ..., at: NODE}")
    out["flow"], out["flow_node"] = flow, node
    try:
        out["send_windows"] = sendwindows.dump_windows(sendwindows.parse_windows(_plain(data.get("send_window"))))
    except sendwindows.PolicyError as exc:
        problems.append(Problem(path, data.value_loc("send_window"), str(exc)))
    try:
        out["blackouts"] = sendwindows.dump_blackouts(sendwindows.parse_blackouts(_plain(data.get("blackouts"))))
    except sendwindows.PolicyError as exc:
        problems.append(Problem(path, data.value_loc("blackouts"), str(exc)))
    if channel == "voice" or data.get("voice") is not None:
        if channel != "voice":
            bad("voice", "only a call campaign (channel: voice) takes voice options")
        try:
            out["voice"] = voice_options.parse(_plain(data.get("voice")))
        except voice_options.VoiceOptionError as exc:
            problems.append(Problem(path, data.value_loc("voice"), str(exc)))  # it names voice.<option>
    if data.get("fallback") is not None:
        out["fallback"] = _fallback(data["fallback"], lambda message: bad("fallback", message))
    if data.get("budget") is not None:
        try:
            out["budget_micros"] = pricing.to_micros(data["budget"], "budget")
        except pricing.PriceError as exc:
            bad("budget", str(exc).removeprefix("budget: "))
    timed = (
        ("pace", parse_pace, "pace_per_s"),
        ("schedule", parse_when, "scheduled_at"),
        ("deadline", parse_when, "deadline"),
    )
    for key, parser, target in timed:
        if data.get(key) is not None:
            try:
                out[target] = parser(data[key])
            except ValueError as exc:
                bad(key, str(exc).removeprefix(f"{key}: "))
    out["is_test"] = bool(data.get("test", False))
    numbers = data.get("test_numbers") or []
    if not isinstance(numbers, list) or not all(isinstance(n, str | int) for n in numbers):
        bad("test_numbers", "a list of phone numbers")
    elif len(numbers) > MAX_TEST_NUMBERS:
        bad("test_numbers", f"at most {MAX_TEST_NUMBERS} numbers")
    else:
        out["test_numbers"] = [str(n) for n in numbers]
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
