"""Files canvass serves to providers: template headers now, call audio later.

Twilio fetches media from a URL, so a file given to canvass (an image for a WhatsApp
template header, a recorded prompt) is copied under ``var/media/`` with a name made of
its content's hash, and served read-only at ``{PUBLIC_BASE_URL}/media/<name>``. The same
file is stored once however often it is given; a name can never point elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

NAME = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,5}$")
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "mp4": "video/mp4",
    "3gp": "video/3gpp",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
EXTENSIONS = {ctype: ext for ext, ctype in CONTENT_TYPES.items()}


class MediaStore:
    """The folder of served files (``var/media``)."""

    def __init__(self, var_dir: Path) -> None:
        self.root = Path(var_dir) / "media"

    def put(self, source: Path, content_type: str) -> str:
        """Copy ``source`` in (once); return its name. ``content_type`` picks the extension."""
        ext = EXTENSIONS.get(content_type)
        if ext is None:
            raise ValueError(f"canvass does not serve {content_type!r} files")
        digest = hashlib.sha256()
        with source.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        name = f"{digest.hexdigest()}.{ext}"
        target = self.root / name
        if not target.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            # Copy to a temporary name first: a reader never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            os.close(fd)
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
            except BaseException:
                # A full disk or an interrupt must not leave the partial copy behind.
                Path(tmp).unlink(missing_ok=True)
                raise
        return name

    def path(self, name: str) -> Path | None:
        """The stored file of ``name``, or None (also for names that are not ours)."""
        if not NAME.match(name):
            return None
        found = self.root / name
        return found if found.is_file() else None

    @staticmethod
    def content_type(name: str) -> str:
        """What to serve ``name`` as."""
        return CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")

    @staticmethod
    def url(public_base_url: str, name: str) -> str:
        """Where Twilio fetches ``name``."""
        return f"{public_base_url.rstrip('/')}/media/{name}"
