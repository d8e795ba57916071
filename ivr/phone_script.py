"""The sandbox phone's view of a TwiML document: what to play, then which keys to gather.

The browser phone of the sandbox runs the very TwiML Twilio would get, so a newcomer hears
what a voter will hear. This module reads that TwiML into a short list of steps the page's
script plays in order; it understands the verbs ``ivr.twiml`` writes and ignores others.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from typing import Any


@dataclasses.dataclass(frozen=True)
class PhoneStep:
    """One thing the phone does: speak, play, gather keys, record, wait, go to a URL, hang up."""

    kind: str  # say, play, gather, record, pause, redirect, dial, hangup
    text: str | None = None
    url: str | None = None
    language: str | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    prompts: list[PhoneStep] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the page (empty fields left out)."""
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("text", "url", "language"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.params:
            out["params"] = self.params
        if self.prompts:
            out["prompts"] = [p.to_dict() for p in self.prompts]
        return out


def read(document: str) -> list[PhoneStep]:
    """The steps of a TwiML ``<Response>``, in order."""
    root = ET.fromstring(document)  # noqa: S314 - TwiML we wrote ourselves, never a caller's XML
    if root.tag != "Response":
        raise ValueError(f"not a TwiML document: the root is <{root.tag}>")
    return [step for element in root if (step := _step(element)) is not None]


def _step(element: ET.Element) -> PhoneStep | None:
    tag, attrs, text = element.tag, element.attrib, (element.text or "").strip()
    if tag == "Say":
        return PhoneStep("say", text=text, language=attrs.get("language"))
    if tag == "Play":
        return PhoneStep("play", url=text)
    if tag == "Gather":
        params = {
            "action": attrs.get("action", ""),
            "num_digits": int(attrs["numDigits"]) if "numDigits" in attrs else None,
            "finish_on_key": attrs.get("finishOnKey", "#"),
            "timeout_s": int(attrs.get("timeout", "5")),
        }
        prompts = [p for child in element if (p := _step(child)) is not None]
        return PhoneStep("gather", params=params, prompts=prompts)
    if tag == "Record":
        params = {"action": attrs.get("action", ""), "max_seconds": int(attrs.get("maxLength", "60"))}
        return PhoneStep("record", params=params)
    if tag == "Pause":
        return PhoneStep("pause", params={"seconds": int(attrs.get("length", "1"))})
    if tag == "Redirect":
        return PhoneStep("redirect", url=text)
    if tag == "Dial":
        return PhoneStep("dial", text=text)
    if tag in ("Hangup", "Reject"):
        return PhoneStep("hangup", params={"rejected": tag == "Reject"})
    return None
