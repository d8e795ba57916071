"""Media headers of WhatsApp templates: declared types, sizes and sniffed first bytes."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest

from campaigns.media import HEAD_BYTES, MB, MediaError, MediaFile, check_media, check_media_bytes, sniff

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def office_zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<xml/>")
    return buffer.getvalue()


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free"
THREE_GP = b"\x00\x00\x00\x14ftyp3gp5\x00\x00\x02\x003gp5"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16


# --- Declared content types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("image/jpeg", "image"),
        ("image/png", "image"),
        ("IMAGE/PNG", "image"),
        ("image/jpg", "image"),  # a common misspelling that servers send
        ("image/jpeg; charset=binary", "image"),
        ("video/mp4", "video"),
        ("video/3gpp", "video"),
        ("application/pdf", "document"),
        ("text/plain", "document"),
        ("application/msword", "document"),
        (DOCX, "document"),
    ],
)
def test_allowed_types(content_type: str, kind: str) -> None:
    assert check_media(content_type, 1000) == kind


@pytest.mark.parametrize("content_type", ["image/gif", "image/webp", "video/quicktime", "audio/ogg", "application/zip"])
def test_other_types_are_refused(content_type: str) -> None:
    with pytest.raises(MediaError) as caught:
        check_media(content_type, 1000)
    assert caught.value.field == "content_type"
    assert content_type in str(caught.value)
    assert "JPEG or PNG" in caught.value.message


@pytest.mark.parametrize(
    ("kind", "content_type", "limit_mb"),
    [("image", "image/png", 5), ("video", "video/mp4", 16), ("document", "application/pdf", 100)],
)
def test_size_limits_at_the_boundary(kind: str, content_type: str, limit_mb: int) -> None:
    assert check_media(content_type, limit_mb * MB) == kind
    with pytest.raises(MediaError) as caught:
        check_media(content_type, limit_mb * MB + 1)
    assert caught.value.field == "size"
    # One byte over would read "5.0 MB": the message shows the exact bytes instead.
    assert caught.value.message == f"{kind} is {limit_mb * MB + 1:,} bytes; WhatsApp allows at most {limit_mb} MB"


def test_size_message_names_the_actual_size_and_the_limit() -> None:
    with pytest.raises(MediaError) as caught:
        check_media("video/mp4", 17_200_000)
    assert str(caught.value) == "size: video is 17.2 MB; WhatsApp allows at most 16 MB"
    with pytest.raises(MediaError, match=r"image is 5\.1 MB; WhatsApp allows at most 5 MB"):
        check_media("image/jpeg", 5_100_000)


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "10"])
def test_size_must_be_a_positive_number_of_bytes(size: object) -> None:
    with pytest.raises(MediaError) as caught:
        check_media("image/png", size)  # type: ignore[arg-type]
    assert caught.value.field == "size"


def test_a_missing_or_generic_type_comes_from_the_filename() -> None:
    assert check_media(None, 10, filename="booth.PDF") == "document"
    assert check_media("application/octet-stream", 10, filename="rally.mp4") == "video"
    assert check_media("", 10, filename="ward-12.jpeg") == "image"
    with pytest.raises(MediaError, match="no content type given") as caught:
        check_media(None, 10)
    assert caught.value.field == "content_type"
    with pytest.raises(MediaError, match="application/octet-stream cannot be"):
        check_media("application/octet-stream", 10, filename="data.bin")


def test_a_filename_of_another_kind_is_refused() -> None:
    assert check_media("image/png", 10, filename="photo.jpg") == "image"  # same kind: fine
    with pytest.raises(MediaError) as caught:
        check_media("image/png", 10, filename="rally.mp4")
    assert caught.value.field == "filename"
    assert "'rally.mp4' is named like a video file" in caught.value.message


@pytest.mark.parametrize("filename", ["setup.exe", "C:\\Users\\x\\run.BAT", "app.apk", "x.js"])
def test_runnable_filenames_are_refused(filename: str) -> None:
    with pytest.raises(MediaError) as caught:
        check_media("application/pdf", 10, filename=filename)
    assert caught.value.field == "filename"


# --- Sniffed first bytes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (JPEG, "photo.jpg", MediaFile("image", "image/jpeg")),
        (png(), "photo.png", MediaFile("image", "image/png")),
        (png(), "renamed.jpg", MediaFile("image", "image/png")),  # the bytes win over the name
        (png(), None, MediaFile("image", "image/png")),
        (MP4, "rally.mp4", MediaFile("video", "video/mp4")),
        (THREE_GP, "rally.3gp", MediaFile("video", "video/3gpp")),
        (PDF, "manifesto.pdf", MediaFile("document", "application/pdf")),
        (office_zip("[Content_Types].xml", "word/document.xml"), "letter.docx", MediaFile("document", DOCX)),
        (OLE2, "old.doc", MediaFile("document", "application/msword")),
        ("मतदान केंद्र".encode()[:10], "notes.txt", MediaFile("document", "text/plain")),  # cut mid-character
    ],
)
def test_sniffing_recognises_allowed_files(head: bytes, filename: str | None, expected: MediaFile) -> None:
    assert check_media_bytes(head[:HEAD_BYTES], 1000, filename=filename) == expected


@pytest.mark.parametrize(
    ("head", "filename", "words"),
    [
        (EXE, "invoice.pdf", "Windows program"),
        (EXE, None, "Windows program"),
        (b"\x7fELF\x02\x01\x01", "photo.jpg", "Linux program"),
        (b"#!/bin/sh\nrm -rf /\n", "notes.txt", "script"),
        (b"GIF89a\x01\x00\x01\x00", "wave.png", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "a.png", "WebP"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "clip.mp4", "'qt  '"),
        (office_zip("[Content_Types].xml"), "letter.pdf", "name it .docx"),
        (office_zip("payload.bin"), "letter.docx", "ZIP archive"),
        (OLE2, "setup.msi", "old-format Office"),
        (b"plain words", "notes.md", "first bytes"),
        (b"binary\x00\x01\x02", "notes.txt", "first bytes"),
        (b"", "empty.pdf", "first bytes"),
    ],
)
def test_sniffing_refuses_what_is_not_allowed(head: bytes, filename: str | None, words: str) -> None:
    with pytest.raises(MediaError) as caught:
        check_media_bytes(head, 1000, filename=filename)
    assert caught.value.field == "content"
    assert words in caught.value.message


def test_sniffed_files_have_their_kinds_limit() -> None:
    assert check_media_bytes(png(), 5 * MB).kind == "image"
    with pytest.raises(MediaError, match=r"image is 6\.0 MB; WhatsApp allows at most 5 MB"):
        check_media_bytes(png(), 6 * MB, filename="big.jpg")
    assert check_media_bytes(PDF, 99 * MB).kind == "document"


def test_a_real_image_with_a_runnable_name_is_refused() -> None:
    with pytest.raises(MediaError) as caught:
        check_media_bytes(png(), 1000, filename="photo.png.exe")
    assert caught.value.field == "filename"


def test_sniff_alone() -> None:
    assert sniff(MP4) == "video/mp4"
    with pytest.raises(MediaError):
        sniff(office_zip("[Content_Types].xml"))
