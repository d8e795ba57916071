"""Uploaded sound files: checked by what they contain, then stored as telephone audio.

A campaign manager uploads a greeting recorded on a phone or exported from an editor.
The file's name says nothing reliable about it, so ffprobe reads the content: the
container must be MP3, WAV, Ogg or M4A holding a sound codec we accept, and the sound
must last between ``MIN_DURATION_S`` and ``MAX_DURATION_S``. Only then is it decoded,
levelled and stored (see :mod:`ivr.audio`). Every refusal is an :class:`AudioError`
whose message names the file and says what to change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.mediastore import MediaStore
from ivr.audio import INPUT_OPTIONS, AudioError, StoredAudio, decode, ffmpeg_input, level, run_tool, store

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MIN_DURATION_S = 0.2
MAX_DURATION_S = 10 * 60.0
FFPROBE_TIMEOUT_S = 30.0
ACCEPTED = "MP3, WAV, OGG or M4A"
# ffprobe's format_name -> (what a person calls it, the sound codecs accepted in it).
FORMATS: dict[str, tuple[str, frozenset[str]]] = {
    "mp3": ("MP3", frozenset({"mp3"})),
    "wav": (
        "WAV",
        frozenset({"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_u8", "pcm_f32le", "pcm_f64le", "pcm_mulaw", "pcm_alaw"}),
    ),
    "ogg": ("OGG", frozenset({"vorbis", "opus"})),
    "mov,mp4,m4a,3gp,3g2,mj2": ("M4A", frozenset({"aac", "alac", "mp3"})),
}


def accept_upload(src: Path, media: MediaStore, field: str | None = None) -> StoredAudio:
    """Check an uploaded sound file, normalise it and store it.

    Args:
        src: the uploaded file.
        media: where the normalised WAV goes.
        field: how to name the file in messages (default: its file name).

    Returns:
        The stored name (``<sha256>.wav``) and the sound's duration in seconds.

    Raises:
        AudioError: the file is empty, too big, not sound, of a kind we do not accept,
            too short or too long. Nothing is stored then.
    """
    field = field or src.name
    size = _size(src, field)
    if size == 0:
        raise AudioError(field, "the file is empty")
    if size > MAX_UPLOAD_BYTES:
        raise AudioError(field, f"{size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    probed = probe(src, field)
    check_kind(probed, field)
    declared = _float(probed.get("format", {}).get("duration"))
    # Refuse a long file before decoding all of it; the decoded length is checked again below.
    if declared is not None:
        check_duration(declared, field)
    segment = decode(src, field)
    check_duration(len(segment) / 1000, field)
    return store(level(segment), media)


def probe(src: Path, field: str) -> dict[str, Any]:
    """What ffprobe finds in ``src`` (its format and streams), read from the bytes.

    Raises:
        AudioError: ffprobe cannot read it, or it holds no sound.
    """
    command = [
        "ffprobe", "-v", "error", *INPUT_OPTIONS, "-print_format", "json", "-show_format", "-show_streams",
        ffmpeg_input(src),
    ]  # fmt: skip
    done = run_tool(command, field, FFPROBE_TIMEOUT_S)
    try:
        found = json.loads(done.stdout or b"{}")
    except ValueError:
        found = {}
    if done.returncode != 0 or not any(s.get("codec_type") == "audio" for s in found.get("streams", ())):
        raise AudioError(field, "not an audio file ffmpeg can read")
    return found


def check_kind(probed: dict[str, Any], field: str) -> None:
    """Accept only the containers and codecs in ``FORMATS``, and no moving pictures.

    Raises:
        AudioError: naming what the file is and what is accepted instead.
    """
    container = str(probed.get("format", {}).get("format_name", ""))
    if container not in FORMATS:
        described = probed.get("format", {}).get("format_long_name") or container
        raise AudioError(field, f"{described} files are not accepted; upload {ACCEPTED}")
    kind, codecs = FORMATS[container]
    for stream in probed.get("streams", ()):
        # Cover art inside an MP3 or M4A is a picture "stream" too; it is simply dropped.
        if stream.get("codec_type") == "video" and not stream.get("disposition", {}).get("attached_pic"):
            raise AudioError(field, f"this is a video; upload the sound alone as {ACCEPTED}")
    codec = next(s.get("codec_name", "") for s in probed["streams"] if s.get("codec_type") == "audio")
    if codec not in codecs:
        raise AudioError(field, f"{kind} with {codec} sound is not accepted; save it as plain {kind} or as MP3")


def check_duration(seconds: float, field: str) -> None:
    """Refuse sound shorter than ``MIN_DURATION_S`` or longer than ``MAX_DURATION_S``."""
    if seconds < MIN_DURATION_S:
        raise AudioError(field, f"{seconds:.2f} s long; the shortest accepted is {MIN_DURATION_S} s")
    if seconds > MAX_DURATION_S:
        raise AudioError(field, f"{describe(seconds)} long; the limit is {describe(MAX_DURATION_S)}")


def describe(seconds: float) -> str:
    """A duration as a person says it: ``12 min 3 s``, ``10 min``, ``45 s``."""
    whole = int(seconds)
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _size(src: Path, field: str) -> int:
    try:
        return src.stat().st_size
    except FileNotFoundError:
        raise AudioError(field, "no such file") from None
    except OSError as exc:
        raise AudioError(field, f"cannot be read ({exc.strerror})") from None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
