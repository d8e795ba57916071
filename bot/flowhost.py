"""Hosting a flow outside the engine: run its actions and webhooks, follow it to the next wait.

The engine stops at an ``action`` or ``webhook`` node and waits for the host. ``FlowHost``
is the host the simulator and the tests use: it runs custom actions through a rasa-sdk
bridge and calls webhooks over HTTP, then resumes the session, until the flow waits for
the voter or ends. (Inbound messages in production use the same steps in ``bot.effects``
once messaging lands.)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bot.engine import Flow, Sprint, inputs, resume, start
from bot.engine.events import ActionRequested, Event, WebhookRequested
from bot.flowfiles import now_iso

MAX_HOPS = 20


class ActionBridge(Protocol):
    """What FlowHost needs of ``bot.rasa_bridge.ActionRunner`` / ``RemoteActionRunner``."""

    def run(
        self, name: str, state: Any, flow: Flow, *, timeout_s: float = 10.0, latest_text: str | None = None
    ) -> inputs.ActionDone:
        """Run one action."""
        ...


def call_webhook(event: WebhookRequested) -> inputs.WebhookDone:
    """Perform a webhook request; status 0 when there was no answer."""
    data = None
    headers = dict(event.headers)
    if event.body is not None and event.method != "GET":
        data = json.dumps(event.body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(event.url, data=data, headers=headers, method=event.method)  # noqa: S310 - http(s) checked by the node
    try:
        with urllib.request.urlopen(request, timeout=event.timeout_s) as response:  # noqa: S310
            return inputs.WebhookDone(status=response.status, body=_json_or_text(response.read()))
    except urllib.error.HTTPError as exc:
        return inputs.WebhookDone(status=exc.code, body=_json_or_text(exc.read()))
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        return inputs.WebhookDone(status=0, body=str(getattr(exc, "reason", exc)))


def _json_or_text(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class FlowHost:
    """Drives one session: the voter's inputs in, every event out."""

    def __init__(
        self,
        flow: Flow,
        *,
        actions: ActionBridge | None = None,
        webhook: Callable[[WebhookRequested], inputs.WebhookDone] = call_webhook,
        clock: Callable[[], str] = now_iso,
        library: Mapping[str, Flow] | None = None,
    ) -> None:
        self.flow = flow
        self.library = library or {}
        self.actions = actions
        self.webhook = webhook
        self.clock = clock
        self.sprint: Sprint | None = None
        self.latest_text: str | None = None

    def start(self, contact: dict[str, Any], *, channel: str) -> list[Event]:
        """Start the flow; return everything up to its first wait."""
        self.sprint = start(self.flow, contact, channel=channel, now=self.clock(), library=self.library)
        return self._follow()

    def attach(self, state: dict[str, Any]) -> None:
        """Take over a stored session (its state as saved after its last step)."""
        self.sprint = Sprint([], state)

    def start_at(self, contact: dict[str, Any], *, channel: str, node: str) -> list[Event]:
        """Start parked at ``node``: a campaign's template stood in for its prompt."""
        self.sprint = start(self.flow, contact, channel=channel, now=self.clock(), library=self.library, at=node)
        return self._follow()

    def send(self, received: inputs.Input) -> list[Event]:
        """Hand the voter's input to the session; return what followed."""
        assert self.sprint is not None, "start() first"
        if isinstance(received, inputs.Text):
            self.latest_text = received.text
        self.sprint = resume(self.flow, self.sprint.state, received, now=self.clock(), library=self.library)
        return self._follow()

    @property
    def waiting(self) -> bool:
        """True while the session waits for the voter."""
        return self.sprint is not None and self.sprint.waiting

    def _follow(self) -> list[Event]:
        assert self.sprint is not None
        events = list(self.sprint.events)
        for _ in range(MAX_HOPS):
            if not self.sprint.waiting:
                break
            pending = self.sprint.events[-1] if self.sprint.events else None
            waiting_for = (self.sprint.state.get("waiting") or {}).get("kind")
            if waiting_for == "action" and isinstance(pending, ActionRequested):
                result: inputs.Input = self._action(pending)
            elif waiting_for == "webhook" and isinstance(pending, WebhookRequested):
                result = self.webhook(pending)
            else:
                break
            self.sprint = resume(self.flow, self.sprint.state, result, now=self.clock(), library=self.library)
            events.extend(self.sprint.events)
        return events

    def _action(self, event: ActionRequested) -> inputs.ActionDone:
        if self.actions is None:
            return inputs.ActionDone(failed=f"{event.name}: no actions package configured (CANVASS_ACTIONS)")
        timeout = float(event.timeout_s or 10)
        assert self.sprint is not None
        return self.actions.run(
            event.name, self.sprint.state, self.flow, timeout_s=timeout, latest_text=self.latest_text
        )
