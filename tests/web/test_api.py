import json
import re

import pytest

from web.api.openapi import SPEC
from web.users import create_user, issue_token


@pytest.fixture
def auth(app) -> dict[str, str]:
    with app.extensions["canvass"].db.session() as s:
        token = issue_token(s, create_user(s, "ops@example.org", "operator", "a long passphrase"))
    return {"Authorization": f"Bearer {token}"}


def test_add_list_and_look_up_contacts(client, auth) -> None:
    added = client.post(
        "/api/v1/contacts",
        json={"numbers": ["+91 98765 43210", "12", "9876543211"], "tags": ["ward=12", "volunteer"]},
        headers=auth,
    )
    assert added.status_code == 201
    body = added.get_json()
    assert [c["phone"] for c in body["created"]] == ["+919876543210", "+919876543211"]
    assert body["created"][0]["valued_tags"] == {"ward": "12"}
    assert body["created"][0]["tags"] == ["volunteer"]
    assert body["created"][0]["created_at"].endswith("Z")
    assert body["rejected"] == [{"number": "12", "reason": "invalid number (too short for IN)"}]

    again = client.post("/api/v1/contacts", json={"numbers": ["9876543210"]}, headers=auth)
    assert again.status_code == 200 and again.get_json()["updated"][0]["phone"] == "+919876543210"

    first = client.get("/api/v1/contacts?limit=1", headers=auth).get_json()
    assert [c["phone"] for c in first["contacts"]] == ["+919876543211"]
    assert first["next_cursor"] == str(first["contacts"][0]["id"])
    older = client.get(f"/api/v1/contacts?limit=1&cursor={first['next_cursor']}", headers=auth).get_json()
    assert [c["phone"] for c in older["contacts"]] == ["+919876543210"]
    assert older["next_cursor"] is None  # the last page
    for bad in ("limit=0", "limit=501", "limit=x", "cursor=abc"):
        refused = client.get(f"/api/v1/contacts?{bad}", headers=auth)
        assert refused.status_code == 422 and refused.get_json()["field"] == bad.split("=")[0]
    found = client.get("/api/v1/contacts?phone=098765-43210", headers=auth).get_json()["contacts"]
    assert [c["phone"] for c in found] == ["+919876543210"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"numbers": []}, "numbers", "non-empty list"),
        ({"numbers": "9876543210"}, "numbers", "non-empty list"),
        ({"numbers": ["9876543210"], "tags": ["bad tag!"]}, "tags", "tag name 'bad tag!'"),
        ({"numbers": [str(9876543000 + i) for i in range(51)]}, "numbers", "at most 50"),
    ],
)
def test_bad_contact_input_names_the_field(client, auth, body, field, message) -> None:
    response = client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status_code == 422
    error = response.get_json()
    assert error["error"] == "invalid" and error["field"] == field and message in error["message"]


def test_not_json_is_refused(client, auth) -> None:
    response = client.post("/api/v1/contacts", data="numbers=1", headers=auth)
    assert response.status_code == 422 and response.get_json()["field"] == "body"
    lookup = client.get("/api/v1/contacts?phone=abc", headers=auth)
    assert lookup.status_code == 422 and lookup.get_json()["field"] == "phone"


def test_segment_count(client, auth) -> None:
    client.post("/api/v1/contacts", json={"numbers": ["9876543210", "9876543211"], "tags": ["ward=12"]}, headers=auth)
    client.post("/api/v1/contacts", json={"numbers": ["9876543212"], "tags": ["ward=13"]}, headers=auth)
    count = client.post("/api/v1/segments/count", json={"segment": {"tag": "ward", "eq": "12"}}, headers=auth)
    assert count.get_json() == {"count": 2}
    everyone = client.post("/api/v1/segments/count", json={}, headers=auth)
    assert everyone.get_json() == {"count": 3}
    bad = client.post("/api/v1/segments/count", json={"segment": {"all": [{"tag": "ward", "in": 5}]}}, headers=auth)
    assert bad.status_code == 422
    assert bad.get_json()["field"] == "segment.all[0].in"


