"""canvass demo load: a few dozen voters and an admin, for a first look (make run)."""

from __future__ import annotations

import datetime as dt
import random
import secrets

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from bot.consent import ConsentLedger
from bot.contacts import Tag, apply_tags
from bot.db import utcnow
from bot.models import Contact, Sender
from bot.phones import PhoneParser
from web.context import runtime
from web.models import Role, User
from web.users import create_user

ADMIN_EMAIL = "admin@canvass.local"
# Numbers the sandbox "sends" from; voters reply to them with `canvass sandbox reply`.
SANDBOX_SENDERS = {"whatsapp": "+919999900001", "sms": "+919999900002", "voice": "+919999900003"}
FIRST = (
    "Asha",
    "Ravi",
    "Meena",
    "Arjun",
    "Fatima",
    "Joseph",
    "Lakshmi",
    "Vikram",
    "Priya",
    "Suresh",
    "Kavita",
    "Imran",
    "Deepa",
    "Manoj",
    "Sunita",
    "Rahul",
    "Anita",
    "Farhan",
    "Geeta",
    "Naveen",
)
LAST = ("Sharma", "Patil", "Khan", "Iyer", "Singh", "Das", "Nair", "Reddy", "Joshi", "Fernandes")


@click.command("demo")
@click.option("--contacts", "how_many", default=40, show_default=True, type=click.IntRange(1, 1000))
@with_appcontext
def demo_cmd(how_many: int) -> None:
    """Load demo voters (tags, valued tags, consent) and an admin user, once."""
    rt = runtime()
    rng = random.Random(2026)
    parser = PhoneParser("IN")
    created = 0
    with rt.db.session() as session:
        ledger = ConsentLedger(session)
        for i in range(how_many):
            # Derived from i alone, so a second run finds the same numbers.
            phone = parser.parse(f"+91 98{i:03d} {(i * 7919) % 90000 + 10000}")
            if session.scalar(select(Contact.id).where(Contact.phone == phone.e164)):
                continue
            contact = Contact(
                phone=phone.e164,
                phone_kind=phone.kind,
                timezone=phone.timezone,
                fields={},
                name=f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}",
                language=rng.choice(("hi", "hi", "en", "mr")),
                last_seen_at=utcnow() - dt.timedelta(days=rng.randint(0, 90)) if i % 3 else None,
            )
            session.add(contact)
            tags = [
                Tag("ward", str(rng.randint(1, 8))),
                Tag("constituency", rng.choice(("pune-central", "kothrud"))),
                Tag("booth", str(rng.randint(100, 140))),
            ]
            tags += [
                Tag(t) for t in rng.sample(("volunteer", "youth", "senior", "first_time_voter"), rng.randint(0, 2))
            ]
            apply_tags(session, contact, tags)
            session.flush()
            if i % 5 == 0:
                ledger.record(contact, "opted_in", source="import", note="demo data")
            if i % 13 == 7:
                ledger.record(contact, "opted_out", source="keyword", channel="sms", note="demo: replied STOP")
            created += 1
        total = session.scalar(select(func.count()).select_from(Contact))
        click.echo(f"demo contacts: {created} added ({total} in all)")
        for channel, address in SANDBOX_SENDERS.items():
            if session.scalar(select(Sender.id).where(Sender.channel == channel, Sender.address == address)) is None:
                session.add(
                    Sender(
                        provider="sandbox",
                        channel=channel,
                        address=address,
                        healthy=True,
                        name=f"Sandbox {channel}",
                        rate_per_s=10,
                    )
                )
                click.echo(f"sandbox sender: {channel} {address}")
        if session.scalar(select(User.id).where(User.role == Role.ADMIN.value)) is None:
            password = secrets.token_urlsafe(12)
            create_user(session, ADMIN_EMAIL, Role.ADMIN.value, password)
            click.echo(f"admin user: {ADMIN_EMAIL}  password: {password}  (shown once; keep it)")
        else:
            click.echo("an admin user exists already (new password: canvass users password EMAIL)")


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(demo_cmd)
