"""subflow: run another flow, then come back and go on.

Example::

    nodes:
      ask_consent:
        subflow: consent_check
        next: main_question
      main_question:
        say: "Thanks! Now, about polling day..."
        end: true

The called flow shares the session: its answers, variables and funnel steps are the
voter's. When it ends (or its question fails or times out) the caller goes on at
``next``; a hang-up, a transfer or an error inside it ends the whole session. The flow
must be loaded beside the caller (``canvass flows validate`` checks that it exists and
runs on the caller's channels); a missing one is reported and skipped at run time.
"""

from __future__ import annotations

from bot.engine.nodes.base import NODE_ID, Enter, NodeKind, Outcome, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict


@register
class Subflow(NodeKind):
    """Call another flow by name."""

    kind = "subflow"

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the called flow's name."""
        name = spec["subflow"]
        self.flow_name = ""
        if not isinstance(name, str) or not NODE_ID.match(name):
            ctx.problem(spec.value_loc("subflow"), f"subflow: the name of a flow, got {name!r}")
        else:
            self.flow_name = name
            self.name_loc = spec.value_loc("subflow")

    def enter(self, run: Run) -> Outcome:
        """Switch to the called flow."""
        return Enter(self.flow_name)
