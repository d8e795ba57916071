"""The inbox (human handoff) and the voter page, through the console's forms (CSRF included).

Each test runs on SQLite and on PostgreSQL (the ``world`` fixture's app).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.db import utcnow
from bot.models import FlowSession, HandoffCase, Message
from bot.outbox import send_message
from campaigns.models import Template, TemplateVersion
from tests.campaigns.conftest import World
from tests.conftest import csrf_token, login
from tests.web.statements import counted
from web.users import create_user

VOTER = "+919876500001"
PASSWORD = "a long passphrase"
# booth_locator: three answers that are neither 1 nor 2 end in its "human" handoff node.
TO_HANDOFF = ("booth", "maybe", "perhaps", "dunno")


def agent(world: World, role: str = "operator") -> Any:
    """A test client signed in as ``ROLE@example.org``."""
    client = world.app.test_client()
    with world.rt.db.session() as s:
        create_user(s, f"{role}@example.org", role, PASSWORD)
    assert login(client, f"{role}@example.org", PASSWORD).status_code == 302
    return client


def handed_off(world: World, phone: str = VOTER) -> tuple[int, int]:
    """A voter whom booth_locator hands to a person; returns (case id, contact id)."""
    world.voter(phone, "ward=3", name="Asha")
    for text in TO_HANDOFF:
        world.reply(phone, text)
    with world.rt.db.session() as s:
        case = s.scalars(select(HandoffCase)).one()
        return case.id, case.contact_id


def post(client: Any, path: str, page: str, **data: str) -> Any:
    """Post a console form with the CSRF token of ``page``, following the redirect."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)}, follow_redirects=True)


def flashed(response: Any) -> list[str]:
    return re.findall(r'<p class="flash \w+" role="status">([^<]*)</p>', response.get_data(as_text=True))


def queued(redis: Any, message_id: int) -> bool:
    """The message's send job waits on the high-priority queue."""
    return f"send-{message_id}".encode() in redis.lrange("rq:queue:high", 0, -1)


def out_messages(world: World) -> list[Message]:
    with world.rt.db.session() as s:
        return list(s.scalars(select(Message).where(Message.purpose.in_(("direct", "template"))).order_by(Message.id)))


def test_a_flow_hands_off_and_the_agent_replies_notes_and_closes(world: World, redis) -> None:  # type: ignore[no-untyped-def]
    case_id, contact_id = handed_off(world)
    client = agent(world)
    assert VOTER not in client.get("/inbox").get_data(as_text=True)  # "mine": nobody's yet
    listing = client.get("/inbox?tab=all").get_data(as_text=True)
    assert f'<a href="/inbox/{case_id}" class="mono">{VOTER}</a>' in listing
    assert "booth locator: could not help Asha" in listing and "nobody yet" in listing

    page = client.get(f"/inbox/{case_id}").get_data(as_text=True)
    assert "Please reply 1 or 2." in page and 'data-window="open"' in page
    path = f"/inbox/{case_id}"

    sent = post(client, f"{path}/reply", path, text="Hello Asha, I am Ravi from the booth desk.")
    assert flashed(sent) == [f"Your message to {VOTER} is queued (on whatsapp)."]
    [message] = out_messages(world)
    assert (message.status, message.channel, message.purpose) == ("pending", "whatsapp", "direct")
    assert queued(redis, message.id)  # the queue path of every send
    assert send_message(world.rt.db, world.rt.settings, message.id) == "delivered"
    assert f'<a href="/inbox/{case_id}" class="mono">{VOTER}</a>' in client.get("/inbox").get_data(as_text=True)

    too_long = post(client, f"{path}/note", path, note="x" * 31)
    assert flashed(too_long) == ["Note: must be at most 30 characters, got 31"]
    noted = post(client, f"{path}/note", path, note="wants a booth change")
    assert flashed(noted) == ["Note saved: wants a booth change."]
    assert '<span class="tag note" data-note>wants a booth change</span>' in client.get(
        f"/contacts/{contact_id}"
    ).get_data(as_text=True)

    # While the case is open the bot stays quiet; once closed, the voter is the bot's again.
    world.reply(VOTER, "booth")
    with world.rt.db.session() as s:
        assert s.scalar(select(Message.body).order_by(Message.id.desc()).limit(1)) == "booth"
    closed = post(client, f"{path}/close", path)
    assert flashed(closed) == [f"Closed: {VOTER} is back with the bot and available to campaigns again."]
    with world.rt.db.session() as s:
        case = s.get(HandoffCase, case_id)
        assert (case.status, case.note, case.assignee_id is not None) == ("closed", "wants a booth change", True)
        assert s.get(FlowSession, case.session_id).end_reason == "handoff_closed"
    assert VOTER not in client.get("/inbox?tab=all").get_data(as_text=True)
    assert VOTER in client.get("/inbox?tab=closed").get_data(as_text=True)
    world.reply(VOTER, "booth")
    with world.rt.db.session() as s:
        assert s.scalar(select(Message.body).order_by(Message.id.desc()).limit(1)).startswith("Do you know where")
    again = post(client, f"{path}/reply", path, text="still there?")
    assert flashed(again) == [f"Case: case {case_id} is closed"]


