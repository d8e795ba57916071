"""A FLOIP Flow Results package of a campaign's answers (a zip: datapackage.json + CSV).

Flow Results (floip.gitbook.io/flow-results-specification) is the open format survey
and IVR tools exchange answers in: a Data Package whose one resource lists every
response (timestamp, row id, contact, session, question, response) and whose schema
describes the questions — here, the ``save`` names of the flow's ``ask`` nodes.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from typing import IO, Any

from sqlalchemy import select

from bot.db import utcnow
from bot.models import Answer
from campaigns.exporters.base import CHUNK, Exporter, register
from campaigns.exporters.cells import answer_cell, iso
from campaigns.models import Recipient

SPEC_VERSION = "1.0.0-rc1"
FIELDS = [
    ("timestamp", "datetime"),
    ("row_id", "string"),
    ("contact_id", "string"),
    ("session_id", "string"),
    ("question_id", "string"),
    ("response", "any"),
    ("response_metadata", "object"),
]


@register
class FloipPackage(Exporter):
    """Answers as a Flow Results package."""

    name = "floip"
    media_type = "application/zip"
    binary = True

    def questions(self) -> dict[str, Any]:
        """The schema's questions: one per save name, with its choices when it has some."""
        out: dict[str, Any] = {}
        for node in self.flow.nodes.values() if self.flow else ():
            save = getattr(node, "save", None)
            if not isinstance(save, str) or save in out:
                continue
            choices = [c["key"] for c in getattr(node, "choices", [])]
            expect = (getattr(node, "expect", ("text", None)) or ("text", None))[0]
            kind = "select_one" if choices else {"number": "numeric", "date": "date"}.get(expect, "open")
            out[save] = {
                "type": kind,
                "label": str(getattr(node, "prompt", "") or save),
                "type_options": {"choices": choices} if choices else {},
            }
        return out

    def write(self, out: IO[bytes]) -> int:
        """Write the zip to a binary stream; return the number of responses."""
        resource = f"campaign-{self.campaign.id}-responses"
        now = iso(utcnow())
        package = {
            "profile": "flow-results-package",
            "flow-results-specification": SPEC_VERSION,
            "name": f"canvass-campaign-{self.campaign.id}",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"canvass:campaign:{self.campaign.id}")),
            "title": self.campaign.name,
            "created": iso(self.campaign.created_at),
            "modified": now,
            "resources": [
                {
                    "name": resource,
                    "path": f"{resource}.csv",
                    "api-data-url": None,
                    "mediatype": "text/csv",
                    "encoding": "utf-8",
                    "schema": {
                        "language": "eng",
                        "fields": [{"name": n, "type": t} for n, t in FIELDS],
                        "questions": self.questions(),
                    },
                }
            ],
        }
        n = 0
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("datapackage.json", json.dumps(package, indent=2, ensure_ascii=False))
            with archive.open(f"{resource}.csv", "w", force_zip64=True) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                writer = csv.writer(text, lineterminator="\r\n")
                writer.writerow([n for n, _ in FIELDS])
                sessions = select(Recipient.session_id).where(
                    Recipient.campaign_id == self.campaign.id, Recipient.session_id.is_not(None)
                )
                stmt = (
                    select(
                        Answer.id, Answer.answered_at, Answer.contact_id, Answer.session_id, Answer.name, Answer.value
                    )
                    .where(Answer.session_id.in_(sessions))
                    .order_by(Answer.id)
                )
                for chunk in self.db.execute(stmt.execution_options(yield_per=CHUNK)).partitions():
                    writer.writerows(
                        [iso(a.answered_at), a.id, a.contact_id, a.session_id, a.name, answer_cell(a.value), "{}"]
                        for a in chunk
                    )
                    n += len(chunk)
                text.flush()
                text.detach()
        return n
