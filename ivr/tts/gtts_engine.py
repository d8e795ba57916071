"""gtts: Google Translate's voices, through the gTTS package (``CANVASS_TTS=gtts`` only).

They sound far more natural than espeak-ng in Indian languages, but every render is a
request to Google's servers: this engine is never used unless configured, and what it
renders is cached (:mod:`ivr.prompts`), so a prompt costs one request ever. Its MP3 is
converted to telephone audio like any other file.
"""

from __future__ import annotations

from pathlib import Path

from gtts import gTTS, gTTSError

from ivr.tts.base import TtsEngine, TtsError, Voice, pick_voice

# Language code -> gTTS language (all of these are in gtts.lang.tts_langs()).
VOICES = {code: code for code in ("en", "hi", "ta", "te", "bn", "mr", "gu", "kn", "ml", "pa", "ur")}
# Google's answers that mean "not now" rather than "never".
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# (connect, read) seconds for each request; gTTS waits forever by default.
TIMEOUT_S = (5.0, 20.0)


class GoogleTts(TtsEngine):
    """Render through gTTS into an MP3 file."""

    name = "gtts"

    def __init__(self, *, tld: str = "com", timeout_s: tuple[float, float] = TIMEOUT_S) -> None:
        self.tld = tld
        self.timeout_s = timeout_s

    def voice(self, language: str | None) -> Voice:
        """The gTTS voice for ``language`` (English when it has none)."""
        chosen = pick_voice(self.name, VOICES, language)
        return Voice(id=f"{chosen.id}@{self.tld}", language=chosen.language, problem=chosen.problem)

    def render(self, text: str, voice: Voice, workdir: Path) -> Path:
        """Ask Google to speak ``text``; save the MP3 as ``workdir/gtts.mp3``.

        Raises:
            TtsError: retryable for a network failure, a timeout, 429 or a 5xx answer;
                not retryable for any other refusal (a changed API, a bad language).
        """
        out = workdir / "gtts.mp3"
        speech = gTTS(text, lang=voice.language, tld=self.tld, lang_check=False, timeout=self.timeout_s)
        try:
            speech.save(str(out))
        except gTTSError as exc:
            status = getattr(exc.rsp, "status_code", None)
            retryable = status is None or status >= 500 or status in RETRYABLE_STATUSES
            raise TtsError(self.name, str(exc), retryable=retryable) from None
        if not out.is_file() or out.stat().st_size == 0:
            raise TtsError(self.name, "Google answered without any audio", retryable=False)
        return out
