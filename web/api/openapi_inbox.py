"""The OpenAPI paths of the inbox: handoff cases."""

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
    obj,
    path_id,
    query,
    ref,
    resp,
)

CASE = ref("HandoffCase")
KID = path_id("case_id")
NOTE = {"type": "string", "maxLength": 30, "nullable": True}

SCHEMAS: dict[str, Any] = {
    "HandoffCase": obj(
        {
            "id": INT,
            "contact_id": INT,
            "status": {"type": "string", "enum": ["open", "closed"]},
            "note": OPT_TEXT,
            "reason": OPT_TEXT,
            "assignee_id": {"type": "integer", "nullable": True},
            "opened_at": OPT_TIME,
            "closed_at": OPT_TIME,
        }
    ),
}


def _case_action(summary: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [KID],
        "responses": {"200": resp("The case", CASE), **errors("404", "422")},
    }
    if body is not None:
        op["requestBody"] = body
    return {"post": op}


PATHS: dict[str, Any] = {
    "/handoffs": {
        "get": {
            "summary": "Handoff cases, oldest first: open ones, or closed; `mine=true` for the caller's",
            "parameters": [
                query("status", {"type": "string", "enum": ["open", "closed"]}),
                query("mine", {"type": "string", "enum": ["true", "false"]}),
                *PAGE,
            ],
            "responses": {"200": resp("A page of cases", listing("handoffs", CASE)), **errors("422")},
        }
    },
    "/handoffs/{case_id}": {
        "get": {
            "summary": "One case",
            "parameters": [KID],
            "responses": {"200": resp("The case", CASE), **errors("404")},
        }
    },
    "/handoffs/{case_id}/reply": {
        "post": {
            "summary": "Send the voter a message as an agent (operator or above)",
            "parameters": [KID],
            "requestBody": json_body(obj({"text": {"type": "string", "minLength": 1}})),
            "responses": {
                "201": resp("Queued", obj({"message_id": INT, "status": TEXT})),
                **errors("404", "422"),
            },
        }
    },
    "/handoffs/{case_id}/note": _case_action(
        "Write the case's note about the voter; empty or null clears it (operator or above)",
        json_body(obj({"note": NOTE})),
    ),
    "/handoffs/{case_id}/assign": _case_action("Take an open case as one's own (operator or above)"),
    "/handoffs/{case_id}/close": _case_action(
        "Close a case; the voter is available to flows and campaigns again (operator or above)",
        json_body(obj({"note": NOTE}, required=[]), required=False),
    ),
}
