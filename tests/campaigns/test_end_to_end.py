"""A whole campaign on the sandbox, as an operator runs it: CLI, a real worker process, real Redis.

Import voters, load and approve a template, create the campaign from a spec file, launch,
let `python worker.py --burst` send, reply as voters with `canvass sandbox reply`, and
read the export.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.campaigns.conftest import EXAMPLES, ROOT
from tests.conftest import REDIS_URL

SPEC = """
name: Booth reminder, ward 3
channel: whatsapp
sender: "+919999900001"
template: {name: booth_reminder, language: en}
variables:
  1: {contact: name, default: voter}
  2: {tag: ward}
audience:
  all: [{tag: ward, eq: "3"}]
flow: {name: booth_locator, at: knows}
pace: 50/s
"""


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    """The app with the demo actions (the booth lookup is a rasa-sdk action)."""
    return make_app(CANVASS_ACTIONS="flows.actions")


def test_a_campaign_from_spec_to_export(cli, app, backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    voters = tmp_path / "voters.csv"
    voters.write_text(
        "phone,name,ward,consent\n"
        "+91 98765 43210,Asha,3,opted_in\n"
        "098765-43211,=cmd|' /C calc'!A0,3,\n"
        "9876543212,Ravi,3,opted_out\n"
        "9876543213,Meena,4,\n"
    )
    assert cli("contacts", "import", str(voters)).exit_code == 0
    assert (
        cli(
            "senders", "add", "+919999900001", "--channel", "whatsapp", "--provider", "sandbox", "--rate", "50"
        ).exit_code
        == 0
    )
    env = {**os.environ, "CANVASS_ACTIONS": "flows.actions"}
    assert cli("flows", "load", str(ROOT / "flows" / "booth_locator.yaml")).exit_code == 0
    loaded = cli("templates", "load", str(EXAMPLES / "booth_reminder.template.yaml"))
    assert "booth_reminder created: en v1 (new), hi v1 (new)" in loaded.output
    spec = tmp_path / "campaign.yaml"
    spec.write_text(SPEC)
    draft = cli("campaigns", "create", str(spec))
    assert draft.exit_code == 0
    campaign_id = draft.output.strip().splitlines()[0]
    assert "is draft" in draft.output and "not approved (canvass templates submit)" in draft.output
    refused = cli("campaigns", "launch", campaign_id)
    assert refused.exit_code == 1 and "cannot be launched:\n  template: booth_reminder (en) is draft" in refused.output
    assert "approved" in cli("templates", "submit", "booth_reminder", "--language", "en").output
    assert cli("campaigns", "create", str(spec)).exit_code == 0  # a second one, ready at once
    campaign_id = str(int(campaign_id) + 1)
    launched = cli("campaigns", "launch", campaign_id)
    assert launched.exit_code == 0, launched.output
    assert "3 recipients: 2 to send in 1 batch(es); skipped: opted_out 1" in launched.output

    settings = app.extensions["canvass"].settings
    worker_env = {
        **env,
        "DATABASE_URL": backend.url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test",
        "CANVASS_VAR_DIR": str(settings.var_dir),
    }
    done = subprocess.run(
        [sys.executable, "worker.py", "--burst"], cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"campaign {campaign_id} batch 0: {{'delivered': 2}}" in done.stderr

    answer = cli("sandbox", "reply", "9876543210", "No")
    assert "[resumed]" in answer.output and "EPIC" in answer.output
    answer = cli("sandbox", "reply", "9876543210", "ABC1234567")
    assert "Your booth is" in answer.output
    assert "[resumed]" in cli("sandbox", "reply", "9876543211", "1").output

    status = cli("campaigns", "status", campaign_id)
    assert "completed" in status.output and "2 sent, 0 failed, 1 skipped, 0 pending; 2 replied" in status.output
    out = tmp_path / "export.csv"
    assert cli("campaigns", "export", campaign_id, "-o", str(out)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    by_phone = {r["phone"]: r for r in rows}
    assert set(by_phone) == {"+919876543210", "+919876543211", "+919876543212"}
    asha = by_phone["+919876543210"]
    assert (asha["status"], asha["attempts"], asha["answer:knows_booth"], asha["answer:epic"]) == (
        "delivered",
        "1",
        "2",
        "ABC1234567",
    )
    assert asha["funnel:answered"] and asha["funnel:epic_given"] and asha["funnel:booth_shared"]
    assert asha["replied_at"].endswith("Z") and asha["completed_at"].endswith("Z")
    assert by_phone["+919876543211"]["name"] == "'=cmd|' /C calc'!A0"  # formula-safe
    assert by_phone["+919876543211"]["answer:knows_booth"] == "1"
    assert (by_phone["+919876543212"]["status"], by_phone["+919876543212"]["error_code"]) == ("skipped", "opted_out")
    assert "ended" in cli("campaigns", "end", campaign_id).output
