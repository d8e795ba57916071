"""The REST API's contacts: read one, change it, delete or erase it, its timeline, imports, segment preview."""

import io

import pytest
from sqlalchemy import func, select

from bot.consent import ConsentLedger
from bot.import_jobs import recent_imports
from bot.models import ConsentEvent, Contact, Message
from web.context import runtime
from web.users import create_user, issue_token


@pytest.fixture
def auth(app) -> dict[str, str]:
    with app.extensions["canvass"].db.session() as s:
        token = issue_token(s, create_user(s, "ops@example.org", "operator", "a long passphrase"))
    return {"Authorization": f"Bearer {token}"}


def _add(client, auth, *numbers: str, tags=()) -> list[int]:  # type: ignore[no-untyped-def]
    body = client.post("/api/v1/contacts", json={"numbers": list(numbers), "tags": list(tags)}, headers=auth).get_json()
    return [c["id"] for c in body["created"]]


def test_read_and_change_one_contact(client, auth) -> None:
    (cid,) = _add(client, auth, "9876543210", tags=["volunteer", "ward=12", "youth"])
    got = client.get(f"/api/v1/contacts/{cid}", headers=auth)
    assert got.status_code == 200 and got.get_json()["tags"] == ["volunteer", "youth"]
    changed = client.patch(
        f"/api/v1/contacts/{cid}",
        json={
            "name": " Asha ",
            "language": "HI",
            "timezone": "Asia/Kolkata",
            "tags": ["volunteer", "booth-captain"],  # replaces the plain tags
            "valued_tags": {"ward": None, "booth": 7},  # merges: null removes
            "fields": {"age": 34, "epic": "ABC1234567"},
        },
        headers=auth,
    )
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["name"], body["language"], body["timezone"]) == ("Asha", "hi", "Asia/Kolkata")
    assert body["tags"] == ["booth-captain", "volunteer"]
    assert body["valued_tags"] == {"booth": "7"}
    assert body["fields"] == {"age": 34, "epic": "ABC1234567"}
    again = client.patch(f"/api/v1/contacts/{cid}", json={"fields": {"age": None}, "name": None}, headers=auth)
    assert again.get_json()["fields"] == {"epic": "ABC1234567"} and again.get_json()["name"] is None
    assert again.get_json()["tags"] == ["booth-captain", "volunteer"]  # left out: unchanged


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"language": "english!"}, "language", "not a language code"),
        ({"timezone": "Mars/Base"}, "timezone", "not a timezone"),
        ({"name": 5}, "name", "must be text"),
        ({"name": "x" * 201}, "name", "at most 200"),
        ({"tags": "volunteer"}, "tags", "must be a list"),
        ({"tags": ["ok", "bad tag!"]}, "tags[1]", "tag name"),
        ({"tags": ["ward"]}, "tags[0]", "is a valued tag"),
        ({"valued_tags": {"booth": {"n": 1}}}, "valued_tags.booth", "must be text"),
        ({"valued_tags": {"booth": ""}}, "valued_tags.booth", "empty"),
        ({"fields": {"1st": "x"}}, "fields.1st", "field name"),
        ({"fields": {"a": [1]}}, "fields.a", "must be text, a number"),
        ({"phone": "+15550000"}, "phone", "cannot be changed"),
    ],
)
def test_a_bad_change_names_the_field_and_changes_nothing(app, client, auth, changes, field, message) -> None:
    (cid,) = _add(client, auth, "9876543210", tags=["ward=12"])
    response = client.patch(f"/api/v1/contacts/{cid}", json={"name": "Ravi", **changes}, headers=auth)
    assert response.status_code == 422
    error = response.get_json()
    assert (error["error"], error["field"]) == ("invalid", field) and message in error["message"], error
    unchanged = client.get(f"/api/v1/contacts/{cid}", headers=auth).get_json()
    assert unchanged["name"] is None and unchanged["valued_tags"] == {"ward": "12"}


