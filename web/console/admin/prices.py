"""The price table campaigns are estimated and capped with (``campaigns.pricing``; ``canvass prices``).

One price per channel and country calling code, per message (per segment for SMS, per
call for voice), all in one currency. Changing a price changes the estimates of campaigns
launched afterwards; launched ones keep the cost noted on each voter.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request
from sqlalchemy import select

from bot.senders import CHANNELS
from campaigns.models import Price
from campaigns.pricing import PriceError, delete_price, money, set_price
from web import audit
from web.auth.access import requires
from web.console import bp
from web.console.admin import page
from web.context import db_session
from web.models import Role

# PriceError messages start with the field they are about, in words.
FIELDS = {"calling code": "calling_code", "channel": "channel", "currency": "currency", "price": "amount"}


def _field(exc: PriceError) -> str:
    return FIELDS.get(str(exc).split(":", 1)[0], "amount")


def _page(**ctx: Any) -> Any:
    s = db_session()
    rows = s.scalars(select(Price).order_by(Price.channel, Price.calling_code)).all()
    currency = rows[0].currency if rows else "USD"
    return page("console/admin/prices.html", prices=rows, money=money, channels=CHANNELS, currency=currency, **ctx)


@bp.get("/admin/prices")
@requires(Role.ADMIN)
def prices() -> Any:
    """The price table, with a form to add a price."""
    return _page()


def _words(price: Price) -> str:
    return f"{price.channel} +{price.calling_code}"


def _save(form: Any, *, editing: Price | None) -> Any:
    s = db_session()
    channel = editing.channel if editing else form.get("channel", "")
    code = editing.calling_code if editing else form.get("calling_code", "")
    existing = (
        None
        if editing
        else s.scalar(select(Price).where(Price.channel == channel, Price.calling_code == code.strip().lstrip("+")))
    )
    before = None if editing is None else f"{money(editing.micros)} {editing.currency}"
    try:
        if existing is not None:
            raise PriceError(
                f"calling code: {channel} +{existing.calling_code} already has a price; edit it in the table"
            )
        price = set_price(s, channel, code, form.get("amount", ""), form.get("currency", ""))
        after = f"{money(price.micros)} {price.currency}"
        if before != after:
            action = "price.edit" if editing else "price.add"
            audit.record(
                s, g.user, action, _words(price), **({"price": [before, after]} if editing else {"price": after})
            )
        s.commit()
    except PriceError as exc:
        s.rollback()
        return _page(errors={_field(exc): str(exc)}, form=form, editing=editing.id if editing else None)
    flash(f"{_words(price)}: {money(price.micros)} {price.currency}.", "info")
    return redirect("/admin/prices")


@bp.post("/admin/prices")
@requires(Role.ADMIN)
def price_add() -> Any:
    """Add a price for a channel and country calling code."""
    return _save(request.form, editing=None)


@bp.post("/admin/prices/<int:price_id>")
@requires(Role.ADMIN)
def price_edit(price_id: int) -> Any:
    """Change a price's amount (and currency, when it is the only price)."""
    price = db_session().get(Price, price_id)
    if price is None:
        flash(f"There is no price {price_id} any more.", "error")
        return redirect("/admin/prices")
    return _save(request.form, editing=price)


@bp.post("/admin/prices/<int:price_id>/delete")
@requires(Role.ADMIN)
def price_delete(price_id: int) -> Any:
    """Remove a price: its country's voters become unpriced."""
    s = db_session()
    price = delete_price(s, price_id)
    if price is not None:
        audit.record(s, g.user, "price.delete", _words(price), price=f"{money(price.micros)} {price.currency}")
        s.commit()
        flash(f"Removed the price of {_words(price)}.", "info")
    return redirect("/admin/prices")
