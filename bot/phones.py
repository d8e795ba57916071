"""Phone numbers: parse what people type into E.164, and say what kind of line it is.

``PhoneParser.parse`` is on the hot path of contact import (a million rows), so it tries a
cheap exact route first — strip punctuation, split off the country code or the national
prefix, validate — and falls back to ``phonenumbers.parse`` for everything else. A test
checks with random inputs that the fast route never disagrees with the full parse.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers.timezone import TIMEZONE_DATA

from bot.phone_types import NumberTypes

MAX_INPUT = 64
_PUNCTUATION = re.compile(r"[\s\-().\u00a0\u2010-\u2015/]")
_KIND = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
# Kinds that can receive SMS / WhatsApp (the planner's not_mobile check uses this).
MOBILE_KINDS = frozenset({"mobile", "fixed_line_or_mobile", "personal", "voip"})


class InvalidPhone(ValueError):
    """The text is not a valid phone number; ``reason`` says why in plain words."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{reason}: {text!r}")
        self.text = text
        self.reason = reason


class Phone(NamedTuple):
    """A valid number: E.164 form, line kind and the timezone it suggests."""

    e164: str
    kind: str
    timezone: str | None


@functools.cache
def _single_zone_codes() -> dict[int, str]:
    """Country codes whose every number lies in one timezone (most of the world)."""
    by_cc: dict[int, set[str]] = {}
    for prefix, zones in TIMEZONE_DATA.items():
        for cc_len in (1, 2, 3):
            cc = int(prefix[:cc_len])
            if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                by_cc.setdefault(cc, set()).update(zones)
                break
    single: dict[int, str] = {}
    for cc, zones in by_cc.items():
        if len(zones) == 1:
            (zone,) = zones
            if zone != "Etc/Unknown":
                single[cc] = zone
    return single


