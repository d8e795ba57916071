"""Campaigns and templates over the REST API: the same operations, permissions and export."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from campaigns import dispatch
from tests.campaigns.conftest import EXAMPLES, World

SPEC = {
    "name": "API campaign",
    "channel": "whatsapp",
    "sender": "+919999900001",
    "template": {"name": "booth_reminder", "language": "en"},
    "variables": {"1": {"contact": "name"}, "2": {"tag": "ward"}},
    "audience": {"tag": "ward"},
    "flow": {"name": "booth_locator", "at": "knows"},
    "pace": "50/s",
}


def test_create_launch_and_export_over_the_api(world: World, api) -> None:  # type: ignore[no-untyped-def]
    client, tokens = api
    world.voter("+919800000001", "ward=3", name="=2+5")
    world.voter("+919800000002", "ward=3", consent="opted_out")
    refused = client.post("/api/v1/campaigns", json=SPEC, headers=tokens["viewer"])
    assert refused.status_code == 403
    bad = client.post("/api/v1/campaigns", json={**SPEC, "pace": "fast"}, headers=tokens["operator"])
    assert bad.status_code == 422 and bad.get_json()["field"] == "pace"
    created = client.post("/api/v1/campaigns", json=SPEC, headers=tokens["operator"])
    assert created.status_code == 201, created.get_json()
    campaign = created.get_json()
    assert campaign["status"] == "ready" and campaign["problems"] == []
    cid = campaign["id"]
    paused = client.post(f"/api/v1/campaigns/{cid}/pause", headers=tokens["operator"])
    assert paused.status_code == 409 and "is ready: cannot pause it" in paused.get_json()["message"]
    launched = client.post(f"/api/v1/campaigns/{cid}/launch", headers=tokens["operator"])
    assert launched.status_code == 200
    assert launched.get_json()["plan"] == {"total": 2, "pending": 1, "skipped": {"opted_out": 1}, "batches": 1}
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, cid, 0)
    stats = client.get(f"/api/v1/campaigns/{cid}/stats", headers=tokens["viewer"]).get_json()
    assert stats["status"] == "completed" and stats["progress"] == {
        "pending": 0,
        "completed": 1,
        "failed": 0,
        "skipped": 1,
    }
    exported = client.get(f"/api/v1/campaigns/{cid}/export.csv", headers=tokens["viewer"])
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert sorted((r["phone"], r["status"], r["name"]) for r in rows) == [
        ("+919800000001", "delivered", "'=2+5"),
        ("+919800000002", "skipped", "Asha"),
    ]
    package = client.get(f"/api/v1/campaigns/{cid}/export.zip", headers=tokens["viewer"])
    with zipfile.ZipFile(io.BytesIO(package.get_data())) as archive:
        meta = json.loads(archive.read("datapackage.json"))
        assert meta["profile"] == "flow-results-package"
        questions = meta["resources"][0]["schema"]["questions"]
        assert questions["knows_booth"]["type"] == "select_one" and questions["knows_booth"]["type_options"] == {
            "choices": ["1", "2"]
        }
        assert questions["epic"]["type"] == "open"
    ended = client.post(f"/api/v1/campaigns/{cid}/end", headers=tokens["operator"])
    assert ended.get_json()["status"] == "ended"
    clone = client.post(f"/api/v1/campaigns/{cid}/clone", headers=tokens["operator"])
    assert clone.status_code == 201 and clone.get_json()["status"] == "ready"
    # Only drafts are deleted; an ended campaign's status refuses it, as every move it does not allow (409).
    refused = client.delete(f"/api/v1/campaigns/{cid}", headers=tokens["operator"])
    assert refused.status_code == 409 and refused.get_json()["error"] == "campaign_status"
    assert "only drafts can be deleted" in refused.get_json()["message"]
    assert client.get("/api/v1/campaigns/999", headers=tokens["viewer"]).status_code == 404


def test_a_yaml_spec_and_a_draft_that_says_what_is_missing(world: World, api) -> None:  # type: ignore[no-untyped-def]
    client, tokens = api
    text = "name: y\nchannel: sms\naudience: all\nflow: nope\n"
    created = client.post("/api/v1/campaigns", data=text, content_type="application/yaml", headers=tokens["operator"])
    body = created.get_json()
    assert body["status"] == "draft"
    assert (
        "template: required" in body["problems"]
        and "flow: 'nope' is not loaded (canvass flows load)" in body["problems"]
    )
    assert client.post(f"/api/v1/campaigns/{body['id']}/launch", headers=tokens["operator"]).status_code == 422
    assert client.delete(f"/api/v1/campaigns/{body['id']}", headers=tokens["operator"]).status_code == 204


def test_templates_need_an_editor(world: World, api) -> None:  # type: ignore[no-untyped-def]
    client, tokens = api
    text = (EXAMPLES / "booth_reminder.template.yaml").read_text().replace("Polling in ward", "Voting in ward")
    refused = client.post("/api/v1/templates", data=text, content_type="application/yaml", headers=tokens["operator"])
    assert refused.status_code == 403
    loaded = client.post("/api/v1/templates", data=text, content_type="application/yaml", headers=tokens["editor"])
    assert loaded.status_code == 200
    en = [v for v in loaded.get_json()["versions"] if v["language"] == "en"]
    # v1 was approved (submitted), so the changed text is a new draft version.
    assert [(v["version"], v["status"]) for v in en] == [(2, "draft"), (1, "approved")]
    submitted = client.post(
        "/api/v1/templates/booth_reminder/submit", json={"language": "en"}, headers=tokens["editor"]
    )
    assert submitted.get_json()["versions"] == [{"language": "en", "version": 2, "status": "approved"}]
    assert client.get("/api/v1/templates?category=reminder", headers=tokens["viewer"]).get_json()["templates"]
    bad = client.post("/api/v1/templates", json={"template": "x", "languages": {}}, headers=tokens["editor"])
    assert bad.status_code == 422 and "languages" in bad.get_json()["message"]
