"""What a step of a flow produced. The host turns these into messages, rows and jobs."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of every event; ``type`` names it in JSON and golden files."""

    type = "event"
    # Fields shown even when None (a variable set to None says so).
    keep: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with ``type`` first and empty fields left out."""
        # Fields one level deep (not dataclasses.asdict, which deep-copies every list and
        # dict: a call's step serialises its events on the hot path). No event nests a dataclass.
        body = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if name in self.keep or value not in (None, [], {}, ()):
                body[name] = value
        return {"type": self.type, **body}


@dataclasses.dataclass(frozen=True)
class Choice:
    """One option offered with a question (a quick reply; a key on the keypad)."""

    key: str
    label: str


@dataclasses.dataclass(frozen=True)
class MessageSent(Event):
    """Text for the voter (spoken on a call); ``choices`` become quick replies."""

    type = "message"
    node: str
    text: str
    choices: list[dict[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class AudioPlayed(Event):
    """An audio file or URL to play (voice)."""

    type = "audio"
    node: str
    url: str


@dataclasses.dataclass(frozen=True)
class InputAwaited(Event):
    """The flow waits for the voter; on a call, ``digits`` describes the keypad gather."""

    type = "wait_input"
    node: str
    timeout_s: int | None = None
    digits: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class TimerStarted(Event):
    """The flow sleeps (a ``wait`` node) until a timeout input arrives."""

    type = "wait_timer"
    node: str
    seconds: int


@dataclasses.dataclass(frozen=True)
class VariableSet(Event):
    """A session variable (or a saved answer) changed."""

    type = "var"
    keep: ClassVar[tuple[str, ...]] = ("value",)
    name: str
    value: Any


@dataclasses.dataclass(frozen=True)
class AnswerSaved(Event):
    """The voter's answer to a question, kept under the question's ``save`` name."""

    type = "answer"
    keep: ClassVar[tuple[str, ...]] = ("value",)
    node: str
    name: str
    value: Any


@dataclasses.dataclass(frozen=True)
class ContactChanged(Event):
    """A contact field, language or tags changed."""

    type = "contact"
    field: str | None = None
    value: Any = None
    tags_added: list[str] = dataclasses.field(default_factory=list)
    tags_removed: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FunnelReached(Event):
    """The voter reached a funnel step for the first time."""

    type = "funnel"
    step: str
    at: str


@dataclasses.dataclass(frozen=True)
class ActionRequested(Event):
    """Run a custom (rasa-sdk) action; the result comes back as an ``ActionDone`` input."""

    type = "action"
    node: str
    name: str
    timeout_s: int | None = None


@dataclasses.dataclass(frozen=True)
class WebhookRequested(Event):
    """Call an HTTP endpoint; the answer comes back as a ``WebhookDone`` input."""

    type = "webhook"
    node: str
    method: str
    url: str
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: Any = None
    timeout_s: float = 10.0


@dataclasses.dataclass(frozen=True)
class HandedOff(Event):
    """The conversation goes to a human."""

    type = "handoff"
    node: str
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class CallControl(Event):
    """Voice only: record, dial (transfer) or hang up."""

    type = "call"
    node: str
    verb: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FlowEnded(Event):
    """The session is over."""

    type = "end"
    reason: str


@dataclasses.dataclass(frozen=True)
class ErrorRaised(Event):
    """An author's or runtime mistake; the session carries on or ends cleanly."""

    type = "error"
    node: str | None
    message: str


def _kinds() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    stack = list(Event.__subclasses__())
    while stack:
        cls = stack.pop()
        found[cls.type] = cls
        stack.extend(cls.__subclasses__())
    return found


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event ``Event.to_dict`` wrote.

    ``to_dict`` leaves empty fields out: a field with a default takes it, one without
    was None. A call's keypad steps are stored as their events, then applied; an unknown
    ``type`` is a ``ValueError`` naming it.
    """
    if not _KINDS:
        _KINDS.update(_kinds())
    body = dict(data)
    kind = body.pop("type", None)
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in body:
            values[f.name] = body[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            values[f.name] = None
    return cls(**values)


_KINDS: dict[str, type[Event]] = {}
