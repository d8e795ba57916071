"""What can wake a waiting session."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Text:
    """A voter's message (or a button's payload)."""

    text: str


@dataclasses.dataclass(frozen=True)
class Digits:
    """Keys pressed on a call (empty: the gather timed out without input)."""

    digits: str


@dataclasses.dataclass(frozen=True)
class Timeout:
    """The wait's time ran out."""


@dataclasses.dataclass(frozen=True)
class CallEnded:
    """The voter hung up."""


@dataclasses.dataclass(frozen=True)
class ActionDone:
    """A custom action finished: variables to set, messages to send, where to go."""

    variables: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Texts, or {"text": ..., "choices": [{"key": "1", "label": "Yes"}]} for quick replies.
    messages: list[str | dict[str, Any]] = dataclasses.field(default_factory=list)
    followup: str | None = None
    failed: str | None = None
    # The action paused the bot (rasa's ConversationPaused): a person takes over.
    handoff: bool = False


@dataclasses.dataclass(frozen=True)
class WebhookDone:
    """An HTTP call finished (status 0: no answer)."""

    status: int
    body: Any = None


Input = Text | Digits | Timeout | CallEnded | ActionDone | WebhookDone
