"""The OpenAPI paths of contacts, their import, timeline and one-off messages, and segments."""

from __future__ import annotations

from typing import Any

from web.api.openapi_parts import (
    INT,
    OPT_TEXT,
    PAGE,
    TEXT,
    TIME,
    errors,
    json_body,
    listing,
    nullable,
    obj,
    path_id,
    path_text,
    query,
    ref,
    resp,
)

CONTACT = ref("Contact")
CID = path_id("contact_id")
SCALAR = {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
SEGMENT = {
    "type": "object",
    "nullable": True,
    "description": "a segment: tag, field, consent, activity conditions with all / any / not (null or {}: everyone)",
}

SCHEMAS: dict[str, Any] = {
    "Contact": obj(
        {
            "id": INT,
            "phone": {"type": "string", "description": "E.164"},
            "phone_kind": TEXT,
            "name": OPT_TEXT,
            "language": OPT_TEXT,
            "timezone": OPT_TEXT,
            "tags": {"type": "array", "items": TEXT},
            "valued_tags": {"type": "object", "additionalProperties": TEXT},
            "consent": {"type": "string", "enum": ["unknown", "opted_in", "opted_out"]},
            "fields": {"type": "object", "additionalProperties": SCALAR},
            "created_at": TIME,
        }
    ),
    "TimelineEntry": {
        "type": "object",
        "required": ["kind", "at", "id"],
        "description": "kind message (direction, channel, body, status...), funnel, consent, handoff or call",
        "properties": {"kind": TEXT, "at": nullable(TIME), "id": INT},
    },
    "ImportJob": obj(
        {
            "job_id": TEXT,
            "state": {"type": "string", "enum": ["queued", "started", "finished", "failed"]},
            "progress": {"type": "number", "minimum": 0, "maximum": 1, "description": "share of the file read"},
            "report": nullable(obj({"imported": INT, "updated": INT, "rejected": INT})),
            "error": OPT_TEXT,
            "rejects_url": OPT_TEXT,
        }
    ),
}

CHANGES = {
    "type": "object",
    "description": "JSON merge-patch: left out = unchanged; tags replaces the plain tags; valued_tags and fields "
    "merge, null removes a name",
    "properties": {
        "name": OPT_TEXT,
        "language": OPT_TEXT,
        "timezone": OPT_TEXT,
        "tags": nullable({"type": "array", "items": TEXT}),
        "valued_tags": nullable(
            {"type": "object", "additionalProperties": nullable({"oneOf": [{"type": "string"}, {"type": "number"}]})}
        ),
        "fields": nullable({"type": "object", "additionalProperties": nullable(SCALAR)}),
    },
}
ADDED = obj(
    {
        "created": {"type": "array", "items": CONTACT},
        "updated": {"type": "array", "items": CONTACT},
        "rejected": {"type": "array", "items": obj({"number": TEXT, "reason": TEXT})},
    }
)
QUEUED = obj({"message_id": INT, "status": TEXT, "channel": TEXT})

PATHS: dict[str, Any] = {
    "/me": {
        "get": {
            "summary": "The token's user",
            "responses": {
                "200": resp("The user", obj({"email": TEXT, "role": TEXT})),
                **errors(),
            },
        }
    },
    "/contacts": {
        "get": {
            "summary": "Contacts, newest first; `phone` looks one up in any format",
            "parameters": [query("phone", TEXT), *PAGE],
            "responses": {"200": resp("A page of contacts", listing("contacts", CONTACT)), **errors("422")},
        },
        "post": {
            "summary": "Add up to 50 numbers with tags (operator or above)",
            "requestBody": json_body(
                obj(
                    {
                        "numbers": {"type": "array", "minItems": 1, "maxItems": 50, "items": TEXT},
                        "tags": {"type": "array", "items": TEXT},
                    },
                    required=["numbers"],
                )
            ),
            "responses": {
                "200": resp("Existing contacts tagged", ADDED),
                "201": resp("Contacts created", ADDED),
                **errors("422"),
            },
        },
    },
    "/contacts/{contact_id}": {
        "get": {
            "summary": "One contact",
            "parameters": [CID],
            "responses": {"200": resp("The contact", CONTACT), **errors("404")},
        },
        "patch": {
            "summary": "Change name, language, timezone, tags, valued tags or fields (operator or above)",
            "parameters": [CID],
            "requestBody": json_body(CHANGES),
            "responses": {"200": resp("The contact", CONTACT), **errors("404", "422")},
        },
        "delete": {
            "summary": "Delete a contact nothing ever happened with (409 with has_history: erase it instead)",
            "parameters": [CID],
            "responses": {"204": resp("Deleted"), **errors("404", "409")},
        },
    },
    "/contacts/{contact_id}/erase": {
        "post": {
            "summary": "Erase message bodies, name, language, fields and tags now; statuses, times, funnel steps "
            "and answers stay; the number stays, opted out",
            "parameters": [CID],
            "responses": {
                "200": resp("Erased", obj({"contact": CONTACT, "messages_erased": INT})),
                **errors("404"),
            },
        }
    },
    "/contacts/{contact_id}/timeline": {
        "get": {
            "summary": "A voter's messages (with statuses), funnel steps, consent changes, handoffs, newest first",
            "parameters": [CID, *PAGE],
            "responses": {
                "200": resp(
                    "A page of the timeline",
                    obj(
                        {
                            "contact_id": INT,
                            "timeline": {"type": "array", "items": ref("TimelineEntry")},
                            "next_cursor": OPT_TEXT,
                        }
                    ),
                ),
                **errors("404", "422"),
            },
        }
    },
    "/contacts/{contact_id}/messages": {
        "post": {
            "summary": "Send one message to one voter through the queue (operator or above)",
            "parameters": [CID],
            "requestBody": json_body(
                obj(
                    {
                        "text": {"type": "string", "minLength": 1},
                        "channel": {"type": "string", "enum": ["whatsapp", "sms"]},
                    }
                )
            ),
            "responses": {"201": resp("Queued", QUEUED), **errors("404", "422")},
        }
    },
    "/contacts/imports": {
        "post": {
            "summary": "Import a CSV or TXT file in the background (operator or above); follow the job's URL",
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": obj(
                            {
                                "file": {"type": "string", "format": "binary"},
                                "tags": {"type": "string", "description": "comma-separated, such as drive=nov,youth"},
                            },
                            required=["file"],
                        )
                    }
                },
            },
            "responses": {
                "202": resp("Queued", obj({"job_id": TEXT, "state": TEXT, "url": TEXT})),
                **errors("422"),
            },
        }
    },
    "/contacts/imports/{job_id}": {
        "get": {
            "summary": "An import's state, progress and report (imported / updated / rejected)",
            "parameters": [path_text("job_id")],
            "responses": {"200": resp("The import", ref("ImportJob")), **errors("404")},
        }
    },
    "/contacts/imports/{job_id}/rejects.csv": {
        "get": {
            "summary": "The rejected rows: line, reason and the original cells",
            "parameters": [path_text("job_id")],
            "responses": {"200": resp("CSV", TEXT, "text/csv"), **errors("404")},
        }
    },
    "/segments/count": {
        "post": {
            "summary": "Count the contacts a segment selects (reads only)",
            "requestBody": json_body(obj({"segment": SEGMENT}, required=[])),
            "responses": {"200": resp("The count", obj({"count": INT})), **errors("422")},
        }
    },
    "/segments/preview": {
        "post": {
            "summary": "The count and the first contacts (by id) a segment selects (reads only)",
            "requestBody": json_body(
                obj({"segment": SEGMENT, "limit": {"type": "integer", "minimum": 1, "maximum": 100}}, required=[])
            ),
            "responses": {
                "200": resp("The preview", obj({"count": INT, "contacts": {"type": "array", "items": CONTACT}})),
                **errors("422"),
            },
        }
    },
}
