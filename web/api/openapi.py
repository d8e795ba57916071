"""The OpenAPI 3 description served at /api/v1/openapi.json, put together from one module per area."""

from __future__ import annotations

from typing import Any

from web.api import (
    openapi_campaigns,
    openapi_contacts,
    openapi_flows,
    openapi_inbox,
    openapi_templates,
    openapi_users,
)
from web.api.openapi_parts import SCHEMAS

AREAS = (openapi_contacts, openapi_campaigns, openapi_templates, openapi_flows, openapi_inbox, openapi_users)

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "canvass API",
        "version": "1",
        "description": "Bearer tokens from `canvass users token EMAIL`. Lists take `limit` (1-500) and `cursor` "
        "and answer `next_cursor` (null on the last page). Every error is "
        '`{"error": code, "message": ..., "field": ...}`.',
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {**SCHEMAS, **{name: s for area in AREAS for name, s in area.SCHEMAS.items()}},
    },
    "paths": {
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3", "content": {"application/json": {"schema": {}}}}},
            }
        },
        **{path: ops for area in AREAS for path, ops in area.PATHS.items()},
    },
}
