"""Uploaded sound files: checked by their content, stored as 8 kHz mono WAV, or refused clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydub import AudioSegment

from bot.mediastore import MediaStore
from ivr.audio import AudioError
from ivr.uploads import MAX_DURATION_S, MAX_UPLOAD_BYTES, accept_upload, describe
from tests.campaigns.test_media_files import PNG
from tests.ivr.conftest import assert_telephone_wav, ffmpeg, probe, read_wav


def stored_files(media: MediaStore) -> list[str]:
    return sorted(p.name for p in media.root.iterdir()) if media.root.exists() else []


@pytest.mark.parametrize(
    ("name", "codec", "container"),
    [
        ("greeting.mp3", ["-c:a", "libmp3lame"], "mp3"),
        ("greeting.ogg", ["-c:a", "libvorbis"], "ogg"),
        ("greeting.m4a", ["-c:a", "aac"], "mov,mp4,m4a,3gp,3g2,mj2"),
        ("greeting.wav", ["-c:a", "pcm_s16le"], "wav"),
    ],
)
def test_a_two_second_tone_becomes_8khz_mono_wav(tone, tmp_path, name, codec, container) -> None:  # type: ignore[no-untyped-def]
    src = tone(name, seconds=2.0, codec=codec)
    given = probe(src)
    assert (given["format"]["format_name"], given["audio"]["channels"]) == (container, 2)
    assert given["audio"]["sample_rate"] == "44100"
    media = MediaStore(tmp_path / "var")

    stored = accept_upload(src, media)

    assert stored.name.endswith(".wav") and stored_files(media) == [stored.name]
    assert stored.duration_s == pytest.approx(2.0, abs=0.05)
    assert assert_telephone_wav(media.root / stored.name) == pytest.approx(2.0, abs=0.05)
    assert accept_upload(src, media).name == stored.name  # the same sound is stored once


def test_the_name_of_a_file_does_not_matter_only_its_content(tone, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ogg = tone("greeting.ogg", codec=["-c:a", "libvorbis"])
    # Named like a WAV, and like an ffmpeg option and protocol: only the content counts.
    for name in ("greeting.wav", "-y.mp3", "concat:a.mp3"):
        disguised = tmp_path / name
        shutil.copyfile(ogg, disguised)
        stored = accept_upload(disguised, MediaStore(tmp_path / "var"))
        assert stored.duration_s == pytest.approx(2.0, abs=0.05)


def make_bad(kind: str, tmp_path: Path, tone) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "greeting.mp3"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(bytes(range(7, 256)) * 40)
    elif kind == "png":
        path.write_bytes(PNG)
    elif kind == "too_big":
        with path.open("wb") as fh:
            fh.truncate(MAX_UPLOAD_BYTES + 1)
    elif kind == "too_long":
        ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "723", "-b:a", "8k", str(path))
    elif kind == "too_short":
        path = tmp_path / "greeting.wav"
        ffmpeg("-f", "lavfi", "-i", "sine=d=0.1", str(path))
    elif kind == "adpcm":
        path = tone("greeting.wav", seconds=1.0, codec=["-c:a", "adpcm_ms"])
    elif kind == "flac":
        flac = tone("greeting.flac", seconds=1.0)
        path.write_bytes(flac.read_bytes())
    elif kind == "playlist":
        # An HLS playlist must not make ffprobe fetch anything.
        path.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/a.mp3\n#EXT-X-ENDLIST\n")
    elif kind == "video":
        path = tmp_path / "greeting.m4a"
        ffmpeg("-f", "lavfi", "-i", "testsrc=d=1:s=64x64", "-f", "lavfi", "-i", "sine=d=1", str(path))
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "greeting.mp3: the file is empty"),
        ("corrupt", "greeting.mp3: not an audio file ffmpeg can read"),
        ("png", "greeting.mp3: not an audio file ffmpeg can read"),
        ("too_big", "greeting.mp3: 20.0 MB; the limit is 20 MB"),
        ("too_long", "greeting.mp3: 12 min 3 s long; the limit is 10 min"),
        ("too_short", "greeting.wav: 0.10 s long; the shortest accepted is 0.2 s"),
        ("adpcm", "greeting.wav: WAV with adpcm_ms sound is not accepted; save it as plain WAV or as MP3"),
        ("flac", "greeting.mp3: raw FLAC files are not accepted; upload MP3, WAV, OGG or M4A"),
        ("playlist", "greeting.mp3: not an audio file ffmpeg can read"),
        ("video", "greeting.m4a: this is a video; upload the sound alone as MP3, WAV, OGG or M4A"),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_reason_and_nothing_stored(kind, message, tmp_path, tone) -> None:  # type: ignore[no-untyped-def]
    media = MediaStore(tmp_path / "var")
    src = make_bad(kind, tmp_path, tone)
    with pytest.raises(AudioError) as caught:
        accept_upload(src, media)
    assert str(caught.value) == message
    assert caught.value.field == src.name
    assert stored_files(media) == []


def test_a_missing_file_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AudioError, match=r"^nope\.mp3: no such file$"):
        accept_upload(tmp_path / "nope.mp3", MediaStore(tmp_path / "var"))


def test_a_failed_copy_leaves_nothing_half_written(tone, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = tone("greeting.mp3")
    media = MediaStore(tmp_path / "var")

    def full_disk(source, target):  # type: ignore[no-untyped-def]
        Path(target).write_bytes(b"RIFF half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    with pytest.raises(OSError, match="No space left"):
        accept_upload(src, media)
    assert stored_files(media) == []


def test_the_limits_read_as_a_person_says_them() -> None:
    assert (describe(723), describe(MAX_DURATION_S), describe(45.9), describe(60)) == (
        "12 min 3 s",
        "10 min",
        "45 s",
        "1 min",
    )


def test_loudness_is_levelled_on_upload(tone, tmp_path) -> None:  # type: ignore[no-untyped-def]
    quiet = tone("quiet.mp3", volume=0.01)
    assert AudioSegment.from_file(quiet).dBFS < -40
    stored = accept_upload(quiet, MediaStore(tmp_path / "var"))
    assert read_wav(tmp_path / "var" / "media" / stored.name).dBFS == pytest.approx(-16, abs=0.5)