def _api_routes(app) -> dict[str, set[str]]:
    """Every /api/v1 route of the URL map, as the document writes it, with its methods."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule).removeprefix("/api/v1")
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    return routes


def test_openapi_describes_every_api_route_and_no_other(app, client) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec == SPEC
    documented = {path: set(ops) for path, ops in spec["paths"].items()}
    served = _api_routes(app)
    assert sorted(set(served) - set(documented)) == [], "routes missing from openapi.json"
    assert sorted(set(documented) - set(served)) == [], "openapi.json lists routes that do not exist"
    for path, methods in served.items():
        assert documented[path] == methods, path


def test_openapi_refers_only_to_defined_schemas_and_documents_every_answer() -> None:
    text = json.dumps(SPEC)
    for name in set(re.findall(r'"#/components/schemas/(\w+)"', text)):
        assert name in SPEC["components"]["schemas"], name
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), f"{method} {path}"
            if path != "/openapi.json":
                assert {"401", "403"} <= codes, f"{method} {path}"
            if "{" in path:
                assert "404" in codes, f"{method} {path}"


def test_timeline_and_handoff_reply_and_close(app, client, auth, redis) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from bot.channels import REGISTRY
    from bot.conversations import receive
    from bot.engine import load_path
    from bot.flowlibrary import clear_cache
    from bot.flowstore import store
    from bot.models import Sender

    rt = app.extensions["canvass"]
    flows = Path(__file__).resolve().parents[2] / "flows"
    with rt.db.session() as db:
        store(db, load_path(flows / "grievance_intake.yaml"), (flows / "grievance_intake.yaml").read_text())
        sender = Sender(provider="sandbox", channel="sms", address="+919999900002", healthy=True)
        db.add(sender)
        db.flush()
        sender_id = sender.id
    clear_cache()
    for text in ("complaint", "Ward 4", "No water at the booth"):
        form = {"From": "+919876543210", "To": "+919999900002", "Body": text, "Channel": "sms"}
        receive(rt, REGISTRY["sandbox"]().parse_inbound(form), sender_id)
    cases = client.get("/api/v1/handoffs", headers=auth).get_json()["handoffs"]
    assert len(cases) == 1 and cases[0]["reason"] == "grievance at Ward 4: No water at the booth"
    case_id, contact_id = cases[0]["id"], cases[0]["contact_id"]

    sent = client.post(f"/api/v1/handoffs/{case_id}/reply", json={"text": "An officer is on the way."}, headers=auth)
    assert sent.status_code == 201
    assert (
        client.post(f"/api/v1/handoffs/{case_id}/reply", json={"text": " "}, headers=auth).get_json()["field"] == "text"
    )
    too_long = client.post(f"/api/v1/handoffs/{case_id}/close", json={"note": "x" * 31}, headers=auth)
    assert too_long.status_code == 422 and too_long.get_json()["field"] == "note"
    closed = client.post(f"/api/v1/handoffs/{case_id}/close", json={"note": "water tanker sent"}, headers=auth)
    assert {k: closed.get_json()[k] for k in ("id", "status", "note")} == {
        "id": case_id,
        "status": "closed",
        "note": "water tanker sent",
    }
    assert closed.get_json()["closed_at"].endswith("Z")
    assert client.post(f"/api/v1/handoffs/{case_id}/reply", json={"text": "hi"}, headers=auth).status_code == 422
    assert client.post("/api/v1/handoffs/999/close", json={}, headers=auth).status_code == 404

    entries = client.get(f"/api/v1/contacts/{contact_id}/timeline", headers=auth).get_json()["timeline"]
    kinds = [e["kind"] for e in entries]
    assert kinds.count("message") == 8 and kinds.count("funnel") == 3 and kinds.count("handoff") == 1
    assert [e["body"] for e in entries if e["kind"] == "message" and e["purpose"] == "direct"] == [
        "An officer is on the way."
    ]
    assert client.get("/api/v1/contacts/999/timeline", headers=auth).status_code == 404


def test_direct_send_to_one_voter(app, client, auth, redis) -> None:  # type: ignore[no-untyped-def]
    from bot.models import Sender
    from bot.outbox import send_message

    rt = app.extensions["canvass"]
    contact_id = client.post("/api/v1/contacts", json={"numbers": ["9876543210"]}, headers=auth).get_json()["created"][
        0
    ]["id"]
    no_sender = client.post(
        f"/api/v1/contacts/{contact_id}/messages", json={"text": "Hi", "channel": "sms"}, headers=auth
    )
    assert no_sender.status_code == 422 and "no healthy sms sender" in no_sender.get_json()["message"]
    with rt.db.session() as db:
        db.add(Sender(provider="sandbox", channel="sms", address="+919999900002", healthy=True))
    sent = client.post(
        f"/api/v1/contacts/{contact_id}/messages", json={"text": "Booth opens at 7", "channel": "sms"}, headers=auth
    )
    assert sent.status_code == 201 and redis.llen("rq:queue:high") == 1
    assert send_message(rt.db, rt.settings, sent.get_json()["message_id"]) == "delivered"
    bad = client.post(f"/api/v1/contacts/{contact_id}/messages", json={"text": "x", "channel": "fax"}, headers=auth)
    assert bad.get_json()["field"] == "channel"
    assert (
        client.post("/api/v1/contacts/999/messages", json={"text": "x", "channel": "sms"}, headers=auth).status_code
        == 404
    )
