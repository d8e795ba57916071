"""Send windows and blackouts applied to campaigns: at launch, at send time, and from the settings."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from rq import Queue
from sqlalchemy import select, update

from bot.channels.base import Outbound, Sent
from bot.db import utcnow
from bot.models import Contact
from bot.sendwindows import parse_windows
from bot.settings import Settings, SettingsError
from campaigns import dispatch, operations
from campaigns.models import Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World, seed

SMS_SPEC = """
name: SMS
channel: sms
sender: "+919999900002"
template: turnout_sms
variables: {1: {contact: name}}
audience: {tag: ward}
flow: {name: turnout_reminder, at: rsvp}
pace: 50/s
"""


def closed_window() -> tuple[str, str, dt.datetime]:
    """A one-hour UTC window starting two hours from now (so closed now), and when it opens."""
    now = utcnow()
    opens = (now + dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    closes = opens + dt.timedelta(hours=1)
    return opens.strftime("%H:%M"), closes.strftime("%H:%M"), opens


def statuses(world: World, campaign_id: int) -> dict[int, tuple[str, str | None]]:
    with world.rt.db.session() as db:
        rows = db.execute(
            select(Recipient.contact_id, Recipient.status, Recipient.skip_code).where(
                Recipient.campaign_id == campaign_id
            )
        )
        return {cid: (status, code) for cid, status, code in rows}


def test_outside_its_window_a_batch_waits_for_the_opening(world: World) -> None:
    voter = world.voter("+919800000001", "ward=3")
    start, end, opens = closed_window()
    campaign = world.campaign(BOOTH_SPEC, send_windows=[{"start": start, "end": end, "timezone": "UTC"}])
    operations.launch(world.rt, campaign.id)
    assert dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0) == {}
    assert statuses(world, campaign.id)[voter] == ("pending", None)
    with world.rt.db.session() as db:
        row = db.scalar(select(Recipient).where(Recipient.campaign_id == campaign.id))
        assert row is not None and (row.attempts, row.message_id) == (0, None)
    scheduled = Queue("sends", connection=world.rt.redis).scheduled_job_registry
    assert scheduled.get_job_ids() == [f"batch-{campaign.id}-0-w{int(opens.timestamp())}"]
    assert world.get(campaign.id).status == "active"


def test_the_deployments_window_applies_whatever_the_campaign_says(make_app) -> None:  # type: ignore[no-untyped-def]
    start, end, _ = closed_window()
    app = make_app(CANVASS_ACTIONS="flows.actions", CANVASS_SEND_WINDOW=f"{start}-{end}@UTC")
    world = World(app.extensions["canvass"], app)
    seed(world.rt)
    voter = world.voter("+919800000001", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)  # no window of its own
    operations.launch(world.rt, campaign.id)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    assert statuses(world, campaign.id)[voter] == ("pending", None)


def test_sms_validity_ends_with_the_window(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    provider = scripted(lambda m: Sent(provider_id=f"SM{m.message_id:032d}", status="queued"))
    world.voter("+919800000001", "ward=3")
    now = utcnow()
    closes = now + dt.timedelta(minutes=90)
    window = {
        "start": (now - dt.timedelta(hours=1)).strftime("%H:%M"),
        "end": closes.strftime("%H:%M"),
        "timezone": "UTC",
    }
    campaign = world.campaign(SMS_SPEC, send_windows=[window])
    operations.launch(world.rt, campaign.id)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    [sent] = provider.sent
    assert isinstance(sent, Outbound) and sent.validity_s is not None
    left = (closes.replace(second=0, microsecond=0) - now).total_seconds()
    assert left - 120 <= sent.validity_s <= left


def test_a_blackout_that_outlasts_the_campaign_skips_its_voters(world: World) -> None:
    now = utcnow()
    silenced = world.voter("+919800000001", "ward=3", "constituency=kothrud")
    elsewhere = world.voter("+919800000002", "ward=3", "constituency=pune-central")
    short = world.voter("+919800000003", "ward=3", "constituency=baner")
    blackouts = [
        {
            "from": (now - dt.timedelta(hours=1)).isoformat(),
            "to": (now + dt.timedelta(days=3)).isoformat(),
            "tag": "constituency",
            "value": "kothrud",
            "reason": "48 h silence",
        },
        {
            "from": (now - dt.timedelta(hours=1)).isoformat(),
            "to": (now + dt.timedelta(hours=2)).isoformat(),
            "tag": "constituency",
            "value": "baner",
            "reason": "local silence",
        },
    ]
    campaign = world.campaign(BOOTH_SPEC, blackouts=blackouts, deadline=now + dt.timedelta(days=1))
    plan = operations.launch(world.rt, campaign.id)
    assert plan.skipped == {"outside_blackout": 1}
    got = statuses(world, campaign.id)
    assert got[silenced] == ("skipped", "outside_blackout")
    # A blackout that ends before the deadline only delays: the voter waits at send time.
    assert got[short] == got[elsewhere] == ("pending", None)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    got = statuses(world, campaign.id)
    assert got[elsewhere][0] == "delivered" and got[short] == ("pending", None)


def test_a_passed_deadline_is_a_problem(world: World) -> None:
    campaign = world.campaign(BOOTH_SPEC, deadline=utcnow() - dt.timedelta(minutes=1))
    assert campaign.status == "draft" and "deadline: it has passed" in campaign.problems


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CANVASS_SEND_WINDOW": "night"}, "CANVASS_SEND_WINDOW: 'night': a preset"),
        ({"CANVASS_SEND_WINDOW": "09:00-21:00@Mars/Olympus"}, "CANVASS_SEND_WINDOW: send_window[0].timezone: unknown"),
        ({"CANVASS_BLACKOUTS": "/nonexistent/blackouts.yaml"}, "CANVASS_BLACKOUTS: cannot read"),
    ],
)
def test_bad_policy_settings_name_the_variable(env: dict[str, str], message: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Settings.from_env({"SECRET_KEY": "x", **env}, var_dir=tmp_path)


def test_policy_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "blackouts.yaml"
    path.write_text(
        "- {from: '2026-11-18T18:00:00+05:30', to: '2026-11-20T18:00:00+05:30', tag: constituency, value: kothrud}\n"
    )
    settings = Settings.from_env(
        {"SECRET_KEY": "x", "CANVASS_SEND_WINDOW": "india_election, 09:00-21:00", "CANVASS_BLACKOUTS": str(path)},
        var_dir=tmp_path,
    )
    assert [w.name for w in settings.send_windows] == ["india_election", "custom"]
    assert settings.blackouts[0].value == "kothrud"
    path.write_text("- {from: tomorrow, to: '2026-11-20T18:00:00+05:30'}\n")
    with pytest.raises(SettingsError, match=r"CANVASS_BLACKOUTS: .*not an ISO-8601 time"):
        Settings.from_env({"SECRET_KEY": "x", "CANVASS_BLACKOUTS": str(path)}, var_dir=tmp_path)


def test_a_blackout_finds_its_voters_whatever_the_case_of_its_tag(world: World) -> None:
    now = utcnow()
    silenced = world.voter("+919800000001", "ward=3", "constituency=kothrud")
    delayed = world.voter("+919800000002", "ward=3", "constituency=baner")
    blackouts = [
        {
            "from": (now - dt.timedelta(hours=1)).isoformat(),
            "to": (now + dt.timedelta(days=3)).isoformat(),
            "tag": "Constituency",  # contacts' tag names are stored lower-case
            "value": "Kothrud ",
        },
        {
            "from": (now - dt.timedelta(hours=1)).isoformat(),
            "to": (now + dt.timedelta(hours=2)).isoformat(),
            "tag": "CONSTITUENCY",
            "value": "BANER",
        },
    ]
    campaign = world.campaign(BOOTH_SPEC, blackouts=blackouts, deadline=now + dt.timedelta(days=1))
    assert operations.launch(world.rt, campaign.id).skipped == {"outside_blackout": 1}  # in SQL, at launch
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    got = statuses(world, campaign.id)
    assert got[silenced] == ("skipped", "outside_blackout")
    assert got[delayed] == ("pending", None)  # at send time: waits for its silence to end


def kothrud_silence(starts: dt.datetime, ends: dt.datetime) -> dict[str, str]:
    """A campaign's blackout for the voters tagged constituency=kothrud."""
    return {"from": starts.isoformat(), "to": ends.isoformat(), "tag": "constituency", "value": "kothrud"}


