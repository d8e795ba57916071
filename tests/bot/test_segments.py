import datetime as dt

import pytest
from sqlalchemy import select

from bot.consent import ConsentLedger
from bot.contacts import Tag, apply_tags
from bot.db import Database, utcnow
from bot.models import Contact
from bot.segments import SegmentError, compile_segment, count

PEOPLE = {
    # phone suffix: (language, tags, consent, days since last seen)
    "01": ("hi", [Tag("volunteer"), Tag("ward", "12")], None, 2),
    "02": ("hi", [Tag("ward", "13")], "opted_out", 40),
    "03": ("en", [Tag("volunteer"), Tag("ward", "12"), Tag("youth")], "opted_in", None),
    "04": ("mr", [Tag("ward", "120")], None, 10),
    "05": (None, [], None, None),
}


@pytest.fixture
def people(db: Database) -> Database:
    with db.session() as s:
        ledger = ConsentLedger(s)
        for suffix, (language, tags, consent, days) in PEOPLE.items():
            c = Contact(
                phone=f"+9198765432{suffix}",
                language=language,
                fields={"age": "3" + suffix[-1]},
                last_seen_at=utcnow() - dt.timedelta(days=days) if days is not None else None,
            )
            s.add(c)
            apply_tags(s, c, tags)
            s.flush()
            if consent:
                ledger.record(c, consent, source="cli")
    return db


def who(db: Database, spec: object) -> list[str]:
    with db.session() as s:
        where = compile_segment(spec, dialect=db.dialect)
        phones = s.scalars(select(Contact.phone).where(where).order_by(Contact.phone))
        return [p[-2:] for p in phones]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ["01", "02", "03", "04", "05"]),
        ({"tag": "volunteer"}, ["01", "03"]),
        ({"tag": "Volunteer"}, ["01", "03"]),  # tag names are case-insensitive
        ({"tag": "ward", "eq": "12"}, ["01", "03"]),
        ({"tag": "ward", "eq": 12}, ["01", "03"]),  # numbers from YAML compare as text
        ({"tag": "ward", "ne": "12"}, ["02", "04", "05"]),  # no ward at all counts as "not 12"
        ({"tag": "ward", "in": ["13", "120"]}, ["02", "04"]),
        ({"tag": "ward", "not_in": ["12"]}, ["02", "04", "05"]),
        ({"tag": "ward", "prefix": "12"}, ["01", "03", "04"]),
        ({"tag": "ward", "exists": True}, ["01", "02", "03", "04"]),
        ({"not": {"tag": "ward"}}, ["05"]),
        ({"all": [{"tag": "volunteer"}, {"tag": "youth"}]}, ["03"]),
        ({"any": [{"tag": "youth"}, {"field": "language", "eq": "mr"}]}, ["03", "04"]),
        ({"consent": "opted_out"}, ["02"]),
        ({"consent": ["opted_in", "unknown"]}, ["01", "03", "04", "05"]),
        ({"not": {"consent": "opted_out"}}, ["01", "03", "04", "05"]),
        ({"field": "language", "ne": "hi"}, ["03", "04", "05"]),
        ({"field": "language", "exists": True}, ["01", "02", "03", "04"]),
        ({"field": "phone", "prefix": "+91987654320"}, ["01", "02", "03", "04", "05"]),
        ({"field": "fields.age", "eq": "33"}, ["03"]),
        ({"active_within_days": 30}, ["01", "04"]),
        ({"inactive_for_days": 30}, ["02", "03", "05"]),
        (
            {"all": [{"any": [{"tag": "ward", "eq": "12"}, {"tag": "ward", "eq": "13"}]}, {"not": {"tag": "youth"}}]},
            ["01", "02"],
        ),
        ({"tag": "ward", "prefix": "1%"}, []),  # LIKE wildcards are escaped
    ],
)
def test_segment_selects(people: Database, spec: object, expected: list[str]) -> None:
    assert who(people, spec) == expected
    with people.session() as s:
        assert count(s, spec) == len(expected)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "segment: must be a mapping"),
        ({"all": []}, "all: must be a non-empty list of conditions"),
        ({"all": [{"tag": "a"}, {"colour": "red"}]}, "all[1]: unknown condition (colour)"),
        ({"tag": "ward", "in": "12"}, "in: must be a non-empty list of values"),
        ({"tag": "ward", "eq": "1", "ne": "2"}, "segment: one operator per condition"),
        ({"tag": "ward", "gt": "1"}, "gt: unknown operator"),
        ({"tag": "bad tag!"}, "tag: tag name 'bad tag!'"),
        ({"field": "password"}, "field: unknown field 'password'"),
        ({"consent": "maybe"}, "consent: must be unknown, opted_in, opted_out"),
        ({"active_within_days": "30"}, "active_within_days: must be a whole number of days"),
        ({"not": {"tag": "a"}, "tag": "b"}, "tag: cannot stand beside not"),
        ({"tag": "ward", "eq": {"x": 1}}, "eq: must be text or a number"),
        ({"tag": "ward", "exists": False}, "exists: must be true"),
    ],
)
def test_mistakes_name_their_path(spec: object, message: str) -> None:
    with pytest.raises(SegmentError) as err:
        compile_segment(spec, dialect="sqlite")
    assert str(err.value).startswith(message)


def test_deep_nesting_is_refused() -> None:
    spec: dict = {"tag": "a"}
    for _ in range(20):
        spec = {"not": spec}
    with pytest.raises(SegmentError, match="nested deeper than 12 levels"):
        compile_segment(spec, dialect="sqlite")