def test_unknown_contacts_are_404_naming_the_parameter(client, auth) -> None:
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)("/api/v1/contacts/999", json={}, headers=auth)
        assert response.status_code == 404 and response.get_json()["field"] == "contact_id"
    assert client.post("/api/v1/contacts/999/erase", headers=auth).status_code == 404


def test_delete_only_without_history_erase_keeps_what_happened(app, client, auth) -> None:
    quiet, talked = _add(client, auth, "9876543210", "9876543211", tags=["ward=12"])
    assert client.delete(f"/api/v1/contacts/{quiet}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/contacts/{quiet}", headers=auth).status_code == 404

    rt = app.extensions["canvass"]
    with rt.db.session() as s:
        contact = s.get(Contact, talked)
        contact.name, contact.fields = "Asha", {"epic": "ABC1234567"}
        s.add(
            Message(contact_id=talked, direction="in", channel="sms", body="my EPIC is ABC1234567", status="received")
        )
    refused = client.delete(f"/api/v1/contacts/{talked}", headers=auth)
    assert refused.status_code == 409
    assert refused.get_json()["error"] == "has_history" and "erase it instead" in refused.get_json()["message"]

    erased = client.post(f"/api/v1/contacts/{talked}/erase", headers=auth)
    assert erased.status_code == 200
    body = erased.get_json()
    assert body["messages_erased"] == 1
    contact_after = body["contact"]
    assert (contact_after["name"], contact_after["fields"], contact_after["valued_tags"]) == (None, {}, {})
    assert contact_after["consent"] == "opted_out" and contact_after["phone"] == "+919876543211"
    with rt.db.session() as s:
        message = s.scalars(select(Message).where(Message.contact_id == talked)).one()
        assert (message.body, message.status) == (None, "received")  # what happened stays, what was said goes
        ledger = ConsentLedger(s).history(talked)
        assert [(e.status, e.source, e.note) for e in ledger] == [("opted_out", "api", "erased on request")]
    # Erasing twice erases nothing more and writes no second ledger entry.
    assert client.post(f"/api/v1/contacts/{talked}/erase", headers=auth).get_json()["messages_erased"] == 0
    with rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 1


