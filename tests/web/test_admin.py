"""The administration pages: admins only, CSRF on every form, errors named per field, audited."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from sqlalchemy import select

from bot.models import PolicyBlackout, PolicyWindow, Sender
from campaigns.models import Price
from tests.conftest import csrf_token, login
from web.models import ApiToken, AuditEvent, User
from web.users import create_user, user_for_token

PASSWORD = "a long passphrase"
ADMIN_PAGES = [
    "/admin/users",
    "/admin/senders",
    "/admin/providers",
    "/admin/send-policy",
    "/admin/prices",
    "/admin/audit",
]


def signed_in(app: Flask, role: str = "admin", email: str | None = None):  # type: ignore[no-untyped-def]
    """A test client signed in through the login form as a new user with ``role``."""
    email = email or f"{role}@example.org"
    with app.extensions["canvass"].db.session() as s:
        create_user(s, email, role, PASSWORD)
    client = app.test_client()
    assert login(client, email, PASSWORD).status_code == 302
    return client


def post(client, path: str, data: dict[str, str], *, page: str | None = None, **kw):  # type: ignore[no-untyped-def]
    """POST a form with the CSRF token of ``page`` (default: the path itself)."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page or path)}, **kw)


def audit_actions(app: Flask) -> list[tuple[str, str, str]]:
    with app.extensions["canvass"].db.session() as s:
        return [(e.actor_email, e.action, e.target) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def field_error(html: str, field: str) -> str:
    """The error shown next to ``field``."""
    match = re.search(rf'<span class="field-error" id="{field}-error">([^<]+)</span>', html)
    assert match, f"no error shown for {field}"
    return match.group(1)


@pytest.mark.parametrize("role", ["viewer", "operator", "editor"])
def test_only_admins_get_in(app: Flask, role: str) -> None:
    client = signed_in(app, role)
    for path in [*ADMIN_PAGES, "/users", "/admin"]:
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, "/")
    forms = ["/admin/users", "/admin/senders", "/admin/providers/test", "/admin/send-policy/blackouts", "/admin/prices"]
    for path in forms:
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    assert "/admin/users" not in client.get("/").get_data(as_text=True)  # no Admin link either


def test_admin_pages_open_and_anonymous_visitors_are_sent_to_sign_in(app: Flask) -> None:
    admin = signed_in(app)
    for path in ADMIN_PAGES:
        page = admin.get(path)
        assert page.status_code == 200, path
        assert 'aria-current="page"' in page.get_data(as_text=True)
    assert admin.get("/admin").headers["Location"] == "/admin/users"
    anonymous = app.test_client()
    assert anonymous.get("/admin/senders").headers["Location"].startswith("/login?next=")


def test_every_admin_form_needs_the_csrf_token(app: Flask) -> None:
    admin = signed_in(app)
    with app.extensions["canvass"].db.session() as s:
        user_id = s.scalar(select(User.id))
    forms = {
        "/admin/users": {"email": "x@example.org", "role": "viewer", "password": "long enough password"},
        f"/admin/users/{user_id}/role": {"role": "viewer"},
        f"/admin/users/{user_id}/password": {},
        f"/admin/users/{user_id}/tokens": {},
        "/admin/senders": {"address": "+919999900009", "channel": "sms", "provider": "sandbox", "rate": "1"},
        "/admin/providers/test": {"provider": "sandbox"},
        "/admin/send-policy/windows": {"preset": "india_election"},
        "/admin/send-policy/blackouts": {"from": "2030-01-01T00:00", "to": "2030-01-02T00:00", "timezone": "UTC"},
        "/admin/prices": {"channel": "sms", "calling_code": "91", "amount": "0.01", "currency": "USD"},
    }
    for path, data in forms.items():
        refused = admin.post(path, data=data)
        assert refused.status_code == 400, path
        assert "The form expired or was not sent from canvass" in refused.get_data(as_text=True)
    with app.extensions["canvass"].db.session() as s:
        assert s.scalars(select(Sender)).all() == []
        assert s.scalars(select(Price)).all() == []
        assert s.scalars(select(PolicyWindow)).all() == []
        assert s.scalar(select(User.role).where(User.id == user_id)) == "admin"
    assert audit_actions(app) == []


