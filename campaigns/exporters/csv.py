"""The per-voter funnel CSV: one row per recipient (its final attempt).

Columns: ``contact_id, phone, name, channel, attempts, status, error_code, error_msg,
queued_at, sent_at, delivered_at, read_at, replied_at, completed_at``, then for voice
``answered_by, call_duration_s, hangup_node``, then ``funnel:<step>`` per funnel step of the flow (in
its declaration order) and ``answer:<save>`` per saved answer. Times are ISO-8601 UTC
with ``Z``. The phone is plain E.164; any other cell starting with ``= + - @``, tab or
CR gets a leading ``'`` so that a spreadsheet shows it instead of running it. A skipped
voter's ``error_code`` is the skip code.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, Any

from campaigns.exporters.base import Exporter, register
from campaigns.exporters.cells import RISKY, answer_cell
from campaigns.exporters.funnel_copy import copied_pieces

COLUMNS = [
    "contact_id",
    "phone",
    "name",
    "channel",
    "attempts",
    "status",
    "error_code",
    "error_msg",
    "queued_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "replied_at",
    "completed_at",
]
# A call campaign's: who answered the last call, how long it lasted, and where in the flow
# the voter hung up (empty when the flow ended the call itself).
VOICE = ["answered_by", "call_duration_s", "hangup_node"]
# Databases that write the rows themselves (campaigns.exporters.funnel_copy); the others' rows
# are written here, cell by cell.
WRITE_THEMSELVES = {"postgresql"}


@register
class FunnelCsv(Exporter):
    """The funnel export as CSV."""

    name = "csv"
    media_type = "text/csv; charset=utf-8"

    def header(self) -> list[str]:
        """The header row."""
        voice = VOICE if self.campaign.channel == "voice" else []
        return COLUMNS + voice + [f"funnel:{s}" for s in self.steps] + [f"answer:{a}" for a in self.saves]

    def write(self, out: IO[str]) -> int:
        """Write the CSV to a text stream; return the number of rows."""
        n = 0
        for text, rows in self.pieces():
            out.write(text)
            n += rows
        return n

    def pieces(self) -> Iterator[tuple[str, int]]:
        """The CSV as text, the header first and then a piece per chunk, with row counts (for streaming)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(self.header())
        yield _drain(buffer), 0
        if self.db.get_bind().dialect.name in WRITE_THEMSELVES:
            yield from copied_pieces(self)
            return
        steps, saves = self.steps, self.saves
        voice = self.campaign.channel == "voice"
        # The cells of a voter without a session (None is written as an empty cell).
        unreached = [None] * len(steps) + [""] * len(saves)
        nothing: dict[str, Any] = {}
        for chunk in self.chunks():
            lines = []
            # By position: a million rows pay for every attribute looked up by name.
            for row in chunk.recipients:
                # ``times``: the six timestamps, then a call campaign's answered_by, call_duration_s, hangup_node.
                contact_id, phone, name, channel, attempts, status, error, error_msg, *times, session, rid = row
                # formula_safe, inline (None is written as an empty cell either way).
                if name and name[0] in RISKY:
                    name = "'" + name
                if error and error[0] in RISKY:
                    error = "'" + error
                if error_msg and error_msg[0] in RISKY:
                    error_msg = "'" + error_msg
                if voice and times[-1] and times[-1][0] in RISKY:
                    times[-1] = "'" + times[-1]  # the hang-up node: a flow author's name
                line = [contact_id, phone, name, channel, attempts, status, error, error_msg, *times]
                if session is None:
                    line += unreached
                else:
                    reached = chunk.funnel.get(rid, nothing)
                    given = chunk.answers.get(rid, nothing)
                    line += map(reached.get, steps)
                    line += map(answer_cell, map(given.get, saves))
                lines.append(line)
            writer.writerows(lines)
            yield _drain(buffer), len(lines)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
