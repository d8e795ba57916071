"""Building blocks of the OpenAPI document: responses, errors, parameters, pagination.

Each area describes its paths and schemas in a module of its own (``openapi_contacts``,
``openapi_flows``, ...); ``web.api.openapi`` puts them together.
"""

from __future__ import annotations

from typing import Any

MAX_ID = 10**18 - 1  # the largest row id a URL takes (web.RowId); a longer number is a 404


def ref(name: str) -> dict[str, str]:
    """A reference to a schema in ``components``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or null."""
    return {**schema, "nullable": True}


TEXT = {"type": "string"}
INT = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}
OPT_TEXT = nullable(TEXT)
OPT_INT = nullable(INT)
OPT_TIME = nullable(TIME)
ERROR = ref("Error")


def resp(description: str, schema: dict[str, Any] | None = None, media: str = "application/json") -> dict[str, Any]:
    """A response, with a body of ``media`` when ``schema`` is given."""
    body: dict[str, Any] = {"description": description}
    if schema is not None:
        body["content"] = {media: {"schema": schema}}
    return body


ERRORS = {
    "401": resp("Missing or invalid Bearer token", ERROR),
    "403": resp("The token's user lacks the role", ERROR),
    "404": resp("No such thing (or a path that does not exist); `field` names the parameter", ERROR),
    "409": resp("Its present state does not allow this", ERROR),
    "422": resp("Invalid input; `field` names it", ERROR),
}


def errors(*codes: str) -> dict[str, Any]:
    """The error responses of an operation: 401 and 403 always, then ``codes``."""
    return {code: ERRORS[code] for code in ("401", "403", *codes)}


def obj(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    """An object schema; every property is required unless ``required`` says otherwise."""
    return {"type": "object", "required": list(properties) if required is None else required, "properties": properties}


def json_body(
    schema: dict[str, Any], *, required: bool = True, yaml: bool = False, example: Any = None
) -> dict[str, Any]:
    """A request body in JSON (and, where said, the same document in YAML)."""
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if example is not None:
        content["application/json"]["example"] = example
    if yaml:
        content["application/yaml"] = {"schema": {"type": "string"}}
    return {"required": required, "content": content}


def path_id(name: str) -> dict[str, Any]:
    """A row id in the path (the example is the first row: tests reach real rows with it)."""
    schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    return {"name": name, "in": "path", "required": True, "schema": schema, "example": 1}


def path_text(name: str, example: str | None = None) -> dict[str, Any]:
    """A name in the path."""
    found: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    if example is not None:
        found["example"] = example
    return found


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An optional query parameter."""
    found = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        found["description"] = description
    return found


PAGE = [
    query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (default 50)"),
    query("cursor", TEXT, "the `next_cursor` of the page before"),
]


def listing(key: str, item: dict[str, Any]) -> dict[str, Any]:
    """A page of a list: the items under ``key`` and the next page's cursor (null on the last)."""
    return obj({key: {"type": "array", "items": item}, "next_cursor": OPT_TEXT})


PROBLEM = obj(
    {
        "path": TEXT,
        "line": INT,
        "col": INT,
        "message": TEXT,
        "text": {"type": "string", "description": "path:line:col: message"},
    }
)

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error has this shape; `error` is a code such as invalid, not_found, forbidden",
        "required": ["error", "message"],
        "properties": {
            "error": TEXT,
            "message": TEXT,
            "field": {"type": "string", "description": "the input at fault"},
            "problems": {"type": "array", "items": ref("Problem"), "description": "a refused flow's problems"},
        },
    },
    "Problem": PROBLEM,
}
