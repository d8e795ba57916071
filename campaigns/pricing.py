"""Prices and budgets: what a campaign will cost, the cap it must stay under, what it spent.

The price table holds a price per channel and country calling code (``91`` for India):
per message for WhatsApp, per segment for SMS. Country calling codes are prefix-free (no
code starts another), so a number's price is found by looking up the first one, two and
three digits after the ``+`` — three equality joins on a small table, which the database
answers for a million voters at once.

At launch every voter to be sent gets an estimated cost; the budget (a total and caps per
channel, ``campaigns.budgets``) skips the voters past it with ``over_budget``. Spend is the
cost of the messages the provider took (failed ones are not charged). Amounts are kept as
whole millionths of the currency, exact on every database.
"""

from __future__ import annotations

import dataclasses
import decimal
from typing import Any

import phonenumbers
from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlalchemy.orm import Session, aliased

from bot.models import Contact
from campaigns.models import Price

CHARGED = ("sent", "delivered", "read", "unknown", "undelivered")
Money = decimal.Decimal
MICRO = Money("0.000001")


def to_micros(amount: Any, what: str = "price") -> int:
    """``"0.0107"`` -> 10700; raises PriceError for anything but a number of 0 or more."""
    try:
        value = Money(str(amount).strip())
    except decimal.InvalidOperation:
        raise PriceError(f"{what}: a number such as 0.0079, got {amount!r}") from None
    if not value.is_finite() or value < 0:
        raise PriceError(f"{what}: a number of 0 or more, got {amount!r}")
    return int((value / MICRO).to_integral_value(rounding=decimal.ROUND_HALF_UP))


def money(micros: int | None) -> Money:
    """Millionths back to an amount (``10700`` -> ``Decimal('0.0107')``, ``600000000`` -> ``Decimal('600')``)."""
    if not micros:
        return Money(0)
    amount = (Money(micros) * MICRO).normalize()
    # normalize() writes whole amounts with an exponent (6E+2): give them their digits back.
    return amount.quantize(Money(1)) if amount == amount.to_integral_value() else amount


class PriceError(ValueError):
    """A price is written wrongly; the message says how."""


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What sending to an audience would cost."""

    total: Money
    currency: str | None
    by_code: dict[str, tuple[int, Money]]  # calling code -> (voters, cost)
    unpriced: int  # voters whose country has no price

    def as_dict(self) -> dict[str, Any]:
        """For the API and the CLI's --json."""
        return {
            "total": str(self.total),
            "currency": self.currency,
            "by_country_code": {code: {"voters": n, "cost": str(cost)} for code, (n, cost) in self.by_code.items()},
            "unpriced": self.unpriced,
        }


def set_price(db: Session, channel: str, calling_code: str, amount: str, currency: str) -> Price:
    """Add or change one price (``amount`` per message, or per SMS segment); one currency for all."""
    code = calling_code.strip().lstrip("+")
    if not code.isdigit() or not 1 <= len(code) <= 3:
        raise PriceError(f"calling code: 1 to 3 digits such as 91 or 1, got {calling_code!r}")
    if code.startswith("0") or int(code) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        # A code no country has would price nobody, or a prefix of real ones (+9 of +91).
        raise PriceError(f"calling code: +{code} is not a country's calling code (91 for India, 1 for the US)")
    if channel not in ("whatsapp", "sms", "voice"):
        raise PriceError(f"channel: whatsapp, sms or voice, got {channel!r}")
    micros = to_micros(amount)
    currency = currency.strip().upper()
    if not (len(currency) == 3 and currency.isalpha()):
        raise PriceError(f"currency: a three-letter code such as USD or INR, got {currency!r}")
    other = db.scalar(select(Price.currency).where(Price.currency != currency).limit(1))
    if other is not None:
        raise PriceError(f"currency: the price table is in {other}; every price must be too, got {currency}")
    price = db.scalar(select(Price).where(Price.channel == channel, Price.calling_code == code))
    if price is None:
        price = Price(channel=channel, calling_code=code)
        db.add(price)
    price.micros, price.currency = micros, currency
    db.flush()
    return price


def unit_price(channel: str, segments: int = 1) -> tuple[ColumnElement[Any], list[Any]]:
    """SQL for a contact's price in millionths on ``channel`` (NULL when unpriced), and its joins."""
    joins = []
    amounts = []
    for digits in (1, 2, 3):
        p = aliased(Price, name=f"price{digits}")
        joins.append((p, and_(p.channel == channel, p.calling_code == func.substr(Contact.phone, 2, digits))))
        amounts.append(p.micros)
    return func.coalesce(*amounts) * segments, joins


def with_prices(stmt: Select[Any], joins: list[Any]) -> Select[Any]:
    """``stmt`` with the joins :func:`unit_price` needs."""
    for target, on in joins:
        stmt = stmt.outerjoin(target, on)
    return stmt


def estimate(db: Session, channel: str, audience: ColumnElement[bool], segments: int = 1) -> Estimate:
    """The cost of sending once to every contact ``audience`` selects."""
    price, joins = unit_price(channel, segments)
    code = case(*[(p.micros.is_not(None), p.calling_code) for p, _ in joins], else_=literal("")).label("code")
    stmt = with_prices(select(code, func.count(), func.sum(price)).select_from(Contact), joins)
    rows = db.execute(stmt.where(audience).group_by(code)).all()
    by_code = {str(c): (int(n), money(total)) for c, n, total in rows if c}
    currency = db.scalar(select(Price.currency).limit(1))
    return Estimate(
        total=sum((cost for _, cost in by_code.values()), Money(0)),
        currency=currency,
        by_code=by_code,
        unpriced=sum(int(n) for c, n, _ in rows if not c),
    )


def delete_price(db: Session, price_id: int) -> Price | None:
    """Remove one price (voters of its country become unpriced); returns it, None when there was none."""
    price = db.get(Price, price_id)
    if price is not None:
        db.delete(price)
        db.flush()
    return price
