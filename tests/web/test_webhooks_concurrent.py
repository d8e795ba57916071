"""The same inbound webhook, five times at once, to two real server processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.conversations import drain_inbound
from bot.engine import load_path
from bot.flowstore import store
from bot.models import FlowSession, Message, QueuedInbound
from bot.runtime import Runtime
from bot.settings import Settings
from tests.test_worker import fetch, free_port, wait_for
from tests.web.test_webhooks import SID, TOKEN, inbound_form, queued

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_five_copies_at_once_make_one_message_one_step_one_reply(settings_env, redis, db) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **settings_env,
        "CANVASS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": base,
        "PYTHONPATH": str(ROOT),
    }
    with db.session() as s:
        path = ROOT / "flows" / "grievance_intake.yaml"
        store(s, load_path(path), path.read_text())
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "web.wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: fetch(f"{base}/healthz")[0] == 200, timeout=60, what="gunicorn")
        form = inbound_form(body="complaint")
        url = f"{base}/webhooks/twilio/messages"
        signature = RequestValidator(TOKEN).compute_signature(url, form)
        start = threading.Barrier(5)
        statuses: list[int] = []

        def post() -> None:
            request = urllib.request.Request(
                url, data=urlencode(form).encode(), headers={"X-Twilio-Signature": signature}, method="POST"
            )
            start.wait()
            with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
                statuses.append(response.status)

        threads = [threading.Thread(target=post) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert statuses == [200] * 5
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(QueuedInbound)) == 1
    # Two workers' drains at once, as when two woken jobs overlap.
    rt = Runtime.from_settings(Settings.from_env(env))
    try:
        drains = [threading.Thread(target=drain_inbound, args=(rt,), kwargs={"max_s": 60}) for _ in range(2)]
        for t in drains:
            t.start()
        for t in drains:
            t.join(timeout=60)
    finally:
        rt.close()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 1
        assert s.scalar(select(func.count()).select_from(FlowSession)) == 1
        # One flow step: the grievance flow's opening says two things, once.
        outbound = s.scalars(select(Message.body).where(Message.direction == "out")).all()
    assert len(outbound) == 2 and len(set(outbound)) == 2
    assert queued(redis) == 2
