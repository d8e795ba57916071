"""The inbound webhook's lane below Flask, the database's de-duplication and the drain's nudges.

Requests go through the app's real WSGI stack (the test client), signed as Twilio signs
them: the lane answers the common case, and hands everything else to the Flask view.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

import pytest
from sqlalchemy import func, select, text

from bot import conversations
from bot.inbox import DRAIN_WOKEN, Inbox, inbox_for
from bot.models import FlowSession, Message, QueuedInbound
from tests.web.test_inbound_queue import app  # noqa: F401 - the fixture: Twilio settings, two flows
from tests.web.test_webhooks import inbound_form, post, queued

PATH = "/webhooks/twilio/messages"


@pytest.fixture
def view_calls(app):  # type: ignore[no-untyped-def]  # noqa: F811
    """Requests the Flask view answered (the lane answered the others)."""
    calls: list[str] = []
    real = app.view_functions["webhooks.inbound"]

    @functools.wraps(real)  # keeps its @public mark
    def counted():  # type: ignore[no-untyped-def]
        calls.append("view")
        return real()

    app.view_functions["webhooks.inbound"] = counted
    return calls


def count(app, model, *where) -> int:  # type: ignore[no-untyped-def]  # noqa: F811
    with app.extensions["canvass"].db.session() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_an_ordinary_message_is_answered_below_flask(app, client, redis, view_calls, caplog) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with caplog.at_level(logging.INFO, logger="canvass.request"):
        response = post(client, PATH, inbound_form(body="complaint"))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert view_calls == [] and count(app, QueuedInbound) == 1
    assert queued(redis, "inbound-drain") == 1
    # Logged like any request, with the id it answered.
    (line,) = [r for r in caplog.records if r.name == "canvass.request"]
    assert (line.levelname, line.route, line.status) == ("INFO", PATH, 200)
    assert line.request_id == response.headers["X-Request-Id"]


@pytest.mark.parametrize("case", ["bad_signature", "missing_field", "keyword", "not_a_form"])
def test_what_the_lane_does_not_answer_goes_to_the_view(app, client, view_calls, case: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    form = inbound_form(body="STOP" if case == "keyword" else "complaint")
    if case == "missing_field":
        form.pop("From")
    if case == "not_a_form":
        response = client.post(PATH, json=form, headers={"X-Twilio-Signature": "x"})
    else:
        response = post(client, PATH, form, signature="bm90IGEgc2lnbmF0dXJl" if case == "bad_signature" else "sign")
    want = {"bad_signature": 403, "missing_field": 422, "keyword": 200, "not_a_form": 403}[case]
    assert response.status_code == want and view_calls == ["view"]
    # The view read the same body the lane had read: it named the missing field, routed the STOP.
    if case == "missing_field":
        assert response.get_json()["field"] == "From"
    if case == "keyword":
        assert count(app, Message, Message.purpose == "consent") == 1
    else:
        assert count(app, QueuedInbound) == 0


def test_an_error_in_the_lane_is_answered_by_the_view(app, client, redis, view_calls, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    real, failures = Inbox.store, [RuntimeError("the database went away")]

    def store(self, inbound, provider):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return real(self, inbound, provider)

    monkeypatch.setattr(Inbox, "store", store)
    with caplog.at_level(logging.WARNING, logger="web.inbound_lane"):
        response = post(client, PATH, inbound_form(body="complaint"))
    assert response.status_code == 200 and view_calls == ["view"]
    assert "handed to the Flask view after RuntimeError" in caplog.text
    assert count(app, QueuedInbound) == 1
    # A lasting failure is the view's error answer, so Twilio retries the delivery.
    failures[:] = [RuntimeError("down"), RuntimeError("still down")]
    response = post(client, PATH, inbound_form(sid="SM" + "2" * 32, body="complaint"))
    assert response.status_code == 500 and count(app, QueuedInbound) == 1


def test_a_retry_after_the_message_was_routed_and_purged_is_not_routed_again(app, client, redis) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    rt = app.extensions["canvass"]
    form = inbound_form(body="complaint")
    assert post(client, PATH, form).status_code == 200
    assert conversations.drain_inbound(rt, max_s=60) == 1
    replies = count(app, Message, Message.direction == "out")
    assert post(client, PATH, form).status_code == 200  # the row is still there: a duplicate
    assert count(app, QueuedInbound) == 1 and conversations.drain_inbound(rt, max_s=60) == 0
    # Days later the routed row is purged; a late retry is stored again, and the router
    # finds its MessageSid among the messages: no second flow step, no second reply.
    assert inbox_for(rt).purge(dt.timedelta(0)) == 1
    assert post(client, PATH, form).status_code == 200
    assert conversations.drain_inbound(rt, max_s=60) == 1
    with rt.db.session() as db:
        assert db.scalar(select(QueuedInbound.outcome)) == "duplicate"
    assert count(app, Message, Message.direction == "out") == replies
    assert count(app, Message, Message.direction == "in") == 1 and count(app, FlowSession) == 1


def test_a_message_stored_without_a_wake_is_routed_by_the_drain_that_was_coming(  # type: ignore[no-untyped-def]
    app,  # noqa: F811
    client,
    redis,
    monkeypatch,
) -> None:
    """The race of ``Inbox.nudge``: the drain rests and finds nothing, then a row commits.

    The webhook skips asking Redis (it asked moments ago), so no new drain is queued;
    the drain that was coming looks once more after its grace and routes the row.
    """
    rt = app.extensions["canvass"]
    # A grace long enough for this test's first routing, even on a busy machine.
    monkeypatch.setattr("bot.inbox.WAKE_GRACE_S", 3.0)
    numbers = iter(range(1, 3))

    def voter_writes() -> None:
        n = next(numbers)
        form = {**inbound_form(sid=f"SM{n:032x}", body="complaint"), "From": f"+91987650000{n}"}
        assert post(client, PATH, form).status_code == 200

    voter_writes()  # wakes a drain (its job is queued, the flag set)
    assert queued(redis, "inbound-drain") == 1 and redis.exists(DRAIN_WOKEN)
    redis.delete("rq:queue:high")  # this test plays that drain job itself
    real_sleep, slept = conversations.time.sleep, []

    def sleep(seconds: float) -> None:
        # The drain routed the first message, found nothing more and waits out its
        # grace: a second message commits now, and its webhook asks Redis nothing.
        slept.append(seconds)
        assert count(app, QueuedInbound, QueuedInbound.routed_at.is_(None)) == 0
        voter_writes()
        assert not redis.exists(DRAIN_WOKEN) and queued(redis, "inbound-drain") == 0
        real_sleep(seconds)

    monkeypatch.setattr(conversations.time, "sleep", sleep)
    assert conversations.drain_inbound(rt, max_s=60) == 2
    assert len(slept) == 1 and count(app, QueuedInbound, QueuedInbound.routed_at.is_(None)) == 0


def test_a_dropped_database_connection_is_replaced_and_the_insert_retried(app, client, backend) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    if backend.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    rt = app.extensions["canvass"]
    assert post(client, PATH, inbound_form(body="complaint")).status_code == 200
    inbox = inbox_for(rt)
    with rt.db.engine.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND datname = current_database() AND query LIKE 'INSERT INTO inbound_queue%'"
            )
        ).all()
    assert killed and inbox is inbox_for(rt)
    assert post(client, PATH, inbound_form(sid="SM" + "3" * 32, body="complaint")).status_code == 200
    assert count(app, QueuedInbound) == 2
