"""The funnel CSV, cell by cell: times, skip and error codes, funnel steps, answers, formula safety.

The export reads a campaign in chunks, with the funnel steps and answers read alongside;
here chunks hold two recipients, and another campaign's recipients sit between them (with
steps and answers of their own that must not leak in).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from collections.abc import Iterator
from itertools import islice
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import Answer, FlowSession, FunnelEvent
from campaigns.exporters import REGISTRY, base
from campaigns.exporters import csv as csv_exporter
from campaigns.models import Campaign, Recipient
from ivr.models import Call
from tests.campaigns.conftest import BOOTH_SPEC, World

UTC = dt.UTC
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def at(minute: int, second: int = 0, micro: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 23, 6, minute, second, micro, tzinfo=UTC)


def add_session(db: Session, contact: int, **values: Any) -> int:
    row = FlowSession(
        contact_id=contact, flow_name="booth_locator", flow_version=1, channel="whatsapp", state={}, **values
    )
    db.add(row)
    db.flush()
    return row.id


def add_steps(db: Session, sid: int, contact: int, **reached: dt.datetime) -> None:
    for step, when in reached.items():
        db.add(FunnelEvent(session_id=sid, contact_id=contact, flow_name="booth_locator", step=step, reached_at=when))


def add_answer(db: Session, sid: int, contact: int, name: str, value: Any, when: dt.datetime) -> None:
    db.add(
        Answer(session_id=sid, contact_id=contact, flow_name="booth_locator", name=name, value=value, answered_at=when)
    )
    db.flush()


def fill(world: World, campaign: Campaign, other: Campaign) -> None:
    """Five voters of ``campaign``, each followed by the same voter in ``other``."""
    voters = [
        world.voter(f"+91980000000{i}", "ward=3", name=name)
        for i, name in enumerate(["Asha", "=cmd|' /C calc'!A0", "Ravi", "Meena", "Joseph"], 1)
    ]
    with world.rt.db.session() as db:
        sent = {"attempts": 1, "queued_at": at(0), "sent_at": at(0, 5, 999999)}
        for i, contact in enumerate(voters):
            row: dict[str, Any] = {"channel": "whatsapp", "status": "pending", "attempts": 0}
            if i == 0:  # read, replied, answered twice, flow completed
                sid = add_session(
                    db, contact, status="ended", replied_at=at(4, 12), ended_at=at(9), end_reason="completed"
                )
                add_steps(
                    db, sid, contact, greeted=at(0, 5), answered=at(4, 12), epic_given=at(5, 30), booth_shared=at(9)
                )
                add_answer(db, sid, contact, "knows_booth", "1", at(4, 12))
                add_answer(db, sid, contact, "knows_booth", "2", at(4, 40))  # the latest answer wins
                add_answer(db, sid, contact, "epic", "ABC1234567", at(5, 30))
                row |= sent | {"status": "read", "session_id": sid, "delivered_at": at(0, 9), "read_at": at(3, 41)}
            elif i == 1:  # delivered, replied, still talking; answers that look like formulas or are structured
                sid = add_session(
                    db, contact, status="waiting", replied_at=dt.datetime(2026, 11, 23, 12, 20, tzinfo=IST)
                )
                add_steps(db, sid, contact, answered=at(50, 1, 500000))
                add_answer(db, sid, contact, "knows_booth", "-1", at(50, 1))
                add_answer(db, sid, contact, "epic", {"label": "Booth 12", "value": 12}, at(51))
                row |= sent | {"status": "delivered", "session_id": sid, "delivered_at": at(0, 9)}
            elif i == 2:  # skipped
                row |= {"status": "skipped", "skip_code": "opted_out"}
            elif i == 3:  # failed, with a message that looks like a formula
                row |= {"status": "failed", "attempts": 1, "error_code": "63016", "error_msg": "=HYPERLINK(1)"}
            else:  # its flow timed out: ended, but not completed
                sid = add_session(db, contact, status="ended", ended_at=at(30), end_reason="timeout")
                add_steps(db, sid, contact, greeted=at(0, 5))
                row |= sent | {"status": "sent", "session_id": sid}
            db.add(Recipient(campaign_id=campaign.id, contact_id=contact, **row))
            db.flush()
            # The same voter in another campaign, with steps and answers of that session.
            theirs = add_session(
                db, contact, status="ended", replied_at=at(59), ended_at=at(59), end_reason="completed"
            )
            add_steps(db, theirs, contact, greeted=at(59), answered=at(59), booth_shared=at(59))
            add_answer(db, theirs, contact, "knows_booth", "from the other campaign", at(59))
            db.add(
                Recipient(
                    campaign_id=other.id,
                    contact_id=contact,
                    channel="whatsapp",
                    status="read",
                    attempts=1,
                    session_id=theirs,
                )
            )
            db.flush()


EXPECTED = [
    "contact_id,phone,name,channel,attempts,status,error_code,error_msg,queued_at,sent_at,delivered_at,read_at,"
    "replied_at,completed_at,funnel:greeted,funnel:answered,funnel:epic_given,funnel:booth_shared,"
    "answer:knows_booth,answer:epic",
    "{0},+919800000001,Asha,whatsapp,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,2026-11-23T06:00:09Z,"
    "2026-11-23T06:03:41Z,2026-11-23T06:04:12Z,2026-11-23T06:09:00Z,2026-11-23T06:00:05Z,2026-11-23T06:04:12Z,"
    "2026-11-23T06:05:30Z,2026-11-23T06:09:00Z,2,ABC1234567",
    "{1},+919800000002,'=cmd|' /C calc'!A0,whatsapp,1,delivered,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,"
    "2026-11-23T06:00:09Z,,2026-11-23T06:50:00Z,,,2026-11-23T06:50:01Z,,,'-1,"
    '"{{""label"":""Booth 12"",""value"":12}}"',
    "{2},+919800000003,Ravi,whatsapp,0,skipped,opted_out,,,,,,,,,,,,,",
    "{3},+919800000004,Meena,whatsapp,1,failed,63016,'=HYPERLINK(1),,,,,,,,,,,,",
    "{4},+919800000005,Joseph,whatsapp,1,sent,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,,,2026-11-23T06:00:05Z"
    ",,,,,",
]


@pytest.mark.parametrize("chunk", [2, 5000])
def test_every_cell_of_the_funnel_csv(world: World, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(base, "CHUNK", chunk)
    campaign = world.campaign(BOOTH_SPEC)
    other = world.campaign(BOOTH_SPEC, name="Another campaign")
    fill(world, campaign, other)
    out = io.StringIO(newline="")
    with world.rt.db.session() as db:
        rows = REGISTRY["csv"](db, world.get(campaign.id)).write(out)
        contacts = db.query(Recipient.contact_id).filter_by(campaign_id=campaign.id).order_by(Recipient.id).all()
    assert rows == 5
    lines = out.getvalue().split("\r\n")
    assert lines[-1] == ""
    assert lines[:-1] == [line.format(*[c for (c,) in contacts]) for line in EXPECTED]
    assert len(next(csv.reader(io.StringIO(lines[2])))) == 20


def test_ahead_yields_everything_in_order_and_raises_what_the_producer_raises() -> None:
    assert list(base.ahead(iter(range(7)))) == list(range(7))
    assert list(base.ahead(iter([None, 0, ""]))) == [None, 0, ""]

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("the database went away")

    items = base.ahead(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="went away"):
        next(items)


def test_ahead_closes_the_producer_when_the_consumer_stops() -> None:
    closed = threading.Event()
    threads: set[str] = set()

    def producer() -> Iterator[int]:
        try:
            for n in range(100):
                threads.add(threading.current_thread().name)
                yield n
        finally:
            closed.set()

    items = base.ahead(producer())
    assert [next(items), next(items)] == [0, 1]
    items.close()  # type: ignore[attr-defined]
    assert closed.is_set()
    assert all(name.startswith("canvass-export") for name in threads)


# Voters whose cells test every rule, on a voice campaign: name, recipient, session (None: none),
# funnel steps reached, answers (name, value) in the order given (a later one of the same name wins).
STEPS = ("greeted", "answered", "epic_given", "booth_shared")
SENT = {"attempts": 1, "status": "read", "queued_at": at(0, 0, 1), "sent_at": at(0, 5, 999999)}
DONE = {"status": "ended", "replied_at": at(4, 12, 999999), "ended_at": at(9, 0, 999999), "end_reason": "completed"}
TALKING = {"status": "waiting", "replied_at": dt.datetime(2026, 11, 23, 12, 20, 0, 1, tzinfo=IST)}
Tricky = tuple[str | None, dict[str, Any], dict[str, Any] | None, dict[str, dt.datetime], list[tuple[str, Any]]]
TRICKY: list[Tricky] = [
    (
        "=1+1",
        SENT | {"attempts": 3, "delivered_at": at(0, 9, 999999), "read_at": at(3, 41, 1)},
        DONE,
        {"greeted": at(0, 5, 999999), "epic_given": at(5, 30, 500000)},
        [("knows_booth", "+44 20"), ("epic", "-")],
    ),
    (
        'He said "hi", twice',
        SENT,
        TALKING,
        {"answered": at(4, 12)},
        [("knows_booth", 'a "b", c'), ("epic", "line 1\nline 2\r\nline 3")],
    ),
    ("Ravi,\nKumar", SENT, TALKING, {}, [("knows_booth", "@home"), ("epic", "\tTAB")]),
    # Answers PostgreSQL leaves to Python (a decimal, an object with non-ASCII text), in the chunk of the row above.
    ("\tTabbed", SENT, TALKING, {}, [("knows_booth", 1.5), ("epic", {"label": "बूथ 12", "value": 12})]),
    (
        "\rCR",
        {"status": "failed", "attempts": 2, "error_code": "-5", "error_msg": '=HYPERLINK("x"), more\r\nlines'},
        None,
        {},
        [],
    ),
    (None, {"status": "skipped", "error_code": "", "skip_code": "opted_out"}, None, {}, []),
    (
        "",
        SENT,
        {"status": "ended", "ended_at": at(30), "end_reason": "call_ended"},
        {"bogus": at(1)},
        [("knows_booth", ""), ("epic", None), ("other", "=not exported")],
    ),
    ("मीना 😀", SENT, DONE, {s: at(7, i) for i, s in enumerate(STEPS)}, [("knows_booth", 7), ("epic", -3)]),
    # A row left to Python with a line break inside a cell (read back by Python's csv).
    ("@at\r\nhome", SENT, TALKING, {}, [("knows_booth", True), ("epic", ["a", "=b"])]),
    ("-minus", SENT, TALKING, {}, [("knows_booth", 0), ("epic", 2.50)]),
    ("+plus", SENT, TALKING, {}, [("knows_booth", "a\x00b"), ("epic", {"old": 1}), ("epic", "=new")]),
    ("Zero, answers", SENT | {"attempts": 0, "error_msg": ""}, {"status": "waiting"}, {}, []),
]


def fill_tricky(world: World, campaign: Campaign) -> list[int]:
    """The voters of TRICKY in ``campaign``; return their contact ids."""
    contacts = [world.voter(f"+9198100000{i:02}", "ward=3", name=t[0]) for i, t in enumerate(TRICKY)]
    with world.rt.db.session() as db:
        for contact, (_, fields, session, reached, answers) in zip(contacts, TRICKY, strict=True):
            row: dict[str, Any] = {"channel": "voice"} | fields
            if session is not None:
                row["session_id"] = sid = add_session(db, contact, **session)
                add_steps(db, sid, contact, **reached)
                for i, (name, value) in enumerate(answers):
                    add_answer(db, sid, contact, name, value, at(10, i))
            if contact in (contacts[0], contacts[6]):
                # Last calls: a person answered and talked 47 s (the flow ended, so no hang-up node);
                # a voter who hung up at a node whose name looks like a formula.
                call = Call(contact_id=contact, direction="outbound", answered_by="human", duration_s=47)
                call.last_node = "=knows"
                db.add(call)
                db.flush()
                row["call_id"] = call.id
            db.add(Recipient(campaign_id=campaign.id, contact_id=contact, **row))
            db.flush()
    return contacts


# The expected rows, each without its contact id (known once the voters are made).
EXPECTED_TRICKY: list[str] = [
    (
        "contact_id,phone,name,channel,attempts,status,error_code,error_msg,queued_at,sent_at,delivered_at,"
        "read_at,replied_at,completed_at,answered_by,call_duration_s,funnel:greeted,funnel:answered,"
        "funnel:epic_given,funnel:booth_shared,answer:knows_booth,answer:epic"
    ),
    (
        ",+919810000000,'=1+1,voice,3,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,"
        "2026-11-23T06:00:09Z,2026-11-23T06:03:41Z,2026-11-23T06:04:12Z,2026-11-23T06:09:00Z,human,47,"
        "2026-11-23T06:00:05Z,,2026-11-23T06:05:30Z,,'+44 20,'-"
    ),
    (
        ',+919810000001,"He said ""hi"", twice",voice,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,'
        '2026-11-23T06:50:00Z,,,,,2026-11-23T06:04:12Z,,,"a ""b"", c","line 1\nline 2\r\nline 3"'
    ),
    (
        ',+919810000002,"Ravi,\nKumar",voice,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,'
        "2026-11-23T06:50:00Z,,,,,,,,'@home,'\tTAB"
    ),
    (
        ",+919810000003,'\tTabbed,voice,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,"
        '2026-11-23T06:50:00Z,,,,,,,,1.5,"{""label"":""बूथ 12"",""value"":12}"'
    ),
    ',+919810000004,"\'\rCR",voice,2,failed,\'-5,"\'=HYPERLINK(""x""), more\r\nlines",,,,,,,,,,,,,,',
    ",+919810000005,,voice,0,skipped,opted_out,,,,,,,,,,,,,,,",
    ",+919810000006,,voice,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,,,,,,,,,,",
    (
        ",+919810000007,मीना 😀,voice,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,"
        "2026-11-23T06:04:12Z,2026-11-23T06:09:00Z,,,2026-11-23T06:07:00Z,2026-11-23T06:07:01Z,"
        "2026-11-23T06:07:02Z,2026-11-23T06:07:03Z,7,-3"
    ),
    (
        ',+919810000008,"\'@at\r\nhome",voice,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,'
        '2026-11-23T06:50:00Z,,,,,,,,True,"[""a"",""=b""]"'
    ),
    (
        ",+919810000009,'-minus,voice,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,"
        "2026-11-23T06:50:00Z,,,,,,,,0,2.5"
    ),
    (
        ",+919810000010,'+plus,voice,1,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,"
        "2026-11-23T06:50:00Z,,,,,,,,a\x00b,'=new"
    ),
    (',+919810000011,"Zero, answers",voice,0,read,,,2026-11-23T06:00:00Z,2026-11-23T06:00:05Z,,,,,,,,,,,,'),
]


# The voice cells that differ from EXPECTED_TRICKY's, by voter: the 7th hung up at a node whose name
# looks like a formula (answered_by, call_duration_s, hangup_node are cells 14, 15 and 16).
CALL_CELLS = {6: {14: "human", 15: "47", 16: "'=knows"}}


def with_hangup(line: str, cell: str = "", changes: dict[int, str] | None = None) -> str:
    """``line`` with the hang-up node cell after call_duration_s, written as the exporter writes rows."""
    row = next(csv.reader(io.StringIO(line, newline="")))
    row.insert(16, cell)
    for index, value in (changes or {}).items():
        row[index] = value
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerow(row)
    return out.getvalue().removesuffix("\r\n")


@pytest.mark.parametrize("chunk", [2, 5000])
def test_tricky_cells_are_the_same_bytes_on_both_databases(
    world: World, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """PostgreSQL writes the rows itself (funnel_copy), SQLite's are written by Python: same bytes."""
    monkeypatch.setattr(base, "CHUNK", chunk)
    campaign = world.campaign(BOOTH_SPEC)
    with world.rt.db.session() as db:
        db.get(Campaign, campaign.id).channel = "voice"  # type: ignore[union-attr]
    contacts = fill_tricky(world, campaign)
    lines = [with_hangup(EXPECTED_TRICKY[0], "hangup_node")] + [
        f"{contact}{with_hangup(line, changes=CALL_CELLS.get(i))}"
        for i, (contact, line) in enumerate(zip(contacts, EXPECTED_TRICKY[1:], strict=True))
    ]
    expected = "".join(f"{line}\r\n" for line in lines).encode()

    def export() -> bytes:
        out = io.StringIO(newline="")
        with world.rt.db.session() as db:
            assert REGISTRY["csv"](db, world.get(campaign.id)).write(out) == len(TRICKY)
        return out.getvalue().encode()

    assert export() == expected
    monkeypatch.setattr(csv_exporter, "WRITE_THEMSELVES", set())  # Python writes PostgreSQL's rows too
    assert export() == expected


