"""say: send a message (spoken on a call).

Example::

    nodes:
      welcome:
        say: "Namaste {{ contact.name }}! Polling day is 20 November."
        funnel: greeted
        next: ask_booth
"""

from __future__ import annotations

from bot.engine.events import MessageSent
from bot.engine.nodes.base import Continue, NodeKind, Outcome, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict


@register
class Say(NodeKind):
    """Send a text."""

    kind = "say"

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the text."""
        self.text = ctx.text(spec, "say", required=True) or ""

    def enter(self, run: Run) -> Outcome:
        """Send the rendered text and go on."""
        run.emit(MessageSent(node=self.id, text=run.render(self.id, run.text(self.id, "text", self.text))))
        return Continue()
