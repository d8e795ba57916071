"""wait: pause the flow for a while, then go on.

Example::

    nodes:
      pause:
        wait: 2h
        next: reminder
      reminder:
        say: "Polling day is tomorrow. Booth {{ vars.booth }} opens at 7."
        end: true

The duration is ``30s``, ``15m``, ``4h`` or ``2d`` (a bare number is seconds). The host
starts a timer and sends a timeout when it runs out; what the voter writes meanwhile
does not cut the wait short.
"""

from __future__ import annotations

from typing import Any

from bot.engine.events import TimerStarted
from bot.engine.inputs import Digits, Input, Text, Timeout
from bot.engine.nodes.base import Continue, NodeKind, Outcome, Park, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict

WAITING = {"kind": "wait"}


@register
class Wait(NodeKind):
    """Sleep until the timer runs out."""

    kind = "wait"
    waits = True

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the duration."""
        self.seconds = ctx.duration(spec, "wait") or 0

    def enter(self, run: Run) -> Outcome:
        """Start the timer and park."""
        run.emit(TimerStarted(node=self.id, seconds=self.seconds))
        return Park(dict(WAITING))

    def resume(self, run: Run, received: Input, waiting: dict[str, Any]) -> Outcome:
        """Go on when the time is up; anything else leaves the session waiting."""
        if isinstance(received, Timeout):
            return Continue()
        if waiting.get("kind") != "wait":
            # Parked here by a campaign template: the reply starts the wait.
            return self.enter(run)
        if not isinstance(received, Text | Digits):
            run.error(self.id, f"wait cannot take {type(received).__name__} input")
        return Park(dict(WAITING))
