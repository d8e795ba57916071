"""Numbered placeholders ({{1}}); a stand-in until the full checker lands."""

import re
from collections.abc import Mapping
from typing import Any

_P = re.compile(r"\{\{\s*(\d+)\s*\}\}")


class PlaceholderError(ValueError):
    """A placeholder is wrong at ``position``."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position


def placeholders(body: str) -> list[int]:
    """The placeholder numbers used, sorted."""
    return sorted({int(m) for m in _P.findall(body)})


def check(body: str) -> None:
    """Raise when the numbers have gaps."""
    found = placeholders(body)
    if found and found != list(range(1, len(found) + 1)):
        raise PlaceholderError(0, "placeholders must be numbered 1..n without gaps")


def render(body: str, values: Mapping[Any, str]) -> str:
    """Fill the placeholders."""
    return _P.sub(lambda m: str(values[m.group(1)] if m.group(1) in values else values[int(m.group(1))]), body)
