"""Check the media header of a WhatsApp template: its type and its size.

WhatsApp accepts, in a template header:

======== ====================================================== =========
kind     content types                                          at most
======== ====================================================== =========
image    image/jpeg, image/png                                  5 MB
video    video/mp4, video/3gpp                                  16 MB
document application/pdf, text/plain, Word, Excel, PowerPoint   100 MB
======== ====================================================== =========

A megabyte here is 1,000,000 bytes: the stricter reading of Meta's limits, so that a
file that passes here is never refused by WhatsApp when the campaign is already sending.

``check_media`` trusts the declared content type (an upload form, a URL's headers);
``check_media_bytes`` looks at the file's first bytes instead, so that a PNG renamed
``.jpg`` is still an image and a program renamed ``.pdf`` is refused.
"""

from __future__ import annotations

import codecs
import dataclasses
from pathlib import PurePosixPath

from campaigns.errors import FieldError

MB = 1_000_000
LIMITS_MB = {"image": 5, "video": 16, "document": 100}
HEAD_BYTES = 512  # how much of the file check_media_bytes wants to see

_OFFICE = "application/vnd.openxmlformats-officedocument"
KINDS = {
    "image/jpeg": "image",
    "image/png": "image",
    "video/mp4": "video",
    "video/3gpp": "video",
    "application/pdf": "document",
    "text/plain": "document",
    "application/msword": "document",
    "application/vnd.ms-excel": "document",
    "application/vnd.ms-powerpoint": "document",
    f"{_OFFICE}.wordprocessingml.document": "document",
    f"{_OFFICE}.spreadsheetml.sheet": "document",
    f"{_OFFICE}.presentationml.presentation": "document",
}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "video/3gp": "video/3gpp"}
EXTENSIONS = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".mp4": "video/mp4",
    ".3gp": "video/3gpp",
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".docx": f"{_OFFICE}.wordprocessingml.document",
    ".xlsx": f"{_OFFICE}.spreadsheetml.sheet",
    ".pptx": f"{_OFFICE}.presentationml.presentation",
}
# Names that voters' phones would offer to run or install: never a header, whatever the bytes.
DANGEROUS = frozenset(
    [".apk", ".bat", ".cmd", ".com", ".dll", ".exe", ".jar", ".js", ".msi", ".ps1", ".scr", ".sh", ".vbs"]
)
ALLOWED = "JPEG or PNG images, MP4 or 3GPP videos, PDF, text or Office documents"

# First bytes of files that are not allowed, with what to tell the author.
REFUSED_MAGIC = {
    b"MZ": "a Windows program",
    b"\x7fELF": "a Linux program",
    b"#!": "a script",
    b"GIF8": "a GIF image (convert it to PNG)",
    b"Rar!": "a RAR archive",
    b"\x1f\x8b": "a gzip archive",
}
MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash", b"mmp4"}
)


class MediaError(FieldError):
    """The media is not allowed; ``field`` is content_type, size, filename or content."""


@dataclasses.dataclass(frozen=True)
class MediaFile:
    """What ``check_media_bytes`` found: the kind and the content type the bytes show."""

    kind: str
    content_type: str


def check_media(content_type: str | None, size_bytes: int, *, filename: str | None = None) -> str:
    """Return the kind (image, video, document) of a header file, or raise ``MediaError``.

    A missing or generic content type (``application/octet-stream``) is taken from the
    filename's extension; a filename whose extension says another kind is refused.
    """
    declared = _normalise(content_type)
    extension = _extension(filename)
    if not declared or declared == "application/octet-stream":
        declared = EXTENSIONS.get(extension, declared)
    if not declared:
        raise MediaError("content_type", f"no content type given; use {ALLOWED}")
    if declared not in KINDS:
        raise MediaError("content_type", f"{declared} cannot be a WhatsApp template header; use {ALLOWED}")
    kind = KINDS[declared]
    named = EXTENSIONS.get(extension)
    if named and KINDS[named] != kind:
        message = f"{filename!r} is named like a {KINDS[named]} file, but its content type is {declared} ({kind})"
        raise MediaError("filename", message)
    _check_name(filename)
    _check_size(kind, size_bytes)
    return kind


def check_media_bytes(head: bytes, size_bytes: int, *, filename: str | None = None) -> MediaFile:
    """Recognise a header file by its first bytes (``HEAD_BYTES`` of them) and check its size.

    The filename only settles what the bytes leave open (an Office file's exact format,
    a text file); a name that phones would run (``.exe``, ``.apk``, ...) is refused.
    """
    content_type = sniff(head, filename)
    _check_name(filename)
    kind = KINDS[content_type]
    _check_size(kind, size_bytes)
    return MediaFile(kind, content_type)


def sniff(head: bytes, filename: str | None = None) -> str:
    """Return the allowed content type that ``head`` shows, or raise ``MediaError("content", ...)``."""
    extension = _extension(filename)
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith((b"3gp", b"3g2")):
            return "video/3gpp"
        if brand in MP4_BRANDS:
            return "video/mp4"
        raise MediaError("content", f"an ISO media file of brand {brand.decode('latin-1')!r}; use MP4 (H.264) or 3GPP")
    if head.startswith(b"PK\x03\x04") and b"[Content_Types].xml" in head:
        if extension in (".docx", ".xlsx", ".pptx"):
            return EXTENSIONS[extension]
        raise MediaError("content", "an Office document: name it .docx, .xlsx or .pptx")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # Old Office formats (and .msi installers) share this container; only the name tells.
        if extension in (".doc", ".xls", ".ppt"):
            return EXTENSIONS[extension]
        raise MediaError("content", "an old-format Office file (or an installer): name it .doc, .xls or .ppt")
    for magic, what in REFUSED_MAGIC.items():
        if head.startswith(magic):
            raise MediaError("content", f"the file is {what}; use {ALLOWED}")
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"AVI "):
        raise MediaError("content", f"the file is {'a WebP image' if head[8:12] == b'WEBP' else 'an AVI video'}")
    if head.startswith(b"PK\x03\x04"):
        raise MediaError("content", "the file is a ZIP archive")
    if extension == ".txt" and _is_text(head):
        return "text/plain"
    raise MediaError("content", f"the file's first bytes are not those of {ALLOWED}")


def _normalise(content_type: str | None) -> str:
    bare = (content_type or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(bare, bare)


def _extension(filename: str | None) -> str:
    return PurePosixPath((filename or "").replace("\\", "/")).suffix.lower()


def _check_name(filename: str | None) -> None:
    if _extension(filename) in DANGEROUS:
        raise MediaError("filename", f"{filename!r}: phones would offer to run a {_extension(filename)} file")


def _check_size(kind: str, size_bytes: int) -> None:
    limit = LIMITS_MB[kind]
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < 0:
        raise MediaError("size", f"must be a number of bytes, got {size_bytes!r}")
    if size_bytes == 0:
        raise MediaError("size", f"the {kind} is empty")
    if size_bytes > limit * MB:
        shown = f"{size_bytes / MB:.1f} MB"
        if float(shown.split()[0]) <= limit:  # 16,000,001 bytes would read "16.0 MB"
            shown = f"{size_bytes:,} bytes"
        raise MediaError("size", f"{kind} is {shown}; WhatsApp allows at most {limit} MB")


def _is_text(head: bytes) -> bool:
    try:
        # Incremental, because the head may end inside a multi-byte character.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return not any(ch < " " and ch not in "\t\n\r\f" for ch in text)
