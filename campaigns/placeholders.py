"""Check and fill numbered placeholders in a template body, as in ``Hi {{1}}, booth {{2}}``.

WhatsApp templates (and so Twilio's Content API) know only numbered placeholders,
``{{1}}`` to ``{{n}}``, each with a sample value for the approval review. Canvass uses the
same form for SMS templates so that one body serves both channels.

Rules, with the reason for each:

* Numbers start at 1 and leave no gap (``{{1}} {{3}}`` is an error): WhatsApp rejects
  a gap. A number may appear more than once; the order of appearance is free.
* Exactly ``{{1}}``: no spaces inside (``{{ 1 }}``), no leading zero (``{{01}}``), no
  third brace (``{{{1}}}``). These are errors rather than silently accepted, because
  Twilio substitutes only the exact form and would send the rest to voters literally.
* ``{{name}}`` is an error that says to number it: named variables are not part of
  WhatsApp's template format.
* A placeholder at the very start or end of the body, or two with only spaces between
  them, is a *warning* (``warnings()``): Meta rejects such templates at approval, but the
  same body is fine for SMS.

Errors carry the character offset of the placeholder and name it: ``Namaste {{1}} {{3}}``
gives ``offset 14: {{3}} comes without {{2}}: number them 1, 2, 3 ... without gaps``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Mapping

# Any double-brace pair without braces inside; what is between them is judged afterwards,
# so that a mistake gets a precise message instead of being left in the text.
TOKEN = re.compile(r"\{\{([^{}]*)\}\}")
NUMBER = re.compile(r"[1-9][0-9]*")
NAME = re.compile(r"[A-Za-z_][\w.-]*")


class PlaceholderError(ValueError):
    """A placeholder is wrong at character ``position`` of the body."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"offset {position}: {message}")
        self.position = position
        self.message = message


class MissingValueError(PlaceholderError):
    """No value (or an empty one) was given for placeholder ``number``."""

    def __init__(self, position: int, number: int) -> None:
        super().__init__(position, f"no value for {{{{{number}}}}}")
        self.number = number


@dataclasses.dataclass(frozen=True)
class PlaceholderWarning:
    """Something WhatsApp's approval would refuse, at character ``position`` of the body."""

    position: int
    message: str

    def __str__(self) -> str:
        return f"offset {self.position}: {self.message}"


def placeholders(body: str) -> list[int]:
    """Return the numbers of the well-formed placeholders in ``body``, sorted and unique."""
    return sorted({number for _match, number in _numbered(body)})


def errors(body: str) -> list[PlaceholderError]:
    """Return every placeholder mistake in ``body``, in order of position."""
    found = [PlaceholderError(m.start(), _why_not(m)) for m in TOKEN.finditer(body) if _number(m) is None]
    for match in TOKEN.finditer(body):
        if body[match.start() - 1 : match.start()] == "{" or body[match.end() : match.end() + 1] == "}":
            found.append(PlaceholderError(match.start(), f"a third brace around {match.group()}: use two on each side"))
    masked = TOKEN.sub(lambda m: " " * len(m.group()), body)
    for stray in re.finditer(r"\{\{|\}\}", masked):
        what = "{{ without a closing }}" if stray.group() == "{{" else "}} without an opening {{"
        found.append(PlaceholderError(stray.start(), what))
    # A gap is reported once, at the first placeholder numbered above it.
    numbered = _numbered(body)
    seen = {number for _match, number in numbered}
    gaps: dict[int, list[int]] = {}
    for gap in sorted(set(range(1, max(seen, default=0) + 1)) - seen):
        gaps.setdefault(next(i for i, (_m, n) in enumerate(numbered) if n > gap), []).append(gap)
    for index, missing in gaps.items():
        match = numbered[index][0]
        names = ", ".join(f"{{{{{n}}}}}" for n in missing)
        message = f"{match.group()} comes without {names}: number them 1, 2, 3 ... without gaps"
        found.append(PlaceholderError(match.start(), message))
    return sorted(found, key=lambda error: error.position)


def check(body: str) -> list[int]:
    """Raise the first ``PlaceholderError`` of ``body``; return its placeholder numbers."""
    found = errors(body)
    if found:
        raise found[0]
    return placeholders(body)