class PhoneParser:
    """Parses numbers for one default region (``CANVASS_DEFAULT_REGION``)."""

    def __init__(self, default_region: str = "IN") -> None:
        region = default_region.upper()
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if meta is None:
            raise ValueError(f"default_region must be a supported region such as IN, got {default_region!r}")
        self.region = region
        self._cc = meta.country_code
        self._cc_text = str(meta.country_code)
        prefix = meta.national_prefix_for_parsing or meta.national_prefix
        # The fast route only handles a national prefix that is a plain digit string.
        self._national_prefix = (
            prefix if prefix and prefix.isdigit() and not meta.national_prefix_transform_rule else None
        )
        self._single_zone = _single_zone_codes()
        self._types = NumberTypes()

    def parse(self, text: str) -> Phone:
        """Return the number as a ``Phone`` or raise ``InvalidPhone`` with a reason."""
        raw = (text or "").strip()
        if not raw:
            raise InvalidPhone(text, "empty")
        if len(raw) > MAX_INPUT:
            raise InvalidPhone(raw[:MAX_INPUT], f"too long ({len(raw)} characters)")
        return self._fast(raw) or self._describe(*self._full(raw))

    def _fast(self, raw: str) -> Phone | None:
        digits = _PUNCTUATION.sub("", raw)
        # Digits of other scripts (isdigit() says yes to them) go the long way, which
        # normalises them; the E.164 built below must be ASCII.
        if not digits.isascii():
            return None
        if digits.startswith("+"):
            body = digits[1:]
            # Country codes never start with 0 ("+046..." is not +46).
            if not body.isdigit() or body[0] == "0":
                return None
            for cc_len in (1, 2, 3):
                cc = int(body[:cc_len])
                if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                    national = body[cc_len:]
                    break
            else:
                return None
            return self._valid(cc, national)
        if not digits.isdigit():
            return None
        national = digits
        if self._national_prefix and national.startswith(self._national_prefix):
            national = national[len(self._national_prefix) :]
        found = self._valid(self._cc, national)
        # "91 98765 43210": the country code written without its plus, as the full
        # parse also accepts it when the rest alone is a valid number.
        if found is None and digits.startswith(self._cc_text):
            found = self._valid(self._cc, digits[len(self._cc_text) :])
        return found

    def _valid(self, cc: int, national: str) -> Phone | None:
        # Leading zeros (Italy) and odd lengths go the long way.
        if not national or national[0] == "0" or len(national) > 17:
            return None
        # number_type() is UNKNOWN exactly when is_valid_number() is False; one pass.
        kind = self._types.number_type(cc, national)
        if kind == PhoneNumberType.UNKNOWN:
            return None
        # Without a leading zero, E.164 is the digits as written after the country code.
        zone = self._single_zone.get(cc)
        if zone is None:
            zone = _zone_for(phonenumbers.PhoneNumber(country_code=cc, national_number=int(national)))
        return Phone(f"+{cc}{national}", _KIND.get(kind, "unknown"), zone)

    def _full(self, raw: str) -> tuple[phonenumbers.PhoneNumber, int]:
        if not any(ch.isdigit() for ch in raw):
            raise InvalidPhone(raw, "no digits")
        try:
            number = phonenumbers.parse(raw, self.region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidPhone(raw, _parse_reason(exc)) from None
        if not phonenumbers.is_valid_number(number):
            reason = phonenumbers.is_possible_number_with_reason(number)
            words = {
                phonenumbers.ValidationResult.TOO_SHORT: "too short",
                phonenumbers.ValidationResult.TOO_LONG: "too long",
                phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
                phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length",
            }.get(reason, "not a valid number")
            region = phonenumbers.region_code_for_number(number) or self.region
            raise InvalidPhone(raw, f"invalid number ({words} for {region})")
        return number, phonenumbers.number_type(number)

    def _describe(self, number: phonenumbers.PhoneNumber, number_type: int) -> Phone:
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        kind = _KIND.get(number_type, "unknown")
        zone = self._single_zone.get(number.country_code)
        if zone is None:
            zone = _zone_for(number)
        return Phone(e164=e164, kind=kind, timezone=zone)


def _zone_for(number: phonenumbers.PhoneNumber) -> str | None:
    zones = [z for z in phonenumbers.timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    if len(zones) > 1:
        # +44 maps to Guernsey, Isle of Man, Jersey and London: prefer the zones of the
        # number's own region (GB -> Europe/London) as tzdata's zone.tab lists them.
        home = _region_zones().get(phonenumbers.region_code_for_number(number) or "", ())
        zones = [z for z in zones if z in home] or zones
    return zones[0] if zones else None


def area_zones(e164: str, stored: str | None = None) -> tuple[str, ...]:
    """The time zones a voter with this number may be in, ``stored`` (the contact's own) first.

    A number whose area spans zones (+1 605: Mountain and Central; +7 ...) has one zone
    stored, the first of them; a send window must be open in every zone of its area.
    Only an area's zones (a prefix longer than the country code) count: a country's
    whole list (+1: Guam to Newfoundland) says nothing of the voter. A stored zone not
    among the area's was set on purpose (the contact's own): it alone counts.
    """
    digits = e164.lstrip("+")
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    country = next((n for n in (1, 2, 3) if digits[:n].isdigit() and int(digits[:n]) in codes), len(digits))
    zones: tuple[str, ...] = ()
    for n in range(min(len(digits), _LONGEST_PREFIX), country, -1):  # longer than the country code
        found = TIMEZONE_DATA.get(digits[:n])
        if found:
            zones = tuple(z for z in found if z != "Etc/Unknown")
            break
    if stored is None:
        return zones
    if zones and stored not in zones:
        return (stored,)
    return (stored, *(z for z in zones if z != stored))


_LONGEST_PREFIX = max(map(len, TIMEZONE_DATA))


@functools.cache
def _region_zones() -> dict[str, tuple[str, ...]]:
    text = importlib.resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text("utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            cols = line.split("\t")
            zones.setdefault(cols[0], []).append(cols[2])
    return {region: tuple(names) for region, names in zones.items()}


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "invalid number (unknown country code)",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "invalid number (too short)",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "invalid number (too short)",
        phonenumbers.NumberParseException.TOO_LONG: "invalid number (too long)",
    }.get(exc.error_type, "not a phone number")
