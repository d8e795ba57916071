"""The flows pages: stored flows and their versions, the graph, and the YAML editor.

Everyone signed in reads flows; editors and admins upload or edit them. A save is checked
by the engine exactly as ``canvass flows validate`` checks a file (safe YAML, every
problem at once, with its line and column). A flow with problems is not stored and the
text comes back as typed, next to a numbered listing with the problem lines marked; a
valid one becomes a new immutable version (``bot.flowstore``), so sessions already
running keep the version they started on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from bot.engine import Flow, FlowInvalid, Loc, Problem, load_text, yamlsafe
from bot.flowlibrary import FlowLibrary, clear_cache
from bot.flowstore import latest_version, store
from bot.models import FlowVersion
from ivr.models import VoiceLine
from web.auth.access import requires
from web.cli.flows import stored_subflow_problems
from web.console import bp
from web.console.flowgraph import render_svg
from web.context import db_session
from web.errors import NotFound
from web.models import Role

# A flow is a few kilobytes; 500 nodes of long texts stay well under this.
MAX_SOURCE = 256 * 1024


@dataclasses.dataclass
class Listed:
    """A stored flow on the list: its newest version, parsed when it still parses."""

    row: FlowVersion
    versions: int
    flow: Flow | None


@bp.get("/flows")
@requires(Role.VIEWER)
def flows() -> Any:
    """Every stored flow with its newest version, channels and number of versions."""
    s = db_session()
    newest = (
        select(FlowVersion.name, func.max(FlowVersion.version).label("version"), func.count().label("versions"))
        .group_by(FlowVersion.name)
        .subquery()
    )
    rows = s.execute(
        select(FlowVersion, newest.c.versions)
        .join(newest, (FlowVersion.name == newest.c.name) & (FlowVersion.version == newest.c.version))
        .order_by(FlowVersion.name)
    ).all()
    library = FlowLibrary(s)
    listed = [Listed(row, count, _parsed(library, row)) for row, count in rows]
    return render_template("console/flows.html", flows=listed)


@bp.get("/flows/<name>")
@requires(Role.VIEWER)
def flow(name: str) -> Any:
    """One flow: a version's graph, funnel, channels and source, and every version."""
    s = db_session()
    versions = s.scalars(select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version.desc())).all()
    if not versions:
        raise NotFound(f"There is no stored flow named {name!r}.")
    wanted = request.args.get("version", type=int) or versions[0].version
    row = next((v for v in versions if v.version == wanted), None)
    if row is None:
        raise NotFound(f"{name} has no version {wanted}; it has versions 1 to {versions[0].version}.")
    problems: list[Problem] = []
    try:
        parsed = load_text(row.source, f"{name}@v{row.version}")
    except FlowInvalid as exc:
        # Stored while the engine accepted it, refused by today's engine: show why.
        parsed, problems = None, exc.problems
    return render_template(
        "console/flow.html",
        row=row,
        versions=versions,
        flow=parsed,
        graph=render_svg(parsed) if parsed else None,
        problems=problems,
        lines=_numbered(row.source, problems),
        simulator=_simulator(parsed) if parsed else None,
    )


@bp.route("/flows/new", methods=["GET", "POST"])
@requires(Role.EDITOR)
def flow_new() -> Any:
    """Upload or type a new flow."""
    return _editor(None)


@bp.route("/flows/<name>/edit", methods=["GET", "POST"])
@requires(Role.EDITOR)
def flow_edit(name: str) -> Any:
    """Edit a flow's YAML (starting from its newest version, or ``?version=N``)."""
    return _editor(name)


def _editor(name: str | None) -> Any:
    s = db_session()
    base: FlowVersion | None = None
    if name is not None:
        base = latest_version(s, name)
        wanted = request.args.get("version", type=int)
        if base is not None and wanted and wanted != base.version:
            base = s.scalar(select(FlowVersion).where(FlowVersion.name == name, FlowVersion.version == wanted))
        if base is None:
            raise NotFound(f"There is no stored flow named {name!r}" + (f" with version {wanted}." if wanted else "."))
    if request.method == "GET":
        return _edit_page(name, base, base.source if base else "")
    source, refusal = _submitted()
    if refusal:
        return _edit_page(name, base, source, refusal=refusal), 422
    where = f"{name or 'new-flow'}.yaml"
    try:
        parsed = load_text(source, where)
    except FlowInvalid as exc:
        return _edit_page(name, base, source, problems=exc.problems), 422
    problems = _name_problems(parsed, name, source) + stored_subflow_problems(s, parsed)
    if problems:
        return _edit_page(name, base, source, problems=problems), 422
    stored = store(s, parsed, source, by=g.user.email)
    s.commit()
    clear_cache()  # this process sees the new version at once; the others within seconds
    if stored.changed:
        flash(
            f"Stored {stored.name} v{stored.version}. Sessions already running keep the version they started on.",
            "info",
        )
    else:
        flash(f"Nothing changed: {stored.name} v{stored.version} has the same text, so no version was added.", "info")
    return redirect(url_for("console.flow", name=stored.name, version=stored.version))


