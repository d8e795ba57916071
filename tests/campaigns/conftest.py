"""A small world for campaign tests: flows, templates, senders and voters on a real database."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select

from bot.channels import REGISTRY
from bot.channels.base import Outbound, Sent
from bot.consent import ConsentLedger
from bot.contacts import apply_tags, parse_tag
from bot.conversations import receive
from bot.engine import load_path
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import Contact, Sender
from bot.runtime import Runtime
from campaigns import dispatch, operations, spec, templates
from campaigns.models import Campaign, Template
from web.cli import cli as group
from web.users import create_user, issue_token

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "campaigns" / "examples"
WHATSAPP, SMS = "+919999900001", "+919999900002"


@dataclasses.dataclass
class World:
    """The runtime plus helpers to add voters and campaigns."""

    rt: Runtime
    app: Any = None

    def voter(
        self,
        phone: str,
        *tags: str,
        name: str | None = "Asha",
        kind: str = "mobile",
        consent: str | None = None,
        whatsapp: bool | None = None,
        fields: dict[str, Any] | None = None,
    ) -> int:
        with self.rt.db.session() as db:
            contact = Contact(phone=phone, phone_kind=kind, name=name, fields=fields or {}, whatsapp=whatsapp)
            db.add(contact)
            db.flush()
            apply_tags(db, contact, [parse_tag(t) for t in tags])
            if consent:
                ConsentLedger(db).record(contact, consent, source="import")
            return contact.id

    def campaign(self, text: str, **changes: Any) -> Campaign:
        fields = spec.parse(text, "spec.yaml")
        fields.update(changes)
        with self.rt.db.session() as db:
            return operations.create(db, fields, region="IN")

    def send(self, campaign_id: int, batch: int = 0) -> dict[str, Any]:
        """Run one batch job of the campaign here (what the worker does)."""
        return dispatch.send_batch(self.rt.db, self.rt.settings, self.rt.redis, campaign_id, batch)

    def reply(self, phone: str, text: str, *, channel: str = "whatsapp") -> None:
        """A voter answers the sandbox sender (what ``canvass sandbox reply`` does)."""
        sender = WHATSAPP if channel == "whatsapp" else SMS
        with self.rt.db.session() as db:
            sender_id = db.scalar(select(Sender.id).where(Sender.address == sender))
        form = {"From": phone, "To": sender, "Body": text, "Channel": channel}
        receive(self.rt, REGISTRY["sandbox"]().parse_inbound(form), sender_id)

    def get(self, campaign_id: int) -> Campaign:
        with self.rt.db.session() as db:
            campaign = db.get(Campaign, campaign_id)
            assert campaign is not None
            return campaign


BOOTH_SPEC = """
name: Booth reminder
channel: whatsapp
sender: "+919999900001"
template: {name: booth_reminder, language: en}
variables:
  1: {contact: name}
  2: {tag: ward}
audience: {tag: ward}
flow: {name: booth_locator, at: knows}
pace: 50/s
"""


def seed(rt: Runtime, provider: str = "sandbox", content_sid: str | None = None) -> None:
    """Flows, a WhatsApp and an SMS sender of ``provider``, and the example templates.

    booth_reminder's English version is approved (with Twilio's ``content_sid`` when given).
    """
    with rt.db.session() as db:
        for name in ("booth_locator", "turnout_reminder"):
            path = ROOT / "flows" / f"{name}.yaml"
            store(db, load_path(path), path.read_text())
        db.add(Sender(provider=provider, channel="whatsapp", address=WHATSAPP, healthy=True, rate_per_s=100))
        db.add(Sender(provider=provider, channel="sms", address=SMS, healthy=True, rate_per_s=100))
        for name in ("booth_reminder", "turnout_sms"):
            path = EXAMPLES / f"{name}.template.yaml"
            templates.store(db, templates.parse_file(path.read_text(), str(path)))
        template_id = db.scalar(select(Template.id).where(Template.name == "booth_reminder"))
        version = templates.latest_version(db, template_id, "en")  # type: ignore[arg-type]
        assert version is not None
        templates.approve_in_sandbox(version)
        version.content_sid = content_sid
    clear_cache()


@pytest.fixture
def world(make_app) -> Iterator[World]:  # type: ignore[no-untyped-def]
    app = make_app(CANVASS_ACTIONS="flows.actions")
    rt: Runtime = app.extensions["canvass"]
    seed(rt)
    yield World(rt, app)
    clear_cache()


class Scripted:
    """A provider whose answer per voter is scripted (a fake at the interface, for failures)."""

    def __init__(self, answer: Callable[[Outbound], Sent]) -> None:
        self.answer = answer
        self.sent: list[Outbound] = []
        self.lock = threading.Lock()

    def send(self, message: Outbound) -> Sent:
        with self.lock:
            self.sent.append(message)
        return self.answer(message)


class ScriptedAsync(Scripted):
    """``Scripted`` that also sends asynchronously: the batch job then sends from its event loop.

    The answer runs in a thread (a scripted answer may sleep, as a slow provider would).
    """

    async def send_async(self, message: Outbound) -> Sent:
        with self.lock:
            self.sent.append(message)
        return await asyncio.to_thread(self.answer, message)


@pytest.fixture(params=["threads", "coroutines"])
def scripted(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Callable[[Outbound], Sent]], Scripted]:
    """Install a scripted provider; every test runs twice: sends on threads, then on the event loop."""
    kind = ScriptedAsync if request.param == "coroutines" else Scripted

    def install(answer: Callable[[Outbound], Sent]) -> Scripted:
        provider = kind(answer)
        monkeypatch.setattr(dispatch, "provider_for", lambda settings, sender: provider)
        return provider

    return install


@pytest.fixture
def api(world: World):  # type: ignore[no-untyped-def]
    """A REST API client and a bearer token header per role (viewer, operator, editor)."""
    tokens = {}
    with world.rt.db.session() as s:
        for role in ("viewer", "operator", "editor"):
            tokens[role] = {
                "Authorization": f"Bearer {issue_token(s, create_user(s, f'{role}@x.org', role, 'a long passphrase'))}"
            }
    return world.app.test_client(), tokens


@pytest.fixture
def run(world: World):  # type: ignore[no-untyped-def]
    """Run a ``canvass`` command against the world's app; returns click's result."""

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(group, list(args), obj=ScriptInfo(create_app=lambda: world.app))

    return invoke
