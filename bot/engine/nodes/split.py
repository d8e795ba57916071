"""split: branch on conditions, or at random for A/B tests.

Examples::

    nodes:
      route:
        split:
          - {when: "answers.knows_booth == '1'", next: thanks}
          - {when: "'volunteer' in contact.tags", next: volunteer}
          - {when: "channel == 'voice'", next: call_path}
        next: ab                    # when no condition holds
      ab:
        split: random
        branches:
          - {weight: 50, next: short_message}
          - {weight: 50, next: long_message}

Conditions are Jinja2 expressions in the sandbox, over contact, vars, answers, channel,
language and campaign. The random split is stable per voter: the same phone always gets
the same branch (and the engine stays deterministic).
"""

from __future__ import annotations

import hashlib
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError

from bot.engine.nodes.base import Continue, Goto, NodeKind, Outcome, ParseContext, Run, register
from bot.engine.templates import _env
from bot.engine.yamlsafe import LocDict, LocList


@register
class Split(NodeKind):
    """Go to the first branch whose condition holds (or pick one by weight)."""

    kind = "split"
    keys = frozenset({"branches"})

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read conditions (or weights) and their targets."""
        self.random = spec["split"] == "random"
        self.branches: list[dict[str, Any]] = []
        raw = spec.get("branches") if self.random else spec["split"]
        where = spec.value_loc("branches" if self.random else "split")
        if not isinstance(raw, LocList) or not raw:
            ctx.problem(where, "split: a list of {when, next}, or `random` with branches: [{weight, next}]")
            return
        for i, item in enumerate(raw):
            loc = raw.item_locs[i]
            if not isinstance(item, LocDict):
                ctx.problem(loc, f"branch {i}: a mapping with {'weight' if self.random else 'when'} and next")
                continue
            target = ctx.ref(item, "next")
            if target is None and "next" not in item:
                ctx.problem(loc, f"branch {i}: needs next")
            if self.random:
                weight = item.get("weight", 1)
                if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                    ctx.problem(item.value_loc("weight"), f"branch {i}: weight must be a whole number ≥ 0")
                    weight = 0
                self.branches.append({"weight": weight, "next": target})
                continue
            when = item.get("when")
            if not isinstance(when, str) or not when.strip():
                ctx.problem(item.value_loc("when") if "when" in item else loc, f"branch {i}: needs when: <condition>")
                continue
            try:
                compiled = _env().compile_expression(when)
            except TemplateSyntaxError as exc:
                ctx.problem(item.value_loc("when"), f"branch {i}: condition: {exc.message}")
                continue
            except RecursionError:
                ctx.problem(item.value_loc("when"), f"branch {i}: condition: nested too deeply")
                continue
            self.branches.append({"when": when, "test": compiled, "next": target})
        if self.random and self.branches and sum(b["weight"] for b in self.branches) == 0:
            ctx.problem(where, "split: the weights add up to 0")

    def exits(self) -> list[tuple[str, Any]]:
        """Every branch's target, and next."""
        return [b["next"] for b in self.branches if b["next"]] + ([self.next] if self.next else [])

    def branches_cover(self) -> bool:
        """A random split always takes one of its branches."""
        return self.random and all(b["next"] for b in self.branches)

    def enter(self, run: Run) -> Outcome:
        """Pick the branch."""
        if self.random:
            return self._pick(run)
        context = run.context()
        for branch in self.branches:
            try:
                holds = bool(branch["test"](**context))
            except UndefinedError:
                holds = False  # a missing value makes the condition false, not an error
            except (SecurityError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
                run.error(self.id, f"condition {branch['when']!r}: {type(exc).__name__}: {exc}")
                holds = False
            if holds and branch["next"]:
                return Goto(branch["next"][0])
        return Continue()

    def _pick(self, run: Run) -> Outcome:
        seed = f"{run.state['flow']}:{self.id}:{run.state['contact'].get('phone')}".encode()
        total = sum(b["weight"] for b in self.branches)
        point = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % total
        for branch in self.branches:
            point -= branch["weight"]
            if point < 0:
                return Goto(branch["next"][0])
        return Continue()
