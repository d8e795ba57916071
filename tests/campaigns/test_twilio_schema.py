"""What the campaign sender asks of Twilio, checked against Twilio's own OpenAPI document.

A real batch job (claims, rendering, the status callback URL) sends one voter through
the twilio SDK to Stoplight Prism, which refuses (422) any request that does not match
Twilio's schema. One database backend is enough: the request does not depend on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.channels import REGISTRY
from bot.channels.twilio_base import TwilioAccount
from bot.flowlibrary import clear_cache
from bot.models import Sender
from bot.settings import Settings
from campaigns import dispatch, operations
from campaigns.models import Recipient, TemplateVersion
from tests.campaigns.conftest import BOOTH_SPEC, EXAMPLES, SMS, WHATSAPP, World, seed
from tests.fakes.prism import PrismHttpClient, prism_provider

SID, TOKEN = "AC" + "0123456789abcdef" * 2, "schema-token"
CONTENT_SID = "HX" + "fedcba9876543210" * 2
SERVICE = "MG" + "89abcdef01234567" * 2
PUBLIC = "https://canvass.example.org"
VOTER = "+919800000001"
MEDIA = "https://canvass.example.org/static/booth.jpg"


@pytest.fixture
def prism_world(
    make_app, prism_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[World, list[PrismHttpClient]]]:  # type: ignore[no-untyped-def]
    app = make_app(
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_API_BASE=prism_url,
        PUBLIC_BASE_URL=PUBLIC,
        CANVASS_ACTIONS="flows.actions",
    )
    seed(app.extensions["canvass"], provider="twilio", content_sid=CONTENT_SID)
    clients: list[PrismHttpClient] = []

    def through_prism(settings: Settings, sender: Sender) -> Any:
        kind = REGISTRY[f"twilio_{sender.channel}"]
        provider, http = prism_provider(kind, TwilioAccount.from_settings(settings))  # type: ignore[arg-type]
        clients.append(http)
        providers.append(provider)
        return provider

    providers: list[Any] = []
    monkeypatch.setattr(dispatch, "provider_for", through_prism)
    yield World(app.extensions["canvass"], app), clients
    for provider in providers:
        provider.close()
    clear_cache()


def _sms_service(world: World, sid: str) -> None:
    with world.rt.db.session() as db:
        db.execute(update(Sender).where(Sender.address == SMS).values(messaging_service_sid=sid))


def _media_header(world: World, _: str) -> None:
    with world.rt.db.session() as db:
        db.execute(update(TemplateVersion).values(content_sid=None, media_url=MEDIA, media_kind="image"))


SMS_SPEC = (EXAMPLES / "turnout_sms.yaml").read_text()
CASES: dict[str, tuple[str, Callable[[World, str], None] | None, str | None]] = {
    # case: (campaign spec, change before launch, Messaging Service SID)
    "whatsapp_template": (BOOTH_SPEC, None, None),
    "sms": (SMS_SPEC, None, None),
    "messaging_service": (SMS_SPEC, _sms_service, SERVICE),
    "whatsapp_media_header": (BOOTH_SPEC, _media_header, None),
    "malformed_messaging_service": (SMS_SPEC, _sms_service, "MG123"),  # negative control
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", list(CASES))
def test_campaign_sends_match_twilio_schema(prism_world, case: str) -> None:  # type: ignore[no-untyped-def]
    world, clients = prism_world
    spec, change, service = CASES[case]
    world.voter(VOTER, "ward=3", "volunteer", name="Asha")
    if change is not None:
        change(world, service or "")
    campaign = world.campaign(spec, pace_per_s=50)
    operations.launch(world.rt, campaign.id)

    counts = dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)

    (http,) = clients
    (data,) = http.sent
    with world.rt.db.session() as db:
        recipient = db.scalar(select(Recipient).where(Recipient.campaign_id == campaign.id))
        assert recipient is not None
    if case.startswith("malformed"):
        assert http.statuses == [422]  # Prism really checks: a schema violation, not 401 or 404
        assert counts == {"failed": 1} and recipient.status == "failed"
        return
    assert http.statuses == [201], http.statuses
    assert counts == {"sent": 1} and recipient.status == "sent"
    assert data["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/message-status?m={recipient.message_id}"
    whatsapp = spec is BOOTH_SPEC
    assert data["To"] == ("whatsapp:" if whatsapp else "") + VOTER
    if service:
        assert data["MessagingServiceSid"] == service and "From" not in data
    else:
        assert data["From"] == (f"whatsapp:{WHATSAPP}" if whatsapp else SMS)
    if case == "whatsapp_template":
        assert (data["ContentSid"], json.loads(data["ContentVariables"])) == (CONTENT_SID, {"1": "Asha", "2": "3"})
        assert "Body" not in data
    elif case == "whatsapp_media_header":
        assert data["MediaUrl"] == [MEDIA] and data["Body"].startswith("Namaste Asha!")
        assert data["Body"].endswith("\n1. Yes\n2. No")  # quick replies as numbered lines
    else:
        assert data["Body"].startswith("Hi Asha, polling day is 20 Nov")
