"""end: finish the conversation.

Example::

    nodes:
      done:
        end: true
"""

from __future__ import annotations

from bot.engine.nodes.base import Finish, NodeKind, Outcome, Run, register


@register
class End(NodeKind):
    """End the session."""

    kind = "end"
    terminal = True

    def enter(self, run: Run) -> Outcome:
        """End here."""
        return Finish("completed")
