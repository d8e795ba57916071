"""What the phone system itself says — not the flow: an apology, an opt-out confirmation.

A voter who speaks Hindi and hears a Hindi flow should not be apologised to in English.
Each phrase has its words per language; a language without them falls back to English
(spoken with the English voice, so Twilio never reads English words in a Hindi voice).
Flow authors write the flow's own words; these few belong to the platform.
"""

from __future__ import annotations

FALLBACK = "en"

PHRASES: dict[str, dict[str, str]] = {
    "apology": {
        "en": "Sorry, something went wrong on our side. Please try again later. Goodbye.",
        "hi": "क्षमा करें, हमारी ओर से कुछ गड़बड़ हो गई। कृपया बाद में फिर से कोशिश करें। नमस्ते।",
    },
    "opted_out": {
        "en": "You will get no more calls from us. Goodbye.",
        "hi": "अब आपको हमारी ओर से कोई कॉल नहीं आएगी। नमस्ते।",
    },
    "withheld": {
        "en": "Sorry, we cannot take calls from a withheld number. Please call again without hiding your number.",
        "hi": "क्षमा करें, छिपे हुए नंबर से आई कॉल हम नहीं ले सकते। कृपया अपना नंबर दिखाकर फिर से कॉल करें।",
    },
    "not_in_service": {
        "en": "Sorry, this number does not take calls. Goodbye.",
        "hi": "क्षमा करें, इस नंबर पर कॉल नहीं ली जाती। नमस्ते।",
    },
}


def phrase(key: str, language: str | None) -> tuple[str, str]:
    """The words of phrase ``key`` and the language they are in: ``language``'s, else English.

    ``language`` may carry a region (``hi-IN``); only its first part is looked up.
    """
    words = PHRASES[key]
    base = (language or FALLBACK).split("-")[0].lower()
    return (words[base], base) if base in words else (words[FALLBACK], FALLBACK)
