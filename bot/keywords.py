"""Consent keywords: STOP and friends always win over any flow.

Carriers and WhatsApp users expect these words to work whatever conversation is going
on, so the router checks them before anything else, inside the webhook request.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP = frozenset({"HELP", "INFO"})
_PUNCTUATION = re.compile(r"[\s.!?,;:'\"()\[\]-]+")


class Keyword(enum.StrEnum):
    """What a consent keyword asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def normalize(text: str) -> str:
    """Upper-case, without spaces or punctuation: " stop! " -> "STOP", "opt out" -> "OPTOUT"."""
    return _PUNCTUATION.sub("", text or "").upper()


def classify(text: str, *, extra_opt_out: Iterable[str] = (), extra_opt_in: Iterable[str] = ()) -> Keyword | None:
    """The keyword the whole message is, if any (localized words may be added)."""
    word = normalize(text)
    if not word or len(word) > 20:
        return None
    if word in OPT_OUT or word in {normalize(w) for w in extra_opt_out}:
        return Keyword.OPT_OUT
    if word in OPT_IN or word in {normalize(w) for w in extra_opt_in}:
        return Keyword.OPT_IN
    if word in HELP:
        return Keyword.HELP
    return None
