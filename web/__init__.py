"""The web application: console, REST API, webhooks and the ``canvass`` CLI."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from flask import Flask
from werkzeug.routing import IntegerConverter

from bot.runtime import Runtime
from bot.settings import Settings


def create_app(config_overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app from the environment (and ``.env``); overrides win.

    Override keys are setting names (``DATABASE_URL`` or ``database_url``) or Flask
    config keys such as ``TESTING``.
    """
    overrides = dict(config_overrides or {})
    env = {k: v for k, v in dotenv_values(Path.cwd() / ".env").items() if v is not None}
    env.update(os.environ)
    settings = Settings.from_env(env, overrides)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="canvass_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookies_secure,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        WTF_CSRF_SSL_STRICT=settings.cookies_secure,
        MAX_CONTENT_LENGTH=110 * 1024 * 1024,
        JSON_SORT_KEYS=False,
        TESTING=settings.testing,
    )
    for key, value in overrides.items():
        if key.isupper() and key in app.config:
            app.config[key] = value

    # A row id in a URL fits what either database stores: a larger one is a 404, not an
    # overflow inside the driver.
    app.url_map.converters["int"] = RowId
    runtime = Runtime.from_settings(settings)
    app.extensions["canvass"] = runtime
    _logging(app, settings)

    from web import context, errors, inbound_lane, metrics, requestlog, voice_lane
    from web.api import bp as api_bp
    from web.auth import bp as auth_bp
    from web.auth.access import init_app as init_access
    from web.console import bp as console_bp
    from web.health import bp as health_bp
    from web.media import bp as media_bp
    from web.voice import init_app as init_voice
    from web.webhooks import bp as webhooks_bp

    requestlog.init_app(app)
    context.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    init_access(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(webhooks_bp)
    init_voice(app)
    app.register_blueprint(media_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    inbound_lane.init_app(app)
    voice_lane.init_app(app)
    return app


class RowId(IntegerConverter):
    """``<int:...>`` in every route: at most 18 digits, below what either database stores (2**63).

    Longer numbers do not match the route at all (a 404 for every method; a converter
    that refused them after matching would make werkzeug answer 405).
    """

    regex = r"\d{1,18}"


def _logging(app: Flask, settings: Settings) -> None:
    from bot.logs import configure
    from web.requestlog import RequestContext

    configure(settings.log_format, filters=[RequestContext()])
    app.logger.setLevel(logging.INFO)
