"""The OpenAPI paths of users and their API tokens (admins only)."""

from __future__ import annotations

from typing import Any

from web.api.openapi_parts import INT, OPT_TIME, PAGE, TEXT, errors, json_body, listing, obj, path_id, ref, resp

USER = ref("User")
UID = path_id("user_id")
ROLES = ["viewer", "operator", "editor", "admin"]

SCHEMAS: dict[str, Any] = {
    "User": obj(
        {
            "id": INT,
            "email": TEXT,
            "role": {"type": "string", "enum": ROLES},
            "active": {"type": "boolean"},
            "created_at": OPT_TIME,
            "last_login_at": OPT_TIME,
        }
    ),
}

PATHS: dict[str, Any] = {
    "/users": {
        "get": {
            "summary": "Users (admin)",
            "parameters": PAGE,
            "responses": {"200": resp("A page of users", listing("users", USER)), **errors("422")},
        },
        "post": {
            "summary": "Create a user (admin); without a password the user has API tokens only",
            "requestBody": json_body(
                obj(
                    {
                        "email": TEXT,
                        "role": {"type": "string", "enum": ROLES},
                        "password": {"type": "string", "minLength": 12, "nullable": True},
                    },
                    required=["email", "role"],
                )
            ),
            "responses": {"201": resp("The user", USER), **errors("422")},
        },
    },
    "/users/{user_id}": {
        "patch": {
            "summary": "Change a user's role, or deactivate them (admin; not oneself)",
            "parameters": [UID],
            "requestBody": json_body(
                obj({"role": {"type": "string", "enum": ROLES}, "active": {"type": "boolean"}}, required=[])
            ),
            "responses": {"200": resp("The user", USER), **errors("404", "409", "422")},
        }
    },
    "/users/{user_id}/tokens": {
        "post": {
            "summary": "Issue a Bearer token for the user (admin); shown this once",
            "parameters": [UID],
            "responses": {"201": resp("The token", obj({"user_id": INT, "token": TEXT})), **errors("404", "409")},
        }
    },
}