def test_timeline_pages_newest_first(app, client, auth) -> None:
    (cid,) = _add(client, auth, "9876543210")
    with app.extensions["canvass"].db.session() as s:
        for i in range(5):
            s.add(Message(contact_id=cid, direction="in", channel="sms", body=f"m{i}", status="received"))
    seen, cursor = [], None
    while True:
        url = f"/api/v1/contacts/{cid}/timeline?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth).get_json()
        seen += [e["body"] for e in page["timeline"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["m4", "m3", "m2", "m1", "m0"]
    bad = client.get(f"/api/v1/contacts/{cid}/timeline?cursor=nonsense", headers=auth)
    assert bad.status_code == 422 and bad.get_json()["field"] == "cursor"


def test_segment_preview_counts_and_shows_the_first(client, auth) -> None:
    _add(client, auth, "9876543210", "9876543211", "9876543212", tags=["ward=12"])
    _add(client, auth, "9876543213", tags=["ward=13"])
    preview = client.post(
        "/api/v1/segments/preview", json={"segment": {"tag": "ward", "eq": "12"}, "limit": 2}, headers=auth
    ).get_json()
    assert preview["count"] == 3
    assert [c["phone"] for c in preview["contacts"]] == ["+919876543210", "+919876543211"]
    for body, field in (({"limit": 0}, "limit"), ({"segment": {"tag": "ward", "in": 5}}, "segment.in")):
        bad = client.post("/api/v1/segments/preview", json=body, headers=auth)
        assert bad.status_code == 422 and bad.get_json()["field"] == field


def _run_worker(app) -> None:  # type: ignore[no-untyped-def]
    import worker

    with app.app_context():
        assert worker.run_worker(burst=True, rt=runtime()) == 0


def test_import_a_file_then_follow_it(app, client, auth, redis) -> None:
    csv = b"phone,name,ward\n9876543210,Asha,12\n9876543211,Ravi,13\nnot-a-number,X,1\n"
    started = client.post(
        "/api/v1/contacts/imports",
        data={"file": (io.BytesIO(csv), "voters.csv"), "tags": "drive=nov,youth"},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert started.status_code == 202, started.get_json()
    job = started.get_json()
    assert job["state"] == "queued" and job["url"] == f"/api/v1/contacts/imports/{job['job_id']}"
    queued = client.get(job["url"], headers=auth).get_json()
    assert (queued["state"], queued["report"]) == ("queued", None)

    _run_worker(app)
    done = client.get(job["url"], headers=auth).get_json()
    assert done["state"] == "finished" and done["progress"] == 1.0 and done["error"] is None
    assert done["report"] == {"imported": 2, "updated": 0, "rejected": 1}
    with client.get(done["rejects_url"], headers=auth) as rejects:
        assert rejects.status_code == 200 and rejects.mimetype == "text/csv"
        assert rejects.get_data(as_text=True).splitlines()[1].startswith("4,")
    asha = client.get("/api/v1/contacts?phone=9876543210", headers=auth).get_json()["contacts"][0]
    assert asha["valued_tags"] == {"drive": "nov", "ward": "12"} and asha["tags"] == ["youth"]
    # One job module for both: the console lists the API's import with its own.
    (listed,) = recent_imports(redis)
    assert (listed["id"], listed["filename"], listed["by"]) == (job["job_id"], "voters.csv", "ops@example.org")


def test_a_file_refused_as_a_whole_is_a_finished_job_with_the_reason(app, client, auth, redis) -> None:
    started = client.post(
        "/api/v1/contacts/imports",
        data={"file": (io.BytesIO(b"name,ward\nAsha,12\n"), "voters.csv")},
        headers=auth,
        content_type="multipart/form-data",
    ).get_json()
    _run_worker(app)
    done = client.get(started["url"], headers=auth).get_json()
    assert done["state"] == "finished" and done["report"] is None
    assert "phone" in done["error"] and "import-" not in done["error"]  # our file name is not shown
    assert done["rejects_url"] is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "file"),
        ({"file": (b"phone\n1\n", "voters.xlsx")}, "file"),
        ({"file": (b"", "voters.csv")}, "file"),
        ({"file": (b"phone\n9876543210\n", "voters.csv"), "tags": "bad tag!"}, "tags"),
    ],
)
def test_a_refused_upload_queues_nothing(client, auth, redis, data, field) -> None:
    # A fresh file object for each run (the test runs once per database).
    form = {k: (io.BytesIO(v[0]), v[1]) if k == "file" else v for k, v in data.items()}
    response = client.post("/api/v1/contacts/imports", data=form, headers=auth, content_type="multipart/form-data")
    assert response.status_code == 422 and response.get_json()["field"] == field
    assert redis.llen("rq:queue:default") == 0


def test_unknown_imports_are_404(client, auth) -> None:
    for job_id in ("import-" + "0" * 32, "nope", "..%2F..%2Fetc"):
        assert client.get(f"/api/v1/contacts/imports/{job_id}", headers=auth).status_code == 404
        assert client.get(f"/api/v1/contacts/imports/{job_id}/rejects.csv", headers=auth).status_code == 404


def test_history_counts_every_table_that_points_at_contacts() -> None:
    from bot.contact_edits import history_tables

    # Found from the foreign keys, so campaigns' and calls' tables count though bot/ cannot import them.
    names = {t.name for t in history_tables()}
    assert {"messages", "consent_events", "funnel_events", "campaign_recipients", "calls"} <= names
    assert "contact_tags" not in names


def test_a_consent_entry_alone_is_history(app, client, auth) -> None:
    (cid,) = _add(client, auth, "9876543210")
    with app.extensions["canvass"].db.session() as s:
        ConsentLedger(s).record(s.get(Contact, cid), "opted_out", source="import")
    # Deleting would forget the opt-out, and a later import would bring the voter back.
    assert client.delete(f"/api/v1/contacts/{cid}", headers=auth).status_code == 409
