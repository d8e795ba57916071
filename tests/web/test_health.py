from web.context import runtime


def test_healthz_reports_db_and_redis(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["db"], body["redis"]) == ("ok", "ok", "ok")
    assert body["scheduler"] == "not running"


def test_healthz_fails_when_redis_is_down(make_app) -> None:
    # A port nobody listens on: the check must say so, not hang or pass.
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unhealthy"
    assert body["db"] == "ok"
    assert body["redis"].startswith("error: ConnectionError")


def test_healthz_fails_when_the_database_is_gone(make_app) -> None:
    app = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["db"].startswith("error:")


def test_scheduler_heartbeat_shows_on_healthz(app, client) -> None:
    import worker

    with app.app_context():
        worker.run_scheduler(rt=runtime(), once=True)
    assert client.get("/healthz").get_json()["scheduler"].startswith("seen ")


def test_metrics_need_no_login(app, client, cli) -> None:
    assert cli("contacts", "add", "9876543210", "9876543211").exit_code == 0
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'canvass_contacts{consent="unknown"} 2.0' in text
    assert 'canvass_queue_jobs{queue="high"} 0.0' in text
