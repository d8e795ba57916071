"""The one place where exceptions become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from campaigns.lifecycle import TransitionRefused
from campaigns.operations import CampaignError

log = logging.getLogger(__name__)


class AppError(Exception):
    """An error with an HTTP status and a message safe to show to the caller."""

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # More for the caller beside the message (a flow's problems, one by one).
        self.extra = extra or {}
        if code is not None:
            self.code = code


class BadInput(AppError):
    """The request's data is wrong; ``field`` names where."""

    status = 422
    code = "invalid"


class NotFound(AppError):
    """The thing asked for does not exist."""

    status = 404
    code = "not_found"


class Conflict(AppError):
    """The thing's present state does not allow this (a campaign's status, a contact's history)."""

    status = 409
    code = "conflict"


class Forbidden(AppError):
    """The user's role does not allow this."""

    status = 403
    code = "forbidden"


class Unauthorized(AppError):
    """No valid login or token."""

    status = 401
    code = "unauthorized"


class TooManyAttempts(AppError):
    """Login throttled; ``retry_after`` is in seconds."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def wants_json() -> bool:
    """API and webhook callers get JSON; people in a browser get a page."""
    if request.path.startswith(("/api/", "/webhooks/")):
        return True
    return request.accept_mimetypes.best == "application/json"


def _render(
    status: int, code: str, message: str, field: str | None = None, extra: dict[str, Any] | None = None
) -> Response:
    if wants_json():
        body: dict[str, object] = {"error": code, "message": message}
        if field:
            body["field"] = field
        body.update(extra or {})
        response = jsonify(body)
    else:
        response = Response(render_template("error.html", status=status, message=message), mimetype="text/html")
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(AppError)
    def app_error(exc: AppError) -> Response:
        response = _render(exc.status, exc.code, exc.message, exc.field, exc.extra)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized) and wants_json():
            response.headers["WWW-Authenticate"] = 'Bearer realm="canvass"'
        return response

    @app.errorhandler(TransitionRefused)
    def campaign_status(exc: TransitionRefused) -> Response:
        # The campaign's status does not allow it: a conflict with its current state.
        return _render(409, "campaign_status", str(exc), "status")

    @app.errorhandler(CampaignError)
    def campaign_error(exc: CampaignError) -> Response:
        return _render(422, "invalid", str(exc), "campaign")

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Response:
        return _render(
            400,
            "csrf",
            f"The form expired or was not sent from canvass ({exc.description}). Reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _render(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _render(500, "internal", "Something went wrong on our side; it has been logged.")
