"""REST API: bot flows — the stored flows and their versions, upload a new version, validate.

An upload is checked exactly as ``canvass flows validate`` checks a file and as the
console's editor checks a save (safe YAML, every problem at once with its line and
column, subflows against the stored flows). A valid text becomes a new immutable version
(``bot.flowstore``); an unchanged one adds nothing; one with problems is refused with
each as ``path:line:col: message``.
"""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from sqlalchemy import func, select

from bot.engine import Flow, FlowInvalid, Problem, load_text
from bot.flowlibrary import FlowLibrary, clear_cache
from bot.flowstore import latest_version, store
from bot.models import FlowVersion
from web.api import bp, json_body, text_field
from web.api.campaigns import iso
from web.api.paging import cursor_arg, keyset, limit_arg, page
from web.auth.access import read_only, requires
from web.cli.flows import stored_subflow_problems
from web.console.flows import MAX_SOURCE
from web.context import db_session
from web.errors import BadInput, NotFound
from web.models import Role

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


def problem_json(p: Problem) -> dict[str, Any]:
    """One problem: where, what, and the ``path:line:col: message`` line the CLI prints."""
    return {"path": p.path, "line": p.loc.line, "col": p.loc.col, "message": p.message, "text": str(p)}


def flow_json(flow: Flow) -> dict[str, Any]:
    """What a parsed flow declares."""
    return {
        "name": flow.name,
        "description": flow.description,
        "language": flow.language,
        "channels": list(flow.channels),
        "nodes": len(flow.nodes),
        "funnel": list(flow.funnel),
    }


def version_json(row: FlowVersion) -> dict[str, Any]:
    """A stored version without its source."""
    return {
        "name": row.name,
        "version": row.version,
        "checksum": row.checksum,
        "path": row.path,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
    }


def _submitted() -> tuple[str, str]:
    """The flow's text and the path its problems are reported at."""
    if request.mimetype in YAML_TYPES:
        raw = request.get_data()
        label = request.args.get("path") or "upload.yaml"
        where = "body"
    else:
        body = json_body()
        raw = text_field(body, "source").encode("utf-8")
        label = text_field(body, "path", required=False) or "upload.yaml"
        where = "source"
    if len(raw) > MAX_SOURCE:
        raise BadInput(f"is {len(raw) // 1024} KB; a flow may be at most {MAX_SOURCE // 1024} KB", field=where)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"is not UTF-8 text (byte 0x{raw[exc.start]:02x})", field=where) from None
    # Stored flows use LF line ends, as files read from disk do.
    return text.replace("\r\n", "\n").replace("\r", "\n"), label[:500]


def _checked(source: str, label: str) -> tuple[Flow | None, list[Problem]]:
    try:
        flow = load_text(source, label)
    except FlowInvalid as exc:
        return None, exc.problems
    return flow, stored_subflow_problems(db_session(), flow)


def _refused(problems: list[Problem]) -> BadInput:
    return BadInput(
        "\n".join(str(p) for p in problems),
        field="source",
        code="invalid_flow",
        extra={"problems": [problem_json(p) for p in problems]},
    )


@bp.get("/flows")
@requires(Role.VIEWER)
def list_flows() -> Any:
    """Every stored flow by name, with its newest version and how many it has."""
    limit = limit_arg()
    s = db_session()
    newest = select(
        FlowVersion.name, func.max(FlowVersion.version).label("version"), func.count().label("versions")
    ).group_by(FlowVersion.name)
    if (after := cursor_arg()) is not None:
        newest = newest.where(FlowVersion.name > after)
    sub = newest.subquery()
    rows = s.execute(
        select(FlowVersion, sub.c.versions)
        .join(sub, (FlowVersion.name == sub.c.name) & (FlowVersion.version == sub.c.version))
        .order_by(FlowVersion.name)
        .limit(limit + 1)
    ).all()
    shown, cursor = page(rows, limit, lambda r: r[0].name)
    library = FlowLibrary(s)
    flows = []
    for row, versions in shown:
        try:
            found = library.get(row.name, row.version)
        except FlowInvalid:
            found = None  # stored while the engine accepted it; today's engine refuses it
        flows.append({**version_json(row), "versions": versions, "valid": found is not None, **_declared(found)})
    return jsonify({"flows": flows, "next_cursor": cursor})


def _declared(found: tuple[Flow, int] | None) -> dict[str, Any]:
    if found is None:
        return {"description": None, "channels": []}
    return {"description": found[0].description, "channels": list(found[0].channels)}


@bp.get("/flows/<name>")
@requires(Role.VIEWER)
def flow_versions(name: str) -> Any:
    """A flow's versions, newest first."""
    if latest_version(db_session(), name) is None:
        raise NotFound(f"no stored flow named {name!r}", field="name")
    shown, cursor = keyset(select(FlowVersion).where(FlowVersion.name == name), FlowVersion.version, descending=True)
    return jsonify({"name": name, "versions": [version_json(r) for r in shown], "next_cursor": cursor})


@bp.get("/flows/<name>/versions/<int:version>")
@requires(Role.VIEWER)
def flow_version(name: str, version: int) -> Any:
    """One version: its YAML source, what it declares, and its problems under today's engine."""
    row = db_session().scalar(select(FlowVersion).where(FlowVersion.name == name, FlowVersion.version == version))
    if row is None:
        raise NotFound(f"no version {version} of a stored flow named {name!r}", field="version")
    flow, problems = None, []
    try:
        flow = load_text(row.source, f"{name}@v{version}")
    except FlowInvalid as exc:
        problems = exc.problems
    return jsonify(
        {
            **version_json(row),
            "source": row.source,
            "flow": flow_json(flow) if flow else None,
            "problems": [problem_json(p) for p in problems],
        }
    )


@bp.post("/flows")
@requires(Role.EDITOR)
def upload_flow() -> Any:
    """Store a flow's YAML as its next version (201), or nothing when unchanged (200); 422 lists the problems."""
    source, label = _submitted()
    flow, problems = _checked(source, label)
    if problems or flow is None:
        raise _refused(problems)
    s = db_session()
    stored = store(s, flow, source, path=label, by=g.user.email)
    s.commit()
    clear_cache()  # this process sees the new version at once; the others within seconds
    body = {"name": stored.name, "version": stored.version, "changed": stored.changed, "flow": flow_json(flow)}
    return jsonify(body), 201 if stored.changed else 200


@bp.post("/flows/validate")
@requires(Role.VIEWER)
@read_only
def validate_flow() -> Any:
    """Check a flow's YAML without storing it: ``valid`` and every problem."""
    source, label = _submitted()
    flow, problems = _checked(source, label)
    return jsonify(
        {
            "valid": not problems and flow is not None,
            "flow": flow_json(flow) if flow else None,
            "problems": [problem_json(p) for p in problems],
        }
    )
