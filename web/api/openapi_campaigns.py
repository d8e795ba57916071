"""The OpenAPI paths of campaigns and templates (merged into ``web.api.openapi.SPEC``)."""

from __future__ import annotations

from typing import Any

from web.api.openapi import _resp as resp

ERROR = {"$ref": "#/components/schemas/Error"}
STATUSES = ["draft", "ready", "scheduled", "active", "paused", "completed", "ended", "aborted"]


def json_body(schema: dict[str, Any], *, required: bool = True, yaml: bool = False) -> dict[str, Any]:
    """A request body in JSON (and, where said, the same in YAML)."""
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if yaml:
        content["application/yaml"] = {"schema": {"type": "string"}}
    return {"required": required, "content": content}


CID = {"name": "campaign_id", "in": "path", "required": True, "schema": {"type": "integer"}}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
CAMPAIGN = {"$ref": "#/components/schemas/Campaign"}
STATS = {"$ref": "#/components/schemas/CampaignStats"}
PLAN = {
    "type": "object",
    "properties": {
        "total": {"type": "integer"},
        "pending": {"type": "integer"},
        "skipped": {"type": "object", "additionalProperties": {"type": "integer"}},
        "batches": {"type": "integer"},
    },
}
FAIL = {
    "401": resp("Missing or invalid Bearer token", ERROR),
    "403": resp("The token's user lacks the role", ERROR),
    "404": resp("No such campaign", ERROR),
    "409": resp("The campaign's status does not allow it", ERROR),
    "422": resp("Invalid input, or the campaign is not complete; `field` names it", ERROR),
}


def _move(summary: str) -> dict[str, Any]:
    return {
        "post": {"summary": summary, "parameters": [CID], "responses": {"200": resp("The campaign", CAMPAIGN), **FAIL}}
    }


