"""Cells that are safe to open in a spreadsheet."""

from __future__ import annotations

# A cell starting with one of these is run as a formula by Excel, LibreOffice and
# Google Sheets (CSV injection); a leading apostrophe makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: object) -> str:
    """Return ``value`` as text that a spreadsheet shows instead of evaluating."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
