"""The sandbox simulator page: talk to canvass as a voter, with no Twilio account."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from bot.channels import REGISTRY
from bot.channels.base import ParseError
from bot.conversations import receive
from bot.models import Contact, Message, Sender
from bot.phones import InvalidPhone, PhoneParser
from web.auth.access import requires
from web.console import bp
from web.context import db_session, runtime
from web.models import Role

CHANNELS = ("whatsapp", "sms")


@bp.route("/sandbox", methods=["GET", "POST"])
@requires(Role.OPERATOR)
def sandbox() -> Any:
    """Pick a voter, read the conversation, reply (quick replies are buttons)."""
    rt = runtime()
    channel = request.values.get("channel", "whatsapp")
    if channel not in CHANNELS:
        channel = "whatsapp"
    phone_text = request.values.get("phone", "").strip()
    phone = None
    if phone_text:
        try:
            phone = PhoneParser(rt.settings.default_region).parse(phone_text).e164
        except InvalidPhone as exc:
            flash(f"{phone_text!r}: {exc.reason}", "error")
    s = db_session()
    sender = s.scalar(
        select(Sender).where(Sender.provider == "sandbox", Sender.channel == channel, Sender.healthy.is_(True))
    )
    if request.method == "POST" and phone:
        text = request.form.get("text", "").strip()
        if sender is None:
            flash(f"There is no sandbox {channel} sender (canvass demo makes them).", "error")
        elif text:
            try:
                inbound = REGISTRY["sandbox"]().parse_inbound(
                    {"From": phone, "To": sender.address, "Body": text, "Channel": channel}
                )
            except ParseError as exc:
                flash(str(exc), "error")
            else:
                routed, _ = receive(rt, inbound, sender.id)
                if routed.outcome == "stored":
                    flash("No flow answered: send a flow's keyword (for example 'booth').", "info")
        return redirect(url_for("console.sandbox", phone=phone, channel=channel))
    messages: list[Message] = []
    if phone:
        contact = s.scalar(select(Contact).where(Contact.phone == phone))
        if contact is not None:
            stmt = (
                select(Message)
                .where(Message.contact_id == contact.id, Message.channel == channel)
                .order_by(Message.id.desc())
                .limit(50)
            )
            messages = list(reversed(s.scalars(stmt).all()))
    last_out = next((m for m in reversed(messages) if m.direction == "out"), None)
    return render_template(
        "console/sandbox.html",
        phone=phone or phone_text,
        channel=channel,
        channels=CHANNELS,
        messages=messages,
        choices=last_out.choices if last_out and last_out.choices else [],
        sender=sender,
    )
