"""set: change session variables, contact fields, the language and tags.

Example::

    nodes:
      remember:
        set:
          vars: {booth: "12", ward: "12"}
          fields: {booth: "{{ vars.booth }}"}
          language: hi
          tags: {add: [volunteer, "ward={{ vars.ward }}"], remove: [youth]}
        next: thanks

Text values are templates (``age: "{{ answers.age }}"``); numbers and true/false are
kept as they are. Each part is applied in order: vars, fields, language, tags. A tag is a
plain name (``volunteer``) or ``name=value`` (``ward=12``), read as ``contact.tags.ward``;
adding a plain tag the contact already has keeps its value.
"""

from __future__ import annotations

import re
from typing import Any

from bot.engine import templates
from bot.engine.events import ContactChanged
from bot.engine.nodes.base import Continue, NodeKind, Outcome, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict, LocList

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
TAG_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
PARTS = ("vars", "fields", "language", "tags")


@register
class Set(NodeKind):
    """Set variables and contact details, then go on."""

    kind = "set"

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read vars, fields, language and tags; at least one is needed."""
        raw = spec["set"]
        self.vars: dict[str, Any] = {}
        self.fields: dict[str, Any] = {}
        self.language: str | None = None
        self.add: list[tuple[str, str | None]] = []
        self.remove: list[str] = []
        if not isinstance(raw, LocDict) or not raw:
            ctx.problem(spec.value_loc("set"), f"set: a mapping with one or more of {', '.join(PARTS)}")
            return
        for key in raw:
            if key not in PARTS:
                ctx.problem(raw.key_loc(key), f"set: unknown key {key!r}; it takes {', '.join(PARTS)}")
        self.vars = self._values(raw, "vars", ctx)
        self.fields = self._values(raw, "fields", ctx)
        self.language = ctx.text(raw, "language")
        if self.language is not None and "{" not in self.language and not LANGUAGE.match(self.language):
            ctx.problem(raw.value_loc("language"), f"set.language: a code such as en or hi, got {self.language!r}")
        if "tags" in raw:
            self._tags(raw, ctx)

    def _values(self, raw: LocDict, part: str, ctx: ParseContext) -> dict[str, Any]:
        values = raw.get(part)
        if part not in raw:
            return {}
        if not isinstance(values, LocDict) or not values:
            ctx.problem(raw.value_loc(part), f"set.{part}: a mapping of names to values")
            return {}
        for name, value in values.items():
            if not isinstance(name, str) or not NAME.match(name):
                ctx.problem(values.key_loc(name), f"set.{part}: {name!r} is not a name (letters, digits, '_')")
            elif isinstance(value, str):
                problem = templates.check(value)
                if problem:
                    ctx.problem(values.value_loc(name), f"set.{part}.{name}: {problem}")
            elif not isinstance(value, int | float | bool):
                ctx.problem(values.value_loc(name), f"set.{part}.{name}: must be text, a number or true/false")
        return dict(values)

    def _tags(self, raw: LocDict, ctx: ParseContext) -> None:
        tags = raw["tags"]
        if not isinstance(tags, LocDict) or not tags or any(k not in ("add", "remove") for k in tags):
            ctx.problem(raw.value_loc("tags"), "set.tags: {add: [tag, name=value], remove: [tag]}")
            return
        for part in ("add", "remove"):
            items = tags.get(part, [])
            if not isinstance(items, LocList) and part in tags:
                ctx.problem(tags.value_loc(part), f"set.tags.{part}: a list of tags")
                continue
            for i, item in enumerate(items):
                name, sep, value = str(item).partition("=")
                name = name.strip()
                if isinstance(item, bool) or not isinstance(item, str | int) or not TAG_NAME.match(name):
                    ctx.problem(items.item_locs[i], f"set.tags.{part}: {item!r} is not a tag (lower-case name)")
                elif part == "remove" and sep:
                    ctx.problem(items.item_locs[i], f"set.tags.remove: {item!r}: remove tags by name, without =value")
                elif sep and (not value.strip() or templates.check(value)):
                    ctx.problem(items.item_locs[i], f"set.tags.add: {item!r}: {templates.check(value) or 'no value'}")
                elif part == "add":
                    self.add.append((name, value.strip() if sep else None))
                else:
                    self.remove.append(name)
        for name in {n for n, _ in self.add} & set(self.remove):
            ctx.problem(raw.value_loc("tags"), f"set.tags: {name!r} is both added and removed")

    def _render(self, run: Run, value: Any) -> Any:
        return run.render(self.id, value) if isinstance(value, str) else value

    def enter(self, run: Run) -> Outcome:
        """Apply every change to the session and emit it for the host."""
        contact = run.state["contact"]
        for name, value in self.vars.items():
            run.set_var(name, self._render(run, value))
        for name, value in self.fields.items():
            contact["fields"][name] = rendered = self._render(run, value)
            run.emit(ContactChanged(field=f"fields.{name}", value=rendered))
        if self.language is not None:
            language = run.render(self.id, self.language).strip()
            if LANGUAGE.match(language):
                run.state["language"] = contact["language"] = language
                run.emit(ContactChanged(field="language", value=language))
            else:
                run.error(self.id, f"set.language: {language!r} is not a language code; the language is unchanged")
        added = []
        for name, value in self.add:
            rendered = run.render(self.id, value).strip() if value is not None else None
            if rendered == "":
                run.error(self.id, f"set.tags.add: tag {name!r} has an empty value; it is not added")
            elif rendered is not None or name not in contact["tags"]:
                contact["tags"][name] = rendered
                added.append(name if rendered is None else f"{name}={rendered}")
            else:
                added.append(name)
        for name in self.remove:
            contact["tags"].pop(name, None)
        if added or self.remove:
            run.emit(ContactChanged(tags_added=added, tags_removed=list(self.remove)))
        return Continue()
