import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.phone_types import NumberTypes
from bot.phones import InvalidPhone, PhoneParser, area_zones

IN = PhoneParser("IN")


@pytest.mark.parametrize(
    ("text", "e164", "kind"),
    [
        ("+91 98765 43210", "+919876543210", "mobile"),
        ("098765-43210", "+919876543210", "mobile"),
        ("9876543210", "+919876543210", "mobile"),
        ("91 98765 43210", "+919876543210", "mobile"),
        ("0091 98765 43210", "+919876543210", "mobile"),
        ("(+91) 98765.43210", "+919876543210", "mobile"),
        ("011 2345 6789", "+911123456789", "fixed_line"),  # a Delhi landline is a valid contact
        ("+1 212 555 0100", "+12125550100", "fixed_line_or_mobile"),
        ("+39 06 1234 5678", "+390612345678", "fixed_line"),  # Italian leading zero kept
    ],
)
def test_parses_what_people_type(text: str, e164: str, kind: str) -> None:
    phone = IN.parse(text)
    assert (phone.e164, phone.kind) == (e164, kind)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "no digits"),
        ("12345", "invalid number (too short for IN)"),
        ("98765432109876", "invalid number (too long for IN)"),
        ("+999 1234567", "invalid number (unknown country code)"),
        ("9" * 80, "too long (80 characters)"),
    ],
)
def test_rejects_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as err:
        IN.parse(text)
    assert err.value.reason == reason


def test_timezone_from_the_number() -> None:
    assert IN.parse("9876543210").timezone in ("Asia/Calcutta", "Asia/Kolkata")
    assert IN.parse("+1 212 555 0100").timezone == "America/New_York"
    assert IN.parse("+1 415 555 0100").timezone == "America/Los_Angeles"
    assert IN.parse("+44 20 7946 0000").timezone == "Europe/London"


def test_default_region_changes_national_numbers() -> None:
    assert PhoneParser("US").parse("(212) 555-0100").e164 == "+12125550100"
    with pytest.raises(ValueError, match="default_region"):
        PhoneParser("XX")


digits = st.text(alphabet="0123456789", min_size=4, max_size=15)
decorated = st.builds(
    lambda prefix, body, sep: prefix + sep.join([body[:5], body[5:]]),
    st.sampled_from(["", "+", "+91", "+91 ", "0", "00", "91", "+1", "+44 ", "+39 0", "0091"]),
    digits,
    st.sampled_from(["", " ", "-", "."]),
)


@settings(max_examples=3000, deadline=None)
@given(text=decorated)
def test_fast_route_never_disagrees_with_the_full_parse(text: str) -> None:
    """Whatever the shortcut accepts, phonenumbers.parse reads the same way."""
    try:
        fast = IN.parse(text).e164
    except InvalidPhone:
        fast = None
    try:
        full_number = phonenumbers.parse(text, "IN")
        full = (
            phonenumbers.format_number(full_number, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(full_number)
            else None
        )
    except phonenumbers.NumberParseException:
        full = None
    assert fast == full


ARABIC_INDIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")


@pytest.mark.parametrize("text", ["9" + "876543210".translate(ARABIC_INDIC), "+91 98765 43210".translate(ARABIC_INDIC)])
def test_digits_of_other_scripts_come_out_as_ascii(text: str) -> None:
    # Arabic-Indic digits, alone or after an ASCII one: E.164 is ASCII, as the library gives it.
    assert IN.parse(text).e164 == "+919876543210"


def test_a_leading_zero_is_no_country_code() -> None:
    # Found by the property test above: "+046..." must not be read as +46.
    with pytest.raises(InvalidPhone):
        IN.parse("+046200000")


_TYPES = NumberTypes()
country_codes = st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))


@settings(max_examples=5000, deadline=None)
@given(cc=country_codes, national=st.from_regex(r"[1-9][0-9]{2,16}", fullmatch=True))
def test_number_types_agree_with_the_library(cc: int, national: str) -> None:
    """The compiled per-length tables give phonenumbers.number_type's answer, any country."""
    number = phonenumbers.PhoneNumber(country_code=cc, national_number=int(national))
    assert _TYPES.number_type(cc, national) == phonenumbers.number_type(number)


@pytest.mark.parametrize("region", ["IN", "US", "GB", "DE", "BR", "NG", "ID"])
def test_number_types_agree_on_real_example_numbers(region: str) -> None:
    """Random digits are mostly invalid: the library's own examples cover every kind."""
    for kind in range(12):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None or example.italian_leading_zero:
            continue
        national = str(example.national_number)
        for last in "0123456789":  # neighbours of the example, valid or not
            candidate = national[:-1] + last
            number = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(candidate))
            assert _TYPES.number_type(example.country_code, candidate) == phonenumbers.number_type(number)


@pytest.mark.parametrize(
    ("phone", "stored", "zones"),
    [
        # An area code split between zones: every one of them, the stored one first.
        ("+16055551234", "America/Denver", ("America/Denver", "America/North_Dakota/Center")),
        ("+12085551234", "America/Boise", ("America/Boise", "America/Los_Angeles")),
        ("+16055551234", None, ("America/Denver", "America/North_Dakota/Center")),
        # One zone for the area (or the country): the stored one.
        ("+12125551234", "America/New_York", ("America/New_York",)),
        ("+919876543210", "Asia/Kolkata", ("Asia/Kolkata",)),
        # A zone set on purpose, not one of the area's: it alone.
        ("+16055551234", "America/Chicago", ("America/Chicago",)),
        # Only the country's list is known (+1 800: Guam to Newfoundland): the stored zone.
        ("+18005551234", "America/New_York", ("America/New_York",)),
    ],
)
def test_area_zones(phone: str, stored: str | None, zones: tuple[str, ...]) -> None:
    assert area_zones(phone, stored) == zones


def test_a_number_of_a_split_area_is_parsed_with_the_first_of_its_zones() -> None:
    parsed = PhoneParser("US").parse("+1 605 555 1234")
    assert parsed.timezone == area_zones(parsed.e164)[0]
