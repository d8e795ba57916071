"""The phone system's own phrases are spoken in the caller's language, or in English with the English voice."""

from __future__ import annotations

import pytest

from ivr import phrases, twiml


@pytest.mark.parametrize("key", sorted(phrases.PHRASES))
def test_every_phrase_has_english_and_hindi(key: str) -> None:
    assert {"en", "hi"} <= set(phrases.PHRASES[key])


@pytest.mark.parametrize(
    ("language", "expected"), [("hi", "hi"), ("hi-IN", "hi"), ("HI", "hi"), ("en", "en"), ("ta", "en"), (None, "en")]
)
def test_the_callers_language_or_english(language: str | None, expected: str) -> None:
    text, spoken_in = phrases.phrase("opted_out", language)
    assert spoken_in == expected and text == phrases.PHRASES["opted_out"][expected]


def test_a_hindi_caller_is_apologised_to_in_hindi_with_a_hindi_voice() -> None:
    document = twiml.apology("hi")
    assert 'language="hi-IN"' in document and phrases.PHRASES["apology"]["hi"] in document
    assert document.endswith("<Hangup /></Response>")


def test_a_language_without_the_words_is_spoken_in_english_by_the_english_voice() -> None:
    document = twiml.said_then_hangup("not_in_service", "ta")
    assert 'language="en-IN"' in document and phrases.PHRASES["not_in_service"]["en"] in document
