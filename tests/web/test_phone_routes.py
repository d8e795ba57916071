"""The sandbox phone's routes act only on the sandbox: its lines, its calls — never a real number's."""

from __future__ import annotations

from sqlalchemy import select

from bot.engine import load_path
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import Contact, Sender
from ivr.models import Call, VoiceLine
from tests.bot.test_conversations import ROOT
from tests.conftest import csrf_token, login
from web.users import create_user

SANDBOX_LINE, REAL_LINE = "+919999900003", "+911140000000"


def signed_in(app, client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as db:
        create_user(db, "op@example.org", "operator", "a long passphrase")
        path = ROOT / "flows" / "ivr_survey.yaml"
        store(db, load_path(path), path.read_text())
        db.add(Sender(provider="sandbox", channel="voice", address=SANDBOX_LINE, healthy=True))
        db.add(Sender(provider="twilio", channel="voice", address=REAL_LINE, healthy=True))
        db.add(VoiceLine(address=SANDBOX_LINE, flow_name="ivr_survey"))
        db.add(VoiceLine(address=REAL_LINE, flow_name="ivr_survey"))
    clear_cache()
    assert login(client, "op@example.org", "a long passphrase").status_code == 302
    return {"X-CSRFToken": csrf_token(client, "/sandbox")}


def test_the_phone_calls_sandbox_lines_only(app, client) -> None:  # type: ignore[no-untyped-def]
    headers = signed_in(app, client)
    page = client.get("/sandbox/phone").get_data(as_text=True)
    assert SANDBOX_LINE in page and REAL_LINE not in page
    refused = client.post("/sandbox/phone/call", json={"phone": "9876543210", "line": REAL_LINE}, headers=headers)
    assert refused.status_code == 422 and "not a voice line of a sandbox voice sender" in refused.get_data(as_text=True)
    taken = client.post("/sandbox/phone/call", json={"phone": "9876543210", "line": SANDBOX_LINE}, headers=headers)
    assert taken.status_code == 200 and taken.get_json()["steps"]


def test_the_phone_cannot_hang_up_a_real_call(app, client) -> None:  # type: ignore[no-untyped-def]
    headers = signed_in(app, client)
    with app.extensions["canvass"].db.session() as db:
        contact = Contact(phone="+919876543210", fields={}, tags=[])
        db.add(contact)
        db.flush()
        real = db.scalar(select(Sender.id).where(Sender.address == REAL_LINE))
        db.add(
            Call(contact_id=contact.id, sender_id=real, direction="inbound", sid="CA" + "1" * 32, status="in-progress")
        )
    refused = client.post("/sandbox/phone/hangup", json={"sid": "CA" + "1" * 32}, headers=headers)
    assert refused.status_code == 422
    with app.extensions["canvass"].db.session() as db:
        assert db.scalar(select(Call.status)) == "in-progress"


def test_a_reference_with_foreign_characters_is_refused_not_a_500(app, client) -> None:  # type: ignore[no-untyped-def]
    headers = signed_in(app, client)
    taken = client.post("/sandbox/phone/call", json={"phone": "9876543210", "line": SANDBOX_LINE}, headers=headers)
    sid = taken.get_json()["sid"]
    gather = next(s for s in taken.get_json()["steps"] if s["kind"] == "gather")
    forged = gather["params"]["action"].rsplit("&s=", 1)[0] + "&s=%C3%A9t%C3%A9"
    answer = client.post("/sandbox/phone/step", json={"sid": sid, "action": forged, "digits": "1"}, headers=headers)
    assert answer.status_code == 422
