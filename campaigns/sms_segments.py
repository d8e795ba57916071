r"""Count the SMS segments a text costs, as the console's live counter shows while typing.

A text that uses only the GSM 03.38 alphabet is sent as GSM-7: 160 septets in a single
SMS, or 153 per part once it is split (each part gives 7 septets to the header that
stitches the parts together). The characters of the extension table (``^ { } \ [ ~ ] |
€`` and form feed) take two septets: an escape and the character. Any other character
(Devanagari, emoji, ``ç``, curly quotes, ...) turns the whole text into UCS-2: 70 UTF-16
code units single, 67 per part; a character outside the Basic Multilingual Plane (most
emoji) takes two code units, a surrogate pair.

Phones cannot join an escape pair or a surrogate pair that was cut between two parts, so
senders move such a pair whole into the next part; the counter does the same, which is
why ``count()`` packs characters into parts one by one rather than dividing the total.

Example:
    >>> count("Booth 12 opens at 7")
    SegmentCount(encoding='GSM-7', units=19, segments=1, per_segment=160, remaining=141)
"""

from __future__ import annotations

import dataclasses

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The GSM 03.38 basic character set (the escape 0x1B itself is not a character to type).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

# (limit of a single message, limit of each part of a split one), in units.
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclasses.dataclass(frozen=True)
class SegmentCount:
    """What a text costs as SMS.

    Attributes:
        encoding: ``"GSM-7"`` or ``"UCS-2"``.
        units: Septets (GSM-7) or UTF-16 code units (UCS-2) the text uses.
        segments: How many SMS are billed; 0 for an empty text.
        per_segment: The limit that applies: 160 / 70 for a single SMS, 153 / 67 per part.
        remaining: Units still free in the current (last) segment before another begins.
    """

    encoding: str
    units: int
    segments: int
    per_segment: int
    remaining: int


def encoding(text: str) -> str:
    """Return ``"GSM-7"`` when every character of ``text`` is in GSM-7, else ``"UCS-2"``."""
    return GSM7 if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text) else UCS2


def count(text: str) -> SegmentCount:
    """Count the encoding, units and segments of ``text`` (see the module docstring)."""
    chosen = encoding(text)
    widths = [_width(ch, chosen) for ch in text]
    units = sum(widths)
    single, per_part = LIMITS[chosen]
    if units <= single:
        return SegmentCount(chosen, units, 1 if units else 0, single, single - units)
    parts = _pack(widths, per_part)
    return SegmentCount(chosen, units, len(parts), per_part, per_part - parts[-1][2])


def segments(text: str) -> int:
    """How many SMS ``text`` is billed as: ``count(text).segments``, quicker for plain GSM-7 text.

    Text of the basic GSM-7 set alone has no escape pairs to keep whole, nor UCS-2 text
    without emoji (characters beyond the Basic Multilingual Plane) surrogate pairs: their
    parts are a plain division (a batch job counts every voter's rendered text with this).
    """
    n = len(text)
    if GSM7_BASIC.issuperset(text):
        return 0 if not n else 1 if n <= LIMITS[GSM7][0] else -(-n // LIMITS[GSM7][1])
    if not GSM7_ALL.issuperset(text) and max(text) <= "\uffff":
        # UCS-2 of the Basic Multilingual Plane alone: one unit a character, no pair to keep whole.
        return 1 if n <= LIMITS[UCS2][0] else -(-n // LIMITS[UCS2][1])
    return count(text).segments


def split(text: str) -> list[str]:
    """Split ``text`` into the parts a sender would send (``[]`` for an empty text)."""
    chosen = encoding(text)
    widths = [_width(ch, chosen) for ch in text]
    single, per_part = LIMITS[chosen]
    if sum(widths) <= single:
        return [text] if text else []
    return [text[start:end] for start, end, _used in _pack(widths, per_part)]


def _width(ch: str, chosen: str) -> int:
    if chosen == GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _pack(widths: list[int], limit: int) -> list[tuple[int, int, int]]:
    """Fill parts of ``limit`` units in order, never splitting one character's units.

    Returns each part as (first character, end, units used).
    """
    parts: list[tuple[int, int, int]] = []
    start = used = 0
    for index, width in enumerate(widths):
        if used + width > limit:
            parts.append((start, index, used))
            start, used = index, 0
        used += width
    parts.append((start, len(widths), used))
    return parts