def test_users_role_deactivate_password_and_tokens(app: Flask) -> None:
    admin = signed_in(app)
    # /users still answers (the same view), and adds users.
    added = post(admin, "/users", {"email": "Ops@Example.org", "role": "operator", "password": "long enough password"})
    assert added.headers["Location"] == "/admin/users"
    with app.extensions["canvass"].db.session() as s:
        ops = s.scalar(select(User).where(User.email == "ops@example.org"))
        assert ops is not None and ops.role == "operator"
        me = s.scalar(select(User).where(User.email == "admin@example.org"))
        assert me is not None
    page = f"/admin/users/{ops.id}"

    moved = post(admin, f"{page}/role", {"role": "editor"}, page=page, follow_redirects=True)
    assert "ops@example.org is now editor." in moved.get_data(as_text=True)
    bad = post(admin, f"{page}/role", {"role": "boss"}, page=page)
    assert bad.status_code == 422
    assert "role: must be one of viewer, operator, editor, admin, got &#39;boss&#39;" in field_error(
        bad.get_data(as_text=True), "role"
    )

    # A token issued here is shown once and works on the API; revoked, it does not.
    issued = post(admin, f"{page}/tokens", {}, page=page).get_data(as_text=True)
    token = re.search(r'data-secret="token">(cvs_[^<]+)<', issued).group(1)  # type: ignore[union-attr]
    with app.extensions["canvass"].db.session() as s:
        assert user_for_token(s, token) is not None
        token_id = s.scalar(select(ApiToken.id).where(ApiToken.user_id == ops.id))
    assert token not in admin.get(page).get_data(as_text=True)  # never shown again
    post(admin, f"{page}/tokens/revoke", {"token_id": str(token_id)}, page=page)
    with app.extensions["canvass"].db.session() as s:
        assert user_for_token(s, token) is None
    foreign = post(admin, f"/admin/users/{me.id}/tokens/revoke", {"token_id": str(token_id)}, page=page)
    assert foreign.status_code == 422 and "has no token" in field_error(foreign.get_data(as_text=True), "token")

    # A reset password is shown once; the old one stops working, the new one signs in.
    reset = post(admin, f"{page}/password", {}, page=page).get_data(as_text=True)
    new_password = re.search(r'data-secret="password">([^<]+)<', reset).group(1)  # type: ignore[union-attr]
    assert login(app.test_client(), "ops@example.org", "long enough password").status_code != 302
    ops_client = app.test_client()
    assert login(ops_client, "ops@example.org", new_password).status_code == 302

    # Deactivated: their session ends at once.
    assert ops_client.get("/").status_code == 200
    post(admin, f"{page}/deactivate", {}, page=page)
    assert ops_client.get("/").status_code == 302
    assert login(app.test_client(), "ops@example.org", new_password).status_code != 302
    post(admin, f"{page}/activate", {}, page=page)
    assert login(app.test_client(), "ops@example.org", new_password).status_code == 302

    # The last admin can neither leave the role nor be deactivated, least of all by themself.
    mine = f"/admin/users/{me.id}"
    self_off = post(admin, f"{mine}/deactivate", {}, page=mine)
    assert "you cannot deactivate yourself" in field_error(self_off.get_data(as_text=True), "active")
    demote = post(admin, f"{mine}/role", {"role": "viewer"}, page=mine)
    assert "last active admin" in field_error(demote.get_data(as_text=True), "role")

    assert [(a, t) for _, a, t in audit_actions(app)] == [
        ("user.add", "ops@example.org"),
        ("user.role", "ops@example.org"),
        ("token.issue", "ops@example.org"),
        ("token.revoke", "ops@example.org"),
        ("user.password", "ops@example.org"),
        ("user.deactivate", "ops@example.org"),
        ("user.activate", "ops@example.org"),
    ]
    trail = admin.get("/admin/audit?area=user").get_data(as_text=True)
    assert "operator → editor" in trail and "token.issue" not in trail


