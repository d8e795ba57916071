"""The live SMS segment counter: known examples at every boundary, and properties."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns import sms_segments
from campaigns.sms_segments import GSM7_BASIC, GSM7_EXTENSION, LIMITS, SegmentCount, count, encoding, split

HINDI = "नमस्ते! आपका मतदान केंद्र वार्ड 12 में है।"
BALLOT = "\U0001f5f3"  # 🗳 ballot box: outside the BMP, a surrogate pair


def test_docstring_example() -> None:
    assert doctest.testmod(sms_segments).failed == 0
    assert count("Booth 12 opens at 7") == SegmentCount("GSM-7", 19, 1, 160, 141)


def test_empty_text_is_no_segment() -> None:
    assert count("") == SegmentCount("GSM-7", 0, 0, 160, 160)
    assert split("") == []


def test_gsm7_alphabet_is_complete() -> None:
    # 128 positions in GSM 03.38, one of which is the escape to the extension table.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("char", "length", "segments", "per_segment", "remaining"),
    [
        ("a", 1, 1, 160, 159),
        ("a", 159, 1, 160, 1),
        ("a", 160, 1, 160, 0),
        ("a", 161, 2, 153, 145),
        ("a", 306, 2, 153, 0),
        ("a", 307, 3, 153, 152),
        ("a", 459, 3, 153, 0),
        ("a", 460, 4, 153, 152),
        ("क", 70, 1, 70, 0),
        ("क", 71, 2, 67, 63),
        ("क", 134, 2, 67, 0),
        ("क", 135, 3, 67, 66),
    ],
)
def test_boundaries(char: str, length: int, segments: int, per_segment: int, remaining: int) -> None:
    chosen = "GSM-7" if char == "a" else "UCS-2"
    assert count(char * length) == SegmentCount(chosen, length, segments, per_segment, remaining)


def test_hindi_text_is_ucs2() -> None:
    result = count(HINDI)
    assert (result.encoding, result.units, result.segments) == ("UCS-2", len(HINDI), 1)


def test_one_accent_outside_gsm7_makes_the_whole_message_ucs2() -> None:
    assert encoding("Caf\u00e9") == "GSM-7"  # é is in the GSM-7 alphabet
    assert encoding("Fran\u00e7ais") == "UCS-2"  # ç (lower case) is not, only Ç is
    assert count("a" * 100 + "\u00e7").segments == 2  # 101 UCS-2 units
    assert encoding("\u201cquoted\u201d") == "UCS-2"  # curly quotes are not GSM-7


def test_emoji_counts_two_code_units() -> None:
    assert count(BALLOT) == SegmentCount("UCS-2", 2, 1, 70, 68)
    assert count(BALLOT * 35).segments == 1  # 70 units
    assert count(BALLOT * 35 + "a").segments == 2


def test_extension_characters_take_two_septets() -> None:
    for ch in "^{}\\[~]|€\f":
        assert count(ch) == SegmentCount("GSM-7", 2, 1, 160, 158), repr(ch)
    assert count("€" * 80).segments == 1  # 160 septets
    assert count("€" * 80 + "a").segments == 2


def test_an_escape_pair_is_not_split_across_parts() -> None:
    # 152 septets, then "€" (2): it does not fit in the 153 of part one, so moves whole.
    text = "a" * 152 + "€" + "a" * 152
    assert count(text).units == 306  # a plain division would say 2 segments
    assert count(text) == SegmentCount("GSM-7", 306, 3, 153, 152)
    first, second, third = split(text)
    assert (first, second, third) == ("a" * 152, "€" + "a" * 151, "a")


def test_an_escape_pair_that_fits_exactly_stays() -> None:
    text = "a" * 151 + "€" + "a" * 153
    assert split(text) == ["a" * 151 + "€", "a" * 153]
    assert count(text).segments == 2


def test_a_surrogate_pair_is_not_split_across_parts() -> None:
    text = "क" * 66 + BALLOT + "क" * 66
    assert count(text) == SegmentCount("UCS-2", 134, 3, 67, 66)
    assert split(text) == ["क" * 66, BALLOT + "क" * 65, "क"]


def test_an_escape_is_not_a_character_to_type() -> None:
    assert encoding("\x1b") == "UCS-2"


# --- Properties ---------------------------------------------------------------------------

ALPHABET = st.sampled_from([*sorted(GSM7_BASIC | GSM7_EXTENSION), "क", "ç", BALLOT, "\u200d", "🙏"])
TEXTS = st.text(alphabet=ALPHABET, max_size=500) | st.text(max_size=300)


def _units(part: str, chosen: str) -> int:
    if chosen == "GSM-7":
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in part)
    return len(part.encode("utf-16-le", "surrogatepass")) // 2


@given(TEXTS, ALPHABET | st.characters())
def test_appending_never_reduces_segments(text: str, ch: str) -> None:
    assert count(text + ch).segments >= count(text).segments


@given(TEXTS)
def test_parts_respect_the_limit_and_rebuild_the_text(text: str) -> None:
    result = count(text)
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) == result.segments
    assert all(0 < _units(part, result.encoding) <= result.per_segment for part in parts)
    assert result.units == sum(_units(part, result.encoding) for part in parts)
    assert 0 <= result.remaining <= result.per_segment
    if parts:
        assert result.remaining == result.per_segment - _units(parts[-1], result.encoding)
    single, per_part = LIMITS[result.encoding]
    assert result.per_segment == (single if result.segments <= 1 else per_part)
