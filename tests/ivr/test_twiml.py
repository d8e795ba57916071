"""TwiML goldens: every voice node and every retry path, rendered step by step.

Each case in testdata/twiml.yaml is a flow, the voter's inputs on the keypad and the
TwiML document of every step. ``pytest --update-goldens`` rewrites the expectations;
review them as a diff.
"""

from __future__ import annotations

import xml.dom.minidom
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.engine import inputs, load_text, resume, start
from ivr import twiml
from tests.bot.engine.goldens import CLOCK, compare_goldens

DATA = Path(__file__).parent / "testdata" / "twiml.yaml"
ACTION = "https://canvass.example.org/webhooks/twilio/voice/step?c=7&n={n}&s=abc"
VOICE_NODES = {"say", "play", "ask", "record", "dial", "hangup", "wait", "end", "handoff"}


def pretty(document: str) -> str:
    """One verb per line, so that a golden's diff shows what changed."""
    return xml.dom.minidom.parseString(document).toprettyxml(indent="  ").split("\n", 1)[1].strip() + "\n"


def _input(raw: Any, waiting: str | None) -> inputs.Input:
    if raw == "<timeout>":
        return inputs.Timeout()
    if raw == "<hangup>":
        return inputs.CallEnded()
    if waiting == "record":
        return inputs.Text(str(raw))
    return inputs.Digits(str(raw))


def run(case: dict[str, Any]) -> list[str]:
    flow = load_text(case["flow"], f"<{case['name']}>")
    contact = {"name": "Asha", "phone": "+919876543210", "language": case.get("language")}
    rendered = {str(k): v for k, v in (case.get("rendered") or {}).items()}
    voicing = twiml.Voicing(
        language=contact["language"] or flow.language,
        audio=lambda text, language: rendered.get(text),
        media_base="https://canvass.example.org",
    )
    sprint = start(flow, contact, channel="voice", now=CLOCK[0])
    documents = [pretty(twiml.render(sprint.events, twiml.Links(ACTION.format(n=1)), voicing))]
    for i, raw in enumerate(case.get("inputs", []), start=1):
        if not sprint.waiting:
            documents.append(f"!! input {raw!r} after the session ended")
            break
        received = _input(raw, (sprint.state.get("waiting") or {}).get("kind"))
        sprint = resume(flow, sprint.state, received, now=CLOCK[i])
        documents.append(pretty(twiml.render(sprint.events, twiml.Links(ACTION.format(n=i + 1)), voicing)))
    documents.append(f"== {sprint.state['status']} answers={sprint.state['answers']}")
    return documents


def test_twiml_goldens(request: pytest.FixtureRequest) -> None:
    doc = yaml.safe_load(DATA.read_text())
    compare_goldens(DATA, doc, run, update=request.config.getoption("--update-goldens"))


def test_every_voice_node_kind_has_a_case() -> None:
    doc = yaml.safe_load(DATA.read_text())
    used = set()
    for case in doc["cases"]:
        for node in yaml.safe_load(case["flow"])["nodes"].values():
            used.update(k for k in node if k in VOICE_NODES)
    assert used >= VOICE_NODES, f"node kinds without a TwiML case: {sorted(VOICE_NODES - used)}"


FIXED = [twiml.apology(), twiml.hangup(), twiml.spoken_then_hangup("Bye & <thanks>", "hi")]


@pytest.mark.parametrize("document", FIXED)
def test_fixed_documents_are_valid_twiml(document: str) -> None:
    root = xml.dom.minidom.parseString(document).documentElement
    assert root.tagName == "Response"
    assert root.lastChild.tagName == "Hangup"


def test_say_language_follows_the_session_language() -> None:
    assert twiml.Voicing(language="hi").say_language() == "hi-IN"
    assert twiml.Voicing(language="fr-FR").say_language() == "fr-FR"