def test_a_silence_begun_since_the_launch_that_outlasts_the_deadline_skips_its_voters(world: World) -> None:
    now = utcnow()
    silenced = world.voter("+919800000001", "ward=3", "constituency=kothrud")
    elsewhere = world.voter("+919800000002", "ward=3", "constituency=baner")
    starts = now + dt.timedelta(seconds=1)
    blackouts = [kothrud_silence(starts, now + dt.timedelta(days=2))]
    campaign = world.campaign(BOOTH_SPEC, blackouts=blackouts, deadline=now + dt.timedelta(days=1))
    assert operations.launch(world.rt, campaign.id).skipped == {}  # it could still be sent before the silence
    while utcnow() <= starts:
        time.sleep(0.05)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    got = statuses(world, campaign.id)
    # Sent after the deadline otherwise (when the silence ends): skipped, with the reason.
    assert got[silenced] == ("skipped", "outside_blackout")
    assert got[elsewhere][0] == "delivered"
    assert world.get(campaign.id).status == "completed"


def test_a_voter_of_an_area_split_between_zones_waits_for_the_window_in_both(world: World) -> None:
    """+1 605 is on Mountain and Central time: the window must be open in both."""
    from zoneinfo import ZoneInfo

    split = world.voter("+16055550101", "ward=3")
    central = world.voter("+13125550101", "ward=3")  # Chicago only
    now = utcnow()
    start = (now.astimezone(ZoneInfo("America/Chicago")) - dt.timedelta(minutes=30)).replace(second=0, microsecond=0)
    end = start + dt.timedelta(hours=4)
    # Open for half an hour in Central time; opens in half an hour in Mountain time.
    window = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    campaign = world.campaign(BOOTH_SPEC, send_windows=[window])
    operations.launch(world.rt, campaign.id)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    got = statuses(world, campaign.id)
    assert got[central][0] == "delivered"
    assert got[split] == ("pending", None)
    opens = start.replace(tzinfo=None).replace(tzinfo=ZoneInfo("America/Denver"))  # the same time, in Mountain
    scheduled = Queue("sends", connection=world.rt.redis).scheduled_job_registry.get_job_ids()
    assert scheduled == [f"batch-{campaign.id}-0-w{int(opens.timestamp())}"]


