"""The engine: ``start`` and ``resume`` turn a flow, a state and an input into events.

Each call returns a sprint of events and the next session state. Pure: no clock, no
I/O — the host passes ``now``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from bot.engine.errors import EngineMisuse
from bot.engine.events import Event, FlowEnded, FunnelReached
from bot.engine.flow import Flow
from bot.engine.inputs import CallEnded, Input
from bot.engine.nodes.base import CHANNELS, Continue, Enter, Finish, Goto, Outcome, Park, Run

MAX_STEPS = 100
MAX_DEPTH = 5
# How a subflow may end and still hand back to its caller; any other end ends the session.
RETURNS = frozenset({"completed", "failed", "timed_out"})
Library = Mapping[str, Flow]
STATE_VERSION = 1


@dataclasses.dataclass
class Sprint:
    """What one start or resume produced."""

    events: list[Event]
    state: dict[str, Any]

    @property
    def waiting(self) -> bool:
        """True when the session waits for input (or a timer)."""
        return self.state["status"] == "waiting"

    @property
    def ended(self) -> bool:
        """True when the session is over."""
        return self.state["status"] == "ended"


def start(
    flow: Flow,
    contact: dict[str, Any],
    *,
    channel: str,
    now: str,
    trigger: dict[str, Any] | None = None,
    at: str | None = None,
    library: Library | None = None,
) -> Sprint:
    """Start ``flow`` for a contact.

    ``at`` parks the session at a node without running it: a campaign's template stands
    in for that node's prompt, and the voter's reply answers it. ``library`` holds the
    flows that ``subflow`` nodes may run, by name.
    """
    if channel not in CHANNELS:
        raise EngineMisuse(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    if channel not in flow.channels:
        raise EngineMisuse(f"flow {flow.name!r} runs on {', '.join(flow.channels)}, not {channel}")
    state: dict[str, Any] = {
        "v": STATE_VERSION,
        "root": flow.name,
        "flow": flow.name,
        "version": flow.version,
        "stack": [],
        "channel": channel,
        "language": contact.get("language") or flow.language,
        "contact": {
            "name": contact.get("name"),
            "phone": contact.get("phone"),
            "language": contact.get("language"),
            "fields": dict(contact.get("fields") or {}),
            "tags": dict(contact.get("tags") or {}),
        },
        "trigger": dict(trigger or {}),
        "vars": {},
        "answers": {},
        "funnel": [],
        "node": flow.start,
        "waiting": None,
        "status": "active",
    }
    run = Run(flow, state, now)
    run.library = library or {}
    if at is not None:
        if at not in flow.nodes:
            raise EngineMisuse(f"node {at!r} is not in flow {flow.name!r}")
        state["node"] = at
        node = flow.nodes[at]
        # The template was this node's prompt: the voter has reached its funnel step.
        if node.funnel:
            state["funnel"].append(node.funnel)
            run.emit(FunnelReached(step=node.funnel, at=run.now))
        return _finish(run, Park({"kind": "template"}))
    return _walk(run, Goto(flow.start))


def resume(flow: Flow, state: dict[str, Any], received: Input, *, now: str, library: Library | None = None) -> Sprint:
    """Hand an input to a waiting session; the given state is not modified.

    ``flow`` is the flow the session was started with; inside a subflow the flow that
    waits is found in ``library``.
    """
    if state.get("status") != "waiting":
        raise EngineMisuse(f"the session is {state.get('status')!r}, not waiting")
    root = state.get("root", state.get("flow"))
    if root != flow.name:
        raise EngineMisuse(f"the session belongs to flow {root!r}, not {flow.name!r}")
    state = copy.deepcopy(state)
    library = library or {}
    current = flow if state["flow"] == flow.name else library.get(state["flow"])
    if current is None:
        raise EngineMisuse(f"the session waits in subflow {state['flow']!r}, which is not in the library")
    run = Run(current, state, now)
    run.root = flow
    run.library = library
    flow = current
    node = flow.nodes.get(state["node"])
    if node is None:
        run.error(state["node"], f"node {state['node']!r} no longer exists in this flow version")
        return _end(run, "error")
    if isinstance(received, CallEnded):
        return _end(run, "call_ended")
    waiting = state["waiting"] or {}
    state["waiting"] = None
    state["status"] = "active"
    if waiting.get("kind") == "template":
        # The campaign's template was the prompt: the reply answers the node itself.
        outcome = node.resume(run, received, {"kind": "first"}) if node.waits else Continue()
    else:
        outcome = node.resume(run, received, waiting)
    return _walk(run, outcome, after=node.id)


def _walk(run: Run, outcome: Outcome, after: str | None = None) -> Sprint:
    current = after
    for _ in range(MAX_STEPS):
        flow = run.flow
        if isinstance(outcome, Continue):
            node = flow.nodes[current] if current else None
            outcome = Finish("completed") if node is None or node.end or not node.next else Goto(node.next[0])
        if isinstance(outcome, Finish) and outcome.reason in RETURNS and run.state["stack"]:
            current = _leave(run)
            outcome = Continue()
            continue
        if isinstance(outcome, Enter):
            outcome = _enter(run, outcome.flow, current)
            continue
        if isinstance(outcome, Goto):
            current = outcome.node
            if current not in flow.nodes:
                run.error(current, f"node {current!r} does not exist")
                return _end(run, "error")
            run.state["node"] = current
            node = flow.nodes[current]
            if node.funnel and node.funnel not in run.state["funnel"]:
                run.state["funnel"].append(node.funnel)
                run.emit(FunnelReached(step=node.funnel, at=run.now))
            outcome = node.enter(run)
            continue
        return _finish(run, outcome)
    run.error(current, f"more than {MAX_STEPS} steps without waiting for the voter: the flow loops")
    return _end(run, "error")


def _enter(run: Run, name: str, node: str | None) -> Outcome:
    """Push the caller and switch to subflow ``name`` (an author's mistake carries on)."""
    child = run.library.get(name)
    state = run.state
    if child is None:
        run.error(node, f"subflow {name!r} is not available; going on without it")
        return Continue()
    if state["channel"] not in child.channels:
        run.error(node, f"subflow {name!r} does not run on {state['channel']}; going on without it")
        return Continue()
    if len(state["stack"]) >= MAX_DEPTH:
        run.error(node, f"subflows nested deeper than {MAX_DEPTH}; going on without {name!r}")
        return Continue()
    state["stack"].append({"flow": run.flow.name, "version": run.flow.version, "node": node})
    run.flow = child
    state["flow"], state["version"] = child.name, child.version
    return Goto(child.start)


def _leave(run: Run) -> str:
    """Pop back to the flow that called the subflow; return the calling node."""
    frame = run.state["stack"].pop()
    parent = run.library.get(frame["flow"]) if frame["flow"] != run.state["root"] else None
    if parent is None:
        parent = run.root
    run.flow = parent
    run.state["flow"], run.state["version"] = parent.name, parent.version
    return str(frame["node"])


def _finish(run: Run, outcome: Outcome) -> Sprint:
    if isinstance(outcome, Park):
        run.state["waiting"] = outcome.waiting
        run.state["status"] = "waiting"
        return Sprint(run.events, run.state)
    assert isinstance(outcome, Finish)
    return _end(run, outcome.reason)


def _end(run: Run, reason: str) -> Sprint:
    run.emit(FlowEnded(reason=reason))
    run.state["status"] = "ended"
    run.state["waiting"] = None
    return Sprint(run.events, run.state)
