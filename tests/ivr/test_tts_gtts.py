"""gTTS through its real request code, answered by a fake Google at the HTTP transport.

No test reaches the network: every requests Session gets a transport adapter that
records the request and answers with canned bytes (an MP3 made here with ffmpeg, in the
batchexecute envelope gTTS parses), a status, or a connection failure.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from ivr.prompts import PromptAudio
from ivr.tts import GoogleTts, TtsError
from tests.ivr.conftest import assert_telephone_wav, ffmpeg


class FakeGoogle(BaseAdapter):
    """A transport adapter standing in for Google's translate servers."""

    def __init__(self, mp3: bytes) -> None:
        super().__init__()
        self.mp3 = mp3
        self.sent: list[requests.PreparedRequest] = []
        # What the next requests get: an HTTP status, or an exception to raise.
        self.answers: list[int | Exception] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        self.sent.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        audio = base64.b64encode(self.mp3).decode()
        body = f')]}}\'\n\n[["wrb.fr","jQ1olc","[\\"{audio}\\"]",null,null,null,"generic"]]\n'
        response = requests.Response()
        response.status_code = answer
        response.reason = {200: "OK", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable"}[answer]
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json; charset=utf-8"})
        response.raw = io.BytesIO(body.encode() if answer == 200 else b"")
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass

    def spoken(self) -> list[list[str]]:
        """(text, language) of each request, read back from the form gTTS posted."""
        found = []
        for request in self.sent:
            rpc = json.loads(parse_qs(request.body)["f.req"][0])
            found.append(json.loads(rpc[0][0][1])[:2])
        return found


@pytest.fixture
def google(tmp_path, monkeypatch) -> FakeGoogle:  # type: ignore[no-untyped-def]
    mp3 = tmp_path / "canned.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:sample_rate=24000:duration=1.2", "-ac", "1", str(mp3))
    fake = FakeGoogle(mp3.read_bytes())
    monkeypatch.setattr(requests.Session, "get_adapter", lambda self, url: fake)
    return fake


def test_gtts_renders_through_its_real_request_code(google, tmp_path) -> None:  # type: ignore[no-untyped-def]
    audio = PromptAudio(tmp_path, "gtts")
    name = audio.url_name("नमस्ते, मतदान बीस तारीख को है।", "hi-IN")
    assert name is not None
    assert assert_telephone_wav(tmp_path / "media" / name) == pytest.approx(1.2, abs=0.1)
    assert google.spoken() == [["नमस्ते, मतदान बीस तारीख को है।", "hi"]]
    assert google.sent[0].url.startswith("https://translate.google.com/")
    # Cached: a second ask costs no request.
    assert audio.url_name("नमस्ते, मतदान बीस तारीख को है।", "hi") == name
    assert audio.cached_name("नमस्ते, मतदान बीस तारीख को है।", "hi") == name
    assert len(google.sent) == 1


@pytest.mark.parametrize(
    ("answer", "retryable", "said"),
    [
        (503, True, "503 (Service Unavailable)"),
        (429, True, "429 (Too Many Requests)"),
        (403, False, "403 (Forbidden)"),
        (requests.ConnectionError("connection refused"), True, "Failed to connect"),
        (requests.ReadTimeout("read timed out"), True, "Failed to connect"),
    ],
)
def test_failures_say_whether_to_retry(google, tmp_path, answer, retryable, said) -> None:  # type: ignore[no-untyped-def]
    google.answers.append(answer)
    engine = GoogleTts()
    with pytest.raises(TtsError) as caught:
        engine.render("Hello", engine.voice("en"), tmp_path)
    assert caught.value.retryable is retryable and caught.value.engine == "gtts"
    assert said in str(caught.value)
    assert ("try again" in str(caught.value)) is retryable


def test_a_failed_render_caches_nothing(google, tmp_path) -> None:  # type: ignore[no-untyped-def]
    google.answers.append(503)
    audio = PromptAudio(tmp_path, "gtts")
    with pytest.raises(TtsError):
        audio.url_name("Hello", "en")
    assert audio.cached_name("Hello", "en") is None
    assert not any(Path(tmp_path).rglob("*.wav"))
    assert audio.url_name("Hello", "en") is not None  # Google is back


def test_an_unknown_language_is_spoken_in_english_and_said_so() -> None:
    voice = GoogleTts().voice("xx")
    assert voice.language == "en" and voice.problem and "gtts has no voice for language 'xx'" in voice.problem