def test_a_consumer_that_stops_early_leaves_the_session_usable(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A download the browser gave up: the COPY is cancelled or drained, the session rolls back and goes on."""
    monkeypatch.setattr(base, "CHUNK", 2)
    campaign = world.campaign(BOOTH_SPEC)
    fill_tricky(world, campaign)
    with world.rt.db.session() as db:
        pieces = REGISTRY["csv"](db, world.get(campaign.id)).pieces()  # type: ignore[attr-defined]
        assert [rows for _, rows in islice(pieces, 2)] == [0, 2]
        pieces.close()
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Recipient)) == len(TRICKY)


def test_a_campaign_without_a_flow_or_recipients_has_its_fixed_columns_only(world: World) -> None:
    spec = "\n".join(line for line in BOOTH_SPEC.splitlines() if not line.startswith("flow:"))
    campaign = world.campaign(spec)

    def export() -> list[str]:
        out = io.StringIO(newline="")
        with world.rt.db.session() as db:
            REGISTRY["csv"](db, world.get(campaign.id)).write(out)
        return out.getvalue().split("\r\n")

    header = EXPECTED[0].split(",funnel:")[0]
    assert export() == [header, ""]
    contact = world.voter("+919800000009", "ward=3", name="=Ravi")
    with world.rt.db.session() as db:
        row = {"channel": "whatsapp", "status": "skipped", "skip_code": "opted_out", "attempts": 0}
        db.add(Recipient(campaign_id=campaign.id, contact_id=contact, **row))
    assert export() == [header, f"{contact},+919800000009,'=Ravi,whatsapp,0,skipped,opted_out,,,,,,,", ""]
