"""Schemathesis against the REST API, in process (WSGI) on SQLite, as an admin, over seeded data.

Every operation of /api/v1/openapi.json gets generated requests (a bounded, derandomized
number each, so a run takes the same path every time); every answer must be no server
error and must match the document: its status code, content type and body.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
TOKEN: list[str] = [""]  # the seeded admin's token (set by the fixture)
MAX_EXAMPLES = 40


def admitted(ctx, response, case) -> bool:  # type: ignore[no-untyped-def]
    """The admin's token, when sent as it is, is taken: no 401 or 403 (else every check passes trivially).

    Negative cases may drop or mangle the Authorization header on purpose; a 401 is right then.
    """
    sent = response.request.headers.get("Authorization")
    if response.status_code in (401, 403) and sent == f"Bearer {TOKEN[0]}":
        raise AssertionError(f"{case.method} {case.formatted_path}: {response.status_code}, the admin was refused")
    return True


CHECKS = [
    admitted,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _seed(app) -> str:  # type: ignore[no-untyped-def]
    """Contacts, stored flows, a template, campaigns, a handoff case; return an admin's token."""
    from bot.contacts import add_numbers, parse_tag
    from bot.db import utcnow
    from bot.engine import load_path
    from bot.flowstore import store
    from bot.models import HandoffCase, Message, Sender
    from bot.phones import PhoneParser
    from campaigns import operations, templates
    from campaigns import spec as campaign_spec
    from web.users import create_user, issue_token

    rt = app.extensions["canvass"]
    with rt.db.session() as s:
        token = issue_token(s, create_user(s, "admin@example.org", "admin", "a long passphrase"))
        create_user(s, "viewer@example.org", "viewer", "a long passphrase")
        numbers = [f"98765432{i:02d}" for i in range(30)]
        added = add_numbers(s, PhoneParser("IN"), numbers, [parse_tag("ward=12"), parse_tag("volunteer")])
        first = added.created[0]
        for name in ("booth_locator", "grievance_intake", "ivr_survey", "turnout_reminder"):
            path = ROOT / "flows" / f"{name}.yaml"
            store(s, load_path(path), path.read_text(), path=f"flows/{name}.yaml")
        s.add(Sender(provider="sandbox", channel="sms", address="+919999900002", healthy=True))
        s.add(Sender(provider="sandbox", channel="whatsapp", address="+919999900001", healthy=True))
        s.add(Message(contact_id=first.id, direction="in", channel="sms", body="booth", status="received"))
        s.add(HandoffCase(contact_id=first.id, status="open", reason="seeded", opened_at=utcnow()))
        for spec in sorted((ROOT / "campaigns" / "examples").glob("*.template.yaml")):
            templates.store(s, templates.parse_file(spec.read_text(), str(spec), base_dir=spec.parent))
        s.flush()
        # Campaign 1 (the documents' example id) is ready, so no run deletes it before the others use it.
        for name in ("turnout_sms.yaml", "booth_reminder_whatsapp.yaml"):
            text = (ROOT / "campaigns" / "examples" / name).read_text()
            operations.create(s, campaign_spec.parse(text, name), region="IN")
    return token


@pytest.fixture
def api_schema(_backends, tmp_path, redis):  # type: ignore[no-untyped-def]
    """The API's own document, served by an app on SQLite with seeded data."""
    from web import create_app

    sqlite = _backends["sqlite"]
    db = sqlite.database()
    sqlite.empty(db)
    db.dispose()
    app = create_app(
        {
            "DATABASE_URL": sqlite.url,
            "REDIS_URL": REDIS_URL,
            "SECRET_KEY": "test-secret-key",
            "CANVASS_VAR_DIR": str(tmp_path / "var"),
            "TESTING": "true",
        }
    )
    token = TOKEN[0] = _seed(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.config.update(headers={"Authorization": f"Bearer {token}"})
    schema.config.generation.update(
        modes=list(GenerationMode), max_examples=MAX_EXAMPLES, deterministic=True, database="none"
    )
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    yield schema
    app.extensions["canvass"].close()


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
def test_every_operation_answers_as_documented(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(checks=CHECKS)
