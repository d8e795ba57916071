"""Numbered placeholders: finding, checking (errors with offsets), warnings and rendering."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns import placeholders as module
from campaigns.placeholders import (
    MissingValueError,
    PlaceholderError,
    PlaceholderWarning,
    check,
    errors,
    pieces,
    placeholders,
    render,
    warnings,
)

BODY = "Namaste {{1}}, your booth is {{2}}. See you there, {{1}}!"


def test_placeholders_are_sorted_and_unique() -> None:
    assert placeholders(BODY) == [1, 2]
    assert placeholders("Booth {{2}} for {{1}}, ward {{3}}.") == [1, 2, 3]
    assert placeholders("No placeholder here") == []
    assert placeholders("") == []


def test_a_valid_body_passes() -> None:
    assert check(BODY) == [1, 2]
    assert errors(BODY) == []
    assert warnings(BODY) == []
    assert check("Plain text with {single} braces and emoji 🗳") == []


@pytest.mark.parametrize(
    ("body", "position", "words"),
    [
        ("Hi {{1}} and {{3}}.", 13, ["{{3}} comes without {{2}}", "without gaps"]),
        ("Hi {{2}}.", 3, ["{{2}}", "without {{1}}"]),
        ("Hi {{0}}.", 3, ["{{0}}", "numbered from 1"]),
        ("Hi {{ 1 }}.", 3, ["{{ 1 }}", "spaces", "write {{1}}"]),
        ("Hi {{01}}.", 3, ["{{01}}", "leading zero", "write {{1}}"]),
        ("Hi {{name}}.", 3, ["{{name}}", "named placeholder", "{{1}}", "'name'", "sample value"]),
        ("Hi {{voter.name}}.", 3, ["{{voter.name}}", "named placeholder"]),
        ("Hi {{}}.", 3, ["{{}}", "empty"]),
        ("Hi {{1 2}}.", 3, ["{{1 2}}", "not a placeholder"]),
        ("Hi {{-1}}.", 3, ["{{-1}}", "not a placeholder"]),
        ("Hi {{1.", 3, ["{{", "without a closing }}"]),
        ("Hi 1}} there.", 4, ["}}", "without an opening {{"]),
        ("Hi {{{1}}}.", 4, ["third brace", "{{1}}"]),
        ("Hi {{1}}}.", 3, ["third brace"]),
    ],
)
def test_mistakes_name_the_placeholder_and_its_offset(body: str, position: int, words: list[str]) -> None:
    with pytest.raises(PlaceholderError) as caught:
        check(body)
    error = caught.value
    assert error.position == position, error
    assert str(error).startswith(f"offset {position}: ")
    for word in words:
        assert word in error.message, (word, error.message)


def test_every_mistake_is_listed_in_order() -> None:
    found = errors("{{name}} lives at {{ 2 }}, ward {{4}}")
    assert [e.position for e in found] == [0, 18, 32]
    assert "{{4}} comes without {{1}}, {{2}}, {{3}}:" in found[2].message


def test_a_gap_is_reported_at_the_first_placeholder_after_it() -> None:
    (error,) = errors("A {{1}} B {{3}} C {{3}} D")
    assert error.position == 10


def test_repeats_and_any_order_are_fine() -> None:
    assert check("{{2}} or {{1}}? {{2}}!") == [1, 2]


@pytest.mark.parametrize(
    ("body", "positions", "words"),
    [
        ("{{1}}, your booth is ready.", [0], ["starts with {{1}}"]),
        ("  {{1}}, your booth is ready.", [2], ["starts with {{1}}"]),
        ("Your booth is {{1}}", [14], ["ends with {{1}}"]),
        ("Your booth is {{1}} \n", [14], ["ends with {{1}}"]),
        ("Hi {{1}} {{2}}, welcome.", [9], ["{{1}} and {{2}}", "side by side"]),
        ("Hi {{1}}{{2}}, welcome.", [8], ["side by side"]),
        ("{{1}}", [0, 0], ["starts", "ends"]),
    ],
)
def test_whatsapp_warnings(body: str, positions: list[int], words: list[str]) -> None:
    found = warnings(body)
    assert [w.position for w in found] == positions
    text = " ".join(str(w) for w in found)
    for word in words:
        assert word in text
    assert all(isinstance(w, PlaceholderWarning) for w in found)
    check(body)  # a warning is not an error: SMS accepts these bodies


def test_no_warning_when_a_word_surrounds_them() -> None:
    assert warnings("Hi {{1}}.") == []
    assert warnings("Hi {{1}} and {{2}} today") == []


def test_render_fills_int_and_str_keys() -> None:
    assert render(BODY, {1: "Asha", "2": "Ward 12 school"}) == (
        "Namaste Asha, your booth is Ward 12 school. See you there, Asha!"
    )
    assert render("No placeholders", {}) == "No placeholders"


def test_render_keeps_braces_in_values() -> None:
    assert render("Hi {{1}}.", {"1": "{{2}}"}) == "Hi {{2}}."


@pytest.mark.parametrize("values", [{}, {"1": "Asha"}, {"1": "Asha", "2": ""}, {1: "Asha", 2: "   "}])
def test_render_names_the_missing_number(values: dict[int | str, str]) -> None:
    with pytest.raises(MissingValueError) as caught:
        render("Namaste {{1}}, booth {{2}}.", values)
    error = caught.value
    expected = 1 if not values else 2
    assert error.number == expected
    assert f"{{{{{expected}}}}}" in str(error)
    assert error.position == (8 if expected == 1 else 21)


def test_render_refuses_a_wrong_body() -> None:
    with pytest.raises(PlaceholderError, match="named placeholder"):
        render("Hi {{name}}", {"name": "Asha"})


# --- Properties ---------------------------------------------------------------------------

WORDS = st.text(alphabet=st.characters(blacklist_characters="{}\u2039"), min_size=1, max_size=12)


@given(st.lists(st.tuples(WORDS, st.integers(1, 5)), min_size=1, max_size=8), WORDS)
def test_rendering_a_valid_body_leaves_no_placeholder(parts: list[tuple[str, int]], tail: str) -> None:
    # Renumber so that the body uses 1..n without gaps, as check() demands.
    order = {n: i for i, n in enumerate(dict.fromkeys(n for _w, n in parts), start=1)}
    body = "".join(f"{word}{{{{{order[n]}}}}}" for word, n in parts) + tail
    assert check(body) == sorted(order.values())
    values = {str(i): f"\u2039{i}" for i in order.values()}
    rendered = render(body, values)
    assert "{{" not in rendered
    assert rendered.count("\u2039") == len(parts)


def test_pieces_split_text_and_placeholders() -> None:
    assert doctest.testmod(module).failed == 0
    body = "{{1}}: booth {{2}} ({{ 3 }}) {{2}}"
    found = pieces(body)
    assert found == [("{{1}}", 1), (": booth ", None), ("{{2}}", 2), (" ({{ 3 }}) ", None), ("{{2}}", 2)]
    assert "".join(text for text, _ in found) == body
    assert pieces("") == []
