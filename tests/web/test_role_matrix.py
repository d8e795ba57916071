"""Who may reach what, for every route in the URL map — walked generically, so pages added later are covered.

Every view states the least role it needs (``@requires``) or is one of the few public
ones. For each role, every URL of every route (each value of an ``any(...)`` part, each
method) is tried: below the least role it is refused (403); viewers change nothing; the
unauthenticated get the login page (console) or a 401 (API). CSRF: every state-changing
console route refuses a request without the token; the API's Bearer requests need none,
and the API never accepts the session cookie instead.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from werkzeug.routing import AnyConverter, IntegerConverter, PathConverter

from tests.conftest import csrf_token, login
from web.auth.access import endpoint_rule, is_read_only
from web.models import Role
from web.schema import metadata
from web.users import create_user, issue_token

PASSWORD = "correct horse battery staple"
ROLES = [Role.VIEWER, Role.OPERATOR, Role.EDITOR, Role.ADMIN]
CHANGES = ("POST", "PUT", "PATCH", "DELETE")
# The only views open to anyone, and why.
PUBLIC = {
    re.compile(r"^/login$"): "the sign-in page",
    re.compile(r"^/logout$"): "signing out (a POST with the session's CSRF token)",
    re.compile(r"^/healthz$"): "health checks",
    re.compile(r"^/metrics$"): "Prometheus",
    re.compile(r"^/webhooks/"): "Twilio's webhooks, checked by their signature",
    re.compile(r"^/media/"): "audio Twilio fetches, named by content hash",
    re.compile(r"^/api/v1/openapi\.json$"): "the API's description",
}


@dataclasses.dataclass(frozen=True)
class Url:
    """One URL of one route with one method, and what it needs."""

    method: str
    path: str
    endpoint: str
    least: Role

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.least.value})"


def _values(rule) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Every combination of path values worth trying: each item of an ``any(...)``, 1 for ids."""
    combos: list[dict[str, object]] = [{}]
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            options: list[object] = sorted(converter.items)
        elif isinstance(converter, IntegerConverter):
            options = [1]
        elif isinstance(converter, PathConverter):
            options = ["x/y.css"]
        else:
            options = ["x"]
        combos = [{**combo, name: option} for combo in combos for option in options]
    return combos


def urls(app) -> list[Url]:  # type: ignore[no-untyped-def]
    """Every guarded URL of the app (public views and static files left out)."""
    found = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        least = endpoint_rule(app, rule.endpoint)
        if rule.endpoint == "static" or least == "public":
            continue
        for values in _values(rule):
            path = adapter.build(rule.endpoint, values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append(Url(method, path, rule.endpoint, least))
    return found


def _row_counts(app) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}


def _send(client, url: Url, *, headers=None, csrf: str | None = None):  # type: ignore[no-untyped-def]
    if url.api:
        return client.open(url.path, method=url.method, json={}, headers=headers or {})
    data = {"csrf_token": csrf} if csrf else {}
    return client.open(url.path, method=url.method, data=data, headers=headers or {})


def _as(app, role: Role):  # type: ignore[no-untyped-def]
    """A console client signed in with ``role``, and Bearer headers for the API."""
    with app.extensions["canvass"].db.session() as s:
        token = issue_token(s, create_user(s, f"{role.value}@example.org", role.value, PASSWORD))
    client = app.test_client()
    assert login(client, f"{role.value}@example.org", PASSWORD).status_code == 302
    return client, {"Authorization": f"Bearer {token}"}


def test_every_view_declares_its_role_and_only_known_ones_are_public(app) -> None:
    undeclared, public = [], []
    for rule in app.url_map.iter_rules():
        rule_of = endpoint_rule(app, rule.endpoint)
        if rule.endpoint == "static":
            continue
        if rule_of is None:
            undeclared.append(f"{rule.rule} ({rule.endpoint})")
        elif rule_of == "public" and not any(p.match(rule.rule) for p in PUBLIC):
            public.append(f"{rule.rule} ({rule.endpoint})")
    assert undeclared == [], "views that declare no role (use @requires(Role.X) from web.auth.access)"
    assert public == [], "public views that are not meant to be"
    assert len(urls(app)) > 60


