"""Calls that never report their end, aborted call campaigns, refused placements — on the sandbox provider.

The sandbox places calls and never posts a status callback: exactly the call whose final
status was lost, which the scheduler's sweep must settle.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.db import utcnow
from bot.engine import load_path
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import Sender
from campaigns import call_dispatch, dispatch, operations, reconciler
from campaigns.models import Recipient
from ivr import placing
from ivr.calls import CallDesk
from ivr.links import CallLinks
from ivr.models import Call
from ivr.providers import VoiceRequest
from tests.campaigns.conftest import ROOT, World

LINE = "+919999900003"
SPEC = f"""
name: Sweep
channel: voice
sender: "{LINE}"
flow: ivr_survey
audience: {{tag: ward}}
pace: 10/s
voice: {{attempts: 2, retry_after: 60m}}
"""


def voice(world: World) -> None:
    with world.rt.db.session() as db:
        path = ROOT / "flows" / "ivr_survey.yaml"
        store(db, load_path(path), path.read_text())
        db.add(Sender(provider="sandbox", channel="voice", address=LINE, healthy=True, rate_per_s=10))
    clear_cache()


def launched(world: World, n: int = 2) -> int:
    voice(world)
    for i in range(n):
        world.voter(f"+91980000030{i}", "ward=3")
    campaign = world.campaign(SPEC)
    operations.launch(world.rt, campaign.id)
    assert dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0).get("sent") == n
    return campaign.id


def test_calls_that_never_report_their_end_are_settled_by_the_sweep(world: World) -> None:
    campaign_id = launched(world)
    try:
        # Not yet overdue: nothing moves.
        assert reconciler.reconcile(world.rt)["calls"] == 0
        done = reconciler.reconcile(world.rt, now=utcnow() + dt.timedelta(hours=1))
        assert done["calls"] == 2
    finally:
        placing.close_providers()
    with world.rt.db.session() as db:
        calls = db.scalars(select(Call).where(Call.campaign_id == campaign_id)).all()
        assert {c.status for c in calls} == {"no-answer"}
        rows = db.scalars(select(Recipient).where(Recipient.campaign_id == campaign_id)).all()
        assert {(r.status, r.error_code) for r in rows} == {("pending", "no-answer")}
        assert all(r.retry_at is not None for r in rows)
    assert call_dispatch.live_calls(world.rt.redis, world.get(campaign_id)).free() == 10


def test_an_aborted_call_campaign_hangs_up_and_answers_nobody(world: World) -> None:
    campaign_id = launched(world, 1)
    try:
        operations.stop(world.rt, campaign_id, operations.S.ABORTED)
    finally:
        placing.close_providers()
    with world.rt.db.session() as db:
        call = db.scalar(select(Call).where(Call.campaign_id == campaign_id))
        desk = CallDesk(
            db,
            links=CallLinks(world.rt.settings.public_base_url, world.rt.settings.secret_key),
            region="IN",
            wanted=lambda c: c.campaign_id != campaign_id,
        )
        req = VoiceRequest(
            call_sid=call.sid, from_phone=LINE, to="+919800000300", direction="outbound-api", call_status="in-progress"
        )
        answered = desk.answer(req, call.id, desk.links.sign(call.id, 0))
        assert answered.twiml.endswith("<Response><Hangup /></Response>")
        assert call.session_id is None
