"""ask: put a question and wait for the answer (on a call: keypad digits).

Example::

    nodes:
      knows:
        ask: "Do you know your polling booth? Reply 1 for yes, 2 for no."
        choices:
          - {key: "1", words: [yes, haan], label: "Yes", next: thanks}
          - {key: "2", words: [no, nahi], label: "No", next: epic}
        retries: 2
        on_invalid: "Please reply 1 or 2."
        on_fail: handoff
        timeout: 4h
        on_timeout: reminder
        save: knows_booth
      epic:
        ask: "Please send your EPIC (voter ID) number."
        expect: {pattern: "^[A-Z]{3}[0-9]{7}$"}
        save: epic
        next: lookup

``expect`` is one of ``text`` (the default without choices), ``number`` (or
``{number: {min: 18, max: 120}}``), ``date``, ``phone``, ``email`` or ``{pattern: REGEX}``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings
from typing import Any

from bot.engine.events import AnswerSaved, InputAwaited, MessageSent
from bot.engine.inputs import Digits, Input, Text, Timeout
from bot.engine.nodes.base import Continue, Finish, Goto, NodeKind, Outcome, Park, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict, LocList

KEYPAD = re.compile(r"^[0-9*#]{1,10}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EXPECTS = ("text", "number", "date", "phone", "email")
# What a keypad can answer.
KEYPAD_EXPECTS = ("number", "phone")
DEFAULT_INVALID = "Sorry, I did not understand that."


@register
class Ask(NodeKind):
    """Ask, check the answer, save it, branch on it."""

    kind = "ask"
    keys = frozenset(
        {"choices", "expect", "save", "retries", "on_invalid", "on_fail", "timeout", "on_timeout", "digits"}
    )
    waits = True

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the question, its choices or expected answer, retries and timeout."""
        self.prompt = ctx.text(spec, "ask", required=True) or ""
        self.save = spec.get("save") if isinstance(spec.get("save"), str) else None
        if "save" in spec and self.save is None:
            ctx.problem(spec.value_loc("save"), "save: must be a name such as knows_booth")
        self.retries = ctx.integer(spec, "retries", 0, 10, default=2) or 0
        self.on_invalid = ctx.text(spec, "on_invalid")
        self.on_fail = ctx.ref(spec, "on_fail")
        self.timeout = ctx.duration(spec, "timeout")
        self.on_timeout = ctx.ref(spec, "on_timeout")
        self.choices: list[dict[str, Any]] = []
        self.expect: tuple[str, Any] = ("text", None)
        if "choices" in spec:
            self._choices(spec, ctx)
        if "expect" in spec:
            self._expect(spec, ctx)
        elif not self.choices:
            self.expect = ("text", None)
        if ctx.voice and not self.choices and self.expect[0] not in (*KEYPAD_EXPECTS, "pattern"):
            ctx.problem(
                spec.key_loc("ask"),
                f"ask: expects {self.expect[0]}, which a keypad cannot type; on a call ask for choices, "
                "a number, a phone or a digit pattern (or leave voice out of the flow's channels)",
            )
        self.digits = self._digits(spec, ctx)

    def _choices(self, spec: LocDict, ctx: ParseContext) -> None:
        raw = spec["choices"]
        if not isinstance(raw, LocList) or not raw:
            ctx.problem(spec.value_loc("choices"), "choices: a non-empty list of {key, words, label, next}")
            return
        seen: set[str] = set()
        for i, item in enumerate(raw):
            where = raw.item_locs[i]
            if not isinstance(item, LocDict) or "key" not in item:
                ctx.problem(where, f'choices[{i}]: needs a key such as "1"')
                continue
            key = str(item["key"]).strip()
            if key in seen:
                ctx.problem(item.value_loc("key"), f"choices[{i}].key: {key!r} is used twice")
            seen.add(key)
            if ctx.voice and not KEYPAD.match(key):
                ctx.problem(
                    item.value_loc("key"), f"choices[{i}].key: {key!r} is not keypad digits, but the flow runs on calls"
                )
            for extra in item:
                if extra not in ("key", "words", "label", "next"):
                    ctx.problem(item.key_loc(extra), f"choices[{i}]: unknown key {extra!r}")
            words = item.get("words", [])
            if not isinstance(words, list) or not all(isinstance(w, str | int) for w in words):
                ctx.problem(item.value_loc("words"), f"choices[{i}].words: a list of words")
                words = []
            label = item.get("label", key)
            self.choices.append(
                {
                    "key": key,
                    "words": [str(w).strip().casefold() for w in words],
                    "label": str(label),
                    "next": ctx.ref(item, "next"),
                }
            )

    def _expect(self, spec: LocDict, ctx: ParseContext) -> None:
        raw = spec["expect"]
        where = spec.value_loc("expect")
        if isinstance(raw, str) and raw in EXPECTS:
            self.expect = (raw, None)
        elif isinstance(raw, dict) and len(raw) == 1 and "pattern" in raw:
            at = raw.value_loc("pattern") if isinstance(raw, LocDict) else where
            try:
                # Python warns about patterns whose meaning will change ("[["): for a flow
                # author that is a problem to fix, not a warning in a log nobody reads.
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    self.expect = ("pattern", re.compile(str(raw["pattern"])))
            except (re.error, OverflowError, FutureWarning, DeprecationWarning) as exc:
                ctx.problem(at, f"expect.pattern: invalid regular expression ({exc})")
        elif isinstance(raw, dict) and len(raw) == 1 and isinstance(raw.get("number"), dict):
            bounds = raw["number"]
            low, high = bounds.get("min"), bounds.get("max")
            if any(b is not None and (isinstance(b, bool) or not isinstance(b, int | float)) for b in (low, high)):
                ctx.problem(where, "expect.number: min and max must be numbers")
            self.expect = ("number", (low, high))
        else:
            ctx.problem(where, f"expect: one of {', '.join(EXPECTS)}, {{pattern: REGEX}} or {{number: {{min, max}}}}")
        if self.choices:
            ctx.problem(where, "expect: a question has choices or an expected answer, not both")

    def _digits(self, spec: LocDict, ctx: ParseContext) -> dict[str, Any]:
        gather: dict[str, Any] = {"finish_on_key": "#", "timeout_s": 5}
        if self.choices and all(len(c["key"]) == 1 for c in self.choices):
            gather["num_digits"] = 1
        raw = spec.get("digits")
        if raw is None:
            return gather
        if not isinstance(raw, LocDict):
            ctx.problem(spec.value_loc("digits"), "digits: a mapping with max, finish_on_key, timeout")
            return gather
        if "max" in raw:
            gather["num_digits"] = ctx.integer(raw, "max", 1, 30)
        if "finish_on_key" in raw:
            key = str(raw["finish_on_key"])
            if key not in ("#", "*", ""):
                ctx.problem(raw.value_loc("finish_on_key"), "digits.finish_on_key: # or * (or empty)")
            gather["finish_on_key"] = key
        if "timeout" in raw:
            gather["timeout_s"] = ctx.duration(raw, "timeout")
        return gather

    def branches_cover(self) -> bool:
        """Every choice names where it goes."""
        return bool(self.choices) and all(c["next"] for c in self.choices)

    def exits(self) -> list[tuple[str, Any]]:
        """next, each choice's next, on_fail and on_timeout."""
        refs = [self.next, self.on_fail, self.on_timeout, *(c["next"] for c in self.choices)]
        return [r for r in refs if r]

    def enter(self, run: Run) -> Outcome:
        """Put the question and wait."""
        self._prompt(run)
        return Park({"kind": "ask", "tries": 0})

    def _prompt(self, run: Run) -> None:
        labels = run.text(self.id, "labels", {})
        choices = [
            {"key": c["key"], "label": run.render(self.id, labels.get(c["key"], c["label"]))} for c in self.choices
        ]
        run.emit(
            MessageSent(node=self.id, text=run.render(self.id, run.text(self.id, "text", self.prompt)), choices=choices)
        )
        run.emit(InputAwaited(node=self.id, timeout_s=self.timeout, digits=self.digits if run.voice else None))

    def resume(self, run: Run, received: Input, waiting: dict[str, Any]) -> Outcome:
        """Check the answer; re-ask, fail, time out or go on."""
        if isinstance(received, Timeout):
            return Goto(self.on_timeout[0]) if self.on_timeout else Finish("timed_out")
        text = (
            received.text if isinstance(received, Text) else received.digits if isinstance(received, Digits) else None
        )
        if text is None:
            run.error(self.id, f"ask cannot take {type(received).__name__} input")
            return Park({"kind": "ask", "tries": waiting.get("tries", 0)})
        value, target = self._match(text.strip(), run)
        if value is not None:
            if self.save:
                run.state["answers"][self.save] = value
                run.emit(AnswerSaved(node=self.id, name=self.save, value=value))
            return Goto(target) if target else Continue()
        tries = int(waiting.get("tries", 0)) + 1
        if tries > self.retries:
            return Goto(self.on_fail[0]) if self.on_fail else Finish("failed")
        run.emit(
            MessageSent(
                node=self.id,
                text=run.render(self.id, run.text(self.id, "on_invalid", self.on_invalid or DEFAULT_INVALID)),
            )
        )
        self._prompt(run)
        return Park({"kind": "ask", "tries": tries})

    def _match(self, text: str, run: Run) -> tuple[Any, str | None]:
        if not text:
            return None, None
        if self.choices:
            folded = text.casefold()
            translated = run.text(self.id, "labels", {})
            for choice in self.choices:
                labels = (choice["label"].casefold(), str(translated.get(choice["key"], "")).casefold())
                if folded == choice["key"].casefold() or folded in choice["words"] or folded in labels:
                    return choice["key"], choice["next"][0] if choice["next"] else None
            return None, None
        kind, arg = self.expect
        return _check(kind, arg, text, run), None


def _check(kind: str, arg: Any, text: str, run: Run) -> Any:
    if kind == "text":
        return text
    if kind == "pattern":
        return text if arg is not None and arg.fullmatch(text) else None
    if kind == "email":
        return text.lower() if EMAIL.match(text) else None
    if kind == "number":
        try:
            number = float(text.replace(",", "")) if "." in text else int(text.replace(",", ""))
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        low, high = arg or (None, None)
        if (low is not None and number < low) or (high is not None and number > high):
            return None
        return number
    if kind == "date":
        for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
            try:
                return dt.datetime.strptime(text, fmt).date().isoformat()
            except ValueError:
                continue
        return None
    if kind == "phone":
        import phonenumbers

        region = None
        phone = run.state["contact"].get("phone")
        if phone:
            try:
                region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
            except phonenumbers.NumberParseException:
                region = None
        try:
            parsed = phonenumbers.parse(text, region or "IN")
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None
