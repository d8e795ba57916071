"""The templates pages in a real headless Chromium, and the live SMS counter against Python's.

* One table of texts is counted by ``campaigns.sms_segments`` and by
  ``web/static/sms_segments.js`` (run in Chromium with ``page.evaluate``): both must give
  the same encoding, units, segments and remainder for every text.
* An editor writes a WhatsApp template with a quick-reply button, previews it with sample
  values and submits it (the sandbox approves at once); then writes an SMS snippet in
  Hindi, watching the counter change while typing.

Screenshots at a laptop width (1280) and a phone width (390); the folder is printed at the
end of the run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from campaigns import sms_segments, templates
from tests.campaigns.conftest import World
from tests.web.browser import PHONE
from tests.web.test_console_templates import versions

BALLOT = "\U0001f5f3"  # 🗳 outside the Basic Multilingual Plane: two UTF-16 code units
HINDI = "नमस्ते! आपका मतदान केंद्र वार्ड 12 में है।"
# Texts at every rule of campaigns/sms_segments.py: limits, split parts, escape pairs and
# surrogate pairs at a part's edge, characters just outside GSM-7.
SMS_CASES = [
    "",
    "Booth 12 opens at 7",
    "a" * 160,
    "a" * 161,
    "a" * 306,
    "a" * 307,
    "a" * 459 + "b",
    "€" * 80,
    "€" * 80 + "a",
    "a" * 152 + "€" + "a" * 10,  # the escape pair does not fit in part one's last septet
    "{[~]}|^\\" * 3,
    "line one\nline two\r\n\f",
    "Café à 7h, ÄÖÜ ß ñ",  # all GSM-7
    "Français",  # ç (lower case) is not GSM-7
    "\u201cquoted\u201d",  # curly quotes are not GSM-7
    "Don\u2019t forget",
    "क" * 70,
    "क" * 71,
    "क" * 134,
    "क" * 135,
    HINDI,
    HINDI * 4,
    "नमस्ते Asha, booth 12 ✅",
    BALLOT,
    BALLOT * 35,
    BALLOT * 35 + "a",
    "a" * 66 + BALLOT + "a" * 10,  # the surrogate pair does not fit in part one's last unit
    "मतदान 🗳️ day",  # with the variation selector U+FE0F
    "👩🏽‍🌾 farmer",  # a zero-width-joined emoji: several code points
    "Hi {{1}}, ward {{2}}",
    "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡§¿",
    "\t tab is not GSM-7",
    "`backtick` is not GSM-7",
]
# (body, samples) pairs filled by campaigns.templates.sample_text and by CanvassSms.fill.
FILL_CASES = [
    ("Hi {{1}}, ward {{2}}", {"1": "Asha", "2": "12"}),
    ("Hi {{1}}, ward {{2}}", {"1": "Asha"}),  # no sample: 10 characters
    ("{{2}} {{1}} {{2}}", {"2": "आशा"}),
    ("Wrong {{ 1 }} and {{01}} and {{{1}}}", {"1": "x"}),
    ("नमस्ते {{1}}!", {}),
]


def counts_in_browser(page: Any, texts: list[str]) -> list[dict[str, Any]]:
    return page.evaluate("(texts) => texts.map((t) => window.CanvassSms.count(t))", texts)


@pytest.fixture
def editor_page(world: World, open_console) -> Any:  # type: ignore[no-untyped-def]
    watched = open_console("editor")
    watched.page.goto("/templates/new")
    return watched


def test_the_javascript_counter_counts_as_python_does(editor_page: Any) -> None:
    page = editor_page.page
    in_browser = counts_in_browser(page, SMS_CASES)
    for text, found in zip(SMS_CASES, in_browser, strict=True):
        assert found == dataclasses.asdict(sms_segments.count(text)), repr(text)
    # The same alphabet, and the same filling of placeholders with samples.
    alphabet = page.evaluate("() => [window.CanvassSms.GSM7_BASIC, window.CanvassSms.GSM7_EXTENSION]")
    assert (set(alphabet[0]), set(alphabet[1])) == (sms_segments.GSM7_BASIC, sms_segments.GSM7_EXTENSION)
    assert len(alphabet[0]) == len(sms_segments.GSM7_BASIC)  # no character twice
    filled = page.evaluate("(cases) => cases.map(([b, s]) => window.CanvassSms.fill(b, s))", FILL_CASES)
    assert filled == [templates.sample_text(body, samples) for body, samples in FILL_CASES]
    assert editor_page.problems == []


def counter(page: Any) -> dict[str, Any]:
    box = page.locator("output[data-counter-for='body']")
    return {
        "segments": int(box.get_attribute("data-segments")),
        "encoding": box.get_attribute("data-encoding"),
        "units": int(box.get_attribute("data-units")),
        "text": box.inner_text(),
    }


def test_an_editor_writes_previews_and_submits_templates(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    watched = open_console("editor")
    page = watched.page
    page.get_by_role("link", name="Templates", exact=True).click()
    page.wait_for_url("**/templates")
    assert page.locator("table.templates tr[data-template]").count() == 2
    shots(page, "templates")

    # A WhatsApp template with a quick-reply button: sample inputs follow the placeholders typed.
    page.get_by_role("link", name="New template").click()
    page.get_by_label("Name").fill("rally_invite")
    page.get_by_label("Category").select_option("announcement")
    body = page.locator("#body")
    body.fill("Hi {{1}}, join the rally in ward {{2}} on Sunday.")
    samples = page.locator("input[data-sample]")
    assert [samples.nth(i).get_attribute("name") for i in range(samples.count())] == ["sample_1", "sample_2"]
    assert not page.locator(".counter-box").is_visible()  # the SMS counter is for SMS
    samples.nth(0).fill("Asha")
    samples.nth(1).fill("12")
    page.get_by_label("Button 1").fill("Count me in")
    shots(page, "template-new-whatsapp")
    page.get_by_role("button", name="Save template").click()
    page.wait_for_url("**/templates/rally_invite?language=en&version=1")
    assert page.locator(".flash").inner_text() == "Created rally_invite with its en version v1."
    assert page.locator("[data-template-status]").first.inner_text() == "draft"

    # The preview: as the voter sees it, redrawn while typing; an empty value is pointed out.
    bubble = page.locator("[data-preview-text]")
    assert bubble.inner_text() == "Hi Asha, join the rally in ward 12 on Sunday."
    assert page.locator(".screen.whatsapp .replies span").all_inner_texts() == ["Count me in"]
    page.locator("input[name='value_1']").fill("Ravi")
    assert bubble.inner_text() == "Hi Ravi, join the rally in ward 12 on Sunday."
    page.locator("input[name='value_2']").fill("")
    assert bubble.inner_text() == "Hi Ravi, join the rally in ward {{2}} on Sunday."
    problem = page.locator("[data-preview-problem]")
    assert problem.inner_text() == "{{2}} has no value: a voter would never get this message."
    page.locator("input[name='value_2']").fill("7")
    assert not problem.is_visible()
    shots(page, "template-detail")

    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_url("**/templates/rally_invite")
    assert "en v1: approved" in page.locator(".flash").inner_text()
    assert page.locator("[data-template-status]").first.inner_text() == "approved"
    assert [v.status for v in versions(world, "rally_invite")] == ["approved"]

    # An SMS snippet in Hindi: the counter follows every keystroke.
    page.goto("/templates/new")
    page.get_by_label("Name").fill("booth_sms")
    page.get_by_label("Channel").select_option("sms")
    assert not page.locator("#buttons").is_visible() and not page.locator("#media").is_visible()
    page.get_by_label("Language").fill("hi")
    body.fill("Booth {{1}}")
    assert counter(page)["encoding"] == "GSM-7"
    seen = [counter(page)]
    for chunk in ["नमस्ते", "! आपका मतदान केंद्र ", "वार्ड 12 में है। " * 3]:
        body.press_sequentially(chunk)
        seen.append(counter(page))
    assert [c["encoding"] for c in seen] == ["GSM-7", "UCS-2", "UCS-2", "UCS-2"]
    assert [c["segments"] for c in seen] == sorted(c["segments"] for c in seen)
    assert seen[1]["segments"] == 1 and seen[-1]["segments"] >= 2
    page.locator("input[data-sample='1']").fill("12")
    typed = body.input_value()
    expected = sms_segments.count(templates.sample_text(typed, {"1": "12"}))
    final = counter(page)
    assert (final["segments"], final["encoding"], final["units"]) == (expected.segments, "UCS-2", expected.units)
    assert final["text"] == (
        f"{expected.segments} SMS segments · UCS-2 · {expected.units} characters, "
        f"{expected.remaining} left in this segment"
    )
    shots(page, "template-new-sms")
    page.get_by_role("button", name="Save template").click()
    page.wait_for_url("**/templates/booth_sms?language=hi&version=1")
    preview_counter = page.locator("#preview-counter")
    assert preview_counter.get_attribute("data-segments") == str(expected.segments)
    assert [v.body for v in versions(world, "booth_sms")] == [typed]
    shots(page, "template-detail-sms")
    assert watched.problems == []


def page_width(page: Any) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def test_template_pages_fit_a_phone(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    watched = open_console("editor", PHONE)
    page = watched.page
    for path, name in [
        ("/templates", "templates"),
        ("/templates/booth_reminder?language=hi", "template-detail"),
        ("/templates/new", "template-new"),
    ]:
        page.goto(path)
        assert page_width(page) <= PHONE["width"], path
        shots(page, name)
    # A refused form on a phone: the problems first, then the fields with their messages.
    page.get_by_label("Name").fill("Bad Name")
    page.locator("#body").fill("Hi {{name}}")
    page.locator("form.template-form").evaluate("(form) => form.noValidate = true")
    page.get_by_role("button", name="Save template").click()
    assert page.locator("[data-error-for='name']").is_visible()
    assert "named placeholder" in page.locator("[data-error-for='body']").inner_text()
    assert page_width(page) <= PHONE["width"]
    shots(page, "template-new-problems")
    assert [p for p in watched.problems if not p.startswith("422 ")] == []
