"""``phonenumbers.number_type`` for a plain national number, without its per-call overhead.

``phonenumbers`` checks a number against up to eleven pattern descriptions, and for each
one looks its regular expression up by string in ``re``'s cache — about 8 µs per number,
half of what a contact import spends on a row. The answer depends only on the region's
metadata and the number's digits, so the patterns that can apply to a number of a given
length are compiled once per (country code, length) and tried in the library's order.
A property test holds it to ``phonenumbers.number_type`` on random numbers of every
country code.
"""

from __future__ import annotations

import dataclasses
import re

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType

# The order of phonenumberutil._number_type_helper: the first description that matches wins.
_SPECIAL = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Patterns:
    """The descriptions of one region that can match a number of one length (None: cannot)."""

    general: re.Pattern[str] | None
    special: tuple[tuple[re.Pattern[str], int], ...]
    fixed_line: re.Pattern[str] | None
    mobile: re.Pattern[str] | None
    same_mobile_and_fixed_line: bool

    def number_type(self, national: str) -> int:
        """The library's ``_number_type_helper``, step for step."""
        if self.general is None or self.general.fullmatch(national) is None:
            return PhoneNumberType.UNKNOWN
        for pattern, kind in self.special:
            if pattern.fullmatch(national) is not None:
                return kind
        if self.fixed_line is not None and self.fixed_line.fullmatch(national) is not None:
            if self.same_mobile_and_fixed_line:
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            if self.mobile is not None and self.mobile.fullmatch(national) is not None:
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        mobile = self.mobile
        if not self.same_mobile_and_fixed_line and mobile is not None and mobile.fullmatch(national) is not None:
            return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN


def _for_length(desc: object, length: int) -> re.Pattern[str] | None:
    """``_is_number_matching_desc`` for numbers of ``length``, as a pattern to fullmatch."""
    if desc is None:
        return None
    possible = desc.possible_length  # type: ignore[attr-defined]
    if len(possible) > 0 and length not in possible:
        return None
    pattern = desc.national_number_pattern  # type: ignore[attr-defined]
    return re.compile(pattern) if pattern else None


class NumberTypes:
    """Number types by country code, for national numbers without leading zeros."""

    def __init__(self) -> None:
        self._tables: dict[tuple[int, int], _Patterns | None] = {}

    def number_type(self, country_code: int, national: str) -> int:
        """What ``phonenumbers.number_type`` says of ``+<country_code><national>``.

        ``national`` is digits only and does not start with 0 (no Italian leading zero).
        """
        key = (country_code, len(national))
        try:
            table = self._tables[key]
        except KeyError:
            table = self._tables[key] = _build(country_code, len(national))
        if table is None:
            # Country codes shared by several regions (+1, +7, +44, ...) pick the region
            # by the number itself: the library does that.
            number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
            return phonenumbers.number_type(number)
        return table.number_type(national)


def _build(country_code: int, length: int) -> _Patterns | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if regions is None:
        return _Patterns(None, (), None, None, False)  # no metadata: always UNKNOWN
    if len(regions) != 1:
        return None
    meta = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
    if meta is None:
        return _Patterns(None, (), None, None, False)
    special = []
    for name, kind in _SPECIAL:
        pattern = _for_length(getattr(meta, name), length)
        if pattern is not None:
            special.append((pattern, kind))
    return _Patterns(
        general=_for_length(meta.general_desc, length),
        special=tuple(special),
        fixed_line=_for_length(meta.fixed_line, length),
        mobile=_for_length(meta.mobile, length),
        same_mobile_and_fixed_line=bool(meta.same_mobile_and_fixed_line_pattern),
    )
