"""The OpenAPI paths of campaigns (merged into ``web.api.openapi.SPEC``)."""

from __future__ import annotations

from typing import Any

from web.api.openapi_parts import (
    ERRORS,
    INT,
    OPT_INT,
    OPT_TEXT,
    OPT_TIME,
    PAGE,
    TEXT,
    json_body,
    listing,
    nullable,
    obj,
    path_id,
    query,
    ref,
    resp,
)

STATUSES = ["draft", "ready", "scheduled", "active", "paused", "completed", "ended", "aborted"]
CID = path_id("campaign_id")
CAMPAIGN = ref("Campaign")
STATS = ref("CampaignStats")
PLAN = obj(
    {
        "total": INT,
        "pending": INT,
        "skipped": {"type": "object", "additionalProperties": INT},
        "batches": INT,
    }
)
LAUNCHED = obj({"campaign": CAMPAIGN, "plan": PLAN})
FAIL = {
    **{k: ERRORS[k] for k in ("401", "403", "422")},
    "404": resp("No such campaign", ERRORS["404"]["content"]["application/json"]["schema"]),
    "409": resp("The campaign's status does not allow it", ERRORS["409"]["content"]["application/json"]["schema"]),
}


def _move(summary: str) -> dict[str, Any]:
    return {
        "post": {"summary": summary, "parameters": [CID], "responses": {"200": resp("The campaign", CAMPAIGN), **FAIL}}
    }


SCHEMAS: dict[str, Any] = {
    "Campaign": obj(
        {
            "id": INT,
            "name": TEXT,
            "description": OPT_TEXT,
            "status": {"type": "string", "enum": STATUSES},
            "problems": {"type": "array", "items": TEXT, "description": "why it is not ready"},
            "test": {"type": "boolean"},
            "test_numbers": {"type": "array", "items": TEXT},
            "parent_id": OPT_INT,
            "channel": {"type": "string", "enum": ["whatsapp", "sms", "voice"]},
            "sender_id": OPT_INT,
            "template_id": OPT_INT,
            "language": OPT_TEXT,
            "template_version_id": OPT_INT,
            "variables": nullable({"type": "object"}),
            "audience": nullable({"type": "object"}),
            "flow": OPT_TEXT,
            "flow_version": OPT_INT,
            "flow_node": OPT_TEXT,
            "pace_per_s": nullable({"type": "number"}),
            "scheduled_at": OPT_TIME,
            "created_at": OPT_TIME,
            "launched_at": OPT_TIME,
            "completed_at": OPT_TIME,
            "ended_at": OPT_TIME,
            "aborted_at": OPT_TIME,
            "planned": nullable({"type": "integer"}),
            "budget": nullable(
                {
                    "type": "object",
                    "description": "the caps as the spec writes them: a total and one per channel, each optional "
                    '(decimal amounts as text), e.g. {"total": "1000", "whatsapp": "600", "sms": "400"}',
                    "additionalProperties": TEXT,
                }
            ),
        }
    ),
    "Estimate": obj(
        {
            "total": {"type": "string", "description": "a decimal amount"},
            "currency": OPT_TEXT,
            "by_country_code": {"type": "object", "additionalProperties": obj({"voters": INT, "cost": TEXT})},
            "unpriced": INT,
        }
    ),
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
            "spend": {
                "type": "object",
                "description": "what the messages the provider took cost (amounts as text), in total and for each "
                "channel the campaign sends on (its own, its fallback's); budget: the most it may spend in all (the "
                "total, or the channels' caps together when lower; null: no cap), and each channel's own cap",
                "properties": {
                    "spent": TEXT,
                    "budget": OPT_TEXT,
                    "currency": OPT_TEXT,
                    "by_channel": {
                        "type": "object",
                        "additionalProperties": obj({"spent": TEXT, "budget": OPT_TEXT}),
                    },
                },
            },
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
            "parameters": [query("status", {"type": "string", "enum": STATUSES}), *PAGE],
            "responses": {"200": resp("A page of campaigns", listing("campaigns", CAMPAIGN)), **FAIL},
        },
        "post": {
            "summary": "Create a campaign from a spec (operator or above); ready when nothing is missing",
            "requestBody": json_body(
                {"type": "object", "description": "the campaign spec format (campaigns/README.md)"},
                yaml=True,
                example={
                    "name": "Turnout pledge by SMS",
                    "channel": "sms",
                    "sender": "+919999900002",
                    "template": "turnout_sms",
                    "variables": {"1": {"contact": "name", "default": "friend"}},
                    "audience": {"tag": "volunteer"},
                    "flow": {"name": "turnout_reminder", "at": "rsvp"},
                    "pace": "600/h",
                },
            ),
            "responses": {"201": resp("The campaign", CAMPAIGN), **FAIL},
        },
    },
    "/campaigns/{campaign_id}": {
        "get": {
            "summary": "A campaign with its numbers",
            "parameters": [CID],
            "responses": {
                "200": resp("The campaign", {"allOf": [CAMPAIGN, obj({"stats": STATS})]}),
                **FAIL,
            },
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
            "responses": {"200": resp("The estimate", ref("Estimate")), **FAIL},
        }
    },
    "/campaigns/{campaign_id}/launch": {
        "post": {
            "summary": "Launch now: plan recipients, queue the sends",
            "parameters": [CID],
            "responses": {
                "200": resp("Launched", LAUNCHED),
                **FAIL,
            },
        }
    },
    "/campaigns/{campaign_id}/test": {
        "post": {
            "summary": "Send to test numbers only, as a test campaign of its own",
            "parameters": [CID],
            "requestBody": json_body(obj({"numbers": {"type": "array", "minItems": 1, "items": TEXT}})),
            "responses": {"201": resp("The test campaign, launched", LAUNCHED), **FAIL},
        }
    },
    "/campaigns/{campaign_id}/schedule": {
        "post": {
            "summary": "Launch at a time (ISO-8601 with its offset)",
            "parameters": [CID],
            "requestBody": json_body(obj({"at": {"type": "string", "format": "date-time"}})),
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
                "200": resp("CSV", TEXT, "text/csv"),
                **FAIL,
            },
        }
    },
    "/campaigns/{campaign_id}/export.zip": {
        "get": {
            "summary": "The answers as a FLOIP Flow Results package",
            "parameters": [CID],
            "responses": {
                "200": resp("zip", {"type": "string", "format": "binary"}, "application/zip"),
                **FAIL,
            },
        }
    },
}
