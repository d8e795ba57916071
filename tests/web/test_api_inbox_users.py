"""The REST API's inbox (note, assign, list pages) and users (admins only)."""

import pytest

from bot.db import utcnow
from bot.models import Contact, HandoffCase
from web.users import create_user, issue_token


@pytest.fixture
def tokens(app) -> dict[str, dict[str, str]]:
    found = {}
    with app.extensions["canvass"].db.session() as s:
        for role in ("viewer", "operator", "admin"):
            token = issue_token(s, create_user(s, f"{role}@example.org", role, "a long passphrase"))
            found[role] = {"Authorization": f"Bearer {token}"}
    return found


def _cases(app, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as s:
        ids = []
        for i in range(n):
            contact = Contact(phone=f"+91987654321{i}", phone_kind="mobile", fields={})
            s.add(contact)
            s.flush()
            case = HandoffCase(contact_id=contact.id, status="open", reason="help", opened_at=utcnow())
            s.add(case)
            s.flush()
            ids.append(case.id)
        return ids


def test_note_assign_and_pages_of_cases(app, client, tokens) -> None:
    first, second, third = _cases(app, 3)
    ops = tokens["operator"]
    noted = client.post(f"/api/v1/handoffs/{first}/note", json={"note": "  needs a ramp "}, headers=ops)
    assert noted.status_code == 200 and noted.get_json()["note"] == "needs a ramp"
    too_long = client.post(f"/api/v1/handoffs/{first}/note", json={"note": "x" * 31}, headers=ops)
    assert too_long.status_code == 422 and too_long.get_json()["field"] == "note"
    not_text = client.post(f"/api/v1/handoffs/{first}/note", json={"note": 5}, headers=ops)
    assert not_text.status_code == 422 and not_text.get_json()["field"] == "note"
    cleared = client.post(f"/api/v1/handoffs/{first}/note", json={"note": None}, headers=ops)
    assert cleared.get_json()["note"] is None

    assigned = client.post(f"/api/v1/handoffs/{second}/assign", headers=ops).get_json()
    assert assigned["assignee_id"] is not None
    mine = client.get("/api/v1/handoffs?mine=true", headers=ops).get_json()["handoffs"]
    assert [c["id"] for c in mine] == [second]

    viewer = tokens["viewer"]  # viewers read the inbox
    page = client.get("/api/v1/handoffs?limit=2", headers=viewer).get_json()
    assert [c["id"] for c in page["handoffs"]] == [first, second] and page["next_cursor"] == str(second)
    rest = client.get(f"/api/v1/handoffs?limit=2&cursor={page['next_cursor']}", headers=viewer).get_json()
    assert [c["id"] for c in rest["handoffs"]] == [third] and rest["next_cursor"] is None
    assert client.get(f"/api/v1/handoffs/{third}", headers=viewer).get_json()["status"] == "open"
    assert client.post(f"/api/v1/handoffs/{third}/assign", headers=viewer).status_code == 403

    closed = client.post(f"/api/v1/handoffs/{third}/close", headers=ops)  # no body: no note
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    again = client.post(f"/api/v1/handoffs/{third}/assign", headers=ops)
    assert again.status_code == 422 and again.get_json()["field"] == "case"
    for bad in ("status=maybe", "mine=yes"):
        refused = client.get(f"/api/v1/handoffs?{bad}", headers=viewer)
        assert refused.status_code == 422 and refused.get_json()["field"] == bad.split("=")[0]
    assert client.post("/api/v1/handoffs/999/note", json={"note": "x"}, headers=ops).status_code == 404


def test_reply_needs_text(app, client, tokens) -> None:
    (case,) = _cases(app, 1)
    for body, field in (({}, "text"), ({"text": 5}, "text"), ([1], "body")):
        refused = client.post(f"/api/v1/handoffs/{case}/reply", json=body, headers=tokens["operator"])
        assert refused.status_code == 422 and refused.get_json()["field"] == field


def test_admins_manage_users_and_tokens(app, client, tokens) -> None:
    admin = tokens["admin"]
    made = client.post(
        "/api/v1/users", json={"email": "New@Example.org", "role": "editor", "password": "x" * 12}, headers=admin
    )
    assert made.status_code == 201 and made.get_json()["email"] == "new@example.org"
    user_id = made.get_json()["id"]
    for body, field in (
        ({"email": "new@example.org", "role": "editor"}, "email"),
        ({"email": "b@example.org", "role": "boss"}, "role"),
        ({"email": "c@example.org", "role": "viewer", "password": "short"}, "password"),
        ({"role": "viewer"}, "email"),
    ):
        refused = client.post("/api/v1/users", json=body, headers=admin)
        assert refused.status_code == 422 and refused.get_json()["field"] == field, refused.get_json()

    token = client.post(f"/api/v1/users/{user_id}/tokens", headers=admin).get_json()["token"]
    as_new = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=as_new).get_json() == {"email": "new@example.org", "role": "editor"}
    assert (
        client.patch(f"/api/v1/users/{user_id}", json={"role": "viewer"}, headers=admin).get_json()["role"] == "viewer"
    )
    assert client.patch(f"/api/v1/users/{user_id}", json={"active": False}, headers=admin).get_json()["active"] is False
    assert client.get("/api/v1/me", headers=as_new).status_code == 401  # a deactivated user's tokens stop
    assert client.post(f"/api/v1/users/{user_id}/tokens", headers=admin).status_code == 409

    me = client.get("/api/v1/me", headers=admin)
    assert me.status_code == 200
    admin_id = next(
        u["id"] for u in client.get("/api/v1/users", headers=admin).get_json()["users"] if u["role"] == "admin"
    )
    own = client.patch(f"/api/v1/users/{admin_id}", json={"role": "viewer"}, headers=admin)
    assert own.status_code == 409
    for body, field in (({"email": "x@y.org"}, "email"), ({"active": "no"}, "active"), ({"role": 1}, "role")):
        refused = client.patch(f"/api/v1/users/{user_id}", json=body, headers=admin)
        assert refused.status_code == 422 and refused.get_json()["field"] == field
    listed = client.get("/api/v1/users?limit=2", headers=admin).get_json()
    assert len(listed["users"]) == 2 and listed["next_cursor"] is not None
    assert "password_hash" not in listed["users"][0]
    assert client.get("/api/v1/users", headers=tokens["operator"]).status_code == 403
