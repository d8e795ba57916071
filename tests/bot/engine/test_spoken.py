"""The texts a call may speak, listed per language before any call (for prerendering prompts)."""

from __future__ import annotations

from bot.engine import load_text
from bot.engine.nodes.ask import DEFAULT_INVALID
from bot.engine.spoken import flow_languages, has_template, spoken_texts

FLOW = """
flow: t
language: en
channels: [voice]
translations:
  hi:
    hello: "नमस्ते {{ contact.name }}!"
    q: {text: "क्या आप वोट देंगे?", on_invalid: "कृपया 1 या 2 दबाएँ।"}
  mr:
    bye: "धन्यवाद."
start: hello
nodes:
  hello: {say: "Hello {{ contact.name }}!", next: q}
  q:
    ask: "Will you vote? Press 1 or 2."
    choices: [{key: "1", label: "Yes", next: once}, {key: "2", label: "No", next: once}]
    on_invalid: "Please press 1 or 2."
  once:
    ask: "Press 1 to go on."
    choices: [{key: "1", label: "Go on", next: again}]
    retries: 0
  again:
    ask: "Press 1 again."
    choices: [{key: "1", label: "Go on", next: tell}]
  tell:
    record: {prompt: "Tell us after the beep.", save: story}
    next: silent
  silent:
    record: true
    next: bye
  bye: {say: "Thank you.", end: true}
"""


def test_every_spoken_text_in_node_order() -> None:
    spoken = [(s.node, s.field, s.text, s.dynamic) for s in spoken_texts(load_text(FLOW))]
    assert spoken == [
        ("hello", "text", "Hello {{ contact.name }}!", True),
        ("q", "text", "Will you vote? Press 1 or 2.", False),
        ("q", "on_invalid", "Please press 1 or 2.", False),
        ("once", "text", "Press 1 to go on.", False),  # no retries: never a wrong-answer text
        ("again", "text", "Press 1 again.", False),
        ("again", "on_invalid", DEFAULT_INVALID, False),
        ("tell", "text", "Tell us after the beep.", False),
        ("bye", "text", "Thank you.", False),
    ]


def test_translations_apply_as_a_session_in_that_language_sees_them() -> None:
    flow = load_text(FLOW)
    assert flow_languages(flow) == ["en", "hi", "mr"]
    hindi = {(s.node, s.field): s.text for s in spoken_texts(flow, "hi-IN")}
    assert hindi[("hello", "text")] == "नमस्ते {{ contact.name }}!"
    assert hindi[("q", "on_invalid")] == "कृपया 1 या 2 दबाएँ।"
    assert hindi[("bye", "text")] == "Thank you."  # not translated: the flow's own text
    assert {s.language for s in spoken_texts(flow, "hi-IN")} == {"hi-IN"}
    assert {(s.node, s.text) for s in spoken_texts(flow, "mr")} >= {("bye", "धन्यवाद.")}


def test_template_marks() -> None:
    assert has_template("{{ x }}") and has_template("{% if a %}b{% endif %}") and has_template("a {# note #}")
    assert not has_template("Press {1} or #")
