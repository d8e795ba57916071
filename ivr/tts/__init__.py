"""Text-to-speech engines, registered by the name ``CANVASS_TTS`` gives.

``espeak`` (the default) renders offline with espeak-ng; ``gtts`` asks Google's servers
(only when configured); ``twilio`` renders nothing and lets Twilio's ``<Say>`` speak.
Adding an engine is one module with a :class:`TtsEngine` subclass and one line here.
"""

from __future__ import annotations

from ivr.tts.base import TtsEngine, TtsError, Voice
from ivr.tts.espeak import Espeak
from ivr.tts.gtts_engine import GoogleTts
from ivr.tts.twilio import TwilioSay

ENGINES: dict[str, type[TtsEngine]] = {engine.name: engine for engine in (Espeak, GoogleTts, TwilioSay)}


def engine(name: str) -> TtsEngine:
    """A new engine of the registered ``name`` (espeak, gtts or twilio).

    Raises:
        ValueError: no engine is registered under ``name``.
    """
    try:
        return ENGINES[name]()
    except KeyError:
        raise ValueError(f"CANVASS_TTS: no text-to-speech engine {name!r}; use one of {', '.join(ENGINES)}") from None


__all__ = ["ENGINES", "Espeak", "GoogleTts", "TtsEngine", "TtsError", "TwilioSay", "Voice", "engine"]
