"""The fast signature check accepts and refuses exactly what the twilio SDK's RequestValidator does."""

from __future__ import annotations

import itertools

import pytest
from twilio.request_validator import RequestValidator

from bot.channels.twilio_base import TwilioAccount
from bot.channels.twilio_signature import KEPT_URLS, TwilioSignature
from bot.channels.twilio_sms import TwilioSMS

TOKEN = "12345-secret-token"
URLS = [
    "https://canvass.example.org/webhooks/twilio/messages",
    "https://canvass.example.org:443/webhooks/twilio/messages",
    "https://canvass.example.org:8443/webhooks/twilio/messages",
    "http://canvass.example.org/webhooks/twilio/messages",
    "http://canvass.example.org:80/webhooks/twilio/messages",
    "http://127.0.0.1:5000/webhooks/twilio/messages",
    "https://canvass.example.org/webhooks/twilio/messages?tag=ward%3D12&x=a%20b",
    "https://canvass.example.org/webhooks/twilio/messages?",
    "https://user@canvass.example.org/webhooks/twilio/messages",
    "https://canvass.example.org/webhooks/twilio/voice",
]
FORMS = [
    {},
    {"MessageSid": "SM" + "1" * 32, "From": "+919876543210", "To": "+919999900002", "Body": "booth", "NumMedia": "0"},
    {"Body": "नमस्ते 👋 & = + %", "From": "whatsapp:+919876543210", "ProfileName": "Āsha", "Empty": ""},
    {"b": "1", "a": "2", "A": "3", "a1": ""},
]


def _signatures(url: str, form: dict[str, str]) -> list[str | None]:
    good = RequestValidator(TOKEN).compute_signature(url, form)
    return [
        good,
        good + " ",
        good[:-2],
        good.lower(),
        RequestValidator("another-token").compute_signature(url, form),
        RequestValidator(TOKEN).compute_signature(url, {**form, "Body": "STOP"}),
        "",
        None,
        "bm90IGEgc2lnbmF0dXJl",
        "sïgnature",
    ]


@pytest.mark.parametrize("form", FORMS, ids=range(len(FORMS)))
def test_the_same_requests_pass_as_with_the_sdk(form: dict[str, str]) -> None:
    sdk, fast = RequestValidator(TOKEN), TwilioSignature(TOKEN)
    checked = accepted = 0
    for signed_url, requested_url in itertools.product(URLS, URLS):
        for signature in _signatures(signed_url, form):
            want = bool(signature) and sdk.validate(requested_url, form, signature)
            assert fast.valid(requested_url, form, signature) is want, (signed_url, requested_url, signature)
            checked, accepted = checked + 1, accepted + want
    # Both outcomes were exercised: ports added and removed pass, everything else fails.
    assert accepted > len(URLS) and checked - accepted > len(URLS)


def test_the_url_cache_starts_afresh_when_full() -> None:
    fast = TwilioSignature(TOKEN)
    form = FORMS[1]
    for n in range(KEPT_URLS + 10):
        url = f"https://canvass.example.org/webhooks/twilio/messages?n={n}"
        assert fast.valid(url, form, RequestValidator(TOKEN).compute_signature(url, form))
    assert len(fast._forms) <= KEPT_URLS


def test_a_multi_dict_is_checked_by_the_sdk_with_every_value() -> None:
    from werkzeug.datastructures import MultiDict

    provider = TwilioSMS(TwilioAccount(account_sid="AC" + "0" * 32, auth_token=TOKEN))
    url = URLS[0]
    form = MultiDict([("MediaUrl", "https://a.example/1"), ("MediaUrl", "https://a.example/2"), ("Body", "x")])
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    assert provider.verify_request(url, form, signature)
    assert not provider.verify_request(url, form.to_dict(), signature)  # a value left out
