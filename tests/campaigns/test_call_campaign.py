"""A call campaign through the twilio SDK, end to end, against a fake Twilio that plays the calls.

The app serves on a loopback port, ``CANVASS_PROVIDER=twilio`` with ``TWILIO_API_BASE``
at ``tests.fakes.twilio_calls``: the batch job places the calls, the fake rings them,
posts signed status callbacks, fetches our voice webhook and presses the scripted keys.
Voters: one answers and completes the survey, one is busy then answers, one never
answers (attempts run out), one is an answering machine (hung up on, retried), one
presses the opt-out key. Time between attempts is moved on in the database (a fake
clock), not waited for.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update
from werkzeug.serving import make_server

from bot.engine import load_path
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import ConsentEvent, Contact, FunnelEvent, Sender
from campaigns import call_analytics, call_dispatch, dispatch, operations
from campaigns.exporters import REGISTRY
from campaigns.models import Campaign, Recipient
from ivr import placing
from ivr.models import Call
from tests.campaigns.conftest import ROOT, World, seed
from tests.fakes.twilio_calls import Answer, CallScript, FakeTwilioCalls

SID = "AC" + "6f" * 16
TOKEN = "call-campaign-auth-token"
LINE = "+911140000000"
ASHA, RAVI, BINA, MONA, OPAL = (f"+91980000001{n}" for n in range(5))
SPEC = f"""
name: Polling-day survey call
channel: voice
sender: "{LINE}"
flow: ivr_survey
audience: {{tag: ward}}
pace: 20/s
voice:
  attempts: 2
  retry_after: 60m
  ring_timeout: 20s
  max_concurrent: 10
  on_machine: hangup
  opt_out_digit: "9"