def warnings(body: str) -> list[PlaceholderWarning]:
    """Return what WhatsApp's approval would refuse: placeholders at the edges or side by side."""
    numbered = _numbered(body)
    found = []
    if numbered and not body[: numbered[0][0].start()].strip():
        found.append(_edge(numbered[0][0], "starts"))
    if numbered and not body[numbered[-1][0].end() :].strip():
        found.append(_edge(numbered[-1][0], "ends"))
    for (left, _a), (right, _b) in itertools.pairwise(numbered):
        if not body[left.end() : right.start()].strip():
            found.append(
                PlaceholderWarning(
                    right.start(),
                    f"{left.group()} and {right.group()} stand side by side: WhatsApp refuses placeholders "
                    "with nothing between them; put a word between them",
                )
            )
    return sorted(found, key=lambda warning: warning.position)


def pieces(body: str) -> list[tuple[str, int | None]]:
    """Split ``body`` into text and placeholders, in order: ``(text, None)`` or ``("{{1}}", 1)``.

    Only well-formed placeholders are pieces of their own; a wrong one stays text (the
    console highlights placeholders with this, and ``errors`` says what is wrong).

    Example:
        >>> pieces("Hi {{1}}!")
        [('Hi ', None), ('{{1}}', 1), ('!', None)]
    """
    found: list[tuple[str, int | None]] = []
    at = 0
    for match, number in _numbered(body):
        if match.start() > at:
            found.append((body[at : match.start()], None))
        found.append((match.group(), number))
        at = match.end()
    if at < len(body):
        found.append((body[at:], None))
    return found


def render(body: str, values: Mapping[int | str, str]) -> str:
    """Fill the placeholders of ``body`` from ``values`` (keys ``1`` or ``"1"``).

    Raises:
        PlaceholderError: The body itself is wrong (see ``check``).
        MissingValueError: A placeholder has no value, or only an empty or blank one
            (WhatsApp refuses an empty parameter, and a blank SMS reads as a mistake).
    """
    _checked(body)

    def fill(match: re.Match[str]) -> str:
        number = int(match.group(1))
        value = values.get(number, values.get(str(number)))
        if value is None or not str(value).strip():
            raise MissingValueError(match.start(), number)
        return str(value)

    return TOKEN.sub(fill, body)


@functools.lru_cache(maxsize=64)
def _checked(body: str) -> tuple[int, ...]:
    # A batch renders one body for every voter: it is checked once (a body with an
    # error raises each time, as errors are not cached).
    return tuple(check(body))


def _numbered(body: str) -> list[tuple[re.Match[str], int]]:
    return [(m, n) for m in TOKEN.finditer(body) if (n := _number(m)) is not None]


def _number(match: re.Match[str]) -> int | None:
    inner = match.group(1)
    return int(inner) if NUMBER.fullmatch(inner) else None


def _why_not(match: re.Match[str]) -> str:
    token, inner = match.group(), match.group(1)
    bare = inner.strip()
    if not bare:
        return f"{token} is empty: put the placeholder's number inside, e.g. {{{{1}}}}"
    if bare != inner and NUMBER.fullmatch(bare):
        return f"{token} has spaces inside: write {{{{{bare}}}}}"
    if bare.isdigit() and int(bare) == 0:
        return f"{token}: placeholders are numbered from 1"
    if bare.isdigit():
        return f"{token} has a leading zero: write {{{{{int(bare)}}}}}"
    if NAME.fullmatch(bare):
        return (
            f"{token} is a named placeholder, but WhatsApp templates number them: write {{{{1}}}}, "
            f"{{{{2}}}}, ... and give {bare!r} as the sample value"
        )
    return f"{token} is not a placeholder: write a number such as {{{{1}}}}"


def _edge(match: re.Match[str], where: str) -> PlaceholderWarning:
    return PlaceholderWarning(
        match.start(),
        f"the body {where} with {match.group()}: WhatsApp refuses a template that {where} with a placeholder; "
        f"put a word {'before' if where == 'starts' else 'after'} it",
    )
