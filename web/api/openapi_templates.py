"""The OpenAPI paths of message templates."""

from __future__ import annotations

from typing import Any

from web.api.openapi_parts import (
    INT,
    OPT_TEXT,
    OPT_TIME,
    PAGE,
    TEXT,
    errors,
    json_body,
    listing,
    nullable,
    obj,
    path_text,
    query,
    ref,
    resp,
)

NAME = path_text("name", "booth_reminder")
TEMPLATE = ref("Template")
VERDICTS = obj({"versions": {"type": "array", "items": obj({"language": TEXT, "version": INT, "status": TEXT})}})

SCHEMAS: dict[str, Any] = {
    "TemplateVersion": obj(
        {
            "id": INT,
            "language": TEXT,
            "version": INT,
            "body": TEXT,
            "samples": nullable({"type": "object"}),
            "buttons": nullable({"type": "array", "items": {}}),
            "media": nullable(obj({"url": TEXT, "kind": OPT_TEXT})),
            "status": TEXT,
            "status_reason": OPT_TEXT,
            "content_sid": OPT_TEXT,
            "in_use": {"type": "boolean"},
            "notes": {"type": "array", "items": TEXT},
            "created_at": OPT_TIME,
        }
    ),
    "Template": obj(
        {
            "id": INT,
            "name": TEXT,
            "channel": TEXT,
            "category": OPT_TEXT,
            "description": OPT_TEXT,
            "versions": {"type": "array", "items": ref("TemplateVersion")},
        }
    ),
}

PATHS: dict[str, Any] = {
    "/templates": {
        "get": {
            "summary": "Templates by name with their language versions",
            "parameters": [query("category", TEXT), *PAGE],
            "responses": {"200": resp("A page of templates", listing("templates", TEMPLATE)), **errors("422")},
        },
        "post": {
            "summary": "Create or update a template from the template file format (editor or above)",
            "requestBody": json_body(
                {"type": "object", "description": "the template file format (campaigns/README.md)"},
                yaml=True,
                example={
                    "template": "turnout_sms",
                    "channel": "sms",
                    "category": "reminder",
                    "languages": {"en": {"body": "Hi {{1}}, polling day is 20 Nov. Will you vote? Reply 1 yes, 2 no."}},
                },
            ),
            "responses": {
                "200": resp("Updated", TEMPLATE),
                "201": resp("Created", TEMPLATE),
                **errors("422"),
            },
        },
    },
    "/templates/{name}": {
        "get": {
            "summary": "One template",
            "parameters": [NAME],
            "responses": {"200": resp("The template", TEMPLATE), **errors("404")},
        }
    },
    "/templates/{name}/submit": {
        "post": {
            "summary": "Submit draft versions for WhatsApp's approval (editor or above)",
            "parameters": [NAME],
            "requestBody": json_body(obj({"language": OPT_TEXT}, required=[]), required=False),
            "responses": {"200": resp("Each version's status", VERDICTS), **errors("404", "422")},
        }
    },
    "/templates/{name}/refresh": {
        "post": {
            "summary": "Read WhatsApp's verdict on submitted versions (editor or above)",
            "parameters": [NAME],
            "responses": {"200": resp("Each version's status", VERDICTS), **errors("404", "422")},
        }
    },
}
