"""The OpenAPI 3 description served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}
    return body


def _path_id(name: str) -> dict[str, Any]:
    """A whole-number id in the path."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


_ERRORS = {
    "401": _resp("Missing or invalid Bearer token", _ERROR),
    "403": _resp("The token's user lacks the role", _ERROR),
    "422": _resp("Invalid input; `field` names it", _ERROR),
}

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "canvass API", "version": "1"},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                },
            },
            "Contact": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "phone": {"type": "string", "description": "E.164"},
                    "phone_kind": {"type": "string"},
                    "name": {"type": "string", "nullable": True},
                    "language": {"type": "string", "nullable": True},
                    "timezone": {"type": "string", "nullable": True},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "valued_tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "consent": {"type": "string", "enum": ["unknown", "opted_in", "opted_out"]},
                    "fields": {"type": "object"},
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
    "paths": {
        "/me": {"get": {"summary": "The token's user", "responses": {"200": _resp("The user"), "401": _ERRORS["401"]}}},
        "/contacts": {
            "get": {
                "summary": "List contacts, newest first",
                "parameters": [
                    {"name": "phone", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    {"name": "before", "in": "query", "schema": {"type": "integer"}},
                ],
                "responses": {
                    "200": _resp(
                        "Contacts",
                        {
                            "type": "object",
                            "properties": {
                                "contacts": {"type": "array", "items": {"$ref": "#/components/schemas/Contact"}}
                            },
                        },
                    ),
                    **{k: _ERRORS[k] for k in ("401", "422")},
                },
            },
            "post": {
                "summary": "Add up to 50 numbers (operator or above)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["numbers"],
                                "properties": {
                                    "numbers": {"type": "array", "maxItems": 50, "items": {"type": "string"}},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                },
                            }
                        }
                    },
                },
                "responses": {"200": _resp("Tagged existing contacts"), "201": _resp("Created contacts"), **_ERRORS},
            },
        },
        "/contacts/{contact_id}/timeline": {
            "get": {
                "summary": "A voter's messages (with statuses), funnel steps, consent changes and handoff cases",
                "parameters": [_path_id("contact_id")],
                "responses": {
                    "200": _resp("The timeline, oldest first"),
                    "401": _ERRORS["401"],
                    "404": _resp("No such contact", _ERROR),
                },
            }
        },
        "/contacts/{contact_id}/messages": {
            "post": {
                "summary": "Send one message to one voter (operator or above)",
                "parameters": [_path_id("contact_id")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["text", "channel"],
                                "properties": {
                                    "text": {"type": "string"},
                                    "channel": {"type": "string", "enum": ["whatsapp", "sms"]},
                                },
                            }
                        }
                    },
                },
                "responses": {"201": _resp("Queued"), **_ERRORS, "404": _resp("No such contact", _ERROR)},
            }
        },
        "/handoffs": {
            "get": {
                "summary": "Handoff cases (operator or above)",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["open", "closed"]}}
                ],
                "responses": {"200": _resp("The cases"), **_ERRORS},
            }
        },
        "/handoffs/{case_id}/reply": {
            "post": {
                "summary": "Send the voter a message as an agent",
                "parameters": [_path_id("case_id")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["text"],
                                "properties": {"text": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {"201": _resp("Queued"), **_ERRORS, "404": _resp("No such case", _ERROR)},
            }
        },
        "/handoffs/{case_id}/close": {
            "post": {
                "summary": "Close a case; the voter is available to flows and campaigns again",
                "parameters": [_path_id("case_id")],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"note": {"type": "string", "maxLength": 30}}}
                        }
                    }
                },
                "responses": {"200": _resp("Closed"), **_ERRORS, "404": _resp("No such case", _ERROR)},
            }
        },
        "/segments/count": {
            "post": {
                "summary": "Count the contacts a segment selects",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"segment": {"type": "object"}}}
                        }
                    },
                },
                "responses": {
                    "200": _resp("The count", {"type": "object", "properties": {"count": {"type": "integer"}}}),
                    **{k: _ERRORS[k] for k in ("401", "422")},
                },
            }
        },
    },
}

# Campaigns and templates have a module of their own (this one would pass 400 lines).
from web.api.openapi_campaigns import PATHS as CAMPAIGN_PATHS  # noqa: E402
from web.api.openapi_campaigns import SCHEMAS as CAMPAIGN_SCHEMAS  # noqa: E402

SPEC["paths"].update(CAMPAIGN_PATHS)
SPEC["components"]["schemas"].update(CAMPAIGN_SCHEMAS)
