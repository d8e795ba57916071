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
from typing import Any

import pytest

from bot.models import Answer, FlowSession, FunnelEvent
from campaigns.exporters import REGISTRY, base
from campaigns.models import Campaign, Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World

UTC = dt.UTC
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def at(minute: int, second: int = 0, micro: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 23, 6, minute, second, micro, tzinfo=UTC)


def fill(world: World, campaign: Campaign, other: Campaign) -> None:
    """Five voters of ``campaign``, each followed by the same voter in ``other``."""
    voters = [
        world.voter(f"+91980000000{i}", "ward=3", name=name)
        for i, name in enumerate(["Asha", "=cmd|' /C calc'!A0", "Ravi", "Meena", "Joseph"], 1)
    ]
    with world.rt.db.session() as db:

        def session(contact: int, **values: Any) -> int:
            row = FlowSession(
                contact_id=contact, flow_name="booth_locator", flow_version=1, channel="whatsapp", state={}, **values
            )
            db.add(row)
            db.flush()
            return row.id

        def steps(sid: int, contact: int, **reached: dt.datetime) -> None:
            for step, when in reached.items():
                db.add(
                    FunnelEvent(
                        session_id=sid, contact_id=contact, flow_name="booth_locator", step=step, reached_at=when
                    )
                )

        def answer(sid: int, contact: int, name: str, value: Any, when: dt.datetime) -> None:
            db.add(
                Answer(
                    session_id=sid,
                    contact_id=contact,
                    flow_name="booth_locator",
                    name=name,
                    value=value,
                    answered_at=when,
                )
            )
            db.flush()

        sent = {"attempts": 1, "queued_at": at(0), "sent_at": at(0, 5, 999999)}
        for i, contact in enumerate(voters):
            row: dict[str, Any] = {"channel": "whatsapp", "status": "pending", "attempts": 0}
            if i == 0:  # read, replied, answered twice, flow completed
                sid = session(contact, status="ended", replied_at=at(4, 12), ended_at=at(9), end_reason="completed")
                steps(sid, contact, greeted=at(0, 5), answered=at(4, 12), epic_given=at(5, 30), booth_shared=at(9))
                answer(sid, contact, "knows_booth", "1", at(4, 12))
                answer(sid, contact, "knows_booth", "2", at(4, 40))  # the latest answer wins
                answer(sid, contact, "epic", "ABC1234567", at(5, 30))
                row |= sent | {"status": "read", "session_id": sid, "delivered_at": at(0, 9), "read_at": at(3, 41)}
            elif i == 1:  # delivered, replied, still talking; answers that look like formulas or are structured
                sid = session(contact, status="waiting", replied_at=dt.datetime(2026, 11, 23, 12, 20, tzinfo=IST))
                steps(sid, contact, answered=at(50, 1, 500000))
                answer(sid, contact, "knows_booth", "-1", at(50, 1))
                answer(sid, contact, "epic", {"label": "Booth 12", "value": 12}, at(51))
                row |= sent | {"status": "delivered", "session_id": sid, "delivered_at": at(0, 9)}
            elif i == 2:  # skipped
                row |= {"status": "skipped", "skip_code": "opted_out"}
            elif i == 3:  # failed, with a message that looks like a formula
                row |= {"status": "failed", "attempts": 1, "error_code": "63016", "error_msg": "=HYPERLINK(1)"}
            else:  # its flow timed out: ended, but not completed
                sid = session(contact, status="ended", ended_at=at(30), end_reason="timeout")
                steps(sid, contact, greeted=at(0, 5))
                row |= sent | {"status": "sent", "session_id": sid}
            db.add(Recipient(campaign_id=campaign.id, contact_id=contact, **row))
            db.flush()
            # The same voter in another campaign, with steps and answers of that session.
            theirs = session(contact, status="ended", replied_at=at(59), ended_at=at(59), end_reason="completed")
            steps(theirs, contact, greeted=at(59), answered=at(59), booth_shared=at(59))
            answer(theirs, contact, "knows_booth", "from the other campaign", at(59))
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
