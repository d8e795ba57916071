"""Translations: the voter-facing texts of a flow in other languages.

    language: en
    translations:
      hi:
        welcome: "नमस्ते {{ contact.name }}! मतदान 20 नवंबर को है।"
        knows:
          text: "क्या आप अपना मतदान केंद्र जानते हैं? हाँ के लिए 1, नहीं के लिए 2।"
          on_invalid: "कृपया 1 या 2 भेजें।"
          labels: {"1": "हाँ", "2": "नहीं"}

A node's entry is its main text (``say``, the question of ``ask``, the prompt of
``record``), or a mapping with ``text``, ``on_invalid`` and ``labels`` (choice key ->
label). The session's language (the contact's, or set by a ``set`` node) picks the
translation; anything not translated falls back to the flow's own text.
"""

from __future__ import annotations

import re
from typing import Any

from bot.engine import templates
from bot.engine.errors import Loc, Problem
from bot.engine.yamlsafe import LocDict

LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
FIELDS = ("text", "on_invalid", "labels")
# Node id -> field -> text (labels: key -> text).
Table = dict[str, dict[str, Any]]


def parse_translations(data: LocDict, nodes: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Table]:
    """Check and normalise the ``translations`` block."""
    if "translations" not in data:
        return {}
    raw = data["translations"]

    def problem(loc: Loc, message: str) -> None:
        problems.append(Problem(path, loc, f"translations: {message}"))

    if not isinstance(raw, LocDict):
        problem(data.value_loc("translations"), "a mapping of language code to texts")
        return {}
    result: dict[str, Table] = {}
    for language, table in raw.items():
        if not isinstance(language, str) or not LANGUAGE.match(language):
            problem(raw.key_loc(language), f"{language!r} is not a language code such as hi or mr")
            continue
        if not isinstance(table, LocDict):
            problem(raw.value_loc(language), f"{language}: a mapping of node names to texts")
            continue
        result[language] = {}
        for node_id, entry in table.items():
            where = f"{language}.{node_id}"
            if node_id not in nodes:
                problem(table.key_loc(node_id), f"{where}: there is no node {node_id!r}")
                continue
            fields = {"text": entry} if isinstance(entry, str) else entry
            if not isinstance(fields, LocDict) and not isinstance(entry, str):
                problem(table.value_loc(node_id), f"{where}: a text, or a mapping with text, on_invalid, labels")
                continue
            checked: dict[str, Any] = {}
            for field, value in fields.items():
                loc = fields.value_loc(field) if isinstance(fields, LocDict) else table.value_loc(node_id)
                if field not in FIELDS:
                    problem(loc, f"{where}: unknown field {field!r}; use {', '.join(FIELDS)}")
                elif field == "labels":
                    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                        problem(loc, f"{where}.labels: a mapping of choice key to label")
                        continue
                    checked["labels"] = {str(k): v for k, v in value.items()}
                elif not isinstance(value, str):
                    problem(loc, f"{where}.{field}: must be text")
                else:
                    issue = templates.check(value)
                    if issue:
                        problem(loc, f"{where}.{field}: {issue}")
                    checked[field] = value
            result[language][node_id] = checked
    return result


def pick(translations: dict[str, Table], language: str | None, node: str, field: str, default: Any) -> Any:
    """The translated text for the language (or its base: ``hi`` for ``hi-IN``), else ``default``."""
    if not language:
        return default
    for code in (language, language.split("-")[0]):
        entry = translations.get(code, {}).get(node)
        if entry and field in entry:
            return entry[field]
    return default
