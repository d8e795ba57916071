"""The flows pages: list, flow page with its graph, and the YAML editor (roles, CSRF, validation, versions)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.engine import load_path
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import FlowVersion
from ivr.models import VoiceLine
from tests.conftest import csrf_token
from tests.web.test_security import ROLES, WHO, signed_in
from web.auth.access import endpoint_rule
from web.console.flows import MAX_SOURCE
from web.models import Role

FLOWS = Path(__file__).resolve().parents[2] / "flows"
BOOTH = (FLOWS / "booth_locator.yaml").read_text()
SMALL = """flow: hello
description: Say hello.
triggers:
  keywords: [hello]
start: hi
nodes:
  hi:
    say: "Hello!"
    funnel: greeted
    end: true
"""
# Two problems on two lines: a dangling next (line 7) and an unknown key (line 9).
BROKEN = """flow: hello
start: hi
nodes:
  hi:
    ask: "Ready?"
    choices:
      - {key: "1", next: nowhere}
    save: ready
    colour: blue
"""


def load(app, *names: str) -> None:
    with app.extensions["canvass"].db.session() as s:
        for name in names:
            path = FLOWS / f"{name}.yaml"
            store(s, load_path(path), path.read_text(), path=f"flows/{name}.yaml", by="cli")
    clear_cache()


def versions(app, name: str) -> list[FlowVersion]:
    with app.extensions["canvass"].db.session() as s:
        rows = s.scalars(select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version)).all()
        s.expunge_all()
        return list(rows)


def stored_count(app) -> int:
    with app.extensions["canvass"].db.session() as s:
        return s.scalar(select(func.count()).select_from(FlowVersion)) or 0


def post(client, path: str, source: str | None = None, *, token: str | None = None, **files):  # type: ignore[no-untyped-def]
    data = {"csrf_token": csrf_token(client, "/flows/new") if token is None else token}
    if source is not None:
        data["source"] = source
    data.update(files)
    return client.post(path, data=data, content_type="multipart/form-data")


# Who may do what --------------------------------------------------------------------

# GET /flows and GET /flows/new are in tests/web/test_security.py's table; these need a stored flow.
ROUTES = [  # method, path, endpoint, least role, status when allowed
    ("GET", "/flows/booth_locator", "console.flow", "viewer", 200),
    ("GET", "/flows/booth_locator/edit", "console.flow_edit", "editor", 200),
    ("POST", "/flows/new", "console.flow_new", "editor", 302),
    ("POST", "/flows/booth_locator/edit", "console.flow_edit", "editor", 302),
]


@pytest.mark.parametrize("who", WHO, ids=lambda w: w or "anonymous")
@pytest.mark.parametrize(("method", "path", "endpoint", "least", "ok"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
def test_flow_routes_by_role(app, client, method, path, endpoint, least, ok, who) -> None:
    assert endpoint_rule(app, endpoint) == Role(least)
    load(app, "booth_locator")
    if who is not None:
        signed_in(app, client, who)
    token = csrf_token(client, "/" if who else "/login")  # every console page's sign-out form has one
    source = SMALL if path == "/flows/new" else BOOTH.replace("Polling day is 20 November.", "Vote on 20 Nov.")
    data = {"source": source, "csrf_token": token}
    response = client.get(path) if method == "GET" else client.post(path, data=data)
    allowed = who is not None and ROLES.index(who) >= ROLES.index(least)
    if who is None:
        assert response.status_code == (302 if method == "GET" else 401)
    elif allowed:
        assert response.status_code == ok, response.get_data(as_text=True)
    else:
        assert response.status_code == 403
        assert f"needs the {least} role" in response.get_data(as_text=True)
    if method == "POST":
        assert stored_count(app) == 1 + allowed


def test_edit_links_only_for_editors(app, client) -> None:
    load(app, "booth_locator")
    signed_in(app, client, "operator")
    page = client.get("/flows/booth_locator").get_data(as_text=True)
    assert "Edit YAML" not in page and 'href="/flows/booth_locator/edit"' not in page
    assert "New flow" not in client.get("/flows").get_data(as_text=True)
    editor = signed_in(app, app.test_client(), "editor")
    assert 'href="/flows/booth_locator/edit"' in editor.get("/flows/booth_locator").get_data(as_text=True)
    assert 'href="/flows/new"' in editor.get("/flows").get_data(as_text=True)


@pytest.mark.parametrize("kind", ["none", "wrong", "other-session"])
def test_saving_needs_this_sessions_csrf_token(app, client, kind) -> None:
    load(app, "booth_locator")
    signed_in(app, client, "editor")
    other = signed_in(app, app.test_client(), "admin")
    token = {"none": "", "wrong": "not-a-token", "other-session": csrf_token(other, "/flows/new")}[kind]
    assert post(client, "/flows/new", SMALL, token=token).status_code == 400
    assert post(client, "/flows/booth_locator/edit", BOOTH + "\n# edited\n", token=token).status_code == 400
    assert stored_count(app) == 1


# Reading ----------------------------------------------------------------------------


def test_list_shows_newest_versions_channels_and_counts(app, client) -> None:
    load(app, "booth_locator", "ivr_survey")
    signed_in(app, client, "editor")
    assert post(client, "/flows/booth_locator/edit", BOOTH + "# v2\n").status_code == 302
    page = client.get("/flows").get_data(as_text=True)
    booth = re.search(r'<tr data-flow="booth_locator">(.*?)</tr>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "v2" in booth and ">2</td>" in booth and "editor@example.org" in booth
    assert "whatsapp" in booth and "sms" in booth and "voice" not in booth
    survey = re.search(r'<tr data-flow="ivr_survey">(.*?)</tr>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "voice" in survey and "v1" in survey
    assert 'href="/flows/booth_locator"' in page


def test_flow_page_shows_graph_funnel_source_and_versions(app, client) -> None:
    load(app, "booth_locator")
    signed_in(app, client, "editor")
    post(client, "/flows/booth_locator/edit", BOOTH + "# v2\n")
    page = client.get("/flows/booth_locator").get_data(as_text=True)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph"' in page
    assert '<title id="fg-title">Graph of the flow booth_locator</title>' in page
    steps = re.search(r'<ol class="funnel-steps">(.*?)</ol>', page).group(1)  # type: ignore[union-attr]
    assert re.findall(r"<li>(\w+)</li>", steps) == ["greeted", "answered", "epic_given", "booth_shared"]
    assert 'id="L1"' in page and "flow: booth_locator" in page
    assert 'href="/flows/booth_locator?version=1"' in page and 'href="/flows/booth_locator?version=2"' in page
    old = client.get("/flows/booth_locator?version=1").get_data(as_text=True)
    assert "older version" in old and "# v2" not in old
    assert client.get("/flows/booth_locator?version=9").status_code == 404
    assert client.get("/flows/nothing_here").status_code == 404


def test_simulator_hints(app, client) -> None:
    load(app, "booth_locator", "ivr_survey")
    signed_in(app, client, "operator")
    booth = client.get("/flows/booth_locator").get_data(as_text=True)
    assert 'href="/sandbox"' in booth and "<code>booth</code>" in booth
    survey = client.get("/flows/ivr_survey").get_data(as_text=True)
    assert "canvass voice lines add NUMBER --flow ivr_survey" in survey
    with app.extensions["canvass"].db.session() as s:
        s.add(VoiceLine(address="+911140000000", flow_name="ivr_survey"))
    survey = client.get("/flows/ivr_survey").get_data(as_text=True)
    assert "<code>+911140000000</code>" in survey and 'href="/sandbox/phone"' in survey
    assert "voice lines add" not in survey


# Saving -----------------------------------------------------------------------------


def test_problems_are_shown_at_their_lines_and_nothing_is_stored(app, client) -> None:
    load(app, "booth_locator")
    signed_in(app, client, "editor")
    response = post(client, "/flows/new", BROKEN)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "2 problems — nothing was stored" in page
    assert re.search(r'data-line="7" data-col="\d+" class="mono">7:\d+</a> [^<]*nowhere', page)
    assert re.search(r'data-line="9" data-col="5" class="mono">9:5</a> [^<]*colour', page)
    marked = re.findall(r'<li id="L(\d+)" class="has-problem"', page)
    assert marked == ["7", "9"]
    # The text comes back as typed (HTML-escaped inside the text box).
    assert "colour: blue" in page and "{key: &#34;1&#34;, next: nowhere}" in page
    assert stored_count(app) == 1


def test_a_valid_edit_stores_the_next_version(app, client) -> None:
    load(app, "booth_locator")
    signed_in(app, client, "editor")
    edited = BOOTH.replace("Polling day is 20 November.", "Polling day is 20 Nov.").replace("\n", "\r\n")
    response = post(client, "/flows/booth_locator/edit", edited)
    assert response.status_code == 302
    assert response.headers["Location"] == "/flows/booth_locator?version=2"
    rows = versions(app, "booth_locator")
    assert [r.version for r in rows] == [1, 2]
    assert rows[1].created_by == "editor@example.org"
    assert "\r" not in rows[1].source and "20 Nov." in rows[1].source and rows[0].source == BOOTH
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Stored booth_locator v2" in page and "v2 · newest" in page
    # The same text again adds nothing.
    response = post(client, "/flows/booth_locator/edit", edited)
    assert response.headers["Location"] == "/flows/booth_locator?version=2"
    assert len(versions(app, "booth_locator")) == 2
    assert "Nothing changed" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_edit_starts_from_the_newest_or_a_chosen_version(app, client) -> None:
    load(app, "booth_locator")
    signed_in(app, client, "editor")
    post(client, "/flows/booth_locator/edit", BOOTH + "# second\n")
    assert "# second" in client.get("/flows/booth_locator/edit").get_data(as_text=True)
    assert "# second" not in client.get("/flows/booth_locator/edit?version=1").get_data(as_text=True)
    assert client.get("/flows/booth_locator/edit?version=7").status_code == 404
    assert client.get("/flows/nothing_here/edit").status_code == 404


def test_new_flow_from_an_uploaded_file(app, client) -> None:
    signed_in(app, client, "admin")
    response = post(client, "/flows/new", "", file=(io.BytesIO(SMALL.encode()), "hello.yaml"))
    assert response.status_code == 302 and response.headers["Location"] == "/flows/hello?version=1"
    assert versions(app, "hello")[0].source == SMALL
    graph = client.get("/flows/hello").get_data(as_text=True)
    assert 'data-node="hi"' in graph and 'data-funnel="greeted"' in graph


@pytest.mark.parametrize(
    ("path", "source", "message"),
    [
        ("/flows/booth_locator/edit", SMALL, "this page edits booth_locator, but the text names &#39;hello&#39;"),
        ("/flows/new", BOOTH, "&#39;booth_locator&#39; exists already (v1)"),
        ("/flows/new", SMALL.replace('say: "Hello!"', "subflow: missing_flow"), "no flow named &#39;missing_flow&#39;"),
    ],
    ids=["rename", "name-taken", "unknown-subflow"],
)
def test_valid_yaml_that_cannot_be_stored_here(app, client, path, source, message) -> None:
    load(app, "booth_locator")
    signed_in(app, client, "editor")
    response = post(client, path, source)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert stored_count(app) == 1


def test_size_limit_and_encoding_have_clear_messages(app, client) -> None:
    signed_in(app, client, "editor")
    big = SMALL + "# " + "x" * MAX_SOURCE + "\n"
    response = post(client, "/flows/new", big)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f"a flow may be at most {MAX_SOURCE // 1024} KB" in page and "Nothing was stored" in page
    response = post(client, "/flows/new", "kept", file=(io.BytesIO(big.encode()), "big.yaml"))
    assert "big.yaml is over 256 KB" in response.get_data(as_text=True)
    response = post(client, "/flows/new", "kept", file=(io.BytesIO(b"flow: x\nsay: \xff\n"), "latin.yaml"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "latin.yaml is not UTF-8 text (byte 0xff on line 2)" in page and "\nkept</textarea>" in page
    assert stored_count(app) == 0


def test_unsafe_yaml_is_refused(app, client) -> None:
    signed_in(app, client, "editor")
    response = post(client, "/flows/new", "flow: !!python/object/apply:os.system ['true']\nstart: a\n")
    assert response.status_code == 422
    assert "nothing was stored" in response.get_data(as_text=True)
    assert stored_count(app) == 0
