"""The per-voter funnel CSV: one row per recipient (its final attempt).

Columns: ``contact_id, phone, name, channel, attempts, status, error_code, error_msg,
queued_at, sent_at, delivered_at, read_at, replied_at, completed_at``, then for voice
``answered_by, call_duration_s``, then ``funnel:<step>`` per funnel step of the flow (in
its declaration order) and ``answer:<save>`` per saved answer. Times are ISO-8601 UTC
with ``Z``. The phone is plain E.164; any other cell starting with ``= + - @``, tab or
CR gets a leading ``'`` so that a spreadsheet shows it instead of running it. A skipped
voter's ``error_code`` is the skip code.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import IO, Any

from bot.spreadsheet import formula_safe
from campaigns.exporters.base import Exporter, iso, register

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
VOICE = ["answered_by", "call_duration_s"]


def answer_cell(value: Any) -> str:
    """An answer as one cell: text as it is, anything structured as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return formula_safe(value)
    if isinstance(value, bool | int | float):
        return str(value)
    return formula_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


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
        for text, rows in self.chunks():
            out.write(text)
            n += rows
        return n

    def chunks(self) -> Iterator[tuple[str, int]]:
        """The CSV as pieces of text (header first, then a piece per chunk of rows) and their row counts."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(self.header())
        yield _drain(buffer), 0
        voice = self.campaign.channel == "voice"
        steps, saves = self.steps, self.saves
        for chunk in self.rows():
            lines = []
            for row in chunk:
                r = row.recipient
                completed = r.ended_at if r.end_reason == "completed" else None
                line = [
                    r.contact_id,
                    r.phone,
                    formula_safe(r.name),
                    r.channel,
                    r.attempts,
                    r.status,
                    formula_safe(r.error_code or r.skip_code),
                    formula_safe(r.error_msg),
                    iso(r.queued_at),
                    iso(r.sent_at),
                    iso(r.delivered_at),
                    iso(r.read_at),
                    iso(r.replied_at),
                    iso(completed),
                ]
                if voice:
                    line += ["", ""]  # answered_by, call_duration_s: call campaigns fill them (IVR)
                line += [iso(row.funnel.get(s)) for s in steps]
                line += [answer_cell(row.answers.get(a)) for a in saves]
                lines.append(line)
            writer.writerows(lines)
            yield _drain(buffer), len(lines)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