def test_adding_a_user_with_bad_input_keeps_what_was_typed(app: Flask) -> None:
    admin = signed_in(app)
    weak = post(admin, "/admin/users", {"email": "keep@example.org", "role": "editor", "password": "short"})
    html = weak.get_data(as_text=True)
    assert weak.status_code == 422
    assert field_error(html, "password") == "password: must be at least 12 characters"
    assert 'value="keep@example.org"' in html
    assert '<option value="editor" selected>' in html
    taken = post(admin, "/admin/users", {"email": "ADMIN@example.org", "role": "viewer", "password": PASSWORD})
    assert "already has an account" in field_error(taken.get_data(as_text=True), "email")


def test_senders_add_edit_and_health(app: Flask) -> None:
    admin = signed_in(app)
    bad = post(admin, "/admin/senders", {"address": "12", "channel": "fax", "provider": "sandbox", "rate": "1"})
    assert bad.status_code == 422
    assert "channel: one of whatsapp, sms, voice" in field_error(bad.get_data(as_text=True), "channel")
    bad = post(admin, "/admin/senders", {"address": "12", "channel": "sms", "provider": "sandbox", "rate": "1"})
    assert "address: &#39;12&#39;" in field_error(bad.get_data(as_text=True), "address")
    bad = post(
        admin, "/admin/senders", {"address": "9999900009", "channel": "sms", "provider": "sandbox", "rate": "fast"}
    )
    html = bad.get_data(as_text=True)
    assert "rate: a number of messages per second" in field_error(html, "rate")
    assert 'value="9999900009"' in html  # kept
    ok = post(
        admin,
        "/admin/senders",
        {"address": "99999 00009", "channel": "sms", "provider": "sandbox", "rate": "5", "name": "Pune SMS"},
    )
    assert ok.headers["Location"] == "/admin/senders"
    with app.extensions["canvass"].db.session() as s:
        sender = s.scalar(select(Sender))
        assert sender is not None
        assert (sender.address, sender.channel, sender.rate_per_s, sender.healthy) == ("+919999900009", "sms", 5, True)
    again = post(
        admin, "/admin/senders", {"address": "+919999900009", "channel": "sms", "provider": "sandbox", "rate": "1"}
    )
    assert "already a sms sender" in field_error(again.get_data(as_text=True), "address")

    page = f"/admin/senders/{sender.id}"
    bad_edit = post(
        admin, page, {"provider": "twilio", "rate": "2", "name": "x", "messaging_service": "MG1"}, page=page
    )
    assert "MG followed by 32 characters" in field_error(bad_edit.get_data(as_text=True), "messaging_service")
    post(admin, page, {"provider": "sandbox", "rate": "2.5", "name": "Pune", "messaging_service": ""})
    no_reason = post(admin, f"{page}/health", {"healthy": "0", "note": ""}, page=page)
    assert "say why" in field_error(no_reason.get_data(as_text=True), "note")
    post(admin, f"{page}/health", {"healthy": "0", "note": "blocked by the operator"}, page=page)
    with app.extensions["canvass"].db.session() as s:
        found = s.get(Sender, sender.id)
        assert found is not None
        assert (found.rate_per_s, found.name, found.healthy, found.health_note) == (
            2.5,
            "Pune",
            False,
            "blocked by the operator",
        )
    listing = admin.get("/admin/senders").get_data(as_text=True)
    assert "unhealthy" in listing and "blocked by the operator" in listing
    post(admin, f"{page}/health", {"healthy": "1", "back": "list"}, page="/admin/senders")
    with app.extensions["canvass"].db.session() as s:
        assert s.scalar(select(Sender.healthy)) is True
    assert [a for _, a, _ in audit_actions(app)] == ["sender.add", "sender.edit", "sender.health", "sender.health"]
    trail = admin.get("/admin/audit?area=sender").get_data(as_text=True)
    assert "rate_per_s: 5.0 → 2.5" in trail


