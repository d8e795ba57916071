"""The segment builder's form: rows of conditions in groups, to and from a segment spec.

The builder (``console/_segment_builder.html`` + ``segment_builder.js``) posts plain,
aligned lists — one entry per row in ``row_group``, ``row_kind``, ``row_not``,
``row_name``, ``row_op``, ``row_value``, ``row_consent``; one per group in
``group_mode``; and ``match`` for how the groups combine. ``builder_from_form`` reads
them and ``Builder.spec`` turns them into the JSON ``bot.segments`` compiles, so the
page without JavaScript, the live count and the campaign wizard share one reading.
A spec the rows cannot show (deeper nesting, other operators) is edited as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import MultiDict

from bot.models import ConsentStatus
from bot.segments import SegmentError, check

KINDS = {
    "tag": "has tag",
    "valued": "valued tag",
    "field": "field",
    "consent": "consent is",
    "opted_out": "opted out",
}
MODES = {"all": "all of", "any": "any of", "none": "none of"}
OPS = {"eq": "=", "in": "is one of", "exists": "is set"}
FIELDS = ("language", "name", "timezone", "phone_kind", "phone")
MAX_ROWS = 60
# What the builder's partial template needs to draw its selects (the campaign wizard
# passes it too): ``{% from "console/_segment_builder.html" import segment_builder %}``.
VOCAB = {
    "kinds": KINDS,
    "modes": MODES,
    "ops": OPS,
    "fields": FIELDS,
    "statuses": [s.value for s in ConsentStatus],
}


def split_values(text: str) -> list[str]:
    """``12, 13`` as ``["12", "13"]`` (empty entries dropped)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def matching(text: str) -> dict[str, Any]:
    """The operator for a typed value: ``{"eq": "12"}``, ``{"in": [...]}`` for ``12, 13``, else is set."""
    values = split_values(text)
    if not values:
        return {"exists": True}
    return {"eq": values[0]} if len(values) == 1 else {"in": values}


class NotRepresentable(ValueError):
    """The spec has a shape the rows cannot show; it is edited as JSON."""


@dataclasses.dataclass
class Row:
    """One condition: ``[not] kind name op value``."""

    kind: str = "tag"
    name: str = ""
    op: str = "eq"
    value: str = ""
    negate: bool = False

    def blank(self) -> bool:
        """An untouched row (the empty one offered at the end of a group) is skipped."""
        return self.kind in ("tag", "valued", "field") and not self.name.strip() and not self.value.strip()

    def spec(self, where: str) -> dict[str, Any]:
        """The row's condition; a missing part raises ``SegmentError`` naming the row."""
        name, value = self.name.strip(), self.value.strip()
        if self.kind not in KINDS:
            raise SegmentError(where, f"unknown kind {self.kind!r}; use {', '.join(KINDS)}")
        cond: dict[str, Any]
        if self.kind == "opted_out":
            cond = {"consent": ConsentStatus.OPTED_OUT.value}
        elif self.kind == "consent":
            cond = {"consent": value}
        elif not name:
            raise SegmentError(where, f"{'a tag' if self.kind != 'field' else 'a field'} name is required")
        elif self.kind == "tag":
            cond = {"tag": name}
        else:
            key = "tag" if self.kind == "valued" else "field"
            if self.op == "exists":
                cond = {key: name, "exists": True} if key == "field" else {key: name}
            elif self.op == "in":
                if not split_values(value):
                    raise SegmentError(where, "values: one or more, separated by commas, are required")
                cond = {key: name, "in": split_values(value)}
            elif self.op == "eq":
                if not value:
                    raise SegmentError(where, "value: required")
                cond = {key: name, "eq": value}
            else:
                raise SegmentError(where, f"unknown operator {self.op!r}; use {', '.join(OPS)}")
        try:
            check(cond)
        except SegmentError as exc:
            raise SegmentError(where, str(exc)) from None
        return {"not": cond} if self.negate else cond


@dataclasses.dataclass
class Group:
    """Rows combined by ``mode``: all of them, any of them, or none of them."""

    mode: str = "all"
    rows: list[Row] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Builder:
    """What the builder shows: groups combined by ``match`` (or a spec edited as JSON)."""

    match: str = "all"
    groups: list[Group] = dataclasses.field(default_factory=lambda: [Group()])
    json_text: str | None = None
    # Rows past MAX_ROWS that the form sent: refused rather than quietly dropped.
    extra_rows: int = 0

    def spec(self) -> dict[str, Any]:
        """The segment spec; raises ``SegmentError`` whose path names the group and row."""
        if self.extra_rows:
            raise SegmentError("rows", f"at most {MAX_ROWS} conditions, got {MAX_ROWS + self.extra_rows}")
        if self.json_text is not None:
            try:
                spec = json.loads(self.json_text or "{}")
            except ValueError as exc:
                raise SegmentError("json", f"not valid JSON ({exc})") from None
            check(spec)
            return spec  # type: ignore[no-any-return]
        if self.match not in ("all", "any"):
            raise SegmentError("match", f"must be all or any, got {self.match!r}")
        parts = []
        for g, group in enumerate(self.groups, start=1):
            if group.mode not in MODES:
                raise SegmentError(f"group {g}", f"must be {', '.join(MODES)}, got {group.mode!r}")
            rows = [row.spec(f"group {g}, row {r}") for r, row in enumerate(group.rows, start=1) if not row.blank()]
            if not rows:
                continue
            joined = rows[0] if len(rows) == 1 else {"any" if group.mode == "any" else "all": rows}
            if group.mode == "none":
                joined = {"not": {"any": rows} if len(rows) > 1 else rows[0]}
            parts.append(joined)
        if not parts:
            return {}
        return parts[0] if len(parts) == 1 else {self.match: parts}

    def with_blank_rows(self) -> Builder:
        """Each group ends with an empty row (the page without JavaScript adds rows so)."""
        for group in self.groups:
            if not group.rows or not group.rows[-1].blank():
                group.rows.append(Row())
        return self


