"""espeak-ng, the offline default: real renders in every supported language, safe input, timeouts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.settings import TTS_ENGINES
from ivr.prompts import PromptAudio
from ivr.tts import ENGINES, Espeak, TtsError, engine
from ivr.tts.espeak import SPEED_WPM, VOICES
from tests.ivr.conftest import assert_telephone_wav

HELLO = {
    "en": "Hello, polling day is on the twentieth.",
    "hi": "नमस्ते, मतदान बीस तारीख को है।",
    "ta": "வணக்கம், வாக்குப்பதிவு நாள்.",
    "te": "నమస్కారం, పోలింగ్ రోజు.",
    "bn": "নমস্কার, ভোটের দিন।",
    "mr": "नमस्कार, मतदानाचा दिवस.",
    "gu": "નમસ્તે, મતદાનનો દિવસ.",
    "kn": "ನಮಸ್ಕಾರ, ಮತದಾನದ ದಿನ.",
    "ml": "നമസ്കാരം, വോട്ടെടുപ്പ് ദിവസം.",
    "pa": "ਸਤ ਸ੍ਰੀ ਅਕਾਲ, ਵੋਟਾਂ ਦਾ ਦਿਨ।",
    "ur": "السلام علیکم، ووٹ کا دن۔",
}


def test_every_setting_of_canvass_tts_has_an_engine() -> None:
    assert sorted(ENGINES) == sorted(TTS_ENGINES)
    assert all(engine(name).name == name for name in TTS_ENGINES)
    with pytest.raises(ValueError, match="no text-to-speech engine 'festival'"):
        engine("festival")


def test_a_rendered_prompt_is_telephone_wav_of_a_plausible_length(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = "Will you vote on twenty November? Press 1 for yes, 2 for no, 3 if you are not sure."
    name = PromptAudio(tmp_path, "espeak").url_name(text, "en")
    assert name is not None
    seconds = assert_telephone_wav(tmp_path / "media" / name)
    spoken = len(text.split()) / SPEED_WPM * 60  # about 7 s at 150 words a minute
    assert spoken * 0.6 < seconds < spoken * 1.6


def test_each_language_has_an_espeak_voice_that_speaks_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    listed = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True).stdout
    known = {line.split()[1] for line in listed.splitlines()[1:]}
    assert set(HELLO) == set(VOICES)
    audio = PromptAudio(tmp_path, "espeak")
    for code, text in HELLO.items():
        voice = Espeak().voice(code)
        assert voice.id in known and voice.problem is None, code
        name = audio.url_name(text, code)
        assert name is not None
        assert assert_telephone_wav(tmp_path / "media" / name) > 0.5, code


def test_a_regional_code_uses_its_language_and_an_unknown_one_falls_back_to_english() -> None:
    espeak = Espeak()
    assert espeak.voice("hi-IN") == espeak.voice("hi")
    assert espeak.voice(None) == espeak.voice("en")
    fallback = espeak.voice("xx")
    assert (fallback.id, fallback.language) == ("en-gb", "en")
    assert fallback.problem is not None
    assert "no voice for language 'xx'" in fallback.problem and "English" in fallback.problem


def test_text_is_never_read_as_options_or_shell(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    text = '-w pwned.wav --help "; touch pwned; $(touch pwned2) `touch pwned3`'
    out = Espeak().render(text, Espeak().voice("en"), tmp_path)
    assert out.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["espeak.wav"]


def fake_program(tmp_path: Path, body: str) -> str:
    script = tmp_path / "espeak-ng"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_a_stuck_espeak_times_out_as_retryable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    espeak = Espeak(program=fake_program(tmp_path, "exec sleep 5"), timeout_s=0.3)
    with pytest.raises(TtsError) as caught:
        espeak.render("Hello", espeak.voice("en"), tmp_path)
    assert caught.value.retryable and caught.value.engine == "espeak"
    assert "took longer than 0.3 s" in str(caught.value)


def test_a_failing_or_missing_espeak_is_not_retryable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = Espeak(program=fake_program(tmp_path, "echo 'voice not found' >&2; exit 1"))
    with pytest.raises(TtsError, match="failed: voice not found") as caught:
        broken.render("Hello", broken.voice("en"), tmp_path)
    assert not caught.value.retryable
    missing = Espeak(program=str(tmp_path / "no-such-espeak"))
    with pytest.raises(TtsError, match="is not installed") as caught:
        missing.render("Hello", missing.voice("en"), tmp_path)
    assert not caught.value.retryable