def test_state_changes_open_to_viewers_only_read_and_flows_templates_need_editors(app) -> None:
    wrong = []
    for url in urls(app):
        if url.method not in CHANGES:
            continue
        if url.least == Role.VIEWER and not is_read_only(app, url.endpoint):
            wrong.append(f"{url}: a viewer could change something (mark a query @read_only, or raise the role)")
        edits = re.search(r"/(flows|templates)(/|$)", url.path) and not is_read_only(app, url.endpoint)
        if edits and url.least.rank < Role.EDITOR.rank:
            wrong.append(f"{url}: operators could edit flows or templates")
    assert wrong == []


def test_the_unauthenticated_get_the_login_page_or_401(app, client) -> None:
    wrong = []
    for url in urls(app):
        # A refused request clears the session, and the CSRF token with it: a fresh one each time.
        response = _send(client, url, csrf=None if url.api or url.method == "GET" else csrf_token(client))
        if url.api:
            ok = response.status_code == 401 and response.headers.get("WWW-Authenticate", "").startswith("Bearer")
        elif url.method == "GET":
            target = urlsplit(response.headers.get("Location", ""))
            ok = response.status_code == 302 and target.path == "/login"
            ok = ok and parse_qs(target.query).get("next") == [url.path]
        else:
            ok = response.status_code == 401
        if not ok:
            wrong.append(f"{url}: {response.status_code}")
    assert wrong == []


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_each_role_reaches_exactly_its_own(app, role: Role) -> None:
    client, bearer = _as(app, role)
    token = csrf_token(client, "/")
    wrong = []
    for url in urls(app):
        allowed = role.allows(url.least)
        if not allowed:
            before = _row_counts(app)
            response = _send(client, url, headers=bearer, csrf=token)
            if response.status_code != 403:
                wrong.append(f"{url}: {response.status_code}, expected 403")
            elif f"needs the {url.least.value} role" not in response.get_data(as_text=True):
                wrong.append(f"{url}: the refusal does not say which role it needs")
            if _row_counts(app) != before:
                wrong.append(f"{url}: refused, yet rows changed")
        elif url.method == "GET":
            response = _send(client, url, headers=bearer, csrf=token)
            if response.status_code in (401, 403) or response.status_code >= 500:
                wrong.append(f"{url}: {response.status_code}")
            response.close()
        elif role == Role.VIEWER:  # a state-changing route open to viewers reads only
            before = _row_counts(app)
            response = _send(client, url, headers=bearer, csrf=token)
            if response.status_code >= 500 or _row_counts(app) != before:
                wrong.append(f"{url}: {response.status_code}; a viewer changed rows")
    assert wrong == []


def test_console_changes_need_the_csrf_token(app) -> None:
    client, _ = _as(app, Role.ADMIN)
    client.get("/")
    wrong = []
    console = [u for u in urls(app) if not u.api and u.method in CHANGES]
    console += [Url("POST", "/logout", "auth.logout", Role.VIEWER), Url("POST", "/login", "auth.login", Role.VIEWER)]
    assert len(console) > 10
    for url in console:
        before = _row_counts(app)
        for token in (None, "not-a-token"):
            response = _send(client, url, csrf=token)
            body = response.get_data(as_text=True)
            if response.status_code != 400 or "form expired" not in body:
                wrong.append(f"{url} with csrf_token={token!r}: {response.status_code}")
        if _row_counts(app) != before:
            wrong.append(f"{url}: rows changed without a CSRF token")
    assert client.get("/").status_code == 200  # still signed in: logout was refused too
    assert wrong == []


def test_the_api_takes_bearer_tokens_without_csrf_and_never_the_cookie(app) -> None:
    client, bearer = _as(app, Role.ADMIN)
    token = csrf_token(client, "/")
    wrong = []
    api = [u for u in urls(app) if u.api and u.method in CHANGES]
    assert len(api) > 20
    for url in api:
        # The session cookie (even with the page's CSRF token) never authorises the API.
        before = _row_counts(app)
        cookie_only = client.open(url.path, method=url.method, json={}, headers={"X-CSRFToken": token})
        if cookie_only.status_code != 401 or _row_counts(app) != before:
            wrong.append(f"{url} with the session cookie: {cookie_only.status_code}")
        with_bearer = client.open(url.path, method=url.method, json={}, headers=bearer)
        error = (with_bearer.get_json(silent=True) or {}).get("error")
        if error == "csrf" or with_bearer.status_code in (400, 401, 403) or with_bearer.status_code >= 500:
            wrong.append(f"{url} with a Bearer token: {with_bearer.status_code} {error}")
    assert wrong == []
