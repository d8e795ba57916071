"""The texts a call speaks, known before any call: what text-to-speech can render ahead.

A voice campaign renders its prompts before the first call so that the voice webhook
finds them ready. This lists, for one language, every text the flow's nodes may speak:
``say`` texts, ``ask`` questions and the text spoken after a wrong answer, and
``record`` prompts, with the flow's translations applied exactly as a session in that
language would see them. Texts with Jinja markup depend on the voter and are marked
``dynamic``: only a call can render them.
"""

from __future__ import annotations

import dataclasses

from bot.engine.flow import Flow
from bot.engine.nodes.ask import DEFAULT_INVALID, Ask
from bot.engine.nodes.record import Record
from bot.engine.nodes.say import Say
from bot.engine.translations import pick

JINJA_MARKS = ("{{", "{%", "{#")


@dataclasses.dataclass(frozen=True)
class SpokenText:
    """One text a node may speak in one language."""

    node: str
    # "text" (the node's main text) or "on_invalid" (spoken after a wrong answer).
    field: str
    language: str
    text: str

    @property
    def dynamic(self) -> bool:
        """True when the text is a template that only a session can fill in."""
        return has_template(self.text)


def has_template(text: str) -> bool:
    """True when ``text`` holds Jinja markup (``{{ }}``, ``{% %}`` or ``{# #}``)."""
    return any(mark in text for mark in JINJA_MARKS)


def flow_languages(flow: Flow) -> list[str]:
    """The flow's own language, then every language it has translations for."""
    return [flow.language, *(code for code in flow.translations if code != flow.language)]


def spoken_texts(flow: Flow, language: str | None = None) -> list[SpokenText]:
    """Every non-empty text the flow's nodes may speak in ``language`` (default: the flow's own).

    Texts are listed in node order, each once per node and field; a text the
    translations leave out is the flow's own text, as the engine would speak it.
    """
    code = language or flow.language
    found: list[SpokenText] = []

    def add(node: str, field: str, default: str | None) -> None:
        text = pick(flow.translations, code, node, field, default)
        if isinstance(text, str) and text.strip():
            found.append(SpokenText(node=node, field=field, language=code, text=text.strip()))

    for node in flow.nodes.values():
        if isinstance(node, Say):
            add(node.id, "text", node.text)
        elif isinstance(node, Ask):
            add(node.id, "text", node.prompt)
            # The wrong-answer text is only ever spoken when the question is asked again.
            if node.retries:
                add(node.id, "on_invalid", node.on_invalid or DEFAULT_INVALID)
        elif isinstance(node, Record):
            add(node.id, "text", node.prompt)
    return found
