"""record: record what the caller says (calls only).

Example::

    nodes:
      grievance:
        record:
          prompt: "Tell us your problem after the beep. Press hash when done."
          max_seconds: 60
          save: grievance_audio
        next: thanks

The host records up to ``max_seconds`` (60 by default; # ends early) and resumes the
session with the recording's URL as text, which is saved under ``save``. When nothing
was recorded (a timeout or an empty answer) the flow goes on without saving.
"""

from __future__ import annotations

import re
from typing import Any

from bot.engine.events import AnswerSaved, CallControl, MessageSent
from bot.engine.inputs import Digits, Input, Text, Timeout
from bot.engine.nodes.base import Continue, NodeKind, Outcome, Park, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
KEYS = ("prompt", "max_seconds", "save")


@register
class Record(NodeKind):
    """Prompt, record, keep the recording's URL."""

    kind = "record"
    voice_only = True
    waits = True

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the prompt, the longest recording and where to save it."""
        raw = spec["record"]
        self.prompt: str | None = None
        self.max_seconds = 60
        self.save: str | None = None
        if raw is True:
            return
        if not isinstance(raw, LocDict):
            ctx.problem(spec.value_loc("record"), "record: true, or {prompt, max_seconds, save}")
            return
        for key in raw:
            if key not in KEYS:
                ctx.problem(raw.key_loc(key), f"record: unknown key {key!r}; it takes {', '.join(KEYS)}")
        self.prompt = ctx.text(raw, "prompt")
        self.max_seconds = ctx.integer(raw, "max_seconds", 1, 3600, default=60) or 60
        save = raw.get("save")
        if "save" in raw and not (isinstance(save, str) and NAME.match(save)):
            ctx.problem(raw.value_loc("save"), f"record.save: must be a name such as grievance_audio, got {save!r}")
        elif save is not None:
            self.save = save

    def enter(self, run: Run) -> Outcome:
        """Say the prompt, ask the host to record, and wait for the recording."""
        if not run.voice:
            run.error(self.id, f"record: there is no call to record on {run.channel}; skipped")
            return Continue()
        if self.prompt:
            run.emit(MessageSent(node=self.id, text=run.render(self.id, run.text(self.id, "text", self.prompt))))
        params = {"max_seconds": self.max_seconds, "finish_on_key": "#"}
        run.emit(CallControl(node=self.id, verb="record", params=params))
        return Park({"kind": "record"})

    def resume(self, run: Run, received: Input, waiting: dict[str, Any]) -> Outcome:
        """Save the recording's URL (when there is one) and go on."""
        if isinstance(received, Timeout | Digits):
            return Continue()
        if not isinstance(received, Text):
            run.error(self.id, f"record cannot take {type(received).__name__} input")
            return Park({"kind": "record"})
        url = received.text.strip()
        if url and self.save:
            run.state["answers"][self.save] = url
            run.emit(AnswerSaved(node=self.id, name=self.save, value=url))
        return Continue()
