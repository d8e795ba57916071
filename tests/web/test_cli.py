import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from bot.models import Contact
from web.models import ApiToken, User

ROOT = Path(__file__).resolve().parents[2]


def test_db_upgrade_is_idempotent(cli) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    assert "newest" in cli("db", "current").output


def test_contacts_import_prints_counts_and_rejects(app, cli, tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("phone,name,ward\n+91 98765 43210,Asha,3\n9876543210,Dup,\nnope,X,\n")
    result = cli("contacts", "import", str(path), "--tag", "drive=1")
    assert result.exit_code == 0, result.output
    assert "imported 1, updated 0, rejected 2" in result.output
    assert f"rejected rows, with line and reason: {tmp_path / 'v.rejects.csv'}" in result.output
    with app.extensions["canvass"].db.session() as s:
        assert s.scalar(select(Contact)).valued_tags == {"drive": "1", "ward": "3"}


def test_contacts_import_bad_input_is_one_line(cli, tmp_path: Path) -> None:
    missing = cli("contacts", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    bad = tmp_path / "b.csv"
    bad.write_text("name\nAsha\n")
    result = cli("contacts", "import", str(bad))
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: ")
    assert "needs a phone column" in result.output and "nothing was imported" in result.output
    tag = cli("contacts", "import", str(bad), "--tag", "bad tag!")
    assert tag.exit_code == 2 and "--tag" in tag.output


def test_contacts_add_and_export(cli, tmp_path: Path) -> None:
    result = cli("contacts", "add", "+91 98765 43210", "12", "--tag", "volunteer")
    assert result.exit_code == 0
    assert "added   +919876543210" in result.output
    assert "rejected '12': invalid number (too short for IN)" in result.output
    assert cli("contacts", "add", "12").exit_code == 1
    too_many = cli("contacts", "add", *[str(9876543000 + i) for i in range(51)])
    assert too_many.exit_code == 2 and "at most 50" in too_many.output
    out = tmp_path / "out.csv"
    assert cli("contacts", "export", "-o", str(out)).exit_code == 0
    assert out.read_text().splitlines()[1].startswith("+919876543210,,")
    assert cli("contacts", "export").output.startswith("phone,name,language")


def test_users_create_and_token(app, cli) -> None:
    result = cli(
        "users", "create", "Ops@Example.org", "--role", "operator", "--password-stdin", input="a long passphrase\n"
    )
    assert result.exit_code == 0, result.output
    assert "created ops@example.org (operator)" in result.output
    generated = cli("users", "create", "ed@example.org", "--role", "editor")
    assert "password: " in generated.output
    assert cli("users", "create", "ops@example.org", "--role", "viewer").output.strip() == (
        "Error: email: ops@example.org already has an account"
    )
    assert cli("users", "create", "x@example.org", "--role", "boss").exit_code == 2
    weak = cli("users", "create", "w@example.org", "--role", "viewer", "--password-stdin", input="short\n")
    assert weak.exit_code == 1 and "at least 12 characters" in weak.output
    token = cli("users", "token", "ops@example.org").output.strip()
    assert token.startswith("cvs_")
    assert cli("users", "token", "ghost@example.org").exit_code == 1
    with app.extensions["canvass"].db.session() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 2
        stored = s.scalar(select(ApiToken))
        assert stored.token_hash != token and token.startswith(stored.prefix)
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.get_json() == {"email": "ops@example.org", "role": "operator"}


def test_demo_loads_once(app, cli) -> None:
    first = cli("demo")
    assert "demo contacts: 40 added (40 in all)" in first.output
    assert "admin user: admin@canvass.local  password: " in first.output
    second = cli("demo")
    assert "demo contacts: 0 added (40 in all)" in second.output
    assert "admin user exists already" in second.output


def test_real_binary_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CANVASS_PROVIDER": "twilio", "CANVASS_VAR_DIR": str(tmp_path)}
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        env.pop(key, None)
    canvass = Path(sys.executable).with_name("canvass")
    proc = subprocess.run([canvass, "db", "upgrade"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: configuration: TWILIO_ACCOUNT_SID: is required when CANVASS_PROVIDER=twilio"
    ]