def test_prices_add_edit_delete_with_errors_per_field(app: Flask) -> None:
    admin = signed_in(app)
    cases = [
        ({"channel": "sms", "calling_code": "+9100", "amount": "0.01", "currency": "USD"}, "calling_code"),
        ({"channel": "sms", "calling_code": "91", "amount": "cheap", "currency": "USD"}, "amount"),
        ({"channel": "sms", "calling_code": "91", "amount": "0.01", "currency": "dollars"}, "currency"),
        ({"channel": "email", "calling_code": "91", "amount": "0.01", "currency": "USD"}, "channel"),
    ]
    for data, field in cases:
        bad = post(admin, "/admin/prices", data)
        assert bad.status_code == 422
        assert field_error(bad.get_data(as_text=True), field)
    assert post(admin, "/admin/prices", cases[0][0] | {"calling_code": "91"}).status_code == 302
    assert (
        post(
            admin, "/admin/prices", {"channel": "whatsapp", "calling_code": "1", "amount": "0.0079", "currency": "usd"}
        ).status_code
        == 302
    )
    other = post(admin, "/admin/prices", {"channel": "sms", "calling_code": "44", "amount": "0.04", "currency": "EUR"})
    assert "the price table is in USD" in field_error(other.get_data(as_text=True), "currency")
    dup = post(admin, "/admin/prices", {"channel": "sms", "calling_code": "91", "amount": "0.02", "currency": "USD"})
    assert "already has a price" in field_error(dup.get_data(as_text=True), "calling_code")
    with app.extensions["canvass"].db.session() as s:
        sms = s.scalar(select(Price).where(Price.channel == "sms"))
        assert sms is not None and sms.micros == 10_000
    edited = post(admin, f"/admin/prices/{sms.id}", {"amount": "0.0125", "currency": "USD"}, page="/admin/prices")
    assert edited.status_code == 302
    wrong = post(admin, f"/admin/prices/{sms.id}", {"amount": "-1", "currency": "USD"}, page="/admin/prices")
    assert "a number of 0 or more" in field_error(wrong.get_data(as_text=True), "amount")
    assert 'value="-1"' in wrong.get_data(as_text=True)  # kept in the row that was edited
    post(admin, f"/admin/prices/{sms.id}/delete", {}, page="/admin/prices")
    with app.extensions["canvass"].db.session() as s:
        assert [(p.channel, p.calling_code, p.micros) for p in s.scalars(select(Price))] == [("whatsapp", "1", 7_900)]
    assert [(a, t) for _, a, t in audit_actions(app)] == [
        ("price.add", "sms +91"),
        ("price.add", "whatsapp +1"),
        ("price.edit", "sms +91"),
        ("price.delete", "sms +91"),
    ]
    assert "price: 0.01 USD → 0.0125 USD" in admin.get("/admin/audit?area=price").get_data(as_text=True)


