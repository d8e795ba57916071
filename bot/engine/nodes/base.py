"""What every node kind shares: parsing helpers, outcomes, and the registry."""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from bot.engine import templates
from bot.engine.errors import EngineMisuse, Loc, Problem
from bot.engine.events import ErrorRaised, Event
from bot.engine.inputs import Input
from bot.engine.yamlsafe import LocDict

CHANNELS = ("whatsapp", "sms", "voice")
_DURATION = re.compile(r"^(\d{1,9})\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
NODE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")

REGISTRY: dict[str, type[NodeKind]] = {}


def register(cls: type[NodeKind]) -> type[NodeKind]:
    """Class decorator: make a node kind available under its ``kind`` key."""
    if cls.kind in REGISTRY:
        raise EngineMisuse(f"node kind {cls.kind!r} registered twice")
    REGISTRY[cls.kind] = cls
    return cls


# Outcomes of entering or resuming a node.
@dataclasses.dataclass(frozen=True)
class Continue:
    """Go on to the node's ``next`` (or end when it says ``end: true``)."""


@dataclasses.dataclass(frozen=True)
class Goto:
    """Go to a named node."""

    node: str


@dataclasses.dataclass(frozen=True)
class Park:
    """Wait for input; ``waiting`` is stored in the session and handed back on resume."""

    waiting: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Finish:
    """End the session."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Enter:
    """Run another flow, then come back and go on after this node."""

    flow: str


Outcome = Continue | Goto | Park | Finish | Enter


class ParseContext:
    """Collects problems while a flow's nodes are read."""

    def __init__(self, path: str, channels: tuple[str, ...], actions: frozenset[str] | None) -> None:
        self.path = path
        self.channels = channels
        self.actions = actions
        self.problems: list[Problem] = []

    @property
    def voice(self) -> bool:
        """True when the flow may run on a call."""
        return "voice" in self.channels

    def problem(self, loc: Loc, message: str) -> None:
        """Record a problem at ``loc``."""
        self.problems.append(Problem(self.path, loc, message))

    def text(self, spec: LocDict, key: str, *, required: bool = False) -> str | None:
        """A text value (numbers are accepted as text); its template syntax is checked."""
        if key not in spec:
            if required:
                self.problem(spec.loc, f"{key}: required")
            return None
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(spec.value_loc(key), f"{key}: must be text")
            return None
        text = str(value)
        problem = templates.check(text)
        if problem:
            self.problem(spec.value_loc(key), f"{key}: {problem}")
        return text

    def integer(self, spec: LocDict, key: str, low: int, high: int, default: int | None = None) -> int | None:
        """A whole number in [low, high]."""
        if key not in spec:
            return default
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(spec.value_loc(key), f"{key}: must be a whole number from {low} to {high}, got {value!r}")
            return default
        return value

    def duration(self, spec: LocDict, key: str) -> int | None:
        """Seconds from ``30s``, ``15m``, ``4h`` or ``2d``."""
        if key not in spec:
            return None
        value = spec[key]
        match = _DURATION.match(str(value).strip()) if isinstance(value, str | int) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if not match or int(match.group(1)) == 0:
            self.problem(spec.value_loc(key), f"{key}: must be a duration such as 30s, 15m, 4h or 2d, got {value!r}")
            return None
        return int(match.group(1)) * _UNITS[match.group(2)]

    def ref(self, spec: LocDict, key: str) -> tuple[str, Loc] | None:
        """A reference to another node (checked against the flow's nodes later)."""
        if key not in spec:
            return None
        value = spec[key]
        if not isinstance(value, str) or not NODE_ID.match(value):
            self.problem(spec.value_loc(key), f"{key}: must name a node, got {value!r}")
            return None
        return value, spec.value_loc(key)


class NodeKind(abc.ABC):
    """A node of a flow; subclasses are one kind each, registered by their ``kind`` key.

    Every node may also carry ``next`` (where to go after it), ``end: true`` (end the
    session after it) and ``funnel`` (a funnel step reached on arrival).
    """

    kind: ClassVar[str]
    keys: ClassVar[frozenset[str]] = frozenset()
    voice_only: ClassVar[bool] = False
    # A kind that waits for the voter or time breaks loops (for the loop check).
    waits: ClassVar[bool] = False
    # A kind that ends the session itself needs no next.
    terminal: ClassVar[bool] = False

    def __init__(self, node_id: str, spec: LocDict, ctx: ParseContext) -> None:
        self.id = node_id
        self.loc = spec.loc
        self.next = ctx.ref(spec, "next")
        self.end = spec.get("end") is True
        if "end" in spec and not isinstance(spec["end"], bool):
            ctx.problem(spec.value_loc("end"), "end: must be true or false")
        funnel = spec.get("funnel")
        self.funnel: str | None = None
        if funnel is not None:
            if not isinstance(funnel, str) or not NODE_ID.match(funnel):
                ctx.problem(spec.value_loc("funnel"), f"funnel: must be a step name such as greeted, got {funnel!r}")
            else:
                self.funnel = funnel
        if self.voice_only and not ctx.voice:
            ctx.problem(
                spec.key_loc(self.kind),
                f"{self.kind}: only works on calls, but the flow's channels are {', '.join(ctx.channels)}",
            )
        self.parse(spec, ctx)

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:  # noqa: B027 - most kinds have keys, some none
        """Read the kind's own keys (override)."""

    def branches_cover(self) -> bool:
        """True when the kind's own branches say where every outcome goes (no next needed)."""
        return False

    def exits(self) -> list[tuple[str, Loc]]:
        """Every node this one may go to (``next`` and the kind's branches)."""
        return [self.next] if self.next else []

    @abc.abstractmethod
    def enter(self, run: Run) -> Outcome:
        """Do the node's work on arrival."""

    def resume(self, run: Run, received: Input, waiting: dict[str, Any]) -> Outcome:
        """Handle what woke a session parked on this node."""
        raise EngineMisuse(f"node {self.id!r} ({self.kind}) does not wait, so it cannot be resumed")


class Run:
    """One step's view of the session: state to read and change, events to emit."""

    def __init__(self, flow: Any, state: dict[str, Any], now: str) -> None:
        self.flow = flow
        # The flow the session started with, and the flows its subflow nodes may run.
        self.root = flow
        self.library: Mapping[str, Any] = {}
        self.state = state
        self.now = now
        self.events: list[Event] = []

    @property
    def channel(self) -> str:
        """whatsapp, sms or voice."""
        return self.state["channel"]

    @property
    def voice(self) -> bool:
        """True on a call."""
        return self.channel == "voice"

    def emit(self, event: Event) -> None:
        """Add an event to the sprint."""
        self.events.append(event)

    def error(self, node: str | None, message: str) -> None:
        """Report an author's or runtime mistake as an event."""
        self.emit(ErrorRaised(node=node, message=message))

    def context(self) -> dict[str, Any]:
        """What templates see."""
        s = self.state
        return {
            "contact": s["contact"],
            "vars": s["vars"],
            "answers": s["answers"],
            "campaign": s.get("trigger", {}).get("campaign", {}),
            "channel": s["channel"],
            "language": s.get("language"),
        }

    def text(self, node: str, field: str, default: Any) -> Any:
        """The session language's translation of a node's text (or ``default``)."""
        from bot.engine.translations import pick

        return pick(getattr(self.flow, "translations", {}), self.state.get("language"), node, field, default)

    def render(self, node: str, text: str) -> str:
        """Render a template; a problem becomes an error event and the text goes on."""
        result, problem = templates.render(text, self.context())
        if problem:
            self.error(node, problem)
        return result

    def set_var(self, name: str, value: Any) -> None:
        """Set a session variable and say so."""
        from bot.engine.events import VariableSet

        self.state["vars"][name] = value
        self.emit(VariableSet(name=name, value=value))