def test_the_eta_warns_of_voters_a_coming_silence_holds_past_the_deadline(world: World) -> None:
    from campaigns import progress

    now = utcnow()
    for i in range(3):
        world.voter(f"+91980000000{i}", "ward=3", "constituency=Kothrud")
    world.voter("+919800000009", "ward=3", "constituency=baner")
    starts = now + dt.timedelta(hours=1)
    blackouts = [kothrud_silence(starts, now + dt.timedelta(days=3))]
    campaign = world.campaign(BOOTH_SPEC, blackouts=blackouts, deadline=now + dt.timedelta(days=1), pace_per_s=0.0005)
    operations.launch(world.rt, campaign.id)
    with world.rt.db.session() as db:
        found = progress.eta_for(db, world.rt.settings, world.get(campaign.id))
    assert "3 waiting voter(s) with constituency=kothrud are silenced from" in (found.warning() or "")


def zoned(world: World, phone: str, zone: str) -> int:
    voter = world.voter(phone, "ward=3")
    with world.rt.db.session() as db:
        db.execute(update(Contact).where(Contact.id == voter).values(timezone=zone))
    return voter


# 09:00-10:00 in Kolkata is 22:30-23:30 in New York: never inside the voter's 08:00-21:00 there.
NIGHT_IN_NEW_YORK = ["us_tcpa", {"start": "09:00", "end": "10:00", "timezone": "Asia/Kolkata"}]


