import io

import pytest
from sqlalchemy import select

from bot.consent import ConsentLedger
from bot.contacts import add_numbers, parse_tag, remove_tags, write_export
from bot.db import Database
from bot.models import Contact
from bot.phones import PhoneParser
from bot.spreadsheet import formula_safe


@pytest.mark.parametrize(
    ("text", "name", "value"),
    [
        ("volunteer", "volunteer", None),
        ("Ward=12", "ward", "12"),
        (" booth = 7 ", "booth", "7"),
        ("first time", "first_time", None),
    ],
)
def test_parse_tag(text: str, name: str, value: str | None) -> None:
    tag = parse_tag(text)
    assert (tag.name, tag.value) == (name, value)


@pytest.mark.parametrize(
    ("text", "message"), [("=1", "tag name ''"), ("ward=", "value after '=' is empty"), ("a" * 65, "tag name")]
)
def test_parse_tag_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tag(text)


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("ok", "ok"),
        (None, ""),
    ],
)
def test_formula_safe(value: str | None, safe: str) -> None:
    assert formula_safe(value) == safe


def test_add_numbers(db: Database) -> None:
    parser = PhoneParser("IN")
    with db.session() as s:
        first = add_numbers(s, parser, ["+91 98765 43210", "12", "098765-43210"], [parse_tag("ward=1")])
        assert [c.phone for c in first.created] == ["+919876543210"]
        assert first.rejected == [
            ("12", "invalid number (too short for IN)"),
            ("098765-43210", "duplicate of +919876543210 given earlier"),
        ]
    with db.session() as s:
        again = add_numbers(s, parser, ["9876543210"], [parse_tag("ward=2"), parse_tag("volunteer")])
        assert [c.phone for c in again.updated] == ["+919876543210"]
    with db.session() as s:
        contact = s.scalar(select(Contact))
        assert contact.valued_tags == {"ward": "2"}
        assert contact.plain_tags == ["volunteer"]
        remove_tags(contact, ["WARD"])
    with db.session() as s:
        assert s.scalar(select(Contact)).valued_tags == {}
    with db.session() as s, pytest.raises(ValueError, match="at most 50"):
        add_numbers(s, parser, [str(9876543000 + i) for i in range(51)])


def test_export(db: Database) -> None:
    with db.session() as s:
        add_numbers(s, PhoneParser("IN"), ["9876543210"], [parse_tag("volunteer"), parse_tag("ward=-3")])
        c = s.scalar(select(Contact))
        c.name = "@admin"
        ConsentLedger(s).record(c, "opted_out", source="keyword", channel="sms")
    out = io.StringIO()
    with db.session() as s:
        assert write_export(s, out) == 1
    assert out.getvalue().splitlines() == [
        "phone,name,language,timezone,tags,valued_tags,consent",
        f"+919876543210,'@admin,,{c.timezone},volunteer,ward=-3,opted_out",
    ]


def test_consent_ledger_is_the_truth(db: Database) -> None:
    with db.session() as s:
        (c,) = add_numbers(s, PhoneParser("IN"), ["9876543210"]).created
        ledger = ConsentLedger(s)
        assert ledger.status_of(c.id).value == "unknown"
        ledger.record(c, "opted_in", source="import")
        ledger.record(c, "opted_out", source="keyword", channel="whatsapp", note="STOP")
        ledger.record(c, "opted_in", source="keyword", channel="sms", note="START")
        assert c.consent == "opted_in"
        assert ledger.status_of(c.id).value == "opted_in"
        assert [(e.status, e.channel, e.source) for e in ledger.history(c.id)] == [
            ("opted_in", None, "import"),
            ("opted_out", "whatsapp", "keyword"),
            ("opted_in", "sms", "keyword"),
        ]
        with pytest.raises(ValueError, match="source must be one of"):
            ledger.record(c, "opted_out", source="rumour")
        with pytest.raises(ValueError, match="must be opted_in or opted_out"):
            ledger.record(c, "unknown", source="cli")
    with db.session() as s:
        assert s.get(Contact, c.id).consent == "opted_in"
