"""Segments: build one from rows of conditions, see how many voters it selects, save it.

Reading is a GET (the page without JavaScript counts by submitting the builder as a
query string; ``segment_builder.js`` asks ``/segments/count`` as you type); saving,
renaming and deleting are POSTs for operators and above. A saved segment is used by the
contacts filter and by campaign specs (``audience: {segment: NAME}``), so one that a
campaign waiting for launch names cannot be renamed or deleted.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot import saved_segments
from bot.models import Contact, Segment
from bot.segments import SegmentError, condition
from campaigns.audiences import campaigns_naming
from web.auth.access import requires
from web.console import bp
from web.console.segment_form import VOCAB, Builder, builder_from_form, builder_from_spec, describe
from web.context import db_session
from web.errors import NotFound
from web.models import Role

PREVIEW = 10
BUILDER_KEYS = ("match", "mode", "row_kind")


def measure(s: Session, spec: Any) -> tuple[int, list[Contact]]:
    """How many contacts ``spec`` selects, and the newest ``PREVIEW`` of them (with tags)."""
    where = condition(s, spec)
    total = s.scalar(select(func.count()).select_from(Contact).where(where)) or 0
    first = s.scalars(
        select(Contact).where(where).options(selectinload(Contact.tags)).order_by(Contact.id.desc()).limit(PREVIEW)
    )
    return total, list(first)


def _evaluate(s: Session, builder: Builder) -> dict[str, Any]:
    """The builder's spec with its count and preview, or the error that names the row."""
    try:
        spec = builder.spec()
        total, preview = measure(s, spec)
    except SegmentError as exc:
        return {"error": str(exc), "field": exc.path}
    return {"spec": spec, "count": total, "preview": preview, "description": describe(spec)}


def _render(s: Session, builder: Builder, segment: Segment | None, name: str, status: int = 200) -> Any:
    result = _evaluate(s, builder)
    return (
        render_template(
            "console/segment.html",
            builder=builder.with_blank_rows() if builder.json_text is None else builder,
            segment=segment,
            name=name,
            result=result,
            vocab=VOCAB,
        ),
        status,
    )


def _from_request(fallback: Any) -> Builder:
    source = request.form if request.method == "POST" else request.args
    if any(k in source for k in BUILDER_KEYS):
        return builder_from_form(source)
    return builder_from_spec(fallback)


@bp.get("/segments")
@requires(Role.VIEWER)
def segments() -> Any:
    """Saved segments, with what each selects in words."""
    rows = saved_segments.listing(db_session())
    return render_template("console/segments.html", segments=rows, describe=describe)


@bp.get("/segments/count")
@requires(Role.VIEWER)
def segment_preview() -> Any:
    """The builder's live count: JSON with the count, the spec and the first contacts."""
    result = _evaluate(db_session(), builder_from_form(request.args))
    if "error" in result:
        return jsonify({"error": "invalid", "message": result["error"], "field": result["field"]}), 422
    result["preview"] = [
        {
            "id": c.id,
            "phone": c.phone,
            "name": c.name,
            "tags": [t.name + (f"={t.value}" if t.value else "") for t in c.tags],
        }
        for c in result["preview"]
    ]
    return jsonify(result)


@bp.get("/segments/new")
@requires(Role.VIEWER)
def segment_new() -> Any:
    """The builder for a new segment (``?row_kind=...`` counts what it was given)."""
    return _render(db_session(), _from_request({}), None, request.args.get("name", "").strip())


@bp.post("/segments/new")
@requires(Role.OPERATOR)
def segment_create() -> Any:
    """Save a new segment."""
    return _save(db_session(), _from_request({}), None, request.form.get("name", "").strip())


@bp.get("/segments/<int:segment_id>")
@requires(Role.VIEWER)
def segment(segment_id: int) -> Any:
    """A saved segment in the builder."""
    s = db_session()
    found = _segment(s, segment_id)
    return _render(s, _from_request(found.spec), found, request.args.get("name", found.name).strip())


@bp.post("/segments/<int:segment_id>")
@requires(Role.OPERATOR)
def segment_update(segment_id: int) -> Any:
    """Change a saved segment's name or definition."""
    s = db_session()
    found = _segment(s, segment_id)
    return _save(s, _from_request(found.spec), found, request.form.get("name", "").strip())


def _segment(s: Session, segment_id: int) -> Segment:
    found = s.get(Segment, segment_id)
    if found is None:
        raise NotFound(f"There is no segment {segment_id}.")
    return found


def _save(s: Session, builder: Builder, found: Segment | None, name: str) -> Any:
    if request.form.get("action") in ("count", "add_group"):
        return _render(s, builder, found, name)  # the page without JavaScript, not saving yet
    try:
        spec = builder.spec()
    except SegmentError as exc:
        flash(f"Not saved: {exc}", "error")
        return _render(s, builder, found, name, 422)
    if found is not None and name != found.name and (waiting := campaigns_naming(s, found.name)):
        flash(f"Not saved. Name: campaigns waiting for launch use “{found.name}” ({_names(waiting)}).", "error")
        return _render(s, builder, found, name, 422)
    try:
        saved = saved_segments.save(s, name, spec, by=g.user.email, segment_id=found.id if found else None)
    except saved_segments.SavedSegmentError as exc:
        s.rollback()
        label = "Name" if exc.field == "name" else "Segment"
        flash(f"Not saved. {label}: {exc.message}", "error")
        return _render(s, builder, found, name, 422)
    s.commit()
    flash(f"Saved “{saved.name}”: {describe(saved.spec)}.", "info")
    return redirect(url_for("console.segment", segment_id=saved.id))


@bp.post("/segments/<int:segment_id>/delete")
@requires(Role.OPERATOR)
def segment_delete(segment_id: int) -> Any:
    """Delete a saved segment no campaign waiting for launch names."""
    s = db_session()
    found = _segment(s, segment_id)
    waiting = campaigns_naming(s, found.name)
    if waiting:
        flash(f"“{found.name}” is the audience of {_names(waiting)}: change their audience first.", "error")
        return redirect(url_for("console.segment", segment_id=segment_id))
    saved_segments.delete(s, segment_id)
    s.commit()
    flash(f"Deleted “{found.name}”.", "info")
    return redirect(url_for("console.segments"))


def _names(campaigns: list[Any]) -> str:
    return ", ".join(f"#{c.id} {c.name}" for c in campaigns[:5]) + (" …" if len(campaigns) > 5 else "")
