"""The OpenAPI paths of bot flows."""

from __future__ import annotations

from typing import Any

from web.api.openapi_parts import (
    INT,
    OPT_TEXT,
    OPT_TIME,
    PAGE,
    TEXT,
    errors,
    listing,
    nullable,
    obj,
    path_id,
    path_text,
    query,
    ref,
    resp,
)

NAME = path_text("name", "booth_locator")
TEXTS = {"type": "array", "items": TEXT}
VERSION = {
    "name": TEXT,
    "version": INT,
    "checksum": TEXT,
    "path": OPT_TEXT,
    "created_by": OPT_TEXT,
    "created_at": OPT_TIME,
}
PROBLEMS = {"type": "array", "items": ref("Problem")}
SOURCE = {
    "required": True,
    "content": {
        "application/json": {
            "schema": obj(
                {"source": {"type": "string", "description": "the flow's YAML"}, "path": TEXT}, required=["source"]
            ),
            "example": {
                "source": "flow: hello\nstart: hi\nnodes:\n  hi:\n    say: Hello {{ contact.name }}\n    end: true\n",
                "path": "flows/hello.yaml",
            },
        },
        "application/yaml": {"schema": {"type": "string"}},
    },
}
LABEL = query("path", TEXT, "with a YAML body: the file name problems are reported at (default upload.yaml)")

SCHEMAS: dict[str, Any] = {
    "FlowDeclared": obj(
        {"name": TEXT, "description": TEXT, "language": TEXT, "channels": TEXTS, "nodes": INT, "funnel": TEXTS}
    ),
    "FlowSummary": obj(
        {**VERSION, "versions": INT, "valid": {"type": "boolean"}, "description": OPT_TEXT, "channels": TEXTS}
    ),
    "FlowVersion": obj(VERSION),
    "FlowVersionDetail": obj({**VERSION, "source": TEXT, "flow": nullable(ref("FlowDeclared")), "problems": PROBLEMS}),
}

PATHS: dict[str, Any] = {
    "/flows": {
        "get": {
            "summary": "Stored flows by name with their newest version",
            "parameters": PAGE,
            "responses": {"200": resp("A page of flows", listing("flows", ref("FlowSummary"))), **errors("422")},
        },
        "post": {
            "summary": "Store a flow's YAML as its next version (editor or above); 422 lists every problem "
            "as path:line:col",
            "parameters": [LABEL],
            "requestBody": SOURCE,
            "responses": {
                **{
                    code: resp(
                        description,
                        obj(
                            {"name": TEXT, "version": INT, "changed": {"type": "boolean"}, "flow": ref("FlowDeclared")}
                        ),
                    )
                    for code, description in (("200", "Unchanged: no version added"), ("201", "Stored"))
                },
                **errors("422"),
            },
        },
    },
    "/flows/validate": {
        "post": {
            "summary": "Check a flow's YAML without storing it (reads only)",
            "parameters": [LABEL],
            "requestBody": SOURCE,
            "responses": {
                "200": resp(
                    "The verdict",
                    obj({"valid": {"type": "boolean"}, "flow": nullable(ref("FlowDeclared")), "problems": PROBLEMS}),
                ),
                **errors("422"),
            },
        }
    },
    "/flows/{name}": {
        "get": {
            "summary": "A flow's versions, newest first",
            "parameters": [NAME, *PAGE],
            "responses": {
                "200": resp(
                    "A page of versions",
                    obj(
                        {
                            "name": TEXT,
                            "versions": {"type": "array", "items": ref("FlowVersion")},
                            "next_cursor": OPT_TEXT,
                        }
                    ),
                ),
                **errors("404", "422"),
            },
        }
    },
    "/flows/{name}/versions/{version}": {
        "get": {
            "summary": "One version: its source, what it declares, its problems under today's engine",
            "parameters": [NAME, path_id("version")],
            "responses": {"200": resp("The version", ref("FlowVersionDetail")), **errors("404")},
        }
    },
}