def _edit_page(
    name: str | None,
    base: FlowVersion | None,
    source: str,
    *,
    problems: list[Problem] | None = None,
    refusal: str | None = None,
) -> str:
    return render_template(
        "console/flow_edit.html",
        name=name,
        base=base,
        source=source,
        problems=problems or [],
        refusal=refusal,
        lines=_numbered(source, problems or []) if problems else [],
        max_kb=MAX_SOURCE // 1024,
    )


def _submitted() -> tuple[str, str | None]:
    """The text of the form (an uploaded file wins over the text box), and why it was refused."""
    upload = request.files.get("file")
    typed = request.form.get("source", "")
    if upload is not None and upload.filename:
        raw = upload.stream.read(MAX_SOURCE + 1)
        if len(raw) > MAX_SOURCE:
            return (
                typed,
                f"{upload.filename} is over {MAX_SOURCE // 1024} KB, the limit for a flow; split it into subflows.",
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            return typed, f"{upload.filename} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})."
    else:
        text = typed
        size = len(text.encode("utf-8"))
        if size > MAX_SOURCE:
            kb = size / 1024
            return (
                text,
                f"The text is {kb:,.0f} KB; a flow may be at most {MAX_SOURCE // 1024} KB. Split it into subflows.",
            )
    # Browsers send text boxes with CRLF line ends; stored flows use LF, as files read from disk do.
    return text.replace("\r\n", "\n").replace("\r", "\n"), None


def _name_problems(parsed: Flow, name: str | None, source: str) -> list[Problem]:
    """An edit must keep the flow's name; a new flow must not take an existing one."""
    data, _ = yamlsafe.load(source, parsed.path)
    at = data.value_loc("flow") if isinstance(data, yamlsafe.LocDict) else Loc(1, 1)
    if name is not None and parsed.name != name:
        message = f"flow: this page edits {name}, but the text names {parsed.name!r}; keep the name, or add a new flow"
        return [Problem(parsed.path, at, message)]
    if name is None:
        existing = latest_version(db_session(), parsed.name)
        if existing is not None:
            message = f"flow: {parsed.name!r} exists already (v{existing.version}); edit it instead, or pick a new name"
            return [Problem(parsed.path, at, message)]
    return []


def _parsed(library: FlowLibrary, row: FlowVersion) -> Flow | None:
    try:
        found = library.get(row.name, row.version)
    except FlowInvalid:
        return None
    return found[0] if found else None


@dataclasses.dataclass
class Line:
    """One line of a numbered listing, with the problems found on it."""

    number: int
    text: str
    problems: list[Problem]


def _numbered(source: str, problems: list[Problem]) -> list[Line]:
    """The source as numbered lines; a problem past the last line sits on the last one."""
    lines = [Line(i, text, []) for i, text in enumerate(source.split("\n"), start=1)]
    for problem in problems:
        lines[min(max(problem.loc.line, 1), len(lines)) - 1].problems.append(problem)
    return lines


def _simulator(parsed: Flow) -> dict[str, Any]:
    """How to try the flow in the sandbox: a keyword to send, and the voice lines that answer with it."""
    keywords: list[str] = []
    for words in parsed.triggers.get("keywords", {}).values():
        keywords += [w for w in words if w not in keywords]
    lines = []
    if "voice" in parsed.channels:
        lines = (
            db_session()
            .scalars(select(VoiceLine.address).where(VoiceLine.flow_name == parsed.name).order_by(VoiceLine.address))
            .all()
        )
    return {
        "messaging": [c for c in parsed.channels if c != "voice"],
        "voice": "voice" in parsed.channels,
        "keywords": keywords,
        "default": bool(parsed.triggers.get("default")),
        "lines": list(lines),
    }
