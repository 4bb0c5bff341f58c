"""Turn uploaded bytes into text: reject empty and binary files, decode UTF-8 (BOMs honoured) and fall back
to Windows-1252 for legacy single-byte exports, with a note saying so."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from app.importers.errors import ImportRejected

SNIFF_BYTES = 8192
# Bytes that never occur in a text export (everything below 0x20 except tab, LF, FF, CR; and DEL).
CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0C, 0x0D)) + b"\x7f"
MAX_CONTROL_SHARE = 0.01
# A valid UTF-8 multi-byte sequence: its presence means the file was meant to be UTF-8.
UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
KNOWN_BINARY = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx or Word file?); export the records as CSV or RIS instead"),
    (b"%PDF", "a PDF document, not a bibliographic export"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office document (.xls/.doc); export the records as CSV or RIS instead"),
    (b"\x1f\x8b", "a gzip archive; upload the uncompressed export"),
)


@dataclass
class DecodedText:
    """Text of an upload, the encoding it was read with, and notes for the user."""

    text: str
    encoding: str
    warnings: list[str] = field(default_factory=list)


def decode_upload(data: bytes, filename: str) -> DecodedText:
    """Decode an uploaded export, or raise ImportRejected naming the problem (empty, binary, undecodable)."""
    if not data.strip():
        raise ImportRejected(422, f"The uploaded file '{filename}' is empty.")
    for magic, what in KNOWN_BINARY:
        if data.startswith(magic):
            raise ImportRejected(415, f"The uploaded file '{filename}' is {what}.")
    boms = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    for bom, codec in boms:
        if data.startswith(bom):
            try:
                return DecodedText(data.decode(codec), codec.replace("-sig", ""))
            except UnicodeDecodeError as exc:
                raise ImportRejected(422, _bad_bytes_message(filename, data, exc, codec)) from exc
    head = data[:SNIFF_BYTES]
    controls = sum(head.count(bytes([b])) for b in CONTROL_BYTES)
    if b"\x00" in head or controls > MAX_CONTROL_SHARE * len(head):
        raise ImportRejected(
            415,
            f"The uploaded file '{filename}' looks like binary data, not a text export "
            "(expected RIS, PubMed MEDLINE/.nbib, BibTeX or CSV).",
        )
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    if UTF8_MULTIBYTE.search(data):
        # Mostly UTF-8 with broken bytes: guessing another encoding would garble the valid part.
        raise ImportRejected(422, _bad_bytes_message(filename, data, utf8_error, "utf-8"))
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            422, _bad_bytes_message(filename, data, utf8_error, "utf-8") + " It is not Windows-1252 either."
        ) from exc
    return DecodedText(
        text,
        "cp1252",
        [
            f"'{filename}' is not valid UTF-8 ({_position(data, utf8_error.start)}); it was read as "
            "Windows-1252 (cp1252). Check accented characters, or re-export the file as UTF-8."
        ],
    )


def _position(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"byte 0x{data[offset]:02x} at offset {offset}, line {line}"


def _bad_bytes_message(filename: str, data: bytes, exc: UnicodeDecodeError, codec: str) -> str:
    name = "UTF-16" if codec == "utf-16" else "UTF-8"
    return (
        f"The uploaded file '{filename}' is not valid {name}: {_position(data, exc.start)}. "
        "Re-export or re-save it as UTF-8."
    )
