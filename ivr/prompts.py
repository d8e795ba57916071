"""Spoken prompts: each text rendered once, then served as a file to every call.

Usage (the voice webhook and a campaign's launch)::

    audio = PromptAudio(settings.var_dir, settings.tts)   # optional: store=MediaStore(...)
    audio.cached_name("Press 1 for yes.", "hi")  # webhook: a file read, never renders; None on a miss
    audio.url_name("Press 1 for yes.", "hi")     # renders on a miss (a second or more); None for twilio
    audio.prerender(flow)                         # launch: every static prompt, in every language

A name is a media-store file (``<sha256>.wav``): play it from
``MediaStore.url(settings.public_base_url, name)``. When the answer is None, speak the
text with ``<Say>`` instead.

The cache is one small file per prompt, ``var/tts/<key>``, holding the media name;
``key`` is the SHA-256 of (engine, voice, language, audio format, text), so changing any
of them renders anew. Two processes rendering the same text at once both succeed: the
media store and the index are written to temporary names and renamed into place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.engine.flow import Flow
from bot.engine.spoken import SpokenText, flow_languages, spoken_texts
from bot.mediastore import NAME, MediaStore
from ivr import audio
from ivr.tts import TtsEngine, TtsError, Voice, engine
from ivr.tts.base import DEFAULT_LANGUAGE

# How long cached_name trusts a lookup, and how many it keeps (then starts afresh).
LOOKUP_FRESH_S = 10.0
LOOKUPS_KEPT = 4096

# Part of every key: changing the stored audio's shape or loudness renders everything anew.
AUDIO_FORMAT = f"wav/{audio.FRAME_RATE}/{audio.SAMPLE_WIDTH * 8}/{audio.TARGET_DBFS:g}"


@dataclasses.dataclass
class PrerenderReport:
    """What :meth:`PromptAudio.prerender` did; each distinct (text, voice) counts once."""

    flow: str
    rendered: list[SpokenText] = dataclasses.field(default_factory=list)
    cached: list[SpokenText] = dataclasses.field(default_factory=list)
    # Texts with Jinja: spoken with <Say>, or rendered on demand, during the call.
    dynamic: list[SpokenText] = dataclasses.field(default_factory=list)
    # Static texts the engine leaves to Twilio's <Say> (CANVASS_TTS=twilio).
    said: list[SpokenText] = dataclasses.field(default_factory=list)
    # Things an operator should know: a language without a voice, a flow that never calls.
    problems: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """``ivr_survey: 9 rendered, 0 cached, 1 dynamic`` (and ``N said by Twilio`` when any)."""
        parts = [f"{len(self.rendered)} rendered", f"{len(self.cached)} cached", f"{len(self.dynamic)} dynamic"]
        if self.said:
            parts.append(f"{len(self.said)} said by Twilio")
        return f"{self.flow}: {', '.join(parts)}"


class PromptAudio:
    """The cache of rendered prompts of one engine.

    Args:
        var_dir: canvass's data folder (``settings.var_dir``); the index lives in ``var_dir/tts``.
        engine_name: ``settings.tts``: espeak, gtts or twilio.
        store: where rendered files go (default: ``MediaStore(var_dir)``, served at ``/media/``).
        tts: an engine instance to use instead of a new one of ``engine_name`` (tests).
    """

    def __init__(
        self, var_dir: Path, engine_name: str, *, store: MediaStore | None = None, tts: TtsEngine | None = None
    ) -> None:
        self.engine = tts or engine(engine_name)
        self.store = store or MediaStore(var_dir)
        self.index = Path(var_dir) / "tts"
        # cached_name's answers: key -> (media name or None, when it was looked up).
        self._seen: dict[str, tuple[str | None, float]] = {}

    def cached_name(self, text: str, language: str | None) -> str | None:
        """The stored file of ``text`` spoken in ``language``, or None; never renders.

        Costs one small file read and one stat, and none for ``LOOKUP_FRESH_S`` after:
        this process remembers the answer that long (a prompt rendered meanwhile is
        played from then on, a file removed by hand is missed until then). Safe inside
        the voice webhook.
        """
        text = text.strip()
        if not text or not self.engine.renders:
            return None
        key = self._key(text, self.engine.voice(language))
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[1] < LOOKUP_FRESH_S:
            return seen[0]
        name = self._lookup(key)
        if len(self._seen) >= LOOKUPS_KEPT:
            self._seen.clear()
        self._seen[key] = (name, now)
        return name

    def url_name(self, text: str, language: str | None) -> str | None:
        """The stored file of ``text`` spoken in ``language``, rendering it on a miss.

        Returns None for an empty text or an engine that does not render (twilio).

        Raises:
            TtsError: the engine failed; ``retryable`` says whether to try again.
        """
        text = text.strip()
        if not text or not self.engine.renders:
            return None
        voice = self.engine.voice(language)
        key = self._key(text, voice)
        return self._lookup(key) or self._render(key, text, voice)

    def prompts(self, flow: Flow, languages: list[str] | None = None) -> list[SpokenText]:
        """Every text the flow may speak in each language (default: the flow's own and its translations)."""
        return [spoken for code in languages or flow_languages(flow) for spoken in spoken_texts(flow, code)]

    def prerender(
        self,
        flow: Flow,
        languages: list[str] | None = None,
        *,
        progress: Callable[[SpokenText], None] | None = None,
    ) -> PrerenderReport:
        """Render every static prompt of ``flow`` that is not cached yet.

        ``progress`` is called after each text of :meth:`prompts` (for a progress bar).

        Raises:
            TtsError: the engine failed on a text; what was rendered before stays cached.
        """
        report = PrerenderReport(flow=flow.name)
        if "voice" not in flow.channels:
            report.problems.append(f"flow {flow.name} does not run on calls; there is nothing to speak")
            return report
        seen: set[str] = set()
        for spoken in self.prompts(flow, languages):
            voice = self.engine.voice(spoken.language)
            if voice.problem and voice.problem not in report.problems:
                report.problems.append(voice.problem)
            key = self._key(spoken.text, voice)
            if key not in seen:
                seen.add(key)
                self._prerender_one(spoken, key, voice, report)
            if progress is not None:
                progress(spoken)
        return report

    def _prerender_one(self, spoken: SpokenText, key: str, voice: Voice, report: PrerenderReport) -> None:
        if spoken.dynamic:
            report.dynamic.append(spoken)
        elif not self.engine.renders:
            report.said.append(spoken)
        elif self._lookup(key):
            report.cached.append(spoken)
        else:
            self._render(key, spoken.text, voice)
            report.rendered.append(spoken)

    def _key(self, text: str, voice: Voice) -> str:
        parts = [self.engine.name, voice.id, voice.language or DEFAULT_LANGUAGE, AUDIO_FORMAT, text]
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()

    def _lookup(self, key: str) -> str | None:
        try:
            name = (self.index / key).read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        # A media file removed by hand (or an index file that is not ours) is a miss.
        return name if NAME.match(name) and self.store.path(name) is not None else None

    def _render(self, key: str, text: str, voice: Voice) -> str | None:
        self._seen.pop(key, None)  # this process's cached_name sees the new file at once
        with tempfile.TemporaryDirectory(prefix="canvass-tts-") as workdir:
            made = self.engine.render(text, voice, Path(workdir))
            if made is None:
                return None
            try:
                name = audio.store_file(made, self.store, field=f"{self.engine.name} output").name
            except audio.AudioError as exc:
                raise TtsError(
                    self.engine.name, f"rendered audio is unusable: {exc.message}", retryable=False
                ) from None
        self.index.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.index, prefix=".incoming-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(name)
            os.replace(tmp, self.index / key)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name
