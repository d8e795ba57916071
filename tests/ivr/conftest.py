"""Real sound files for the audio tests, made with ffmpeg, and ways to look inside them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable


@pytest.fixture(autouse=True)
def _audio_tools() -> None:
    missing = [tool for tool in ("ffmpeg", "ffprobe", "espeak-ng") if shutil.which(tool) is None]
    if missing:
        unavailable(f"{', '.join(missing)} not installed (scripts/system-deps.sh installs them)")


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; fail the test when it fails."""
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", *args], check=True, timeout=120)


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON about ``path``: its format and its first audio stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    found = json.loads(out)
    return {"format": found["format"], "audio": next(s for s in found["streams"] if s["codec_type"] == "audio")}


def assert_telephone_wav(path: Path) -> float:
    """Check ``path`` is 8 kHz mono 16-bit PCM WAV by ffprobe and by pydub; return its seconds."""
    found = probe(path)
    assert found["format"]["format_name"] == "wav"
    audio = found["audio"]
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("pcm_s16le", "8000", 1)
    assert audio["bits_per_sample"] == 16
    segment = read_wav(path)
    assert (segment.frame_rate, segment.channels, segment.sample_width) == (8000, 1, 2)
    assert abs(len(segment) / 1000 - float(found["format"]["duration"])) < 0.01
    return float(found["format"]["duration"])


def read_wav(path: Path) -> Any:
    """The WAV file as a pydub AudioSegment (opened here: pydub leaves a path's file open)."""
    from pydub import AudioSegment

    with path.open("rb") as fh:
        return AudioSegment.from_wav(fh)


@pytest.fixture
def tone(tmp_path: Path) -> Callable[..., Path]:
    """Make a sine tone file: ``tone("greeting.mp3", seconds=2, volume=0.5)`` (44.1 kHz stereo)."""

    def make(name: str, *, seconds: float = 2.0, volume: float = 0.5, codec: list[str] | None = None) -> Path:
        path = tmp_path / name
        source = f"aevalsrc={volume}*sin(2*PI*440*t):s=44100:d={seconds}"
        ffmpeg("-f", "lavfi", "-i", source, "-ac", "2", *(codec or []), str(path))
        return path

    return make
