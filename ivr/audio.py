"""Telephone audio: any sound ffmpeg reads becomes a loudness-levelled 8 kHz mono WAV.

A phone line carries 8 kHz mono sound, so every prompt canvass plays is stored in that
shape: 16-bit PCM WAV (which Twilio's ``<Play>`` takes as it is), brought to one loudness
so that an uploaded greeting and a rendered question sound equally loud on a call.

ffmpeg decodes and resamples (its resampler filters properly, which pydub's does not);
pydub measures and applies the gain. The result goes to the media store under the
SHA-256 of its bytes and is served at ``/media/<name>``.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import tempfile
from pathlib import Path

from pydub import AudioSegment

from bot.mediastore import MediaStore

FRAME_RATE = 8000
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: 16-bit PCM
# Average loudness (RMS, dB below full scale) every prompt is brought to.
TARGET_DBFS = -16.0
# No sample may come closer than this to full scale: raising a spiky recording to the
# target would otherwise clip it, so the gain stops short of the target instead.
PEAK_CEILING_DBFS = -1.0
# Below this a file is silence (or hiss): it is stored as it is, never amplified.
SILENCE_DBFS = -60.0
# Most gain applied to a quiet recording.
MAX_GAIN_DB = 40.0
FFMPEG_TIMEOUT_S = 120.0
# ffmpeg and ffprobe open local files only: a playlist disguised as a sound file must not
# make them fetch URLs.
INPUT_OPTIONS = ("-protocol_whitelist", "file")


class AudioError(ValueError):
    """A sound file cannot be used; ``field`` names the file (or the form field) it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class StoredAudio:
    """A normalised sound in the media store."""

    name: str  # <sha256>.wav, served at /media/<name>
    duration_s: float


def decode(src: Path, field: str | None = None) -> AudioSegment:
    """Read ``src`` with ffmpeg as 8 kHz mono 16-bit PCM.

    Raises:
        AudioError: ffmpeg cannot read the file, finds no sound in it, or takes too long.
    """
    field = field or src.name
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *INPUT_OPTIONS, "-i", ffmpeg_input(src),
        "-map", "0:a:0", "-vn", "-ac", str(CHANNELS), "-ar", str(FRAME_RATE),
        "-f", "s16le", "-acodec", "pcm_s16le", "-",
    ]  # fmt: skip
    done = run_tool(command, field, FFMPEG_TIMEOUT_S)
    if done.returncode != 0:
        raise AudioError(field, "not an audio file ffmpeg can read")
    return AudioSegment(data=done.stdout, sample_width=SAMPLE_WIDTH, frame_rate=FRAME_RATE, channels=CHANNELS)


def ffmpeg_input(src: Path) -> str:
    """``src`` as ffmpeg should open it: a local file, whatever its name looks like.

    Without ``file:`` a name such as ``-y.mp3``, ``concat:a|b`` or ``http://...`` would be
    read as an option or another protocol.
    """
    return f"file:{src.resolve()}"


def run_tool(command: list[str], field: str, timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg or ffprobe on a file; a missing program or a stuck run is an ``AudioError``."""
    program = command[0]
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise AudioError(field, f"{program} is not installed (scripts/system-deps.sh installs it)") from None
    except subprocess.TimeoutExpired:
        raise AudioError(field, f"{program} took longer than {timeout_s:.0f} s to read it") from None


def level(segment: AudioSegment) -> AudioSegment:
    """Bring ``segment`` to ``TARGET_DBFS`` without letting a peak pass ``PEAK_CEILING_DBFS``.

    Silence (and anything quieter than ``SILENCE_DBFS``) is returned unchanged.
    """
    loudness = segment.dBFS
    if not math.isfinite(loudness) or loudness < SILENCE_DBFS:
        return segment
    gain = min(TARGET_DBFS - loudness, PEAK_CEILING_DBFS - segment.max_dBFS, MAX_GAIN_DB)
    if abs(gain) < 0.05:
        return segment
    return segment.apply_gain(gain)


def normalise(src: Path, field: str | None = None) -> AudioSegment:
    """Decode ``src`` into telephone shape (8 kHz, mono, 16-bit) at the target loudness.

    Raises:
        AudioError: ffmpeg cannot read the file.
    """
    return level(decode(src, field))


def store(segment: AudioSegment, media: MediaStore) -> StoredAudio:
    """Write ``segment`` as a WAV file into the media store; return its name and length.

    The file is written outside the store and copied in by ``MediaStore.put`` (which
    renames into place), so the store never holds half a file.
    """
    with tempfile.TemporaryDirectory(prefix="canvass-audio-") as workdir:
        wav = Path(workdir) / "prompt.wav"
        # pydub's export leaves a file it opened itself open: hand it one we close.
        with wav.open("wb") as fh:
            segment.export(fh, format="wav")
        name = media.put(wav, "audio/wav")
    return StoredAudio(name=name, duration_s=round(len(segment) / 1000, 3))


def store_file(src: Path, media: MediaStore, field: str | None = None) -> StoredAudio:
    """Normalise the sound file ``src`` and store it; see :func:`normalise` and :func:`store`."""
    return store(normalise(src, field), media)