SCHEMAS: dict[str, Any] = {
    "Campaign": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            "problems": {"type": "array", "items": {"type": "string"}, "description": "why it is not ready"},
            "channel": {"type": "string", "enum": ["whatsapp", "sms", "voice"]},
            "test": {"type": "boolean"},
            "audience": {"type": "object"},
            "variables": {"type": "object"},
            "flow": {"type": "string", "nullable": True},
            "pace_per_s": {"type": "number"},
            "scheduled_at": {"type": "string", "format": "date-time", "nullable": True},
        },
    },
    "CampaignStats": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": STATUSES},
            "total": {"type": "integer"},
            "progress": {
                "type": "object",
                "properties": {k: {"type": "integer"} for k in ("pending", "completed", "failed", "skipped")},
            },
            "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
            "not_sent": {"type": "object"},
            "replied": {"type": "integer"},
            "rates": {"type": "object", "additionalProperties": {"type": "number"}},
            "spend": {"type": "object"},
            "eta": {"type": "object", "description": "finishes_at, deadline, late, warning"},
            "calls": {
                "type": "object",
                "description": "call campaigns only: calls placed, voters called and answered, machines, answer and "
                "completion rates, average duration, and per question (in flow order) heard / answered / hung up",
                "properties": {
                    **{k: {"type": "integer"} for k in ("calls", "voters_called", "voters_answered", "machines")},
                    "answer_rate": {"type": "number"},
                    "completion_rate": {"type": "number"},
                    "average_duration_s": {"type": "number", "nullable": True},
                    "questions": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/campaigns": {
        "get": {
            "summary": "Campaigns, newest first",
            "parameters": [{"name": "status", "in": "query", "schema": {"type": "string", "enum": STATUSES}}],
            "responses": {"200": resp("Campaigns"), **{k: FAIL[k] for k in ("401", "422")}},
        },
        "post": {
            "summary": "Create a campaign from a spec (operator or above); ready when nothing is missing",
            "requestBody": json_body({"type": "object", "description": "the campaign spec format"}, yaml=True),
            "responses": {"201": resp("The campaign", CAMPAIGN), **FAIL},
        },
    },
    "/campaigns/{campaign_id}": {
        "get": {
            "summary": "A campaign with its numbers",
            "parameters": [CID],
            "responses": {"200": resp("The campaign"), **FAIL},
        },
        "delete": {"summary": "Delete a draft", "parameters": [CID], "responses": {"204": resp("Deleted"), **FAIL}},
    },
    "/campaigns/{campaign_id}/stats": {
        "get": {
            "summary": "Counts by status and skip code, rates, not-sent reasons",
            "parameters": [CID],
            "responses": {"200": resp("The numbers", STATS), **FAIL},
        }
    },
    "/campaigns/{campaign_id}/estimate": {
        "get": {
            "summary": "What sending to the audience would cost, by country calling code",
            "parameters": [CID],
            "responses": {"200": resp("The estimate"), **FAIL},
        }
    },
    "/campaigns/{campaign_id}/launch": {
        "post": {
            "summary": "Launch now: plan recipients, queue the sends",
            "parameters": [CID],
            "responses": {
                "200": resp("Launched", {"type": "object", "properties": {"campaign": CAMPAIGN, "plan": PLAN}}),
                **FAIL,
            },
        }
    },
    "/campaigns/{campaign_id}/test": {
        "post": {
            "summary": "Send to test numbers only, as a test campaign of its own",
            "parameters": [CID],
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["numbers"],
                    "properties": {"numbers": {"type": "array", "items": {"type": "string"}}},
                }
            ),
            "responses": {"201": resp("The test campaign, launched"), **FAIL},
        }
    },
    "/campaigns/{campaign_id}/schedule": {
        "post": {
            "summary": "Launch at a time (ISO-8601 with its offset)",
            "parameters": [CID],
            "requestBody": json_body(
                {"type": "object", "required": ["at"], "properties": {"at": {"type": "string", "format": "date-time"}}}
            ),
            "responses": {"200": resp("Scheduled", CAMPAIGN), **FAIL},
        }
    },
    "/campaigns/{campaign_id}/unschedule": _move("Back to ready"),
    "/campaigns/{campaign_id}/pause": _move("Pause sending (within a second)"),
    "/campaigns/{campaign_id}/resume": _move("Resume sending"),
    "/campaigns/{campaign_id}/abort": _move("Stop for good; its voters are released"),
    "/campaigns/{campaign_id}/end": _move("End a completed campaign; its voters are released"),
    "/campaigns/{campaign_id}/clone": {
        "post": {
            "summary": "A new campaign with the same settings",
            "parameters": [CID],
            "responses": {"201": resp("The copy", CAMPAIGN), **FAIL},
        }
    },
    "/campaigns/{campaign_id}/export.csv": {
        "get": {
            "summary": "The per-voter funnel CSV (streamed)",
            "parameters": [CID],
            "responses": {
                "200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
                **FAIL,
            },
        }
    },
    "/campaigns/{campaign_id}/export.zip": {
        "get": {
            "summary": "The answers as a FLOIP Flow Results package",
            "parameters": [CID],
            "responses": {
                "200": {
                    "description": "zip",
                    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                },
                **FAIL,
            },
        }
    },
    "/templates": {
        "get": {
            "summary": "Templates with their language versions",
            "parameters": [{"name": "category", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": resp("Templates"), "401": FAIL["401"]},
        },
        "post": {
            "summary": "Create or update a template from the template format (editor or above)",
            "requestBody": json_body({"type": "object", "description": "the template file format"}, yaml=True),
            "responses": {"200": resp("Updated"), "201": resp("Created"), **FAIL},
        },
    },
    "/templates/{name}": {
        "get": {"summary": "One template", "parameters": [NAME], "responses": {"200": resp("The template"), **FAIL}}
    },
    "/templates/{name}/submit": {
        "post": {
            "summary": "Submit draft versions for WhatsApp's approval (editor or above)",
            "parameters": [NAME],
            "requestBody": json_body(
                {"type": "object", "properties": {"language": {"type": "string"}}}, required=False
            ),
            "responses": {"200": resp("Each version's status"), **FAIL},
        }
    },
    "/templates/{name}/refresh": {
        "post": {
            "summary": "Read WhatsApp's verdict",
            "parameters": [NAME],
            "responses": {"200": resp("Each version's status"), **FAIL},
        }
    },
}