def test_a_closed_case_makes_the_voter_available_to_campaigns(world: World) -> None:
    from campaigns import operations
    from campaigns.models import Recipient
    from tests.campaigns.conftest import BOOTH_SPEC

    case_id, _ = handed_off(world)
    first = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, first.id)
    post(agent(world), f"/inbox/{case_id}/close", f"/inbox/{case_id}")
    second = world.campaign(BOOTH_SPEC.replace("Booth reminder", "Booth reminder 2"))
    with world.rt.db.session() as s:
        # (The first campaign skipped the voter, so it does not hold them either.)
        operations.launch(world.rt, second.id)
        rows = dict(s.execute(select(Recipient.campaign_id, Recipient.skip_code)).all())
    assert rows == {first.id: "handoff_open", second.id: None}


def test_outside_the_window_only_an_approved_template_goes(world: World, redis) -> None:  # type: ignore[no-untyped-def]
    case_id, _ = handed_off(world)
    with world.rt.db.session() as s:  # as if the voter last wrote two days ago
        s.execute(update(Message).values(created_at=utcnow() - dt.timedelta(days=2)))
        version_id = s.scalar(
            select(TemplateVersion.id)
            .join(Template)
            .where(Template.name == "booth_reminder", Template.channel == "whatsapp")
        )
    client = agent(world)
    path = f"/inbox/{case_id}"
    page = client.get(path).get_data(as_text=True)
    assert 'data-window="closed"' in page and "only a template that WhatsApp approved" in page
    assert 'name="text"' not in page  # no free-text box
    refused = post(client, f"{path}/reply", path, text="Hello?")
    assert flashed(refused)[0].startswith("Message: the voter has not written on WhatsApp in the last 24 hours")
    assert out_messages(world) == []

    form = client.get(f"{path}?template={version_id}").get_data(as_text=True)
    assert 'name="value_1"' in form and 'name="value_2"' in form and 'placeholder="Asha"' in form
    missing = post(client, f"{path}/template", path, template=str(version_id), value_1="Asha", value_2=" ")
    assert flashed(missing) == ["Value of {{2}}: must not be empty"]
    assert 'name="value_2"' in missing.get_data(as_text=True)  # back on the same template's form
    sent = post(client, f"{path}/template", path, template=str(version_id), value_1="Asha", value_2="3")
    assert flashed(sent) == [f"Your template to {VOTER} is queued (on whatsapp)."]
    [message] = out_messages(world)
    assert message.purpose == "template" and message.body.startswith("Namaste Asha! Polling in ward 3 is")
    # WhatsApp takes a template outside the window: the send job lets it through.
    assert send_message(world.rt.db, world.rt.settings, message.id) == "delivered"


def test_the_chat_history_filters_by_channel_and_dates(world: World) -> None:
    case_id, _ = handed_off(world)
    world.reply(VOTER, "sent by sms", channel="sms")
    with world.rt.db.session() as s:
        s.execute(
            update(Message).where(Message.body == "maybe").values(created_at=dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC))
        )
    client = agent(world, "viewer")
    everything = client.get(f"/inbox/{case_id}").get_data(as_text=True)
    assert "sent by sms" in everything and ">maybe<" in everything
    sms = client.get(f"/inbox/{case_id}?channel=sms").get_data(as_text=True)
    assert "sent by sms" in sms and ">perhaps<" not in sms
    january = client.get(f"/inbox/{case_id}?from=2026-01-05&to=2026-01-05").get_data(as_text=True)
    assert ">maybe<" in january and ">perhaps<" not in january
    bad = client.get(f"/inbox/{case_id}?from=5/1/2026").get_data(as_text=True)
    assert "From: write a date as YYYY-MM-DD, got &#39;5/1/2026&#39;." in bad
    backwards = client.get(f"/inbox/{case_id}?from=2026-02-01&to=2026-01-01").get_data(as_text=True)
    assert "To: must not be before From (2026-02-01), got 2026-01-01." in backwards
    # A viewer reads the case but has no forms to act with.
    assert 'method="post" action="/inbox/' not in everything and "replying needs the operator role" in everything
    assert client.post(f"/inbox/{case_id}/close", data={"csrf_token": csrf_token(client, "/inbox")}).status_code == 403


def test_the_voter_page_shows_details_and_the_whole_timeline(world: World) -> None:
    case_id, contact_id = handed_off(world)
    client = agent(world, "viewer")
    assert f'<a href="/contacts/{contact_id}">{VOTER}</a>' in client.get("/contacts").get_data(as_text=True)
    page = client.get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert '<span class="tag">ward=3</span>' in page and "Asha" in page
    kinds = re.findall(r'data-kind="(\w+)"', page)
    assert {"message", "funnel", "handoff"} <= set(kinds)
    assert f'<a href="/inbox/{case_id}">open case #{case_id}</a>' in page
    assert "Take over" not in page and 'name="text"' not in page  # viewers see, but do not act


