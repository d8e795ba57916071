"""TwiML from a flow step's events: what Twilio says and plays, and which keys it gathers.

A pure function of the events and two small value objects: no database, no clock, no
network. The caller (``ivr.calls``) decides the URLs Twilio comes back to and how a text
is voiced; ``render`` only lays the verbs out:

- text -> ``<Say>`` in the session's language, or ``<Play>`` of its rendered audio when
  the prompt cache has it;
- audio -> ``<Play>`` (a relative media path is made absolute);
- a question -> ``<Gather input="dtmf">`` around its prompt (so the voter may answer
  before the prompt ends) with numDigits / finishOnKey / timeout, followed by a
  ``<Redirect>`` to the same action URL: Twilio runs it only when nobody pressed a key,
  and the request then arrives without ``Digits`` - the flow's re-prompt;
- record -> ``<Record>`` (then the same redirect: nothing was recorded);
- a wait -> ``<Pause>`` then the redirect, which resumes the session with a timeout;
- dial -> ``<Dial>``; hangup and the end of the flow -> ``<Hangup>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from twilio.twiml.voice_response import Gather, VoiceResponse

from bot.engine.events import AudioPlayed, CallControl, Event, FlowEnded, InputAwaited, MessageSent, TimerStarted
from bot.mediastore import MediaStore
from ivr import phrases

# Twilio's <Say> language codes for the languages flows are written in; others pass as given.
SAY_LANGUAGES = {
    "en": "en-IN",
    "hi": "hi-IN",
    "bn": "bn-IN",
    "gu": "gu-IN",
    "kn": "kn-IN",
    "ml": "ml-IN",
    "mr": "mr-IN",
    "pa": "pa-IN",
    "ta": "ta-IN",
    "te": "te-IN",
    "ur": "ur-IN",
}
MAX_PAUSE_S = 60


@dataclasses.dataclass(frozen=True)
class Links:
    """Where Twilio comes back to after this step (the signed action URL of the next step)."""

    action: str


@dataclasses.dataclass(frozen=True)
class Voicing:
    """How text is voiced: the session's language and, optionally, rendered audio.

    ``audio(text, language)`` returns the absolute URL of the prompt's rendered audio,
    or None to let Twilio speak it with ``<Say>``. ``media_base`` makes a relative
    ``play:`` path absolute.
    """

    language: str = "en"
    audio: Callable[[str, str], str | None] | None = None
    media_base: str = ""

    def say_language(self) -> str:
        """The ``language`` attribute of ``<Say>``."""
        return SAY_LANGUAGES.get(self.language, self.language)


def render(events: Sequence[Event], links: Links, voicing: Voicing) -> str:
    """Lay a step's events out as one TwiML document."""
    response = VoiceResponse()
    spoken: list[Event] = []  # speech since the last gather, nested in the next one
    ended = False
    for event in events:
        if isinstance(event, MessageSent | AudioPlayed):
            spoken.append(event)
        elif isinstance(event, InputAwaited):
            gather = Gather(input="dtmf", action=links.action, method="POST", **_gather_params(event.digits))
            _speak(gather, _prompt_of(spoken, event.node, response, voicing), voicing)
            response.append(gather)
            response.redirect(links.action, method="POST")
            spoken = []
        elif isinstance(event, TimerStarted):
            _speak(response, spoken, voicing)
            spoken = []
            response.pause(length=max(1, min(event.seconds, MAX_PAUSE_S)))
            response.redirect(links.action, method="POST")
        elif isinstance(event, CallControl):
            _speak(response, spoken, voicing)
            spoken = []
            ended = _control(response, event, links) or ended
        elif isinstance(event, FlowEnded):
            ended = True
    _speak(response, spoken, voicing)
    if ended or not _continues(response):
        response.hangup()
    return str(response)


def apology(language: str | None = None) -> str:
    """What a caller hears when something failed on our side: an apology (in their language), then a hang-up."""
    return said_then_hangup("apology", language)


def said_then_hangup(key: str, language: str | None) -> str:
    """One of the platform's own phrases (``ivr.phrases``) in the caller's language, then the end of the call."""
    text, spoken_in = phrases.phrase(key, language)
    return spoken_then_hangup(text, spoken_in)


def hangup() -> str:
    """End the call, saying nothing."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def reject() -> str:
    """Refuse the call as busy: a missed call costs the caller nothing."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def spoken_then_hangup(text: str, language: str = "en") -> str:
    """A short message, then the end of the call."""
    response = VoiceResponse()
    response.say(text, language=SAY_LANGUAGES.get(language, language))
    response.hangup()
    return str(response)


def _gather_params(digits: dict[str, Any] | None) -> dict[str, Any]:
    digits = digits or {}
    params: dict[str, Any] = {
        "finish_on_key": digits.get("finish_on_key", "#"),
        "timeout": digits.get("timeout_s") or 5,
    }
    if digits.get("num_digits"):
        params["num_digits"] = digits["num_digits"]
    return params


def _prompt_of(spoken: list[Event], node: str, response: VoiceResponse, voicing: Voicing) -> list[Event]:
    """Split the speech before a gather: the question itself goes inside it.

    Whatever came before (a ``say`` node, the "please press 1 or 2" of a retry) is
    spoken first, outside the gather; keys pressed while the question plays count.
    """
    last = spoken[-1] if spoken else None
    inside = 1 if isinstance(last, MessageSent) and last.node == node else 0
    _speak(response, spoken[: len(spoken) - inside], voicing)
    return spoken[len(spoken) - inside :]


def _speak(verb: Any, spoken: list[Event], voicing: Voicing) -> None:
    for event in spoken:
        if isinstance(event, AudioPlayed):
            verb.play(MediaStore.absolute(voicing.media_base, event.url))
            continue
        assert isinstance(event, MessageSent)
        url = voicing.audio(event.text, voicing.language) if voicing.audio and event.text else None
        if url:
            verb.play(url)
        elif event.text:
            verb.say(event.text, language=voicing.say_language())


def _control(response: VoiceResponse, event: CallControl, links: Links) -> bool:
    """Render record / dial / hangup; True when the call ends here."""
    if event.verb == "record":
        response.record(
            action=links.action,
            method="POST",
            max_length=event.params.get("max_seconds", 60),
            finish_on_key=event.params.get("finish_on_key", "#"),
            play_beep=True,
        )
        response.redirect(links.action, method="POST")
        return False
    if event.verb == "dial":
        response.dial(event.params["number"], timeout=event.params.get("timeout_s", 30))
        return True
    return True  # hangup


def _continues(response: VoiceResponse) -> bool:
    """True when the document hands the call back to us (a redirect) instead of running out."""
    verbs = response.verbs
    return bool(verbs) and verbs[-1].name == "Redirect"
