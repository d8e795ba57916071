"""The sandbox phone in a real headless Chromium: take a call from a voice flow, answer a campaign's call.

The prompts are rendered by espeak-ng and played by the page's <audio> element (Chromium
runs with autoplay allowed and a fake audio output); keys are clicked on the keypad.
Screenshots at a laptop and a phone width.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from bot.engine import load_path
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import FunnelEvent, Sender
from campaigns import dispatch, operations
from campaigns.models import Recipient
from ivr.models import Call, VoiceLine
from tests.campaigns.conftest import ROOT, World
from tests.web.browser import PHONE

LINE = "+919999900003"
VOTER = "+919800000001"
CALL_SPEC = f"""
name: Survey call
channel: voice
sender: "{LINE}"
flow: ivr_survey
audience: {{tag: ward}}
pace: 5/s
"""


def wait_until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out waiting for the page"
        time.sleep(0.1)
    return found


def voice_world(world: World) -> None:
    with world.rt.db.session() as db:
        path = ROOT / "flows" / "ivr_survey.yaml"
        store(db, load_path(path), path.read_text())
        db.add(Sender(provider="sandbox", channel="voice", address=LINE, healthy=True, rate_per_s=5))
        db.add(VoiceLine(address=LINE, flow_name="ivr_survey"))
    clear_cache()


def transcript(page: Any) -> str:
    return str(page.locator("#transcript").inner_text())


def press(page: Any, key: str, then: str) -> None:
    wait_until(lambda: not page.locator(f"#keypad .key[data-key='{key}']").is_disabled())
    page.locator(f"#keypad .key[data-key='{key}']").click()
    wait_until(lambda: then in transcript(page))


def survey(page: Any) -> None:
    press(page, "1", "Do you know where your booth is?")
    press(page, "2", "How will you get there?")
    press(page, "3", "Thank you for your answers.")
    wait_until(lambda: page.locator("#state").inner_text() == "The flow hung up")


def test_a_voter_calls_a_line_and_answers_on_the_keypad(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    voice_world(world)
    watched = open_console("operator")
    page = watched.page
    page.goto("/sandbox/phone")
    page.get_by_label("Voter's number").fill(VOTER)
    page.get_by_role("button", name="Call").click()
    wait_until(lambda: "Listening" in page.locator("#state").inner_text())
    assert "Namaste. This is a short survey" in transcript(page)
    # The prompt is rendered audio, served by canvass and loaded by the browser.
    src = page.locator("#speaker").evaluate("el => el.currentSrc")
    assert src.endswith(".wav"), src
    assert page.locator("#speaker").evaluate("el => el.duration") > 1.0
    shots(page, "phone-call")
    survey(page)
    shots(page, "phone-call-done")
    assert watched.problems == []

    with world.rt.db.session() as db:
        call = db.scalar(select(Call))
        assert (call.status, call.direction) == ("completed", "inbound")
        steps = list(db.scalars(select(FunnelEvent.step).where(FunnelEvent.session_id == call.session_id)))
        assert sorted(steps) == sorted(["started", "q1", "q2", "q3", "completed"])


def test_a_campaign_call_rings_the_phone_and_is_answered(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    voice_world(world)
    world.voter(VOTER, "ward=3", name="Asha")
    world.voter("+919800000002", "ward=3", name="Ravi")
    campaign = world.campaign(CALL_SPEC)
    operations.launch(world.rt, campaign.id)
    counts = dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    assert counts.get("sent") == 2

    watched = open_console("operator", PHONE)
    page = watched.page
    page.goto("/sandbox/phone")
    page.get_by_label("Voter's number").fill("+919800000002")
    ringing = page.locator("#ringing li")
    wait_until(lambda: ringing.count() == 1)
    assert "Survey call" in ringing.inner_text()
    ringing.get_by_role("button", name="Decline").click()
    wait_until(lambda: ringing.count() == 0)

    page.get_by_label("Voter's number").fill(VOTER)
    wait_until(lambda: ringing.count() == 1)
    shots(page, "phone-ringing")
    ringing.get_by_role("button", name="Answer").click()
    wait_until(lambda: "Listening" in page.locator("#state").inner_text())
    survey(page)
    shots(page, "phone-campaign-call-done")
    assert watched.problems == []

    with world.rt.db.session() as db:
        rows = dict(
            db.execute(select(Recipient.contact_id, Recipient.status).where(Recipient.campaign_id == campaign.id)).all()
        )
        statuses = sorted(rows.values())
        # Asha answered; Ravi declined (busy): pending again, for a retry an hour later.
        assert statuses == ["delivered", "pending"]
