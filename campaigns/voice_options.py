"""How a call campaign calls: attempts, the wait between them, answering machines, opt-out key.

Written in a campaign spec under ``voice:``::

    voice:
      attempts: 3             # calls per voter at most (busy, no answer, failed -> try again)
      retry_after: 60m        # between two attempts (inside the call window)
      ring_timeout: 30s       # how long to let the phone ring
      max_concurrent: 10      # calls of this campaign live at once
      machine_detection: true # ask Twilio who picked up
      on_machine: message     # continue (run the flow), hangup, or message (say it, hang up)
      machine_message: "This is your election office. Please vote on 20 November."
      opt_out_digit: "9"      # "press 9 to stop these calls", at any question

Stored as plain JSON on the campaign (``Campaign.voice``) with every default filled in.
"""

from __future__ import annotations

from typing import Any

from bot.engine.flow import Flow
from campaigns.fallback import parse_after

KEYS = (
    "attempts",
    "retry_after",
    "ring_timeout",
    "max_concurrent",
    "machine_detection",
    "on_machine",
    "machine_message",
    "opt_out_digit",
)
ON_MACHINE = ("continue", "hangup", "message")
DEFAULTS: dict[str, Any] = {
    "attempts": 3,
    "retry_after_s": 3600,
    "ring_timeout_s": 30,
    "max_concurrent": 10,
    "machine_detection": False,
    "on_machine": "continue",
    "machine_message": None,
    "opt_out_digit": None,
}
KEYPAD = "0123456789*#"


class VoiceOptionError(ValueError):
    """A ``voice:`` option is wrong; the message names it."""


def parse(raw: Any) -> dict[str, Any]:
    """Read a spec's ``voice:`` block (None: the defaults); raise ``VoiceOptionError``."""
    if raw is None:
        return dict(DEFAULTS)
    if not isinstance(raw, dict):
        raise VoiceOptionError("voice: a mapping such as {attempts: 3, retry_after: 60m, opt_out_digit: '9'}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise VoiceOptionError(f"voice: unknown key {unknown[0]!r} (expected one of {', '.join(KEYS)})")
    out = dict(DEFAULTS)
    if "attempts" in raw:
        out["attempts"] = _int(raw["attempts"], "attempts", 1, 10)
    if "max_concurrent" in raw:
        out["max_concurrent"] = _int(raw["max_concurrent"], "max_concurrent", 1, 1000)
    for key, low, high in (("retry_after", 60, 7 * 86400), ("ring_timeout", 5, 600)):
        if key in raw:
            out[f"{key}_s"] = _duration(raw[key], key, low, high)
    if "machine_detection" in raw:
        if not isinstance(raw["machine_detection"], bool):
            raise VoiceOptionError(f"voice.machine_detection: true or false, got {raw['machine_detection']!r}")
        out["machine_detection"] = raw["machine_detection"]
    if "on_machine" in raw:
        if raw["on_machine"] not in ON_MACHINE:
            raise VoiceOptionError(f"voice.on_machine: one of {', '.join(ON_MACHINE)}, got {raw['on_machine']!r}")
        out["on_machine"] = raw["on_machine"]
    message = raw.get("machine_message")
    if message is not None and (not isinstance(message, str) or not message.strip() or len(message) > 1000):
        raise VoiceOptionError("voice.machine_message: a text of 1 to 1000 characters")
    out["machine_message"] = message.strip() if isinstance(message, str) else None
    if out["on_machine"] == "message" and not out["machine_message"]:
        raise VoiceOptionError("voice.on_machine: message needs voice.machine_message, the text to leave")
    if out["on_machine"] != "continue":
        out["machine_detection"] = True  # nobody can act on a machine nobody detects
    digit = raw.get("opt_out_digit")
    if digit is not None:
        digit = str(digit)
        if len(digit) != 1 or digit not in KEYPAD:
            raise VoiceOptionError(f"voice.opt_out_digit: one key of 0-9, * or #, got {raw['opt_out_digit']!r}")
    out["opt_out_digit"] = digit
    return out


def clashes(options: dict[str, Any], flow: Flow) -> list[str]:
    """Questions of ``flow`` where the opt-out key is also an answer (the voter could not choose it)."""
    digit = (options or {}).get("opt_out_digit")
    if not digit:
        return []
    return [
        f"voice.opt_out_digit: {digit!r} is also an answer to question {node_id!r} of flow {flow.name}"
        for node_id, node in flow.nodes.items()
        if any(choice.get("key") == digit for choice in getattr(node, "choices", None) or [])
    ]


def _int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise VoiceOptionError(f"voice.{key}: a whole number from {low} to {high}, got {value!r}")
    return value


def _duration(value: Any, key: str, low: int, high: int) -> int:
    try:
        seconds = parse_after(value)
    except ValueError:
        raise VoiceOptionError(f"voice.{key}: a duration such as 30s, 60m or 2h, got {value!r}") from None
    if not low <= seconds <= high:
        raise VoiceOptionError(f"voice.{key}: between {low}s and {high}s, got {value!r}")
    return seconds
