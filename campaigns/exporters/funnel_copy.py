"""The funnel CSV's rows made by PostgreSQL: one ``COPY (SELECT ...) TO STDOUT`` for the lot.

Made in Python, a row costs ~10 us of one core (psycopg building its values, then their
cells); PostgreSQL writes the same CSV from one query on its own core while this side
only joins the lines, so a million rows take about the time of that query. The cell
rules it follows are the SQL twins in ``campaigns.exporters.cells``; the few answers
PostgreSQL cannot write as Python does (decimals, lists, objects, ...) come as JSON in a
last column and that row is rewritten here.

The query joins each side once: the funnel steps and the latest answers of the
campaign's recipients, turned into one row per recipient, are merged with the recipients
in id order, with no look-up per row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, String, case, func, not_, null, select
from sqlalchemy.orm import aliased

from bot.models import Answer, Contact, FlowSession, FunnelEvent
from campaigns.exporters import base
from campaigns.exporters.cells import answer_cell, answer_parts_sql, answer_sql, formula_safe_sql, iso_sql
from campaigns.models import Recipient
from ivr.models import Call

if TYPE_CHECKING:
    from campaigns.exporters.csv import FunnelCsv

COMMA_LF, CRLF = b",\n", b"\r\n"
# For this one query, in its transaction only: JIT compiling costs more than it saves here
# (~1 s); bigger sort and hash memory spills less to disk (a million rows still sort partly
# on disk); one parallel worker beside the backend shares the join, the sort and the cells
# (each of the two builds the funnel and answer tables, so more workers cost more than they
# give on two cores). Measured on bench.export: 1 worker vs none, three pairs of runs on a
# busy machine, 17-40 s vs 26-60 s.
SETTINGS = {"jit": "off", "work_mem": "64MB", "max_parallel_workers_per_gather": "1"}


def funnel_select(exporter: FunnelCsv) -> Select[Any]:
    """The rows of the CSV as PostgreSQL writes them, then the JSON of answers left to Python."""
    campaign_id = exporter.campaign.id

    def iso(column: Any) -> Any:
        return iso_sql(column, "postgresql")

    mine = aliased(Recipient, name="mine")
    columns: list[Any] = [
        Recipient.contact_id,
        func.nullif(Contact.phone, ""),
        formula_safe_sql(Contact.name),
        func.nullif(Recipient.channel, ""),
        Recipient.attempts,
        func.nullif(Recipient.status, ""),
        formula_safe_sql(func.coalesce(func.nullif(Recipient.error_code, ""), Recipient.skip_code)),
        formula_safe_sql(Recipient.error_msg),
        iso(Recipient.queued_at),
        iso(Recipient.sent_at),
        iso(Recipient.delivered_at),
        iso(Recipient.read_at),
        iso(FlowSession.replied_at),
        iso(case((FlowSession.end_reason == "completed", FlowSession.ended_at), else_=null())),
    ]
    stmt = select()
    if exporter.campaign.channel == "voice":
        # The recipient's last call: answered_by and call_duration_s (fixed words and a number),
        # and the node where the voter hung up (a flow author's name: the formula rule applies).
        hangup = case((FlowSession.end_reason == "call_ended", Call.last_node), else_=null())
        columns += [Call.answered_by, Call.duration_s, formula_safe_sql(hangup)]
        stmt = stmt.outerjoin_from(Recipient, Call, Call.id == Recipient.call_id)
    if exporter.steps:
        reached = (
            select(
                mine.id.label("rid"),
                *(
                    func.max(FunnelEvent.reached_at).filter(FunnelEvent.step == step).label(f"step{i}")
                    for i, step in enumerate(exporter.steps)
                ),
            )
            .join(mine, mine.session_id == FunnelEvent.session_id)
            .where(mine.campaign_id == campaign_id, FunnelEvent.step.in_(exporter.steps))
            .group_by(mine.id)
            .subquery("reached")
        )
        columns += [iso(reached.c[f"step{i}"]) for i in range(len(exporter.steps))]
        stmt = stmt.outerjoin_from(Recipient, reached, reached.c.rid == Recipient.id)
    extra: Any = null()
    if exporter.saves:
        # The latest answer of each name (a voter may have answered again).
        kind, scalar = answer_parts_sql(Answer.value)
        latest = (
            select(mine.id.label("rid"), Answer.name, Answer.value, kind.label("kind"), scalar.label("scalar"))
            .join(mine, mine.session_id == Answer.session_id)
            .where(mine.campaign_id == campaign_id, Answer.name.in_(exporter.saves))
            .distinct(mine.id, Answer.name)
            .order_by(mine.id, Answer.name, Answer.id.desc())
            .subquery("latest")
        )
        cell, plain = answer_sql(latest.c.kind, latest.c.scalar)
        given = (
            select(
                latest.c.rid,
                *(
                    func.max(cell).filter(latest.c.name == save).label(f"save{i}")
                    for i, save in enumerate(exporter.saves)
                ),
                func.json_object_agg(latest.c.name, latest.c.value).filter(not_(plain)).label("extra"),
            )
            .group_by(latest.c.rid)
            .subquery("given")
        )
        columns += [given.c[f"save{i}"] for i in range(len(exporter.saves))]
        extra = given.c.extra
        stmt = stmt.outerjoin_from(Recipient, given, given.c.rid == Recipient.id)
    return (
        stmt.add_columns(*columns, extra.cast(String))
        .join_from(Recipient, Contact, Contact.id == Recipient.contact_id)
        .outerjoin_from(Recipient, FlowSession, FlowSession.id == Recipient.session_id)
        .where(Recipient.campaign_id == campaign_id)
        .order_by(Recipient.id)
    )


def copied_pieces(exporter: FunnelCsv) -> Iterator[tuple[str, int]]:
    """The CSV's rows as text, a piece per ``base.CHUNK`` rows, with row counts: one COPY on PostgreSQL."""
    connection = exporter.db.connection()
    compiled = funnel_select(exporter).compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    pg = connection.connection.driver_connection
    encoding = pg.info.encoding
    answers_at = len(exporter.header()) - len(exporter.saves)
    with pg.cursor() as cursor:
        before = cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in SETTINGS)).fetchone()
        _configure(cursor, SETTINGS)
        with cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv)", compiled.params) as copy:
            while rows := list(islice(copy, base.CHUNK)):
                block = b"".join(rows)
                # A row ends with its last cell, empty unless Python has answers to write, and a
                # line feed. When the block's only line feeds are the rows' and each follows a
                # comma, its rows need only Python's line ends; else it goes row by row.
                if block.count(b"\n") == block.count(COMMA_LF) == len(rows):
                    block = block.replace(COMMA_LF, CRLF)
                else:
                    block = b"".join(_row(bytes(data), answers_at, exporter.saves, encoding) for data in rows)
                yield block.decode(encoding), len(rows)
        # Not after a failure or an early stop: the settings end with the transaction anyway.
        _configure(cursor, dict(zip(SETTINGS, before or (), strict=True)))


def _configure(cursor: Any, settings: dict[str, str]) -> None:
    """Set PostgreSQL settings for the rest of the transaction."""
    for name, value in settings.items():
        cursor.execute("SELECT set_config(%s, %s, true)", (name, value))


def _row(data: bytes, answers_at: int, saves: list[str], encoding: str) -> bytes:
    """A COPY row as Python writes it: answers left to Python (JSON in its last cell) written by Python."""
    if data.endswith(COMMA_LF):
        return data[:-2] + CRLF
    cells = next(csv.reader([data.decode(encoding)[:-1]]))
    left: dict[str, Any] = json.loads(cells.pop())
    for i, save in enumerate(saves):
        if save in left:
            cells[answers_at + i] = answer_cell(left[save])
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue().encode(encoding)