def builder_from_form(form: Mapping[str, Any]) -> Builder:
    """Read the builder's fields from a form or query string (see the module docstring)."""
    args = form if isinstance(form, MultiDict) else MultiDict(form)
    if args.get("mode") == "json":
        return Builder(json_text=args.get("spec_json", ""))
    modes = args.getlist("group_mode") or ["all"]
    groups = [Group(mode=m) for m in modes]
    columns = [args.getlist(k) for k in ("row_group", "row_kind", "row_not", "row_name", "row_op", "row_value")]
    consents = args.getlist("row_consent")
    rows = list(zip(*columns, strict=False))
    for i, (group, kind, negate, name, op, value) in enumerate(rows[:MAX_ROWS]):
        index = int(group) if group.isdigit() and int(group) < len(groups) else len(groups) - 1
        if kind == "consent" and i < len(consents):
            value = consents[i]
        groups[index].rows.append(Row(kind, name, op or "eq", value, negate == "not"))
    if args.get("action") == "add_group":
        groups.append(Group())
    return Builder(match=args.get("match", "all"), groups=groups, extra_rows=max(len(rows) - MAX_ROWS, 0))


def builder_from_spec(spec: Any) -> Builder:
    """The rows that show ``spec``; a shape they cannot show is kept as JSON text."""
    try:
        return _groups(spec or {})
    except NotRepresentable:
        return Builder(json_text=json.dumps(spec, indent=2, ensure_ascii=False))


def _groups(spec: Mapping[str, Any]) -> Builder:
    if not spec:
        return Builder()
    for match in ("all", "any"):
        if set(spec) == {match} and isinstance(spec[match], list):
            items = spec[match]
            try:
                return Builder(groups=[Group(match, [_row(i) for i in items])])
            except NotRepresentable:
                return Builder(match=match, groups=[_group(i) for i in items])
    return Builder(groups=[_group(spec)])


def _group(spec: Any) -> Group:
    if isinstance(spec, Mapping) and set(spec) == {"not"} and isinstance(spec["not"], Mapping):
        inner = spec["not"]
        if set(inner) == {"any"} and isinstance(inner["any"], list):
            return Group("none", [_row(i) for i in inner["any"]])
    if isinstance(spec, Mapping):
        for mode in ("all", "any"):
            if set(spec) == {mode} and isinstance(spec[mode], list):
                return Group(mode, [_row(i) for i in spec[mode]])
    return Group("all", [_row(spec)])


def _row(spec: Any) -> Row:
    if not isinstance(spec, Mapping):
        raise NotRepresentable(repr(spec))
    if set(spec) == {"not"}:
        row = _row(spec["not"])
        if row.negate:
            raise NotRepresentable("not not")
        return dataclasses.replace(row, negate=True)
    keys = set(spec)
    if keys == {"consent"} and isinstance(spec["consent"], str):
        if spec["consent"] == ConsentStatus.OPTED_OUT.value:
            return Row("opted_out")
        return Row("consent", value=spec["consent"])
    for key, kind in (("tag", "valued"), ("field", "field")):
        if key not in keys or not isinstance(spec[key], str):
            continue
        ops = keys - {key}
        if not ops and key == "tag":
            return Row("tag", spec[key])
        if ops == {"eq"} and isinstance(spec["eq"], str | int | float):
            return Row(kind, spec[key], "eq", str(spec["eq"]))
        if ops == {"in"} and isinstance(spec["in"], list) and all("," not in str(v) for v in spec["in"]):
            return Row(kind, spec[key], "in", ", ".join(str(v) for v in spec["in"]))
        if key == "field" and (not ops or (ops == {"exists"} and spec["exists"] is True)):
            return Row("field", spec[key], "exists")
    raise NotRepresentable(repr(spec))


def describe(spec: Any) -> str:
    """A segment in words: ``ward = 3 and not youth``; everyone for an empty one."""
    if not spec:
        return "every contact"
    return _words(spec, top=True)


def _words(spec: Any, top: bool = False) -> str:
    if not isinstance(spec, Mapping):
        return str(spec)
    for key, joiner in (("all", " and "), ("any", " or ")):
        if key in spec and isinstance(spec[key], list):
            text = joiner.join(_words(item) for item in spec[key])
            return text if top or len(spec[key]) == 1 else f"({text})"
    if "not" in spec:
        return f"not {_words(spec['not'])}"
    if "segment" in spec:
        return f"segment “{spec['segment']}”"
    if "consent" in spec:
        value = spec["consent"]
        return f"consent {' or '.join(value) if isinstance(value, list) else value}".replace("_", " ")
    for key in ("active_within_days", "inactive_for_days"):
        if key in spec:
            return f"{key.replace('_', ' ')} {spec[key]}"
    subject = spec.get("tag", spec.get("field", "?"))
    prefix = "" if "tag" in spec else "field "
    symbols = {"eq": "=", "ne": "≠", "prefix": "starts with", "in": "in", "not_in": "not in"}
    for op, symbol in symbols.items():
        if op in spec:
            value = spec[op]
            shown = f"({', '.join(map(str, value))})" if isinstance(value, list) else str(value)
            return f"{prefix}{subject} {symbol} {shown}"
    return f"{prefix}{subject}" + (" is set" if "field" in spec else "")
