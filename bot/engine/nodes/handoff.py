"""handoff: give the conversation to a person (the inbox picks it up).

Example::

    nodes:
      human:
        handoff: {note: "could not answer the booth question"}
"""

from __future__ import annotations

from bot.engine.events import HandedOff
from bot.engine.nodes.base import NodeKind, Outcome, Park, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict


@register
class Handoff(NodeKind):
    """Hand over to a human; the session waits (replies go to the agent, not the bot)."""

    kind = "handoff"
    waits = True
    terminal = True

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the optional note for the agent."""
        raw = spec["handoff"]
        self.note = None
        if isinstance(raw, LocDict):
            self.note = ctx.text(raw, "note")
        elif raw is not True and raw is not None:  # 1 == True, but `handoff: 1` is a mistake
            ctx.problem(spec.value_loc("handoff"), "handoff: true, or {note: text for the agent}")

    def enter(self, run: Run) -> Outcome:
        """Emit the handoff and park until an agent closes the case."""
        note = run.render(self.id, self.note) if self.note else None
        run.emit(HandedOff(node=self.id, note=note))
        return Park({"kind": "handoff"})

    def resume(self, run: Run, received, waiting):  # type: ignore[no-untyped-def]
        """The voter wrote again while with an agent: nothing for the bot to do."""
        return Park({"kind": "handoff"})
