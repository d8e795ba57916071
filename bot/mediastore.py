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
# A name staff give a file so flows can say ``play: media/welcome_hi.mp3``: letters,
# digits, ``_ - .`` and sub-folders, ending in an extension; never ``..``.
PATH_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-./]*\.[A-Za-z0-9]{1,5}$")
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
        """The stored file of ``name`` (a content name or a given name), or None."""
        if not NAME.match(name):
            name = self.named(name) or ""
            if not NAME.match(name):
                return None
        found = self.root / name
        return found if found.is_file() else None

    def name_as(self, given: str, name: str) -> str:
        """Let ``given`` (``welcome_hi.mp3``, ``media/`` prefix optional) point at the stored ``name``; return it.

        Raises:
            ValueError: ``given`` is not a usable name, or ``name`` is not a stored file.
        """
        given = plain_name(given)
        if not PATH_NAME.match(given) or ".." in given.split("/") or "//" in given:
            raise ValueError(
                f"{given!r} is not a usable name: letters, digits, _ - . and / only, ending in an extension"
            )
        if not NAME.match(name) or not (self.root / name).is_file():
            raise ValueError(f"{name!r} is not a stored file")
        pointer = self.root / "names" / given
        pointer.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=pointer.parent, prefix=".incoming-")
        with os.fdopen(fd, "w") as fh:
            fh.write(name)
        os.replace(tmp, pointer)  # a name moved to a new recording is never half-written
        return given

    def named(self, given: str) -> str | None:
        """The content name a given name points at, or None."""
        given = plain_name(given)
        if not PATH_NAME.match(given) or ".." in given.split("/"):
            return None
        pointer = self.root / "names" / given
        return pointer.read_text().strip() if pointer.is_file() else None

    def names(self) -> dict[str, str]:
        """Every given name and the content name it points at, sorted by given name."""
        folder = self.root / "names"
        if not folder.is_dir():
            return {}
        found = {
            str(p.relative_to(folder)): p.read_text().strip()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".incoming-")
        }
        return dict(sorted(found.items()))

    def content_type(self, name: str) -> str:
        """What to serve ``name`` as: by the stored file's extension (a given name may say .mp3 of a WAV)."""
        stored = name if NAME.match(name) else (self.named(name) or name)
        return CONTENT_TYPES.get(stored.rsplit(".", 1)[-1], "application/octet-stream")

    @staticmethod
    def url(public_base_url: str, name: str) -> str:
        """Where Twilio fetches ``name``."""
        return f"{public_base_url.rstrip('/')}/media/{name}"

    @staticmethod
    def absolute(public_base_url: str, source: str) -> str:
        """A flow's ``play:`` source as Twilio fetches it: a URL as given, a path under ``/media/``.

        ``welcome_hi.mp3`` and ``media/welcome_hi.mp3`` both mean the file named so in the
        store (``canvass audio upload FILE --name welcome_hi.mp3``).
        """
        if source.startswith(("http://", "https://")) or not public_base_url:
            return source
        return MediaStore.url(public_base_url, plain_name(source))


def plain_name(given: str) -> str:
    """A given name without the ``media/`` a flow's ``play:`` may start it with."""
    given = given.strip().lstrip("/")
    return given[len("media/") :] if given.startswith("media/") else given
