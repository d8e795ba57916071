"""The canvass campaigns / templates commands: output, exit codes, one-line reasons."""

from __future__ import annotations

import json

from campaigns import dispatch
from tests.campaigns.conftest import BOOTH_SPEC, World


def test_status_export_and_refusals(world: World, run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world.voter("+919800000001", "ward=3")
    world.voter("+919800000002", "ward=3", consent="opted_out")
    spec = tmp_path / "c.yaml"
    spec.write_text(BOOTH_SPEC)
    created = run("campaigns", "create", str(spec))
    assert created.exit_code == 0
    cid = created.output.splitlines()[0]
    assert run("campaigns", "list").output.split()[:3] == [cid, "ready", "whatsapp"]
    refused = run("campaigns", "pause", cid)
    assert refused.exit_code == 1
    allowed = "aborted, active, draft, scheduled"
    assert (
        refused.output.strip() == f"Error: campaign {cid} is ready: cannot pause it (from ready it can go to {allowed})"
    )
    assert "in the past" in run("campaigns", "schedule", cid, "2020-01-01T00:00:00Z").output
    assert "no UTC offset" in run("campaigns", "schedule", cid, "2030-01-01T00:00:00").output
    tested = run("campaigns", "launch", cid, "--test", "98000 00001")
    assert tested.exit_code == 0 and "test campaign" in tested.output and "1 recipients: 1 to send" in tested.output
    assert "2 recipients: 1 to send in 1 batch(es); skipped: opted_out 1" in run("campaigns", "launch", cid).output
    assert run("campaigns", "pause", cid).output.strip() == f"campaign {cid} is paused"
    assert "resumed: 1 still to send" in run("campaigns", "resume", cid).output
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, int(cid), 0)
    numbers = json.loads(run("campaigns", "status", cid, "--json").output)
    assert numbers["status"] == "completed" and numbers["progress"]["completed"] == 1
    assert numbers["not_sent"] == {"skipped": {"opted_out": 1}, "failed": {}}
    watched = run("campaigns", "status", cid, "--watch")  # not a terminal: prints once it stops
    assert "1 sent, 0 failed, 1 skipped, 0 pending" in watched.output
    exported = run("campaigns", "export", cid)
    assert exported.output.startswith("contact_id,phone,name,channel,attempts,status")
    assert "2 row(s) written" in exported.output
    assert run("campaigns", "delete", cid).exit_code == 1
    clone = run("campaigns", "clone", cid)
    assert clone.exit_code == 0 and "'Booth reminder (copy)' is ready" in clone.output
    assert run("campaigns", "delete", clone.output.splitlines()[0]).exit_code == 1  # ready, not a draft
    assert "no campaign 999" in run("campaigns", "status", "999").output


def test_a_bad_spec_creates_nothing(world: World, run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "c.yaml"
    spec.write_text("name: x\nchannel: sms\naudience: {tag: 'bad tag!'}\n")
    result = run("campaigns", "create", str(spec))
    assert result.exit_code == 1
    assert f"{spec}:3:11: audience:" in result.output and "1 problem(s); nothing created" in result.output
    assert "no campaigns yet" in run("campaigns", "list").output


def test_templates_commands(world: World, run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    listed = run("templates", "list").output
    assert "booth_reminder" in listed and "turnout_sms" in listed
    assert "approved" in run("templates", "submit", "booth_reminder", "--language", "en").output
    assert "no hi version" not in run("templates", "submit", "booth_reminder").output
    assert "needs no approval" in run("templates", "submit", "turnout_sms").output
    bad = tmp_path / "t.yaml"
    bad.write_text("template: x\nchannel: fax\nlanguages: {en: {body: hi}}\n")
    result = run("templates", "load", str(bad))
    assert result.exit_code == 1 and f"{bad}:2:10: channel: must be whatsapp or sms" in result.output


def test_status_warns_when_the_deadline_cannot_be_met(world: World, run) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from bot.db import utcnow

    for i in range(30):
        world.voter(f"+91980000{i:04d}", "ward=3")
    deadline = utcnow() + dt.timedelta(seconds=20)
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=0.5, deadline=deadline)
    assert run("campaigns", "launch", str(campaign.id)).exit_code == 0
    shown = run("campaigns", "status", str(campaign.id)).output
    assert "warning: cannot finish before the deadline" in shown and "30 left at 0.5/s" in shown
    numbers = json.loads(run("campaigns", "status", str(campaign.id), "--json").output)
    assert numbers["eta"]["late"] is True and numbers["eta"]["remaining"] == 30
    ok = world.campaign(BOOTH_SPEC.replace("Booth reminder", "Later"), pace_per_s=50)
    assert run("campaigns", "estimate", str(ok.id)).exit_code == 1  # no prices yet: says how to set them
