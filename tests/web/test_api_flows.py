"""The REST API's flows: list, versions, upload a new version or 422 with path:line:col, validate."""

from pathlib import Path

import pytest

from web.users import create_user, issue_token

FLOWS = Path(__file__).resolve().parents[2] / "flows"
GOOD = """flow: hello
description: Says hello
start: hi
nodes:
  hi:
    say: "Hello {{ contact.name }}"
    funnel: greeted
    end: true
"""
BAD = """flow: hello
start: hi
nodes:
  hi:
    say: "Hello"
    next: nowhere
  lost:
    say: "never reached"
    end: true
"""


@pytest.fixture
def tokens(app) -> dict[str, dict[str, str]]:
    found = {}
    with app.extensions["canvass"].db.session() as s:
        for role in ("viewer", "operator", "editor"):
            token = issue_token(s, create_user(s, f"{role}@example.org", role, "a long passphrase"))
            found[role] = {"Authorization": f"Bearer {token}"}
    return found


def test_upload_stores_versions_and_lists_them(client, tokens) -> None:
    editor = tokens["editor"]
    first = client.post("/api/v1/flows", json={"source": GOOD, "path": "flows/hello.yaml"}, headers=editor)
    assert first.status_code == 201, first.get_json()
    assert first.get_json() == {
        "name": "hello",
        "version": 1,
        "changed": True,
        "flow": {
            "name": "hello",
            "description": "Says hello",
            "language": "en",
            "channels": ["whatsapp", "sms"],
            "nodes": 1,
            "funnel": ["greeted"],
        },
    }
    same = client.post("/api/v1/flows", json={"source": GOOD}, headers=editor)
    assert (same.status_code, same.get_json()["version"], same.get_json()["changed"]) == (200, 1, False)
    # As YAML, with Windows line ends: stored with LF, so a new text makes version 2.
    changed = GOOD.replace("Hello", "Namaste").replace("\n", "\r\n")
    second = client.post("/api/v1/flows", data=changed.encode(), content_type="application/yaml", headers=editor)
    assert (second.status_code, second.get_json()["version"]) == (201, 2)

    viewer = tokens["viewer"]
    listed = client.get("/api/v1/flows", headers=viewer).get_json()
    assert [(f["name"], f["version"], f["versions"], f["valid"]) for f in listed["flows"]] == [("hello", 2, 2, True)]
    assert listed["next_cursor"] is None
    versions = client.get("/api/v1/flows/hello?limit=1", headers=viewer).get_json()
    assert [v["version"] for v in versions["versions"]] == [2] and versions["next_cursor"] == "2"
    older = client.get("/api/v1/flows/hello?cursor=2", headers=viewer).get_json()
    assert [v["version"] for v in older["versions"]] == [1] and older["versions"][0]["path"] == "flows/hello.yaml"
    detail = client.get("/api/v1/flows/hello/versions/2", headers=viewer).get_json()
    assert "Namaste" in detail["source"] and "\r" not in detail["source"] and detail["problems"] == []
    assert detail["created_by"] == "editor@example.org"
    for missing in ("/api/v1/flows/nope", "/api/v1/flows/hello/versions/9"):
        assert client.get(missing, headers=viewer).status_code == 404


def test_a_flow_with_problems_is_refused_with_each_problem_and_not_stored(client, tokens) -> None:
    refused = client.post("/api/v1/flows", json={"source": BAD, "path": "flows/hello.yaml"}, headers=tokens["editor"])
    assert refused.status_code == 422
    error = refused.get_json()
    assert (error["error"], error["field"]) == ("invalid_flow", "source")
    texts = [p["text"] for p in error["problems"]]
    assert any(t.startswith("flows/hello.yaml:6:") and "nowhere" in t for t in texts), texts
    assert any(t.startswith("flows/hello.yaml:7:3:") and "never be reached" in t for t in texts), texts
    assert error["message"] == "\n".join(texts)
    assert all({"path", "line", "col", "message"} <= set(p) for p in error["problems"])
    assert client.get("/api/v1/flows", headers=tokens["viewer"]).get_json()["flows"] == []


def test_validate_checks_without_storing(client, tokens) -> None:
    for source, valid in ((GOOD, True), (BAD, False), ("flow: [", False)):
        verdict = client.post("/api/v1/flows/validate", json={"source": source}, headers=tokens["viewer"])
        assert verdict.status_code == 200
        assert verdict.get_json()["valid"] is valid
        assert bool(verdict.get_json()["problems"]) is not valid
    demo = (FLOWS / "booth_locator.yaml").read_bytes()
    as_yaml = client.post(
        "/api/v1/flows/validate?path=flows/booth_locator.yaml",
        data=demo,
        content_type="application/yaml",
        headers=tokens["viewer"],
    ).get_json()
    assert as_yaml["valid"] is True and as_yaml["flow"]["name"] == "booth_locator"
    assert client.get("/api/v1/flows", headers=tokens["viewer"]).get_json()["flows"] == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"json": {}}, "source"),
        ({"json": {"source": 5}}, "source"),
        ({"json": ["x"]}, "body"),
        ({"data": b"\xff\xfe", "content_type": "application/yaml"}, "body"),
        ({"json": {"source": "x" * (256 * 1024 + 1)}}, "source"),
    ],
)
def test_bad_uploads_name_the_field(client, tokens, kwargs, field) -> None:
    response = client.post("/api/v1/flows", headers=tokens["editor"], **kwargs)
    assert response.status_code == 422 and response.get_json()["field"] == field


def test_operators_cannot_upload_flows(client, tokens) -> None:
    response = client.post("/api/v1/flows", json={"source": GOOD}, headers=tokens["operator"])
    assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
