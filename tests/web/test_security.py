"""Security matrix: default-deny rules, roles, CSRF, tokens, login, throttling, headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from bot.db import utcnow
from tests.conftest import csrf_token, login
from web.auth.access import endpoint_rule
from web.auth.throttle import MAX_PER_ACCOUNT, WINDOW_S
from web.models import ApiToken, Role, User
from web.users import create_user, find_user, issue_token, set_password

PASSWORD = "correct horse battery staple"
ROLES = ["viewer", "operator", "editor", "admin"]  # each includes the ones before it
WRONG_LOGIN = "Wrong email or password."


def make_user(app, role: str = "viewer", email: str | None = None, *, token: bool = False) -> str | None:
    """Create a user (email defaults to ROLE@example.org); return an API token if asked."""
    with app.extensions["canvass"].db.session() as s:
        user = create_user(s, email or f"{role}@example.org", role, PASSWORD)
        return issue_token(s, user) if token else None


def signed_in(app, client, role: str = "viewer", email: str | None = None):  # type: ignore[no-untyped-def]
    make_user(app, role, email)
    response = login(client, email or f"{role}@example.org", PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def user_count(app) -> int:
    with app.extensions["canvass"].db.session() as s:
        return len(s.scalars(select(User)).all())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# 1. Default deny ------------------------------------------------------------------


def test_every_endpoint_declares_a_rule(app) -> None:
    assert len(app.view_functions) > 5
    undeclared = {
        endpoint
        for endpoint in app.view_functions
        if endpoint != "static"
        and not (endpoint_rule(app, endpoint) == "public" or endpoint_rule(app, endpoint) in Role)
    }
    assert undeclared == set()


def test_public_endpoints_are_exactly_these(app) -> None:
    public = {e for e in app.view_functions if endpoint_rule(app, e) == "public"}
    # Webhooks carry no login: they are checked by their signature (tests/web/test_webhooks.py).
    assert public == {
        "auth.login",
        "auth.logout",
        "api.openapi",
        "health.healthz",
        "health.metrics",
        "webhooks.inbound",
        "webhooks.message_status",
        # Voice webhooks are signed too (tests/ivr/test_voice_webhooks.py).
        "voice.answer",
        "voice.step",
        "voice.call_status",
        # Twilio fetches template headers and call audio without a login: content-hash
        # names, and the names staff give recordings (tests/web/test_console_audio.py).
        "media.serve",
    }


# 2. Role matrix ---------------------------------------------------------------------

CONSOLE = [  # method, path, endpoint, least role, status when allowed
    ("GET", "/", "console.dashboard", "viewer", 200),
    ("GET", "/contacts", "console.contacts", "viewer", 200),
    ("GET", "/campaigns", "console.campaigns", "viewer", 200),
    ("GET", "/inbox", "console.inbox", "viewer", 200),
    # The inbox's and the voter page's forms: tests/web/test_console_inbox.py (they need a case).
    ("GET", "/flows", "console.flows", "viewer", 200),
    ("GET", "/flows/new", "console.flow_new", "editor", 200),
    ("GET", "/templates", "console.templates_list", "viewer", 200),
    ("GET", "/templates/new", "console.template_new", "editor", 200),
    # A template's page, its forms and their CSRF checks: tests/web/test_console_templates.py.
    # A flow's page, the editor's forms and their CSRF checks: tests/web/test_console_flows.py (they need a flow).
    ("GET", "/users", "console.users", "admin", 200),
    ("POST", "/users", "console.users", "admin", 302),
]
API = [  # method, path, endpoint, least role, JSON body, status when allowed
    ("GET", "/api/v1/me", "api.me", "viewer", None, 200),
    ("GET", "/api/v1/contacts", "api.list_contacts", "viewer", None, 200),
    ("POST", "/api/v1/contacts", "api.add_contacts", "operator", {"numbers": ["+919876543210"]}, 201),
    ("POST", "/api/v1/segments/count", "api.segment_count", "viewer", {"segment": {"tag": "x"}}, 200),
]
WHO = [None, *ROLES]  # None: anonymous


@pytest.mark.parametrize("who", WHO, ids=lambda w: w or "anonymous")
@pytest.mark.parametrize(
    ("method", "path", "endpoint", "least", "ok"), CONSOLE, ids=[f"{r[0]} {r[1]}" for r in CONSOLE]
)
def test_console_role_matrix(app, client, method, path, endpoint, least, ok, who) -> None:
    assert endpoint_rule(app, endpoint) == Role(least)  # the table matches the code
    if who is not None:
        signed_in(app, client, who)
    if method == "GET":
        response = client.get(path)
    else:
        data = {"email": "new@example.org", "role": "viewer", "password": PASSWORD}
        response = client.post(path, data={**data, "csrf_token": csrf_token(client, "/login")})
    if who is None:
        if method == "GET":
            assert response.status_code == 302
            target = urlsplit(response.headers["Location"])
            assert target.path == "/login"
            assert parse_qs(target.query) == {"next": [path]}
        else:
            assert response.status_code == 401
    elif ROLES.index(who) >= ROLES.index(least):
        assert response.status_code == ok
    else:
        assert response.status_code == 403
        assert f"needs the {least} role" in response.get_data(as_text=True)
    if method == "POST":
        created = who is not None and ROLES.index(who) >= ROLES.index(least)
        assert user_count(app) == (1 if who else 0) + created


@pytest.mark.parametrize("who", WHO, ids=lambda w: w or "anonymous")
@pytest.mark.parametrize(
    ("method", "path", "endpoint", "least", "body", "ok"), API, ids=[f"{r[0]} {r[1]}" for r in API]
)
def test_api_role_matrix(app, client, method, path, endpoint, least, body, ok, who) -> None:
    assert endpoint_rule(app, endpoint) == Role(least)
    headers = bearer(make_user(app, who, token=True)) if who else {}
    response = client.open(path, method=method, json=body, headers=headers)
    if who is None:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["error"] == "unauthorized"
    elif ROLES.index(who) >= ROLES.index(least):
        assert response.status_code == ok, response.get_data(as_text=True)
    else:
        assert response.status_code == 403
        assert response.get_json()["error"] == "forbidden"


# 3. CSRF ----------------------------------------------------------------------------


def test_login_without_csrf_token_is_refused(app, client) -> None:
    make_user(app)
    client.get("/login")
    response = client.post("/login", data={"email": "viewer@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302  # not signed in


def test_logout_without_csrf_token_is_refused(app, client) -> None:
    signed_in(app, client)
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still signed in


@pytest.mark.parametrize("kind", ["wrong", "other-session", "none", "valid"])
def test_create_user_needs_this_sessions_csrf_token(app, client, kind) -> None:
    signed_in(app, client, "admin")
    other = signed_in(app, app.test_client(), "admin", "other@example.org")
    tokens = {"wrong": "not-a-token", "other-session": csrf_token(other, "/users"), "none": ""}
    token = tokens[kind] if kind in tokens else csrf_token(client, "/users")
    data = {"email": "new@example.org", "role": "admin", "password": PASSWORD}
    response = client.post("/users", data={**data, "csrf_token": token})
    assert response.status_code == (302 if kind == "valid" else 400)
    assert user_count(app) == (3 if kind == "valid" else 2)


def test_csrf_token_does_not_cross_sessions(app, client) -> None:
    make_user(app)
    foreign = csrf_token(client)
    other = app.test_client()
    own = csrf_token(other)
    assert own != foreign
    data = {"email": "viewer@example.org", "password": PASSWORD}
    assert other.post("/login", data={**data, "csrf_token": foreign}).status_code == 400
    assert other.post("/login", data={**data, "csrf_token": own}).status_code == 302  # control


# 4. The API takes tokens only --------------------------------------------------------


def test_api_ignores_session_cookie(app, client) -> None:
    signed_in(app, client, "admin")
    assert client.get("/").status_code == 200  # the session works for the console
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize("case", ["revoked", "garbage", "deactivated", "other-scheme", "valid"])
def test_api_token_states(app, client, case) -> None:
    token = make_user(app, "admin", token=True)
    assert token
    with app.extensions["canvass"].db.session() as s:
        if case == "revoked":
            s.scalars(select(ApiToken)).one().revoked_at = utcnow()
        if case == "deactivated":
            s.scalars(select(User)).one().active = False
    header = {
        "garbage": "Bearer cvs_" + "x" * 43,
        "other-scheme": f"Basic {token}",
    }.get(case, f"Bearer {token}")
    response = client.get("/api/v1/me", headers={"Authorization": header})
    if case == "valid":
        assert response.status_code == 200
        assert response.get_json() == {"email": "admin@example.org", "role": "admin"}
    else:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# 5. Login ---------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["viewer@example.org", "nobody@example.org"])
def test_failed_login_says_the_same_thing(app, client, email) -> None:
    make_user(app)
    response = login(client, email, "not the password!!")
    assert response.status_code == 401
    assert WRONG_LOGIN in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    ("next_", "expected"),
    [
        ("/contacts?q=1", "/contacts?q=1"),
        ("", "/"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/\\evil", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
    ],
)
def test_login_redirects_only_to_local_paths(app, client, next_, expected) -> None:
    make_user(app)
    data = {"email": "viewer@example.org", "password": PASSWORD, "csrf_token": csrf_token(client)}
    response = client.post("/login", data={**data, "next": next_})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_login_page_sanitizes_next(client) -> None:
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    assert 'name="next" value="/"' in page
    page = client.get("/login?next=/contacts").get_data(as_text=True)
    assert 'name="next" value="/contacts"' in page


def test_session_cookie_flags(app, client) -> None:
    make_user(app)
    response = login(client, "viewer@example.org", PASSWORD)
    assert response.status_code == 302
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("canvass_session="))
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=lax"


# 6. Throttling ----------------------------------------------------------------------


def test_login_throttle_per_account(app, client, redis) -> None:
    make_user(app, "viewer")
    make_user(app, "editor")
    for _ in range(MAX_PER_ACCOUNT):
        assert login(client, "viewer@example.org", "not the password!!").status_code == 401
    counters = {k.decode(): int(redis.get(k)) for k in redis.scan_iter("canvass:login:*")}
    assert sorted(counters.values()) == [MAX_PER_ACCOUNT, MAX_PER_ACCOUNT]  # account and address
    response = login(client, "VIEWER@example.org", PASSWORD)  # right password, other case
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= WINDOW_S
    assert client.get("/").status_code == 302  # not signed in
    assert login(app.test_client(), "editor@example.org", PASSWORD).status_code == 302  # same address
    redis.flushdb()  # the block lives in Redis only
    assert login(client, "viewer@example.org", PASSWORD).status_code == 302


# 7. Session invalidation ------------------------------------------------------------


def test_password_change_ends_old_sessions(app, client) -> None:
    signed_in(app, client)
    assert client.get("/").status_code == 200
    with app.extensions["canvass"].db.session() as s:
        set_password(find_user(s, "viewer@example.org"), "a brand new password")
    response = client.get("/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert client.get("/").status_code == 302  # the stale cookie was cleared, not revived
    assert login(client, "viewer@example.org", PASSWORD).status_code == 401
    assert login(client, "viewer@example.org", "a brand new password").status_code == 302
    assert client.get("/").status_code == 200


def test_deactivated_user_session_ends(app, client) -> None:
    signed_in(app, client)
    with app.extensions["canvass"].db.session() as s:
        find_user(s, "viewer@example.org").active = False
    assert client.get("/").status_code == 302


def test_logout_clears_the_session(app, client) -> None:
    signed_in(app, client)
    with client.session_transaction() as session:
        assert "uid" in session
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    with client.session_transaction() as session:
        assert "uid" not in session
    assert client.get("/").status_code == 302


def test_logout_ends_the_session_server_side(app, client) -> None:
    signed_in(app, client)
    stolen = client.get_cookie("canvass_session").value
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 302
    other = app.test_client()
    other.set_cookie("canvass_session", stolen)
    assert other.get("/").status_code == 302


# 8. Headers -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/contacts"])
def test_security_headers_on_console(app, client, path) -> None:
    signed_in(app, client)
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "no-store" in response.headers["Cache-Control"]
