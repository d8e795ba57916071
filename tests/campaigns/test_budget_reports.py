"""A budget split per channel over the REST API and the CLI: written, read back, refused, reported."""

from __future__ import annotations

import json

from campaigns import pricing
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.campaigns.test_api import SPEC
from tests.campaigns.test_budgets import NO_WAIT

FALLBACK = {
    "channel": "sms",
    "sender": "+919999900002",
    "template": "turnout_sms",
    "variables": {"1": {"contact": "name"}},
}


def priced_voters(world: World, n: int = 3) -> None:
    with world.rt.db.session() as db:
        pricing.set_price(db, "whatsapp", "91", "0.10", "USD")
        pricing.set_price(db, "sms", "91", "0.20", "USD")
    for i in range(n):
        world.voter(f"+91980000{i:04d}", "ward=3", name=f"V{i}")


def test_the_api_takes_a_split_and_gives_it_back(world: World, api) -> None:  # type: ignore[no-untyped-def]
    client, tokens = api
    priced_voters(world)
    body = {**SPEC, "fallback": FALLBACK, "budget": {"total": 1000, "whatsapp": "600", "sms": 399.5}}
    created = client.post("/api/v1/campaigns", json=body, headers=tokens["operator"])
    assert created.status_code == 201, created.get_json()
    campaign = created.get_json()
    assert campaign["status"] == "ready", campaign["problems"]
    assert campaign["budget"] == {"total": "1000", "sms": "399.5", "whatsapp": "600"}
    # What the API gives back is a budget it takes again.
    again = client.post("/api/v1/campaigns", json={**body, "budget": campaign["budget"]}, headers=tokens["operator"])
    assert again.get_json()["budget"] == campaign["budget"]
    shown = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=tokens["viewer"]).get_json()
    assert shown["budget"] == campaign["budget"]
    assert shown["stats"]["spend"]["by_channel"] == {
        "whatsapp": {"spent": "0", "budget": "600"},
        "sms": {"spent": "0", "budget": "399.5"},
    }
    plain = client.post("/api/v1/campaigns", json={**SPEC, "budget": 5}, headers=tokens["operator"]).get_json()
    assert plain["budget"] == {"total": "5"}
    assert client.post("/api/v1/campaigns", json=SPEC, headers=tokens["operator"]).get_json()["budget"] is None


def test_the_api_refuses_a_wrong_split_naming_the_field(world: World, api) -> None:  # type: ignore[no-untyped-def]
    client, tokens = api
    for budget, field, message in (
        ({"sms": 5}, "budget.sms", "budget.sms: the campaign does not send on sms (it sends on whatsapp)"),
        ({"whatsapp": -1}, "budget.whatsapp", "budget.whatsapp: a number of 0 or more, got -1"),
        ({"total": 1, "whatsapp": 2}, "budget", "budget: the whatsapp cap 2 is more than the total 1"),
    ):
        refused = client.post("/api/v1/campaigns", json={**SPEC, "budget": budget}, headers=tokens["operator"])
        assert refused.status_code == 422
        assert (refused.get_json()["field"], refused.get_json()["message"]) == (field, message)


def test_status_and_estimate_show_each_channel(world: World, run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    priced_voters(world)
    spec = tmp_path / "c.yaml"
    spec.write_text(BOOTH_SPEC + NO_WAIT + "budget: {total: 0.50, whatsapp: 0.25, sms: 0.25}\n")
    cid = run("campaigns", "create", str(spec)).output.splitlines()[0]
    estimated = run("campaigns", "estimate", cid).output
    assert "  whatsapp: 0.3 (cap 0.25)\n" in estimated
    assert "  sms: up to 0.6 if every voter needed the fallback (cap 0.25)\n" in estimated
    assert "  warning: the whatsapp estimate 0.3 USD is over its whatsapp cap 0.25" in estimated
    assert "2 to send" in run("campaigns", "launch", cid).output
    world.send(int(cid))
    shown = run("campaigns", "status", cid).output
    assert "  spent 0.2 USD of a budget of 0.5\n    by channel: whatsapp 0.2 of 0.25, sms 0 of 0.25\n" in shown
    numbers = json.loads(run("campaigns", "status", cid, "--json").output)
    assert numbers["spend"]["by_channel"]["sms"] == {"spent": "0", "budget": "0.25"}
