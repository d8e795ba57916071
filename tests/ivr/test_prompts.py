"""The prompt cache: render once per (engine, voice, text), find it with one file read, prerender flows."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from bot.engine import load_path, load_text
from ivr.prompts import PromptAudio
from ivr.tts import Espeak, TtsError, Voice
from tests.bot.engine.test_spoken import FLOW

ROOT = Path(__file__).resolve().parents[2]


class CountingEspeak(Espeak):
    """The real espeak-ng engine, counting its renders (and failing on request)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.fail_on: str | None = None
        self.lock = threading.Lock()

    def render(self, text: str, voice: Voice, workdir: Path) -> Path:
        with self.lock:
            self.calls.append((text, voice.id))
        if text == self.fail_on:
            raise TtsError(self.name, "espeak-ng failed: simulated", retryable=False)
        return super().render(text, voice, workdir)


@pytest.fixture
def espeak() -> CountingEspeak:
    return CountingEspeak()


@pytest.fixture
def audio(tmp_path, espeak) -> PromptAudio:  # type: ignore[no-untyped-def]
    return PromptAudio(tmp_path / "var", "espeak", tts=espeak)


def test_a_hit_does_not_render_again(audio, espeak, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert audio.cached_name("Thank you for your answers.", "en") is None  # a miss never renders
    assert espeak.calls == []
    name = audio.url_name("Thank you for your answers.", "en")
    assert name is not None and len(espeak.calls) == 1
    assert audio.url_name("  Thank you for your answers. ", "en") == name
    assert audio.cached_name("Thank you for your answers.", "en") == name
    assert len(espeak.calls) == 1
    # The index is one small file holding the media name.
    (index,) = (tmp_path / "var" / "tts").iterdir()
    assert index.read_text() == name and len(index.name) == 64


def test_the_voice_is_part_of_the_key(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    english = audio.url_name("Namaste", "en")
    hindi = audio.url_name("Namaste", "hi")
    assert english != hindi and len(espeak.calls) == 2
    assert audio.url_name("Namaste", "hi-IN") == hindi and len(espeak.calls) == 2
    other_engine = PromptAudio(audio.index.parent, "gtts")
    assert other_engine.cached_name("Namaste", "hi") is None


def test_a_removed_media_file_is_rendered_again(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    name = audio.url_name("Goodbye.", "en")
    (audio.store.root / name).unlink()
    assert audio.cached_name("Goodbye.", "en") is None
    assert audio.url_name("Goodbye.", "en") == name and len(espeak.calls) == 2


def test_empty_text_is_nothing_to_render(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    assert audio.url_name("  ", "en") is None and audio.cached_name("", "en") is None
    assert espeak.calls == []


def test_concurrent_renders_of_one_text_agree(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    names: list[str | None] = []
    threads = [threading.Thread(target=lambda: names.append(audio.url_name("Polling day.", "en"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 1 and names[0] is not None
    assert audio.cached_name("Polling day.", "en") == names[0]
    leftovers = [p for p in audio.index.parent.rglob("*") if p.name.startswith(".incoming-")]
    assert leftovers == []
    assert [p.name for p in audio.store.root.iterdir()] == [names[0]]


def test_twilio_renders_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    audio = PromptAudio(tmp_path, "twilio")
    assert audio.url_name("Hello", "hi") is None and audio.cached_name("Hello", "hi") is None
    report = audio.prerender(load_path(ROOT / "flows" / "ivr_survey.yaml"))
    assert (len(report.rendered), len(report.cached), len(report.said)) == (0, 0, 8)
    assert report.summary() == "ivr_survey: 0 rendered, 0 cached, 0 dynamic, 8 said by Twilio"
    assert not (tmp_path / "media").exists() and not (tmp_path / "tts").exists()


def test_prerender_renders_each_static_prompt_of_the_survey_once(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    flow = load_path(ROOT / "flows" / "ivr_survey.yaml")
    report = audio.prerender(flow)
    rendered = [(p.node, p.field) for p in report.rendered]
    assert rendered == [
        ("intro", "text"),
        ("will_vote", "text"),
        ("will_vote", "on_invalid"),
        ("knows_booth", "text"),
        ("knows_booth", "on_invalid"),  # the default "Sorry, I did not understand that."
        ("transport", "text"),
        # transport's on_invalid is the same default text: rendered once, above.
        ("thanks", "text"),
        ("goodbye", "text"),
    ]
    assert len(espeak.calls) == 8 and len({text for text, _voice in espeak.calls}) == 8
    assert report.summary() == "ivr_survey: 8 rendered, 0 cached, 0 dynamic" and report.problems == []
    # The webhook now finds every prompt without rendering.
    for node in ("intro", "thanks", "goodbye"):
        assert audio.cached_name(flow.nodes[node].text, "en") is not None
    again = audio.prerender(flow)
    assert again.summary() == "ivr_survey: 0 rendered, 8 cached, 0 dynamic" and len(espeak.calls) == 8


def test_prerender_covers_every_language_and_reports_templates(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    report = audio.prerender(load_text(FLOW))
    assert {(p.node, p.language) for p in report.dynamic} == {("hello", "en"), ("hello", "hi"), ("hello", "mr")}
    # Seven static prompts in each language: translated where the flow says, else its own text.
    assert Counter(p.language for p in report.rendered) == {"en": 7, "hi": 7, "mr": 7}
    assert {("क्या आप वोट देंगे?", "hi"), ("धन्यवाद.", "mr"), ("Thank you.", "hi")} <= set(espeak.calls)
    assert report.problems == []
    only_hindi = audio.prerender(load_text(FLOW), ["hi"])
    assert (len(only_hindi.rendered), len(only_hindi.cached), len(only_hindi.dynamic)) == (0, 7, 1)


def test_a_language_without_a_voice_is_spoken_in_english_and_reported(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    report = audio.prerender(load_text(FLOW), ["en", "fr"])
    assert report.problems == [
        "espeak has no voice for language 'fr' (it knows bn, en, gu, hi, kn, ml, mr, pa, ta, te, ur); "
        "spoken with the English voice"
    ]
    # French speaks the flow's English texts with the English voice: the very prompts English has.
    assert len(report.rendered) == 7 and {p.language for p in report.rendered} == {"en"}


def test_prerender_keeps_what_it_rendered_before_an_engine_failure(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    flow = load_path(ROOT / "flows" / "ivr_survey.yaml")
    espeak.fail_on = "Thank you for your answers. Your vote matters."
    with pytest.raises(TtsError, match="simulated"):
        audio.prerender(flow)
    espeak.fail_on = None
    report = audio.prerender(flow)
    assert (len(report.rendered), len(report.cached)) == (2, 6)


def test_a_messaging_flow_has_nothing_to_prerender(audio, espeak) -> None:  # type: ignore[no-untyped-def]
    report = audio.prerender(load_path(ROOT / "flows" / "booth_locator.yaml"))
    assert report.problems == ["flow booth_locator does not run on calls; there is nothing to speak"]
    assert espeak.calls == []


def test_progress_is_reported_for_every_text(audio) -> None:  # type: ignore[no-untyped-def]
    flow = load_path(ROOT / "flows" / "ivr_survey.yaml")
    seen: list[str] = []
    audio.prerender(flow, progress=lambda spoken: seen.append(spoken.node))
    assert len(seen) == len(audio.prompts(flow)) == 9


def test_a_lookup_is_remembered_a_while(tmp_path, espeak, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import ivr.prompts

    clock = [1000.0]
    monkeypatch.setattr(ivr.prompts.time, "monotonic", lambda: clock[0])
    web = PromptAudio(tmp_path / "var", "espeak", tts=espeak)  # the webhook's process
    worker = PromptAudio(tmp_path / "var", "espeak", tts=espeak)  # a campaign launch pre-rendering
    assert web.cached_name("Vote on Friday.", "en") is None
    name = worker.url_name("Vote on Friday.", "en")
    assert name is not None
    assert web.cached_name("Vote on Friday.", "en") is None  # remembered: no file read
    clock[0] += ivr.prompts.LOOKUP_FRESH_S
    assert web.cached_name("Vote on Friday.", "en") == name
    (web.store.root / name).unlink()
    assert web.cached_name("Vote on Friday.", "en") == name  # remembered, until it is looked up again
    clock[0] += ivr.prompts.LOOKUP_FRESH_S
    assert web.cached_name("Vote on Friday.", "en") is None
