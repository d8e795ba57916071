"""hangup: end the call (calls only), and with it the session.

Example::

    nodes:
      goodbye:
        say: "Thank you. Please vote on 20 November."
        next: bye
      bye:
        hangup: true

A flow that ends without ``hangup`` leaves hanging up to the host; this node says so
explicitly, for instance in the middle of a branch. In a flow that also runs on
messaging, reaching it in a chat simply ends the session.
"""

from __future__ import annotations

from bot.engine.events import CallControl
from bot.engine.nodes.base import Finish, NodeKind, Outcome, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict


@register
class Hangup(NodeKind):
    """Hang up the call."""

    kind = "hangup"
    voice_only = True
    terminal = True

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Only ``hangup: true`` is meaningful."""
        if spec["hangup"] is not True:
            ctx.problem(spec.value_loc("hangup"), f"hangup: must be true, got {spec['hangup']!r}")

    def enter(self, run: Run) -> Outcome:
        """Ask the host to hang up and end the session (on messaging: just end it)."""
        if not run.voice:
            return Finish("completed")
        run.emit(CallControl(node=self.id, verb="hangup"))
        return Finish("hangup")
