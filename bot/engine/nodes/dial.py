"""dial: transfer the call to another number (calls only); the bot's part ends there.

Example::

    nodes:
      helpline:
        say: "Connecting you to the ward office."
        next: transfer
      transfer:
        dial: {number: "+911123456789", timeout: 30s}

``number`` is an E.164 number (``+`` and country code) or a template such as
``"{{ vars.office_phone }}"``, checked again once rendered. ``timeout`` is how long to
let it ring (30s by default, at most 10m).
"""

from __future__ import annotations

import re

from bot.engine.events import CallControl
from bot.engine.nodes.base import Finish, NodeKind, Outcome, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
KEYS = ("number", "timeout")
DEFAULT_TIMEOUT = 30
MAX_TIMEOUT = 600


@register
class Dial(NodeKind):
    """Hand the call over to a phone number."""

    kind = "dial"
    voice_only = True
    terminal = True

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the number and how long to ring."""
        raw = spec["dial"]
        self.number = ""
        self.timeout = DEFAULT_TIMEOUT
        if not isinstance(raw, LocDict):
            ctx.problem(spec.value_loc("dial"), 'dial: {number: "+911123456789", timeout: 30s}')
            return
        for key in raw:
            if key not in KEYS:
                ctx.problem(raw.key_loc(key), f"dial: unknown key {key!r}; it takes {', '.join(KEYS)}")
        self.number = (ctx.text(raw, "number", required=True) or "").strip()
        if self.number and "{" not in self.number and not E164.match(self.number):
            ctx.problem(raw.value_loc("number"), f"dial.number: {self.number!r} is not a number such as +911123456789")
        timeout = ctx.duration(raw, "timeout")
        if timeout is not None and timeout > MAX_TIMEOUT:
            ctx.problem(raw.value_loc("timeout"), f"dial.timeout: at most {MAX_TIMEOUT // 60}m, got {timeout}s")
        elif timeout is not None:
            self.timeout = timeout

    def enter(self, run: Run) -> Outcome:
        """Ask the host to transfer the call and end the session."""
        if not run.voice:
            run.error(self.id, f"dial: there is no call to transfer on {run.channel}")
            return Finish("error")
        number = run.render(self.id, self.number).strip()
        if not E164.match(number):
            run.error(self.id, f"dial: {number!r} is not a number such as +911123456789; the call was not transferred")
            return Finish("error")
        run.emit(CallControl(node=self.id, verb="dial", params={"number": number, "timeout_s": self.timeout}))
        return Finish("transferred")