def test_send_policy_windows_and_blackouts(app: Flask) -> None:
    admin = signed_in(app)
    path = "/admin/send-policy"
    cases = [
        ("windows", {"preset": "nightly"}, "preset", "unknown preset"),
        ("windows", {"start": "9am", "end": "21:00"}, "start", "a time of day such as 09:00"),
        ("windows", {"start": "09:00", "end": "09:00"}, "end", "the window would be empty"),
        ("windows", {"start": "09:00", "end": "21:00", "timezone": "Mars/Base"}, "timezone", "unknown time zone"),
        ("blackouts", {"from": "", "to": "2030-01-02T00:00", "timezone": "UTC"}, "from", "give a date and time"),
        ("blackouts", {"from": "2030-01-02T00:00", "to": "2030-01-01T00:00", "timezone": "UTC"}, "to", "end after"),
        ("blackouts", {"from": "2030-01-01T00:00", "to": "soon", "timezone": "UTC"}, "to", "a date and time such as"),
        (
            "blackouts",
            {"from": "2030-01-01T00:00", "to": "2030-01-02T00:00", "timezone": "UTC", "tag": "ward"},
            "value",
            "give the value",
        ),
        (
            "blackouts",
            {"from": "2030-01-01T00:00", "to": "2030-01-02T00:00", "timezone": "UTC", "tag": "ward!", "value": "3"},
            "tag",
            "use 1-64 letters",
        ),
    ]
    for kind, data, field, words in cases:
        bad = post(admin, f"{path}/{kind}", data, page=path)
        assert bad.status_code == 422, data
        assert words in field_error(bad.get_data(as_text=True), field), data
    post(admin, f"{path}/windows", {"preset": "india_election"}, page=path)
    post(admin, f"{path}/windows", {"start": "08:00", "end": "20:30", "timezone": "UTC"}, page=path)
    again = post(admin, f"{path}/windows", {"preset": "india_election"}, page=path)
    assert "already in the policy" in field_error(again.get_data(as_text=True), "preset")
    post(
        admin,
        f"{path}/blackouts",
        {
            "from": "2030-11-18T18:00",
            "to": "2030-11-20T18:00",
            "timezone": "Asia/Kolkata",
            "tag": "Constituency",  # stored as contacts' tag names are
            "value": "kothrud",
            "reason": "48 h silence",
        },
        page=path,
    )
    with app.extensions["canvass"].db.session() as s:
        blackout = s.scalar(select(PolicyBlackout))
        assert blackout is not None
        assert blackout.starts_at.isoformat() == "2030-11-18T12:30:00+00:00"  # 18:00 IST
        assert (blackout.tag, blackout.value, blackout.created_by) == ("constituency", "kothrud", "admin@example.org")
        windows = [(w.preset, w.start, w.end, w.timezone) for w in s.scalars(select(PolicyWindow))]
    assert windows == [("india_election", None, None, None), (None, "08:00", "20:30", "UTC")]
    page = admin.get(path).get_data(as_text=True)
    assert "constituency=kothrud" in page and "08:00-20:30 UTC" in page
    with app.extensions["canvass"].db.session() as s:
        window_id = s.scalar(select(PolicyWindow.id).where(PolicyWindow.preset == "india_election"))
    post(admin, f"{path}/windows/{window_id}/delete", {}, page=path)
    post(admin, f"{path}/blackouts/{blackout.id}/delete", {}, page=path)
    assert [a for _, a, _ in audit_actions(app)] == [
        "policy.window.add",
        "policy.window.add",
        "policy.blackout.add",
        "policy.window.delete",
        "policy.blackout.delete",
    ]


def test_provider_page_shows_the_settings_and_tests_the_sandbox(app: Flask) -> None:
    admin = signed_in(app)
    page = admin.get("/admin/providers").get_data(as_text=True)
    assert "not set (TWILIO_AUTH_TOKEN)" in page
    assert "POST http://127.0.0.1:5000/webhooks/twilio/messages" in page
    tested = post(admin, "/admin/providers/test", {"provider": "sandbox"}, page="/admin/providers")
    assert 'data-result="ok"' in tested.get_data(as_text=True)
    unset = post(admin, "/admin/providers/test", {"provider": "twilio"}, page="/admin/providers")
    html = unset.get_data(as_text=True)
    assert 'data-result="failed"' in html and "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in html
    other = post(admin, "/admin/providers/test", {"provider": "carrier-pigeon"}, page="/admin/providers")
    assert other.status_code == 422
    assert "one of sandbox, twilio" in other.get_data(as_text=True)


