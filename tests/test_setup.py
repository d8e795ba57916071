"""The set-up scripts behind make run / make test, run for real."""

import os
import subprocess
import sys
from pathlib import Path

import redis as redis_lib

ROOT = Path(__file__).resolve().parents[1]


def test_ensure_redis_starts_a_private_server_when_none_answers(tmp_path: Path) -> None:
    env = {**os.environ, "LOCAL_REDIS_URL": "redis://127.0.0.1:1/0", "CANVASS_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    first = subprocess.run([ROOT / "scripts/ensure-redis.sh"], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    url = first.stdout.strip()
    assert url.startswith("redis://127.0.0.1:") and url != "redis://127.0.0.1:6379/0"
    assert "started a private redis-server" in first.stderr
    conn = redis_lib.Redis.from_url(url)
    try:
        assert conn.ping()
        # A second call finds the same private server instead of starting another.
        again = subprocess.run([ROOT / "scripts/ensure-redis.sh"], env=env, capture_output=True, text=True, timeout=60)
        assert again.stdout.strip() == url and "started" not in again.stderr
    finally:
        conn.shutdown(nosave=True)


def test_ensure_redis_prefers_the_configured_one(tmp_path: Path) -> None:
    from tests.conftest import REDIS_URL

    env = {**os.environ, "REDIS_URL": REDIS_URL, "CANVASS_VAR_DIR": str(tmp_path)}
    out = subprocess.run([ROOT / "scripts/ensure-redis.sh"], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == REDIS_URL
    assert not (tmp_path / "redis").exists()


def run_pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/bot/test_contacts.py::test_export"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_unreachable_postgresql_fails_in_ci_and_skips_elsewhere(tmp_path: Path) -> None:
    dead = "postgresql://nobody@127.0.0.1:1/none"
    ci = run_pytest(tmp_path, TEST_DATABASE_URL=dead, CI="true")
    assert ci.returncode == 1, ci.stdout
    assert "1 passed, 1 error" in ci.stdout
    assert "CI=true requires it" in ci.stdout
    local = run_pytest(tmp_path, TEST_DATABASE_URL=dead, CI="")
    assert local.returncode == 0, local.stdout
    assert "1 passed, 1 skipped" in local.stdout


def test_env_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch) -> None:
    from web import create_app

    (tmp_path / ".env").write_text("CANVASS_DEFAULT_REGION=US\nCANVASS_TTS=gtts\nSECRET_KEY=from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CANVASS_TTS", "twilio")
    monkeypatch.setenv("CANVASS_VAR_DIR", str(tmp_path / "var"))
    app = create_app()
    try:
        settings = app.extensions["canvass"].settings
        assert (settings.default_region, settings.tts, settings.secret_key) == ("US", "twilio", "from-dotenv")
        assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'canvass.db'}"
    finally:
        app.extensions["canvass"].close()
