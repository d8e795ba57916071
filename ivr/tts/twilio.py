"""twilio: render nothing; Twilio speaks each text itself with ``<Say>``.

No file is made or cached, so :meth:`ivr.prompts.PromptAudio.url_name` answers None and
the TwiML speaks the text. The voice's ``id`` is the language Twilio is asked to speak.
"""

from __future__ import annotations

from pathlib import Path

from ivr.tts.base import DEFAULT_LANGUAGE, TtsEngine, Voice


class TwilioSay(TtsEngine):
    """Leave speaking to Twilio's ``<Say>``."""

    name = "twilio"
    renders = False

    def voice(self, language: str | None) -> Voice:
        """Twilio picks its own voice for the language; we only pass the language on."""
        code = (language or DEFAULT_LANGUAGE).strip() or DEFAULT_LANGUAGE
        return Voice(id=code, language=code)

    def render(self, text: str, voice: Voice, workdir: Path) -> None:
        """Nothing to render: the caller speaks ``text`` with ``<Say>``."""
        return None
