"""Campaign exports as HTTP downloads, shared by the REST API and the console.

Both stream: the CSV is written chunk by chunk as the exporter reads the campaign's rows,
so memory stays flat whatever the campaign's size.
"""

from __future__ import annotations

import tempfile
from typing import Any

from flask import Response, stream_with_context

from campaigns.exporters import REGISTRY as EXPORTERS
from campaigns.models import Campaign
from web.context import db_session, runtime


def csv_download(campaign_id: int) -> Response:
    """The per-voter funnel CSV of a campaign, streamed."""
    rt = runtime()

    def generate() -> Any:
        # A session of its own: the request's is closed before the stream ends.
        with rt.db.session() as s:
            campaign = s.get(Campaign, campaign_id)
            for text, _ in EXPORTERS["csv"](s, campaign).pieces():  # type: ignore[arg-type, attr-defined]
                yield text

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'},
    )


def floip_download(campaign: Campaign) -> Response:
    """The campaign's answers as a FLOIP Flow Results package (zip), streamed from a spool file."""
    # A zip is written whole before it can be read: into a temporary file, then streamed.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the stream ends
    EXPORTERS["floip"](db_session(), campaign).write(spool)
    spool.seek(0)

    def generate() -> Any:
        with spool:
            while chunk := spool.read(64 * 1024):
                yield chunk

    return Response(
        generate(),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign.id}-floip.zip"'},
    )
