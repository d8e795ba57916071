"""Telephone audio: 8 kHz mono 16-bit WAV at one loudness, without clipping, silence kept silent."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bot.mediastore import MediaStore
from ivr import audio
from tests.ivr.conftest import assert_telephone_wav, ffmpeg, read_wav


def mean_volume(path: Path) -> float:
    """ffmpeg's own measure of average loudness (dBFS), independent of pydub."""
    said = subprocess.run(
        ["ffmpeg", "-nostdin", "-i", str(path), "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stderr
    match = re.search(r"mean_volume: (-?[\d.]+) dB", said)
    assert match, said
    return float(match.group(1))


def test_a_quiet_recording_is_raised_to_the_target(tone, tmp_path) -> None:  # type: ignore[no-untyped-def]
    quiet = tone("quiet.wav", volume=0.01, codec=["-c:a", "pcm_s16le"])
    assert mean_volume(quiet) < -40
    stored = audio.store_file(quiet, MediaStore(tmp_path / "var"))
    out = tmp_path / "var" / "media" / stored.name
    assert_telephone_wav(out)
    assert mean_volume(out) == pytest.approx(audio.TARGET_DBFS, abs=0.5)
    assert read_wav(out).dBFS == pytest.approx(audio.TARGET_DBFS, abs=0.2)


def test_a_loud_recording_is_brought_down(tone, tmp_path) -> None:  # type: ignore[no-untyped-def]
    loud = tone("loud.wav", volume=0.99, codec=["-c:a", "pcm_s16le"])
    segment = audio.normalise(loud)
    assert segment.dBFS == pytest.approx(audio.TARGET_DBFS, abs=0.2)


def test_spiky_sound_stops_short_of_clipping(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A quiet hum with a loud click every half second: the target would push the clicks past full scale.
    spiky = tmp_path / "spiky.wav"
    ffmpeg(
        "-f", "lavfi", "-i", "aevalsrc=0.01*sin(2*PI*300*t)+0.5*lt(mod(t\\,0.5)\\,0.002):s=8000:d=2",
        "-c:a", "pcm_s16le", str(spiky),
    )  # fmt: skip
    segment = audio.normalise(spiky)
    assert segment.max_dBFS <= audio.PEAK_CEILING_DBFS + 0.1
    assert segment.max_dBFS > audio.PEAK_CEILING_DBFS - 0.5  # raised as far as the peaks allow
    assert segment.dBFS < audio.TARGET_DBFS


def test_silence_stays_silence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    quiet = tmp_path / "silence.mp3"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "1.5", str(quiet))
    segment = audio.normalise(quiet)
    assert segment.max == 0
    assert (segment.frame_rate, segment.channels, segment.sample_width) == (8000, 1, 2)
    assert len(segment) / 1000 == pytest.approx(1.5, abs=0.06)


def test_the_stored_name_is_the_hash_of_the_wav(tone, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    media = MediaStore(tmp_path / "var")
    stored = audio.store_file(tone("a.ogg", codec=["-c:a", "libvorbis"]), media)
    assert stored.name == hashlib.sha256((media.root / stored.name).read_bytes()).hexdigest() + ".wav"
    assert media.content_type(stored.name) == "audio/wav"


def test_what_ffmpeg_cannot_read_is_an_audio_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "notes.txt"
    junk.write_text("not sound")
    with pytest.raises(audio.AudioError) as caught:
        audio.normalise(junk, field="prompt")
    assert (caught.value.field, str(caught.value)) == ("prompt", "prompt: not an audio file ffmpeg can read")
