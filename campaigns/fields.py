"""A campaign's fields, each checked one way wherever it is written: YAML spec, console wizard, API.

``check(key, value)`` takes one key of the campaign spec (campaigns/README.md) as plain
data and returns the campaign columns it sets, or raises :class:`FieldError` naming the
field (``pace``, ``variables.2.tag``, ``send_window[1].start``). ``campaigns.spec`` adds
the file's line and column; the console shows the message next to the form field.
Whether the sender, template and flow exist is not a field's shape: ``campaigns.readiness``
checks those against the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot import segments, sendwindows
from bot.segments import SegmentError
from campaigns import pricing, variables, voice_options

CHANNELS = ("whatsapp", "sms", "voice")
MAX_NAME = 120
MAX_PACE_PER_S = 1000.0
MAX_TEST_NUMBERS = 20
PACE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/|per\s+)\s*(s|sec|second|m|min|minute|h|hour)\s*$")
BUDGET_KEYS = ("total", *CHANNELS)
BUDGET_EXAMPLE = "{total: 1000, whatsapp: 600, sms: 400}"
PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


class FieldError(ValueError):
    """One field of a campaign is wrong; ``field`` names it, ``message`` says how."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    @classmethod
    def named(cls, exc: Exception, fallback: str) -> FieldError:
        """From an error whose text starts with its field (``voice.attempts: ...``)."""
        text = str(exc)
        field, sep, message = text.partition(": ")
        if sep and field and " " not in field and field.split(".")[0].split("[")[0] == fallback:
            return cls(field, message)
        return cls(fallback, text.removeprefix(f"{fallback}: "))


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


def _name(value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME:
        raise FieldError("name", f"a name of 1 to {MAX_NAME} characters is required")
    return {"name": value.strip()}


def _description(value: Any) -> dict[str, Any]:
    text = None if value is None else str(value).strip()
    return {"description": text or None}


def _channel(value: Any) -> dict[str, Any]:
    if value not in CHANNELS:
        raise FieldError("channel", f"must be one of {', '.join(CHANNELS)}; got {value!r}")
    return {"channel": value}


def _variables(value: Any) -> dict[str, Any]:
    try:
        return {"variables": variables.dump(variables.parse(value))}
    except variables.BindingError as exc:
        raise FieldError(exc.field, str(exc).removeprefix(f"{exc.field}: ")) from None


def _audience(value: Any) -> dict[str, Any]:
    if value is None:
        raise FieldError("audience", "required (a segment, or `audience: all` for every contact)")
    if value == "all":
        return {"segment": {}}
    if not isinstance(value, dict) or not value:
        raise FieldError("audience", "a segment such as {tag: volunteer}, or `all` for every contact")
    try:
        segments.check(value)  # the shape only; whether a saved segment it names exists is readiness's
    except SegmentError as exc:
        raise FieldError("audience", str(exc)) from None
    return {"segment": value}


def _policy(target: str, parse: Callable[[Any], Any], dump: Callable[[Any], Any]) -> Callable[[Any], dict[str, Any]]:
    def check(value: Any) -> dict[str, Any]:
        try:
            return {target: dump(parse(value))}
        except sendwindows.PolicyError as exc:
            raise FieldError(exc.field, str(exc).removeprefix(f"{exc.field}: ")) from None

    return check


def _voice(value: Any) -> dict[str, Any]:
    try:
        return {"voice": voice_options.parse(value)}
    except voice_options.VoiceOptionError as exc:  # its text names voice.<option>
        raise FieldError.named(exc, "voice") from None


def _amount(field: str, value: Any) -> int:
    try:
        return pricing.to_micros(value, field)
    except pricing.PriceError as exc:
        raise FieldError(field, str(exc).removeprefix(f"{field}: ")) from None


def _budget(value: Any) -> dict[str, Any]:
    """A total (``1000``), caps per channel, or both: ``{total: 1000, whatsapp: 600, sms: 400}``."""
    if not isinstance(value, dict):
        return {"budget_micros": _amount("budget", value), "budget_by_channel": None}
    for key in value:
        if key not in BUDGET_KEYS:
            raise FieldError(f"budget.{key}", f"not a part of a budget: write total, {', '.join(CHANNELS)}")
    total = None if value.get("total") is None else _amount("budget.total", value["total"])
    split = {ch: _amount(f"budget.{ch}", value[ch]) for ch in CHANNELS if value.get(ch) is not None}
    if total is None and not split:
        raise FieldError("budget", f"a total, a cap per channel, or both, such as {BUDGET_EXAMPLE}")
    if total is not None and sum(split.values()) > total:
        if len(split) == 1:
            ((ch, cap),) = split.items()
            parts = f"the {ch} cap {pricing.money(cap)} is"
        else:
            listed = " + ".join(f"{ch} {pricing.money(m)}" for ch, m in split.items())
            parts = f"the channels' caps ({listed} = {pricing.money(sum(split.values()))}) are"
        raise FieldError("budget", f"{parts} more than the total {pricing.money(total)}")
    return {"budget_micros": total, "budget_by_channel": split or None}


def _timed(key: str, target: str, parser: Callable[[Any], Any]) -> Callable[[Any], dict[str, Any]]:
    def check(value: Any) -> dict[str, Any]:
        try:
            return {target: parser(value)}
        except ValueError as exc:
            raise FieldError(key, str(exc).removeprefix(f"{key}: ")) from None

    return check


def _test_numbers(value: Any) -> dict[str, Any]:
    numbers = value or []
    if not isinstance(numbers, list) or not all(isinstance(n, str | int) for n in numbers):
        raise FieldError("test_numbers", "a list of phone numbers")
    if len(numbers) > MAX_TEST_NUMBERS:
        raise FieldError("test_numbers", f"at most {MAX_TEST_NUMBERS} numbers")
    return {"test_numbers": [str(n) for n in numbers]}


# Spec key -> its check, in the order a spec lists them.
CHECKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "name": _name,
    "description": _description,
    "channel": _channel,
    "variables": _variables,
    "audience": _audience,
    "send_window": _policy("send_windows", sendwindows.parse_windows, sendwindows.dump_windows),
    "blackouts": _policy("blackouts", sendwindows.parse_blackouts, sendwindows.dump_blackouts),
    "voice": _voice,
    "budget": _budget,
    "pace": _timed("pace", "pace_per_s", parse_pace),
    "schedule": _timed("schedule", "scheduled_at", sendwindows.parse_when),
    "deadline": _timed("deadline", "deadline", sendwindows.parse_when),
    "test_numbers": _test_numbers,
}


def check(key: str, value: Any) -> dict[str, Any]:
    """The campaign columns spec key ``key`` sets to ``value`` (plain data), or ``FieldError``."""
    return CHECKS[key](value)