def test_twilio_test_connection_fetches_the_account_and_never_shows_the_token(make_app) -> None:  # type: ignore[no-untyped-def]
    from tests.twilio_stubs import ACCOUNT_SID, FakeTwilio, running, twilio_error

    secret = "auth-token-that-must-stay-hidden"
    with running(FakeTwilio()) as fake:
        app = make_app(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=secret, TWILIO_API_BASE=fake.url)
        admin = signed_in(app)
        page = admin.get("/admin/providers").get_data(as_text=True)
        assert ACCOUNT_SID in page and "set (never shown)" in page and secret not in page
        fake.answer(200, {"sid": ACCOUNT_SID, "friendly_name": "Pune outreach", "status": "active", "type": "Full"})
        fake.answer(401, twilio_error(20003, 401, "Authenticate"))
        fake.answer(200, {"sid": ACCOUNT_SID, "friendly_name": "Pune outreach", "status": "suspended"})
        ok = post(admin, "/admin/providers/test", {"provider": "twilio"}, page="/admin/providers")
        refused = post(admin, "/admin/providers/test", {"provider": "twilio"}, page="/admin/providers")
        suspended = post(admin, "/admin/providers/test", {"provider": "twilio"}, page="/admin/providers")
    html = ok.get_data(as_text=True)
    assert 'data-result="ok"' in html and "account Pune outreach is reachable" in html and secret not in html
    assert [(method, path) for method, path, _ in fake.calls] == [
        ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}.json")
    ] * 3
    html = refused.get_data(as_text=True)
    assert (
        'data-result="failed"' in html
        and "Twilio refused the account (HTTP 401): Unable to fetch record: Authenticate" in html
    )
    assert secret not in html
    assert "the account is suspended" in suspended.get_data(as_text=True)


def test_twilio_test_connection_passes_twilios_schema(prism_url: str) -> None:
    """Prism serving Twilio's API 2010 document accepts the request (and answers its example account)."""
    from bot import provider_check
    from bot.settings import Settings
    from tests.twilio_stubs import ACCOUNT_SID

    settings = Settings.from_env(
        {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "token", "TWILIO_API_BASE": prism_url},
        var_dir=None,
    )
    result = provider_check.check(settings, "twilio")
    assert result.details.get("account", "").startswith("AC"), result.message


def test_a_blackout_added_in_the_console_holds_back_sends(world) -> None:  # type: ignore[no-untyped-def]
    from bot.db import utcnow
    from campaigns import operations
    from campaigns.models import Recipient
    from tests.campaigns.conftest import BOOTH_SPEC

    silenced = world.voter("+919800000001", "ward=3", "constituency=kothrud")
    reached = world.voter("+919800000002", "ward=3", "constituency=baner")
    admin = signed_in(world.app)
    now = utcnow()
    added = post(
        admin,
        "/admin/send-policy/blackouts",
        {
            "from": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "to": (now + dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M"),
            "timezone": "UTC",
            "tag": "constituency",
            "value": "kothrud",
            "reason": "poll in Kothrud",
        },
        page="/admin/send-policy",
    )
    assert added.status_code == 302
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    world.send(campaign.id)
    with world.rt.db.session() as s:
        rows = dict(
            s.execute(select(Recipient.contact_id, Recipient.status).where(Recipient.campaign_id == campaign.id)).all()
        )
    assert rows[silenced] == "pending"  # held back until the blackout ends
    assert rows[reached] in ("sent", "delivered", "read")


def test_the_prices_command_shows_the_amounts_the_console_shows(app: Flask, cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("prices", "set", "sms", "+91", "0.0107", "--currency", "inr")
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "sms +91: 0.0107 INR"
    listed = cli("prices", "list")
    assert listed.exit_code == 0 and "+91" in listed.output and "0.0107 INR" in listed.output
    page = signed_in(app).get("/admin/prices").get_data(as_text=True)
    assert 'value="0.0107"' in page and 'value="INR"' in page
