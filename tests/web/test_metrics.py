"""/metrics, parsed with prometheus_client's own parser; and the structured request log."""

from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.db import utcnow
from bot.models import Contact, HandoffCase
from ivr.models import Call
from tests.campaigns.conftest import World
from tests.web.test_dashboard import campaign

TOKEN = "metrics-webhook-token"
BASE = "https://canvass.example.org"
SID = "AC" + "0123456789abcdef" * 2


def scrape(client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:  # type: ignore[no-untyped-def]
    """``{sample name: {sorted labels: value}}`` from /metrics, through Prometheus' parser."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def signed_post(client, path: str, form: dict[str, str], *, good: bool = True):  # type: ignore[no-untyped-def]
    signature = RequestValidator(TOKEN if good else "wrong").compute_signature(BASE + path, form)
    return client.post(
        path,
        data=urlencode(form),
        headers={"X-Twilio-Signature": signature},
        content_type="application/x-www-form-urlencoded",
    )


def test_webhook_requests_are_counted_by_route_and_outcome_across_processes(make_app) -> None:  # type: ignore[no-untyped-def]
    settings = {
        "CANVASS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": BASE,
    }
    web1, web2 = make_app(**settings).test_client(), make_app(**settings).test_client()
    form = {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": SID,
        "From": "+919876543210",
        "To": "+919999900002",
        "Body": "hello",
        "NumMedia": "0",
    }
    assert signed_post(web1, "/webhooks/twilio/messages", form).status_code == 200
    assert signed_post(web2, "/webhooks/twilio/messages", form).status_code == 200  # Twilio's retry
    assert signed_post(web1, "/webhooks/twilio/messages", form, good=False).status_code == 403
    status = {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered", "AccountSid": SID}
    assert signed_post(web2, "/webhooks/twilio/message-status", status).status_code == 204
    voice = {"CallSid": "CA" + "1" * 32, "AccountSid": SID, "From": "+919876543210", "To": "+911140000000"}
    assert signed_post(web1, "/webhooks/twilio/voice", voice).status_code == 200  # no line: an apology
    web1.get("/healthz")  # not a webhook: not counted

    for client in (web1, web2):  # every process reports the same numbers
        counts = scrape(client)["canvass_webhook_requests_total"]
        assert counts == {
            (("outcome", "ok"), ("route", "/webhooks/twilio/messages")): 1.0,
            (("outcome", "duplicate"), ("route", "/webhooks/twilio/messages")): 1.0,
            (("outcome", "refused"), ("route", "/webhooks/twilio/messages")): 1.0,
            (("outcome", "ok"), ("route", "/webhooks/twilio/message-status")): 1.0,
            (("outcome", "apology"), ("route", "/webhooks/twilio/voice")): 1.0,
        }


def test_webhook_counts_go_to_redis_together_not_one_round_trip_each(make_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from web import metrics

    app = make_app(CANVASS_PROVIDER="twilio", TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, PUBLIC_BASE_URL=BASE)
    web = app.test_client()
    conn = app.extensions["canvass"].redis
    voice = {"CallSid": "CA" + "2" * 32, "AccountSid": SID, "From": "+919876543210", "To": "+911140000000"}
    # Not a second of wall time (a loaded machine can take longer for five requests): an hour.
    monkeypatch.setattr(metrics, "FLUSH_EVERY_S", 3600.0)
    for _ in range(5):
        assert signed_post(web, "/webhooks/twilio/voice", voice).status_code == 200
    assert conn.hgetall(metrics.WEBHOOK_COUNTS) == {}  # gathered in the process, not yet sent
    monkeypatch.setattr(metrics, "FLUSH_EVERY_S", 0.0)  # a second has passed: the next request sends all
    assert signed_post(web, "/webhooks/twilio/voice", voice).status_code == 200
    assert conn.hgetall(metrics.WEBHOOK_COUNTS) == {b"/webhooks/twilio/voice|apology": b"6"}


def test_metrics_of_sends_errors_calls_handoffs_queues_and_the_scheduler(world: World) -> None:
    import worker

    for i in range(12):
        world.voter(f"+9198000{i:05d}", "ward=3")
    now = utcnow()
    live = campaign(world, "active", {"delivered": 4, "pending": 2, "failed": 3}, launched_at=now)
    campaign(world, "ended", {"read": 9}, launched_at=now - dt.timedelta(days=60))  # history: not read
    campaign(world, "completed", {"read": 2}, launched_at=now - dt.timedelta(days=3))  # finished: left out
    with world.rt.db.session() as s:
        from campaigns.models import Recipient

        failed = s.scalars(select(Recipient).where(Recipient.campaign_id == live, Recipient.status == "failed")).all()
        failed[0].error_code, failed[1].error_code, failed[2].error_code = "63016", "63016", "21211"
        voter = s.scalar(select(Contact.id))
        for status, age in [("completed", 1), ("completed", 2), ("busy", 3), ("no-answer", 30 * 60)]:
            s.add(
                Call(contact_id=voter, direction="outbound", status=status, created_at=now - dt.timedelta(minutes=age))
            )
        s.add(HandoffCase(contact_id=voter, status="open"))
        s.add(HandoffCase(contact_id=voter, status="open", assignee_id=1))
        s.add(HandoffCase(contact_id=voter, status="closed"))
    client = world.app.test_client()
    before = scrape(client)
    assert before["canvass_scheduler_up"] == {(): 0.0}
    assert "canvass_scheduler_heartbeat_age_seconds" not in before

    worker.run_scheduler(rt=world.rt, once=True)
    found = scrape(client)
    recipients = found["canvass_campaign_recipients"]
    assert recipients == {
        (("channel", "whatsapp"), ("status", "delivered")): 4.0,
        (("channel", "whatsapp"), ("status", "pending")): 2.0,
        (("channel", "whatsapp"), ("status", "failed")): 3.0,
    }
    assert found["canvass_provider_errors"] == {
        (("channel", "whatsapp"), ("code", "63016")): 2.0,
        (("channel", "whatsapp"), ("code", "21211")): 1.0,
    }
    assert found["canvass_calls"] == {(("status", "completed"),): 2.0, (("status", "busy"),): 1.0}
    assert found["canvass_handoffs_waiting"] == {(): 2.0}
    assert found["canvass_handoffs_unassigned"] == {(): 1.0}
    assert found["canvass_scheduler_up"] == {(): 1.0}
    assert 0 <= found["canvass_scheduler_heartbeat_age_seconds"][()] < 60
    assert found["canvass_queue_jobs"][(("queue", "sends"),)] == 0.0
    assert found["canvass_contacts"] == {(("consent", "unknown"),): 12.0}
    assert found["canvass_workers"] == {(): 0.0}


def test_metrics_need_no_login_and_cost_a_fixed_number_of_queries(world: World) -> None:
    from tests.web.test_dashboard import counted

    for i in range(6):
        world.voter(f"+9198000{i:05d}", "ward=3")
    client = world.app.test_client()
    campaign(world, "active", {"sent": 1}, launched_at=utcnow())
    with counted(world) as few:
        scrape(client)
    for status in ("active", "paused", "completed"):
        campaign(world, status, {"sent": 2, "failed": 1}, launched_at=utcnow())
    with counted(world) as many:
        scrape(client)
    assert len(few) == len(many) <= 6


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_one_log_line_per_request_with_its_fields(make_app, caplog, fmt: str) -> None:  # type: ignore[no-untyped-def]
    from bot.logs import formatter

    app = make_app(CANVASS_LOG_FORMAT=fmt)
    assert app.extensions["canvass"].settings.log_format == fmt
    with caplog.at_level(logging.INFO, logger="canvass.request"):
        response = app.test_client().get("/login", headers={"X-Request-Id": "req-from-proxy-1"})
        app.test_client().get("/no/such/page")
    assert response.headers["X-Request-Id"] == "req-from-proxy-1"
    lines = [r for r in caplog.records if r.name == "canvass.request"]
    assert [(r.route, r.status) for r in lines] == [("/login", 200), (None, 404)]
    first = lines[0]
    assert (first.request_id, first.method, first.path) == ("req-from-proxy-1", "GET", "/login")
    assert first.duration_ms >= 0
    assert len(lines[1].request_id) == 16  # made here when no sane one came
    written = formatter(fmt).format(first)
    assert "\n" not in written
    if fmt == "json":
        data = json.loads(written)
        assert data["msg"].startswith("GET /login 200 ")
        assert (data["request_id"], data["route"], data["status"], data["level"]) == (
            "req-from-proxy-1",
            "/login",
            200,
            "INFO",
        )
    else:
        assert " INFO canvass.request: GET /login 200 " in written
        assert "request_id=req-from-proxy-1 method=GET route=/login path=/login status=200 duration_ms=" in written


def test_a_bad_log_format_stops_the_start(make_app) -> None:  # type: ignore[no-untyped-def]
    from bot.settings import SettingsError

    with pytest.raises(SettingsError, match="CANVASS_LOG_FORMAT: must be one of text, json, got 'xml'"):
        make_app(CANVASS_LOG_FORMAT="xml")


def test_job_lines_carry_the_job_campaign_and_batch(world: World) -> None:
    """A batch job run by a real (burst) worker logs with its job id, queue, campaign and batch."""
    from rq import Queue, SimpleWorker

    from bot.logs import JobContext, JsonFormatter

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.startswith("campaigns"):
                records.append(record)

    handler = Keep(level=logging.DEBUG)
    handler.addFilter(JobContext())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = logging.getLogger("campaigns").level
    logging.getLogger("campaigns").setLevel(logging.DEBUG)
    try:
        import worker

        worker.install(world.rt)
        logging.getLogger("campaigns.dispatch").info("outside a job")
        q = Queue("sends", connection=world.rt.redis)
        q.enqueue("tests.web.test_metrics.log_in_a_job", 7, 3, job_id="batch-7-3")
        SimpleWorker([q], connection=world.rt.redis).work(burst=True)
    finally:
        root.removeHandler(handler)
        logging.getLogger("campaigns").setLevel(old_level)
    outside, inside = records[0], records[-1]
    assert getattr(outside, "job_id", None) is None
    assert (inside.job_id, inside.queue, inside.campaign, inside.batch) == ("batch-7-3", "sends", 7, 3)
    line = json.loads(JsonFormatter().format(inside))
    assert (line["job_id"], line["campaign"], line["batch"], line["msg"]) == ("batch-7-3", 7, 3, "sending a batch")


def log_in_a_job(campaign_id: int, batch: int) -> None:
    """A job with a batch job's parameters that logs one line."""
    logging.getLogger("campaigns.dispatch").info("sending a batch")
