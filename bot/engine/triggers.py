"""A flow's triggers: what starts it when no conversation is going on.

    triggers:
      keywords: [booth, matdan]              # on every messaging channel
      # or per channel: keywords: {whatsapp: [booth], sms: [BOOTH, MATDAN]}
      numbers: ["+911123456789"]             # messages or calls to this number
      default: true                          # the catch-all flow

Keywords are matched case-insensitively against the first word of a message.
"""

from __future__ import annotations

import re
from typing import Any

from bot.engine.errors import Loc, Problem
from bot.engine.yamlsafe import LocDict, LocList

MESSAGING = ("whatsapp", "sms")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
KEYWORD = re.compile(r"^\S{1,30}$")


def parse_triggers(data: LocDict, path: str, problems: list[Problem]) -> dict[str, Any]:
    """Normalise the ``triggers`` block: {keywords: {channel: [words]}, numbers: [...], default: bool}."""
    result: dict[str, Any] = {"keywords": {}, "numbers": [], "default": False}
    if "triggers" not in data:
        return result
    raw = data["triggers"]

    def problem(loc: Loc, message: str) -> None:
        problems.append(Problem(path, loc, f"triggers: {message}"))

    if not isinstance(raw, LocDict):
        problem(data.value_loc("triggers"), "a mapping with keywords, numbers and default")
        return result
    for key in raw:
        if key not in ("keywords", "numbers", "default"):
            problem(raw.key_loc(key), f"unknown key {key!r}; use keywords, numbers or default")
    keywords = raw.get("keywords")
    if isinstance(keywords, LocList):
        words = _words(keywords, problem)
        result["keywords"] = dict.fromkeys(MESSAGING, words)
    elif isinstance(keywords, LocDict):
        for channel, listed in keywords.items():
            if channel not in MESSAGING:
                problem(
                    keywords.key_loc(channel),
                    f"keywords: {channel!r} is not a messaging channel ({', '.join(MESSAGING)})",
                )
            elif not isinstance(listed, LocList):
                problem(keywords.value_loc(channel), f"keywords.{channel}: a list of words")
            else:
                result["keywords"][channel] = _words(listed, problem)
    elif keywords is not None:
        problem(raw.value_loc("keywords"), "keywords: a list of words, or a mapping of channel to words")
    numbers = raw.get("numbers")
    if numbers is not None:
        if not isinstance(numbers, LocList):
            problem(raw.value_loc("numbers"), "numbers: a list of numbers such as +911123456789")
        else:
            for i, number in enumerate(numbers):
                if not isinstance(number, str) or not E164.match(number):
                    problem(numbers.item_locs[i], f"numbers: {number!r} is not an E.164 number such as +911123456789")
                else:
                    result["numbers"].append(number)
    default = raw.get("default", False)
    if not isinstance(default, bool):
        problem(raw.value_loc("default"), "default: true or false")
    else:
        result["default"] = default
    return result


def _words(listed: LocList, problem: Any) -> list[str]:
    words = []
    for i, word in enumerate(listed):
        if not isinstance(word, str | int) or isinstance(word, bool) or not KEYWORD.match(str(word)):
            problem(listed.item_locs[i], f"keywords: {word!r} must be one word of up to 30 characters")
        else:
            words.append(str(word).casefold())
    return words