def test_the_timeline_pages_newest_first_in_a_fixed_number_of_queries(world: World) -> None:
    contact_id = world.voter(VOTER, name="Asha")
    client = agent(world, "viewer")
    with counted(world.rt.db.engine) as few:
        assert client.get(f"/contacts/{contact_id}").status_code == 200
    # 130 messages and the funnel steps, consent changes and case of two conversations.
    for text in TO_HANDOFF:
        world.reply(VOTER, text)
    with world.rt.db.session() as s:
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for i in range(120):
            s.add(
                Message(
                    contact_id=contact_id,
                    direction="in",
                    channel="sms",
                    body=f"m{i}",
                    status="received",
                    created_at=base + dt.timedelta(seconds=i // 2),
                )
            )  # pairs share a time: ties
    with counted(world.rt.db.engine) as many:
        first = client.get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert len(many) == len(few)  # no query per entry

    numbered: list[str] = []
    times: list[str] = []
    page, pages = first, 1
    while True:
        numbered += re.findall(r">m(\d+)<", page)
        times += re.findall(r'<span class="at"><time datetime="([^"]+)"', page)
        older = re.search(r'href="(/contacts/\d+\?before=[^"]+)" rel="next"', page)
        if not older:
            break
        page, pages = client.get(older.group(1)).get_data(as_text=True), pages + 1
    assert pages >= 3 and sorted(numbered, key=int) == [str(i) for i in range(120)]  # each once
    assert times == sorted(times, reverse=True)
    assert re.findall(r">m(\d+)<", first)[:4] == ["119", "118", "117", "116"]  # newest first, ties by id
    wrong = client.get(f"/contacts/{contact_id}?before=nonsense")
    assert wrong.status_code == 422 and "before: not a timeline position" in wrong.get_data(as_text=True)


def test_send_from_the_voter_page_and_take_over(world: World, redis) -> None:  # type: ignore[no-untyped-def]
    contact_id = world.voter(VOTER, name="Asha")
    client = agent(world)
    path = f"/contacts/{contact_id}"
    page = client.get(path).get_data(as_text=True)
    assert "the voter has never written on WhatsApp" in page
    refused = post(client, f"{path}/message", path, text="Hi", channel="whatsapp")
    assert flashed(refused)[0].startswith("Message: the voter has not written on WhatsApp")
    sent = post(client, f"{path}/message", path, text="Booth opens at 7", channel="sms")
    assert flashed(sent) == ["Your message is queued (on sms)."]
    [message] = out_messages(world)
    assert message.body == "Booth opens at 7" and queued(redis, message.id)

    taken = post(client, f"{path}/take-over", path)
    assert flashed(taken)[0].startswith(f"You took over the conversation with {VOTER}")
    with world.rt.db.session() as s:
        case = s.scalars(select(HandoffCase)).one()
    assert taken.request.path == f"/inbox/{case.id}" and case.reason == "taken over by an agent"
    assert f'<a href="/inbox/{case.id}" class="mono">{VOTER}</a>' in client.get("/inbox").get_data(as_text=True)
    again = post(client, f"{path}/take-over", path)
    assert flashed(again) == [f"{VOTER} already has an open case: here it is."]
    world.reply(VOTER, "booth")  # the bot stays quiet while the agent talks
    with world.rt.db.session() as s:
        assert s.scalar(select(Message.body).order_by(Message.id.desc()).limit(1)) == "booth"
    # Now inside the window: the agent writes on WhatsApp freely.
    reply = post(client, f"/inbox/{case.id}/reply", f"/inbox/{case.id}", text="How can I help?")
    assert flashed(reply) == [f"Your message to {VOTER} is queued (on whatsapp)."]


# Every state-changing route of these pages: operators and above, with the session's CSRF token.
ACTIONS = [
    "/inbox/{case}/reply",
    "/inbox/{case}/template",
    "/inbox/{case}/note",
    "/inbox/{case}/assign",
    "/inbox/{case}/close",
    "/contacts/{contact}/message",
    "/contacts/{contact}/template",
    "/contacts/{contact}/take-over",
]


@pytest.mark.parametrize("who", [None, "viewer", "operator", "admin"], ids=lambda w: w or "anonymous")
@pytest.mark.parametrize("route", ACTIONS)
def test_actions_need_an_operator_and_a_csrf_token(world: World, route: str, who: str | None) -> None:
    case_id, contact_id = handed_off(world)
    path = route.format(case=case_id, contact=contact_id)
    client = agent(world, who) if who else world.app.test_client()
    token = csrf_token(client, "/login")
    form = {"text": "hello", "note": "ok", "channel": "sms", "template": "0"}
    assert client.post(path, data=form).status_code == 400  # no CSRF token
    answer = client.post(path, data={**form, "csrf_token": token})
    assert answer.status_code == {None: 401, "viewer": 403}.get(who, 302)
    if who:
        assert client.get(f"/inbox/{case_id}").status_code == 200  # everyone signed in reads