"""


@dataclasses.dataclass
class Live:
    world: World
    fake: FakeTwilioCalls

    def send(self, campaign_id: int, batch: int = 0) -> dict[str, Any]:
        rt = self.world.rt
        counts = dispatch.send_batch(rt.db, rt.settings, rt.redis, campaign_id, batch)
        self.fake.wait_idle(20)
        return counts

    def recipients(self, campaign_id: int) -> dict[str, Recipient]:
        with self.world.rt.db.session() as db:
            stmt = select(Contact.phone, Recipient).join(Contact, Contact.id == Recipient.contact_id)
            return dict(db.execute(stmt.where(Recipient.campaign_id == campaign_id)).tuples().all())

    def an_hour_later(self, campaign_id: int) -> None:
        """The fake clock: every retry is due now."""
        with self.world.rt.db.session() as db:
            db.execute(
                update(Recipient)
                .where(Recipient.campaign_id == campaign_id, Recipient.retry_at.is_not(None))
                .values(retry_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
            )


@pytest.fixture
def live(make_app) -> Iterator[Live]:  # type: ignore[no-untyped-def]
    fake = FakeTwilioCalls(SID, TOKEN).start()
    holder: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True)
    app = make_app(
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_API_BASE=fake.url,
        TWILIO_TIMEOUT_S="2",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{server.server_port}",
        CANVASS_TTS="twilio",
        CANVASS_VOICE_CPS="50",
    )
    holder["app"] = app
    rt = app.extensions["canvass"]
    seed(rt, provider="twilio")
    with rt.db.session() as db:
        path = ROOT / "flows" / "ivr_survey.yaml"
        store(db, load_path(path), path.read_text())
        db.add(Sender(provider="twilio", channel="voice", address=LINE, healthy=True, rate_per_s=10))
    clear_cache()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    try:
        yield Live(World(rt, app), fake)
    finally:
        fake.stop()
        server.shutdown()
        serving.join(timeout=5)
        server.server_close()
        placing.close_providers()
        clear_cache()


def test_a_call_campaign_places_retries_and_follows_every_call(live: Live) -> None:
    world, fake = live.world, live.fake
    for phone in (ASHA, RAVI, BINA, MONA, OPAL):
        world.voter(phone, "ward=3")
    completes = CallScript(digits=("1", "2", "3"), duration_s=41)
    fake.for_recipient(ASHA, Answer(callbacks=completes))
    fake.for_recipient(RAVI, Answer(callbacks=CallScript("busy")), Answer(callbacks=completes))
    fake.for_recipient(BINA, Answer(callbacks=CallScript("no-answer")), Answer(callbacks=CallScript("no-answer")))
    machine = CallScript(answered_by="machine_end_beep", duration_s=3)
    fake.for_recipient(MONA, Answer(callbacks=machine), Answer(callbacks=machine))
    fake.for_recipient(OPAL, Answer(callbacks=CallScript(digits=("9",))))

    campaign = world.campaign(SPEC)
    assert campaign.status == "ready", campaign.problems
    plan = operations.launch(world.rt, campaign.id)
    assert plan.pending == 5
    live.send(campaign.id)

    first = live.recipients(campaign.id)
    assert first[ASHA].status == "delivered" and first[OPAL].status == "delivered"
    for phone, code in ((RAVI, "busy"), (BINA, "no-answer"), (MONA, "machine")):
        assert (first[phone].status, first[phone].error_code, first[phone].attempts) == ("pending", code, 1)
        assert first[phone].retry_at is not None
    assert world.get(campaign.id).status == "active"  # retries are still to come
    # Not due yet: a batch run now calls nobody.
    assert live.send(campaign.id).get("sent", 0) == 0

    live.an_hour_later(campaign.id)
    live.send(campaign.id)
    final = live.recipients(campaign.id)
    assert (final[RAVI].status, final[RAVI].attempts) == ("delivered", 2)
    assert (final[BINA].status, final[BINA].error_code, final[BINA].attempts) == ("failed", "no-answer", 2)
    assert (final[MONA].status, final[MONA].error_code) == ("failed", "machine")
    assert world.get(campaign.id).status == "completed"

    with world.rt.db.session() as db:
        assert db.scalar(select(Contact.consent).where(Contact.phone == OPAL)) == "opted_out"
        event = db.scalar(select(ConsentEvent))
        assert (event.source, event.channel) == ("keypad", "voice")
        calls = db.scalars(select(Call).where(Call.campaign_id == campaign.id).order_by(Call.id)).all()
        assert len(calls) == 8  # 5 first calls, 3 retries
        assert all(c.sid and c.sid.startswith("CA") for c in calls)
        asha = next(c for c in calls if c.recipient_id == first[ASHA].id)
        assert (asha.status, asha.answered_by, asha.duration_s) == ("completed", "human", 41)
        steps = list(
            db.scalars(
                select(FunnelEvent.step).where(FunnelEvent.session_id == asha.session_id).order_by(FunnelEvent.id)
            )
        )
        assert steps == ["started", "q1", "q2", "q3", "completed"]
        mona = [c for c in calls if c.recipient_id == first[MONA].id]
        assert [c.answered_by for c in mona] == ["machine", "machine"] and all(c.session_id is None for c in mona)
    # Nothing is left holding a live-call slot.
    assert call_dispatch.live_calls(world.rt.redis, world.get(campaign.id)).free() == 10

    with world.rt.db.session() as db:
        stats = call_analytics.measure(db, db.get(Campaign, campaign.id))
    assert (stats.calls, stats.voters_called, stats.voters_answered, stats.machines) == (8, 5, 3, 2)
    # Asha and Ravi finished the survey; Opal opted out at the first question.
    assert (stats.completed_flows, stats.answered_calls) == (2, 3)
    assert round(stats.completion_rate, 3) == 0.667 and stats.answer_rate == 0.6
    assert stats.average_duration_s is not None and stats.average_duration_s > 0
    first_question = stats.questions[0]
    assert (first_question.node, first_question.heard, first_question.answered) == ("will_vote", 3, 2)
    assert [q.node for q in stats.questions] == ["will_vote", "knows_booth", "transport"]

    out = io.StringIO()
    with world.rt.db.session() as db:
        REGISTRY["csv"](db, db.get(Campaign, campaign.id)).write(out)
    rows = {r["phone"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert rows[ASHA]["answered_by"] == "human" and rows[ASHA]["call_duration_s"] == "41"
    assert rows[ASHA]["funnel:completed"] and rows[ASHA]["answer:transport"] == "3"
    assert (rows[RAVI]["attempts"], rows[BINA]["status"], rows[BINA]["error_code"]) == ("2", "failed", "no-answer")


def test_max_concurrent_calls_holds_the_rest_back(live: Live) -> None:
    world = live.world
    for n in range(4):
        world.voter(f"+9198000002{n:02d}", "ward=3")
    campaign = world.campaign(SPEC.replace("max_concurrent: 10", "max_concurrent: 2"))
    operations.launch(world.rt, campaign.id)
    slots = call_dispatch.live_calls(world.rt.redis, world.get(campaign.id))
    # Two calls are live elsewhere: the batch may place none now, and says it will look again.
    assert slots.take(10_001) and slots.take(10_002)
    counts = dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    assert counts.get("sent", 0) == 0
    assert all(r.status == "pending" for r in live.recipients(campaign.id).values())
    slots.give_back(10_001)
    slots.give_back(10_002)
    live.send(campaign.id)
    assert sum(r.status == "delivered" for r in live.recipients(campaign.id).values()) >= 2


def test_calls_wait_for_the_voters_call_window(live: Live) -> None:
    """Outside the call window nobody is called: the batch is queued for the opening (the clock is real)."""
    from rq import Queue

    from tests.campaigns.test_compliance import closed_window

    world = live.world
    world.voter(ASHA, "ward=3")
    start, end, opens = closed_window()
    campaign = world.campaign(SPEC, send_windows=[{"start": start, "end": end, "timezone": "UTC"}])
    operations.launch(world.rt, campaign.id)
    assert live.send(campaign.id) == {}
    assert live.fake.requests_to(ASHA) == []
    assert live.recipients(campaign.id)[ASHA].status == "pending"
    scheduled = Queue("sends", connection=world.rt.redis).scheduled_job_registry.get_job_ids()
    assert scheduled == [f"batch-{campaign.id}-0-w{int(opens.timestamp())}"]
    with world.rt.db.session() as db:
        assert db.scalar(select(Call.id)) is None  # no call row either: nothing was placed


def test_after_the_last_unanswered_call_an_sms_fallback_follows(live: Live) -> None:
    from campaigns import reconciler
    from campaigns.fallback import FALLBACK_BASE

    world, fake = live.world, live.fake
    world.voter(BINA, "ward=3")
    fake.for_recipient(BINA, Answer(callbacks=CallScript("no-answer")), Answer(callbacks=CallScript("busy")))
    fallback = (
        'fallback:\n  channel: sms\n  sender: "+919999900002"\n'
        "  template: turnout_sms\n  variables: {1: {contact: name}}\n"
    )
    campaign = world.campaign(SPEC + fallback)
    assert campaign.status == "ready", campaign.problems
    operations.launch(world.rt, campaign.id)
    live.send(campaign.id)
    live.an_hour_later(campaign.id)
    live.send(campaign.id)
    bina = live.recipients(campaign.id)[BINA]
    assert (bina.status, bina.error_code, bina.attempts) == ("failed", "busy", 2)
    assert world.get(campaign.id).status == "active"  # a fallback is still to come

    reconciler.reconcile(world.rt)
    bina = live.recipients(campaign.id)[BINA]
    assert (bina.channel, bina.status) == ("sms", "pending") and bina.batch >= FALLBACK_BASE


def test_refused_placements_fail_or_wait_without_using_up_calls(live: Live) -> None:
    world, fake = live.world, live.fake
    world.voter(ASHA, "ward=3")
    world.voter(BINA, "ward=3")
    fake.for_recipient(ASHA, Answer.refused(21211))  # not a number Twilio can call: failed, not retried
    fake.for_recipient(BINA, Answer.rate_limited(), Answer(callbacks=CallScript("no-answer")))
    campaign = world.campaign(SPEC)
    operations.launch(world.rt, campaign.id)
    live.send(campaign.id)  # one refusal and one 429 in the same batch: the batch settles both
    rows = live.recipients(campaign.id)
    assert (rows[ASHA].status, rows[ASHA].error_code) == ("failed", "21211")
    assert rows[BINA].status == "pending"
    live.send(campaign.id)  # the retry of the 429: the call rings, nobody answers
    rows = live.recipients(campaign.id)
    # The 429 was no call: one real call so far, so the voter is still due a second one.
    assert (rows[BINA].status, rows[BINA].error_code) == ("pending", "no-answer")
    assert rows[BINA].retry_at is not None