def test_windows_that_never_overlap_for_anyone_refuse_the_launch(world: World) -> None:
    zoned(world, "+919800000001", "Asia/Kolkata")
    windows = [{"start": "08:00", "end": "09:00", "timezone": "Asia/Kolkata"}, {"start": "20:00", "end": "21:00"}]
    campaign = world.campaign(
        BOOTH_SPEC,
        send_windows=[windows[0], {**windows[1], "timezone": "Asia/Kolkata"}],
        deadline=utcnow() + dt.timedelta(days=1),
    )
    from campaigns import forecast

    with world.rt.db.session() as db:
        found = forecast.forecast(db, world.rt.settings, world.get(campaign.id))
    assert [w for w in found.warnings if "price" not in w] == [  # nothing said of a deadline or an ETA
        "send_window: the windows never overlap for voters in Asia/Kolkata (1 voter): no moment allows sending "
        "them; it cannot be launched"
    ]
    assert found.eta is not None and found.eta.finishes_at is None
    with pytest.raises(operations.CampaignError) as refused:
        operations.launch(world.rt, campaign.id)
    assert str(refused.value) == (
        f"campaign {campaign.id} cannot be launched: send_window: the windows never overlap for voters in "
        "Asia/Kolkata (1 voter): no moment allows sending them"
    )
    assert world.get(campaign.id).status == "ready"  # nothing was planned


def test_voters_where_the_windows_never_overlap_are_skipped_and_forecast(world: World) -> None:
    from campaigns import forecast

    india = zoned(world, "+919800000001", "Asia/Kolkata")
    new_york = zoned(world, "+12125550101", "America/New_York")
    campaign = world.campaign(BOOTH_SPEC, send_windows=NIGHT_IN_NEW_YORK)
    with world.rt.db.session() as db:
        found = forecast.forecast(db, world.rt.settings, world.get(campaign.id))
    assert (
        "send_window: the windows never overlap for voters in America/New_York (1 voter): no moment allows "
        "sending them; they will be skipped (outside_blackout)" in found.warnings
    )
    plan = operations.launch(world.rt, campaign.id)
    assert (plan.pending, plan.skipped) == (1, {"outside_blackout": 1})
    got = statuses(world, campaign.id)
    assert got[india] == ("pending", None) and got[new_york] == ("skipped", "outside_blackout")


def test_a_voter_whose_windows_stopped_overlapping_after_the_launch_is_skipped_with_the_reason(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaigns import compliance

    new_york = zoned(world, "+12125550101", "America/New_York")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    # The deployment's windows changed since: the batch job reads them at send time.
    original = compliance.policy_for

    def narrowed(settings, c, db):  # type: ignore[no-untyped-def]
        found = original(settings, c, db)
        return type(found)(windows=found.windows + parse_windows(NIGHT_IN_NEW_YORK), blackouts=found.blackouts)

    monkeypatch.setattr(compliance, "policy_for", narrowed)
    summary = dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    assert summary == {}  # nothing sent, and the job did not fail
    assert statuses(world, campaign.id)[new_york] == ("skipped", "outside_blackout")
    with world.rt.db.session() as db:
        why = db.scalar(select(Recipient.error_msg).where(Recipient.contact_id == new_york))
    assert why == "the send windows never overlap in America/New_York: no moment allows sending"
    assert world.get(campaign.id).status == "completed"
