"""action: run a custom action (rasa-sdk) by name; the host runs it, outside the engine.

Example::

    nodes:
      lookup:
        action: action_find_booth
        timeout: 10s
        on_error: sorry
        next: tell_booth
      tell_booth:
        say: "Your booth is number {{ vars.booth }}."
        end: true
      sorry:
        say: "Sorry, we could not look that up just now."
        end: true

The session waits while the action runs. Its result sets session variables, sends its
messages, and may name a ``followup`` node to go to instead of ``next``. When the action
fails (or the host reports that it timed out), the flow goes to ``on_error``, or ends
with reason ``error`` when there is none.
"""

from __future__ import annotations

import re
from typing import Any

from bot.engine.events import ActionRequested, HandedOff, MessageSent
from bot.engine.inputs import ActionDone, Input, Timeout
from bot.engine.nodes.base import Continue, Finish, Goto, NodeKind, Outcome, Park, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict

ACTION_NAME = re.compile(r"^action_[a-z0-9_]+$|^[a-z][a-z0-9_]+$")


@register
class Action(NodeKind):
    """Ask the host to run a custom action and wait for its result."""

    kind = "action"
    keys = frozenset({"on_error", "timeout", "interim"})
    # The session pauses until the host reports back, so a loop through here is not a busy loop.
    waits = True

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the action's name, on_error and timeout."""
        raw = spec["action"]
        self.name = ""
        if not isinstance(raw, str) or not ACTION_NAME.match(raw):
            ctx.problem(
                spec.value_loc("action"), f"action: must be an action name such as action_find_booth, got {raw!r}"
            )
        elif ctx.actions is not None and raw not in ctx.actions:
            known = ", ".join(sorted(ctx.actions)[:10]) or "none"
            more = ", ..." if len(ctx.actions) > 10 else ""
            ctx.problem(spec.value_loc("action"), f"action: unknown action {raw!r} (known: {known}{more})")
        else:
            self.name = raw
        self.on_error = ctx.ref(spec, "on_error")
        self.timeout = ctx.duration(spec, "timeout")
        # Said while the action runs ("One moment, looking that up…"), so a slow
        # lookup does not leave the voter in silence.
        self.interim = ctx.text(spec, "interim")

    def exits(self) -> list[tuple[str, Any]]:
        """Next and on_error."""
        return [r for r in (self.next, self.on_error) if r]

    def enter(self, run: Run) -> Outcome:
        """Request the action and wait for it."""
        if self.interim:
            text = run.render(self.id, run.text(self.id, "interim", self.interim))
            run.emit(MessageSent(node=self.id, text=text))
        run.emit(ActionRequested(node=self.id, name=self.name, timeout_s=self.timeout))
        return Park({"kind": "action"})

    def resume(self, run: Run, received: Input, waiting: dict[str, Any]) -> Outcome:
        """Apply the action's result; anything else that arrives meanwhile is ignored."""
        if isinstance(received, Timeout):
            return self._failed(run, "timed out")
        if waiting.get("kind") == "handoff" or not isinstance(received, ActionDone):
            # Still waiting for the action, or handed to a person: the bot stays quiet.
            return Park({"kind": waiting.get("kind", "action")})
        for name, value in received.variables.items():
            run.set_var(str(name), value)
        for message in received.messages:
            if isinstance(message, dict):
                choices = [
                    {"key": str(c.get("key", "")), "label": str(c.get("label", ""))}
                    for c in message.get("choices") or []
                    if isinstance(c, dict)
                ]
                run.emit(MessageSent(node=self.id, text=str(message.get("text") or ""), choices=choices))
            else:
                run.emit(MessageSent(node=self.id, text=str(message)))
        if received.failed:
            return self._failed(run, f"failed: {received.failed}")
        if received.handoff:
            run.emit(HandedOff(node=self.id, note=f"paused by action {self.name}"))
            return Park({"kind": "handoff"})
        if received.followup:
            if received.followup in run.flow.nodes:
                return Goto(received.followup)
            run.error(self.id, f"action {self.name!r} asked to go to {received.followup!r}, which is not a node")
        return Continue()

    def _failed(self, run: Run, why: str) -> Outcome:
        run.error(self.id, f"action {self.name!r} {why}")
        return Goto(self.on_error[0]) if self.on_error else Finish("error")
