"""The Twilio SMS and WhatsApp providers, with the real twilio SDK.

Three kinds of check:

* request shapes, validated against Twilio's own OpenAPI document served by Stoplight
  Prism (it answers 201 for a request that matches the schema and 4xx otherwise);
* behaviour on errors, against a small fake of Twilio's REST API on loopback (429, 5xx,
  Twilio error codes, a stalled server, a refused connection);
* reading Twilio's webhooks (inbound messages, status callbacks) and their signatures.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from twilio.request_validator import RequestValidator
from yarl import URL

from bot.channels import REGISTRY
from bot.channels.base import Outbound, ParseError, SendError, Sent
from bot.channels.twilio_async import AioHttpClient, aiohttp_error, close_clients, create_async
from bot.channels.twilio_base import STATUSES, TwilioAccount, TwilioMessaging, make_client
from bot.channels.twilio_sms import TwilioSMS
from bot.channels.twilio_whatsapp import TwilioWhatsApp
from tests.conftest import unavailable
from tests.fakes.prism import SPEC, PrismHttpClient, prism_provider
from tests.fakes.twilio_http import free_port
from tests.fakes.twilio_messages import Answer, FakeTwilioMessages
from tests.twilio_stubs import twilio_error

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
MESSAGING_SERVICE = "MG" + "89abcdef01234567" * 2
CONTENT_SID = "HX" + "fedcba9876543210" * 2
VOTER = "+919876543210"
OUR_NUMBER = "+15005550006"
PUBLIC = "https://canvass.example.org"
CALLBACK = f"{PUBLIC}/webhooks/twilio/message-status?m=7"


Send = Callable[[TwilioMessaging, Outbound], Sent]


def account(api_base: str, **kwargs: Any) -> TwilioAccount:
    return TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, api_base=api_base, public_base_url=PUBLIC, **kwargs)


def sms(**kwargs: Any) -> Outbound:
    return Outbound(**{"message_id": 1, "to": VOTER, "sender": OUR_NUMBER, "channel": "sms", **kwargs})


def whatsapp(**kwargs: Any) -> Outbound:
    return Outbound(**{"message_id": 2, "to": VOTER, "sender": OUR_NUMBER, "channel": "whatsapp", **kwargs})


def test_providers_are_registered() -> None:
    assert REGISTRY["twilio_sms"] is TwilioSMS
    assert REGISTRY["twilio_whatsapp"] is TwilioWhatsApp
    assert (TwilioSMS.channel, TwilioWhatsApp.channel) == ("sms", "whatsapp")


# --- Request shapes against Twilio's OpenAPI document (Prism) -----------------------------


@pytest.fixture
def prism(prism_url: str) -> Iterator[Callable[[type[TwilioMessaging]], tuple[TwilioMessaging, PrismHttpClient]]]:
    """Build a provider whose SDK client talks to Prism through ``PrismHttpClient``."""
    made: list[TwilioMessaging] = []

    def build(kind: type[TwilioMessaging]) -> tuple[TwilioMessaging, PrismHttpClient]:
        provider, http = prism_provider(kind, account(prism_url))
        made.append(provider)
        return provider, http

    yield build
    for provider in made:
        provider.close()


SHAPES = {
    "sms": (TwilioSMS, sms(text="Will you vote?", status_callback=CALLBACK)),
    "sms_two_media": (
        TwilioSMS,
        sms(text="Your booth", media_urls=("https://x.example/a.jpg", "https://x.example/b.png")),
    ),
    "whatsapp_free_form": (TwilioWhatsApp, whatsapp(text="Namaste", media_urls=("https://x.example/a.jpg",))),
    "whatsapp_template": (
        TwilioWhatsApp,
        whatsapp(content_sid=CONTENT_SID, content_variables={"1": "Asha", "2": "Ward 12"}, status_callback=CALLBACK),
    ),
    "messaging_service": (TwilioSMS, sms(text="Hello", messaging_service_sid=MESSAGING_SERVICE)),
    "validity_period": (TwilioSMS, sms(text="Polls close at 6", validity_s=600)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SHAPES))
def test_request_shape_matches_twilio_schema(prism: Callable[..., Any], case: str) -> None:
    kind, message = SHAPES[case]
    provider, http = prism(kind)

    sent = provider.send(message)

    assert http.statuses == [201], http.statuses
    assert sent.provider_id.startswith("SM")
    assert sent.status == "sending"  # Prism's example says "queued"
    (data,) = http.sent
    prefix = "whatsapp:" if kind is TwilioWhatsApp else ""
    assert data["To"] == prefix + VOTER
    if case == "sms":
        assert data == {"To": VOTER, "From": OUR_NUMBER, "Body": "Will you vote?", "StatusCallback": CALLBACK}
    elif case == "sms_two_media":
        # Production sends the list as repeated MediaUrl keys, as real Twilio expects.
        assert data["MediaUrl"] == ["https://x.example/a.jpg", "https://x.example/b.png"]
    elif case == "whatsapp_free_form":
        assert data["From"] == f"whatsapp:{OUR_NUMBER}"
        assert (data["Body"], data["MediaUrl"]) == ("Namaste", ["https://x.example/a.jpg"])
    elif case == "whatsapp_template":
        assert data["ContentSid"] == CONTENT_SID
        assert json.loads(data["ContentVariables"]) == {"1": "Asha", "2": "Ward 12"}
        assert "Body" not in data
    elif case == "messaging_service":
        assert data["MessagingServiceSid"] == MESSAGING_SERVICE
        assert "From" not in data
    elif case == "validity_period":
        assert data["ValidityPeriod"] == 600


@pytest.mark.slow
@pytest.mark.parametrize(
    "params",
    [
        {"to": VOTER, "from_": OUR_NUMBER, "body": "x", "status_callback": "not a uri"},
        {"to": None, "from_": OUR_NUMBER, "body": "x"},  # the SDK drops None: no To at all
        {"to": VOTER, "messaging_service_sid": "MG123", "body": "x"},
    ],
    ids=["bad_status_callback", "missing_to", "bad_messaging_service_sid"],
)
def test_prism_refuses_a_malformed_request(prism: Callable[..., Any], params: dict[str, Any]) -> None:
    """Negative control: the mock really validates (our own checks are bypassed here)."""
    provider, http = prism(TwilioSMS)
    with pytest.raises(SendError) as caught:
        provider.create(params)
    assert http.statuses == [422]  # a schema violation, not 401 (auth) or 404 (route)
    assert caught.value.retryable is False
    assert caught.value.status == http.statuses[0]


def test_our_validation_stops_what_prism_would_refuse() -> None:
    provider = TwilioSMS(account("http://127.0.0.1:9"))  # never contacted
    try:
        with pytest.raises(SendError, match="StatusCallback") as caught:
            provider.send(sms(text="x", status_callback="not a uri"))
        assert caught.value.retryable is False
    finally:
        provider.close()


# --- Request parameters (no network) ------------------------------------------------------


@pytest.fixture
def offline() -> Iterator[tuple[TwilioSMS, TwilioWhatsApp]]:
    acc = account("http://127.0.0.1:9")
    providers = (TwilioSMS(acc), TwilioWhatsApp(acc))
    yield providers
    for provider in providers:
        provider.close()


def test_choices_become_numbered_lines(offline: tuple[TwilioSMS, TwilioWhatsApp]) -> None:
    sms_provider, wa_provider = offline
    choices = (("yes", "Yes"), ("no", "No"), ("later", "Ask me later"))
    assert sms_provider.params(sms(text="Will you vote?", choices=choices))["body"] == (
        "Will you vote?\n1. Yes\n2. No\n3. Ask me later"
    )
    assert wa_provider.params(whatsapp(text="Will you vote?", choices=choices[:2]))["body"] == (
        "Will you vote?\n1. Yes\n2. No"
    )


def test_params(offline: tuple[TwilioSMS, TwilioWhatsApp]) -> None:
    sms_provider, wa_provider = offline
    params = sms_provider.params(
        sms(text="x", status_callback="/webhooks/twilio/message-status?m=1", validity_s=99_999)
    )
    assert params["status_callback"] == f"{PUBLIC}/webhooks/twilio/message-status?m=1"
    assert params["validity_period"] == 36_000
    template = wa_provider.params(whatsapp(text="ignored", content_sid=CONTENT_SID, content_variables={"1": "Āsha"}))
    assert template == {
        "to": f"whatsapp:{VOTER}",
        "from_": f"whatsapp:{OUR_NUMBER}",
        "content_sid": CONTENT_SID,
        "content_variables": '{"1": "Āsha"}',
    }


def test_account_messaging_service_is_the_fallback_sender() -> None:
    provider = TwilioSMS(account("http://127.0.0.1:9", messaging_service_sid=MESSAGING_SERVICE))
    try:
        params = provider.params(sms(sender="", text="x"))
    finally:
        provider.close()
    assert params["messaging_service_sid"] == MESSAGING_SERVICE
    assert "from_" not in params


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (sms(to="98765 43210", text="x"), "To"),
        (whatsapp(text="x"), "sends sms"),
        (sms(sender="", text="x"), "From"),
        (sms(), "Body"),
        (sms(text="x", validity_s=0), "ValidityPeriod"),
        (sms(media_urls=tuple(f"https://x.example/{n}.jpg" for n in range(11))), "MediaUrl"),
    ],
)
def test_unsendable_messages_fail_permanently(
    offline: tuple[TwilioSMS, TwilioWhatsApp], message: Outbound, field: str
) -> None:
    with pytest.raises(SendError, match=field) as caught:
        offline[0].send(message)
    assert caught.value.retryable is False


def test_make_client_points_the_sdk_at_api_base() -> None:
    client = make_client(account("http://127.0.0.1:4010/"))
    try:
        assert client.api.base_url == "http://127.0.0.1:4010"
        assert client.messages._version.domain is client.api
        assert client.http_client.timeout == 10
    finally:
        client.http_client.session.close()


def test_make_client_reads_proxy_and_ca_bundle_variables_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/corporate.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_client(account("https://api.twilio.com"))
    session = client.http_client.session
    assert session.trust_env is False  # not looked up again on every request
    assert session.proxies["https"] == "http://proxy.example.org:3128"
    assert session.verify == "/etc/ssl/certs/corporate.pem"
    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    assert "https" not in make_client(account("https://api.twilio.com")).http_client.session.proxies


def test_an_async_client_that_cannot_be_made_is_no_lost_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CA bundle that is not there: nothing went, so the send must not end "unknown"."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/corporate.pem")
    provider = TwilioSMS(account("https://api.twilio.com"))
    with pytest.raises(OSError) as caught:
        asyncio.run(provider.send_async(sms(text="hi")))
    assert not isinstance(caught.value, SendError)  # a provider error of the campaign, as on the blocking path


# --- Behaviour against a fake of Twilio's REST API ----------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTwilioMessages]:
    server = FakeTwilioMessages(ACCOUNT_SID, AUTH_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def fake_sms(fake: FakeTwilioMessages) -> Iterator[TwilioSMS]:
    provider = TwilioSMS(account(fake.url, timeout_s=1.0))
    yield provider
    provider.close()


@pytest.fixture(params=["blocking", "async"])
def sending(request: pytest.FixtureRequest) -> Iterator[Callable[[TwilioMessaging, Outbound], Sent]]:
    """Send through ``provider.send``, or through ``provider.send_async`` on an event loop (one per test)."""
    if request.param == "blocking":
        yield lambda provider, message: provider.send(message)
        return
    loop = asyncio.new_event_loop()
    yield lambda provider, message: loop.run_until_complete(provider.send_async(message))
    loop.run_until_complete(close_clients())
    loop.close()


def test_send_through_the_fake(fake: FakeTwilioMessages, fake_sms: TwilioSMS, sending: Send) -> None:
    sent = sending(fake_sms, sms(text="hi", media_urls=("https://x.example/a.jpg", "https://x.example/b.jpg")))
    assert sent.provider_id.startswith("SM")
    assert sent.status == "sending"
    (request,) = fake.requests
    assert (request.path, request.sid) == (f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", sent.provider_id)
    assert request.form["MediaUrl"] == ["https://x.example/a.jpg", "https://x.example/b.jpg"]  # repeated keys


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_an_async_send_makes_the_request_a_blocking_one_makes(fake: FakeTwilioMessages, case: str) -> None:
    """``send_async`` encodes its own request: the same path, form and answer as ``send``.

    (Prism checks the asynchronous requests against Twilio's schema in tests/campaigns/test_twilio_schema.py.)
    """
    kind, message = SHAPES[case]
    provider = kind(account(fake.url, timeout_s=1.0))
    loop = asyncio.new_event_loop()
    try:
        blocking = provider.send(message)
        asynchronous = loop.run_until_complete(provider.send_async(message))
        loop.run_until_complete(close_clients())
    finally:
        loop.close()
        provider.close()
    first, second = fake.requests
    assert (second.path, second.form) == (first.path, first.form)
    assert (second.status, asynchronous.status) == (first.status, blocking.status) == (201, "sending")
    assert asynchronous.provider_id == second.sid != blocking.provider_id


def test_twilio_edge_and_region_do_not_redirect(fake: FakeTwilioMessages, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    provider = TwilioSMS(account(fake.url, timeout_s=1.0))
    try:
        provider.send(sms(text="hi"))
    finally:
        provider.close()
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "retryable", "code"),
    [
        (429, twilio_error(20429, 429, "Too Many Requests"), True, "20429"),
        (429, "", True, None),
        (500, "<html>Internal Server Error</html>", True, None),
        (503, twilio_error(20503, 503, "Service Unavailable"), True, "20503"),
        (400, twilio_error(21211, 400, "The 'To' number +91 is not a valid phone number."), False, "21211"),
        (400, twilio_error(21610, 400, "Attempt to send to unsubscribed recipient"), False, "21610"),
        (400, twilio_error(63016, 400, "Failed to send freeform message outside the window"), False, "63016"),
        (401, twilio_error(20003, 401, "Authenticate"), False, "20003"),
        # The RFC 9457 shape, which the SDK raises as TwilioServiceException.
        (
            400,
            {"type": "https://www.twilio.com/docs/errors/21211", "title": "Invalid To", "status": 400, "code": 21211},
            False,
            "21211",
        ),
    ],
)
def test_refusals_map_to_send_errors(
    fake: FakeTwilioMessages,
    fake_sms: TwilioSMS,
    sending: Send,
    status: int,
    body: Any,
    retryable: bool,
    code: str | None,
) -> None:
    fake.next_requests(Answer(status=status, body=body))
    with pytest.raises(SendError) as caught:
        sending(fake_sms, sms(text="hi"))
    assert (caught.value.retryable, caught.value.code, caught.value.status) == (retryable, code, status)


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_answer_may_have_been_taken(
    fake: FakeTwilioMessages, fake_sms: TwilioSMS, sending: Send, status: int
) -> None:
    # The edge or a proxy gave up waiting for what was behind it: never resent blindly.
    fake.next_requests(Answer(status=status, body="<html>Bad Gateway</html>"))
    with pytest.raises(SendError) as caught:
        sending(fake_sms, sms(text="hi"))
    assert (caught.value.code, caught.value.status, caught.value.maybe_taken) == ("gateway", status, True)


def test_an_answer_that_is_not_json_is_not_retried(
    fake: FakeTwilioMessages, fake_sms: TwilioSMS, sending: Send
) -> None:
    fake.next_requests(Answer(body="this is not json"))
    with pytest.raises(SendError) as caught:
        sending(fake_sms, sms(text="hi"))
    assert (caught.value.retryable, caught.value.code) == (False, "bad_response")


def test_a_stalled_server_times_out(fake: FakeTwilioMessages, fake_sms: TwilioSMS, sending: Send) -> None:
    fake.next_requests(Answer.stalled())  # until the fake stops
    started = time.monotonic()
    with pytest.raises(SendError) as caught:
        sending(fake_sms, sms(text="hi"))
    elapsed = time.monotonic() - started
    assert (caught.value.retryable, caught.value.code, caught.value.maybe_taken) == (True, "timeout", True)
    assert 0.9 <= elapsed < 2.0, elapsed


def test_a_connection_reset_once_the_request_went_may_have_been_taken(
    fake: FakeTwilioMessages, fake_sms: TwilioSMS, sending: Send
) -> None:
    # Whether Twilio took the message before the reset, a client cannot tell: never resend blindly.
    fake.next_requests(Answer.connection_reset())
    with pytest.raises(SendError) as caught:
        sending(fake_sms, sms(text="hi"))
    assert (caught.value.code, caught.value.maybe_taken) == ("connection_lost", True)
    assert sending(fake_sms, sms(text="hi")).provider_id.startswith("SM")  # the pool recovers


def test_a_refused_connection_is_retryable(sending: Send) -> None:
    provider = TwilioSMS(account(f"http://127.0.0.1:{free_port()}", timeout_s=1.0))
    try:
        with pytest.raises(SendError) as caught:
            sending(provider, sms(text="hi"))
    finally:
        provider.close()
    # No connection, no request: nothing can have been taken.
    assert (caught.value.retryable, caught.value.code, caught.value.maybe_taken) == (True, "connection", False)


def test_async_sends_waiting_for_a_pooled_connection_do_not_time_out(fake: FakeTwilioMessages) -> None:
    """Three times as many sends as connections, each answer taking most of the timeout.

    Waiting for a connection of our own pool is not a failure to reach Twilio: counted
    against the connect timeout, the last four failed and were retried for nothing.
    """

    class Small(AioHttpClient):
        pool_size = 4

    fake.next_requests(*(Answer(latency_s=0.3) for _ in range(12)))
    provider = TwilioSMS(account(fake.url, timeout_s=0.5))
    provider.async_http = Small

    async def send_all() -> list[Sent | BaseException]:
        try:
            return await asyncio.gather(
                *(provider.send_async(sms(text="hi")) for _ in range(12)), return_exceptions=True
            )
        finally:
            await close_clients()

    started = time.monotonic()
    results = asyncio.run(send_all())
    provider.close()
    assert [r for r in results if not isinstance(r, Sent)] == []
    assert len({r.provider_id for r in results if isinstance(r, Sent)}) == 12
    assert time.monotonic() - started >= 0.9  # three rounds of four: the pool held them back


_INFO = aiohttp.RequestInfo(
    URL("https://api.twilio.com/x"), "POST", CIMultiDictProxy(CIMultiDict()), URL("https://api.twilio.com/x")
)


@pytest.mark.parametrize(
    ("error", "code", "retryable", "maybe_taken"),
    [
        # Nothing went: retried, never "unknown".
        (aiohttp.ConnectionTimeoutError("connect timeout"), "connection", True, False),
        (aiohttp.ClientHttpProxyError(_INFO, (), status=407), "connection", True, False),
        (aiohttp.InvalidURL("not a url"), None, False, False),
        # The request may have gone: "unknown" until a callback says.
        (aiohttp.SocketTimeoutError("read timeout"), "timeout", True, True),
        (aiohttp.ServerDisconnectedError(), "connection_lost", True, True),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), "connection_lost", True, True),
        (aiohttp.ClientPayloadError("the answer was cut"), "connection_lost", True, True),
        (aiohttp.ClientResponseError(_INFO, (), message="garbled status line"), "connection_lost", True, True),
    ],
)
def test_aiohttp_failures_mean_what_the_same_requests_failures_mean(
    error: aiohttp.ClientError, code: str | None, retryable: bool, maybe_taken: bool
) -> None:
    mapped = aiohttp_error(error)
    assert (mapped.code, mapped.retryable, mapped.maybe_taken) == (code, retryable, maybe_taken)


@pytest.mark.parametrize(
    ("error", "code"), [(TimeoutError("no answer"), "timeout"), (ConnectionResetError(104, "reset"), "connection_lost")]
)
def test_socket_errors_aiohttp_did_not_wrap_may_have_been_taken(error: OSError, code: str) -> None:
    class Failing(AioHttpClient):
        async def request(self, *args: Any, **kwargs: Any) -> Any:
            raise error

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(SendError) as caught:
            loop.run_until_complete(create_async(account("http://127.0.0.1:9"), {"to": VOTER, "body": "hi"}, Failing))
        loop.run_until_complete(close_clients())
    finally:
        loop.close()
    assert (caught.value.code, caught.value.retryable, caught.value.maybe_taken) == (code, True, True)


# --- Webhooks -----------------------------------------------------------------------------


def inbound_form(**fields: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "1" * 32,
        "SmsMessageSid": "SM" + "1" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": VOTER,
        "To": OUR_NUMBER,
        "Body": "Yes",
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
        **fields,
    }


def test_parse_inbound_sms(offline: tuple[TwilioSMS, TwilioWhatsApp]) -> None:
    form = inbound_form(NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME1", MediaContentType0="image/jpeg")
    inbound = offline[0].parse_inbound(form)
    assert (inbound.provider_id, inbound.channel, inbound.from_phone, inbound.to) == (
        "SM" + "1" * 32,
        "sms",
        VOTER,
        OUR_NUMBER,
    )
    assert inbound.text == "Yes"
    assert inbound.media == (("https://api.twilio.com/media/ME1", "image/jpeg"),)
    assert inbound.profile_name is None and inbound.button_payload is None
    assert inbound.raw == form


def test_parse_inbound_whatsapp(offline: tuple[TwilioSMS, TwilioWhatsApp]) -> None:
    form = inbound_form(
        From=f"whatsapp:{VOTER}",
        To=f"whatsapp:{OUR_NUMBER}",
        Body="Yes, I will",
        ProfileName="Asha",
        WaId=VOTER.lstrip("+"),
        ButtonPayload="vote_yes",
        ButtonText="Yes, I will",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/media/ME2",
        MediaContentType1="audio/ogg",
    )
    inbound = offline[1].parse_inbound(form)
    assert (inbound.channel, inbound.from_phone, inbound.to) == ("whatsapp", VOTER, OUR_NUMBER)
    assert (inbound.text, inbound.profile_name, inbound.button_payload) == ("Yes, I will", "Asha", "vote_yes")
    assert [content_type for _url, content_type in inbound.media] == ["image/jpeg", "audio/ogg"]


@pytest.mark.parametrize(
    ("provider", "fields", "field"),
    [
        (0, {"From": "98765 43210"}, "From"),
        (0, {"From": ""}, "From"),
        (0, {"From": f"whatsapp:{VOTER}"}, "From"),  # WhatsApp on the SMS webhook
        (1, {"From": VOTER, "To": f"whatsapp:{OUR_NUMBER}"}, "From"),  # no whatsapp: prefix
        (1, {"From": "whatsapp:+0123", "To": f"whatsapp:{OUR_NUMBER}"}, "From"),
        (0, {"To": "not-a-number"}, "To"),
        (0, {"MessageSid": ""}, "MessageSid"),
        (0, {"NumMedia": "x"}, "NumMedia"),
        (0, {"NumMedia": "1"}, "MediaUrl0"),
    ],
)
def test_parse_inbound_names_the_bad_field(
    offline: tuple[TwilioSMS, TwilioWhatsApp], provider: int, fields: dict[str, str], field: str
) -> None:
    with pytest.raises(ParseError) as caught:
        offline[provider].parse_inbound(inbound_form(**fields))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [
        ("accepted", "sending"),
        ("scheduled", "sending"),
        ("queued", "sending"),
        ("sending", "sending"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("partially_delivered", "delivered"),
        ("read", "read"),
        ("failed", "failed"),
        ("canceled", "failed"),
        ("undelivered", "undelivered"),
    ],
)
def test_parse_status_mapping(offline: tuple[TwilioSMS, TwilioWhatsApp], twilio_status: str, ours: str) -> None:
    update = offline[1].parse_status({"MessageSid": "SM1", "MessageStatus": twilio_status, "ErrorCode": ""})
    assert (update.provider_id, update.status, update.error_code) == ("SM1", ours, None)


def test_status_mapping_covers_every_outbound_twilio_status() -> None:
    if not SPEC.is_file():
        unavailable(f"Twilio's OpenAPI document is missing: {SPEC}")
    enum = json.loads(SPEC.read_text())["components"]["schemas"]["message_enum_status"]["enum"]
    assert set(enum) - set(STATUSES) <= {"receiving", "received"}


def test_parse_status_failed_keeps_the_error(offline: tuple[TwilioSMS, TwilioWhatsApp]) -> None:
    form = {
        "MessageSid": "SM2",
        "MessageStatus": "failed",
        "ErrorCode": "63016",
        "ErrorMessage": "Outside the 24-hour window",
        "AccountSid": ACCOUNT_SID,
    }
    update = offline[1].parse_status(form)
    assert (update.status, update.error_code, update.error_message) == ("failed", "63016", "Outside the 24-hour window")
    assert update.raw == form


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"MessageStatus": "sent"}, "MessageSid"),
        ({"MessageSid": "SM3", "MessageStatus": "received"}, "MessageStatus"),
        ({"MessageSid": "SM3", "MessageStatus": "exploded"}, "MessageStatus"),
        ({"MessageSid": "SM3"}, "MessageStatus"),
    ],
)
def test_parse_status_names_the_bad_field(
    offline: tuple[TwilioSMS, TwilioWhatsApp], form: dict[str, str], field: str
) -> None:
    with pytest.raises(ParseError) as caught:
        offline[0].parse_status(form)
    assert caught.value.field == field


WEBHOOK = f"{PUBLIC}/webhooks/twilio/inbound?sender=3"


def test_verify_request(offline: tuple[TwilioSMS, TwilioWhatsApp]) -> None:
    form = inbound_form()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(WEBHOOK, form)
    for provider in offline:
        assert provider.verify_request(WEBHOOK, form, signature) is True
        assert provider.verify_request(WEBHOOK, {**form, "Body": "No"}, signature) is False
        assert provider.verify_request(WEBHOOK, {**form, "Extra": "1"}, signature) is False
        assert provider.verify_request(WEBHOOK.replace("https://", "http://"), form, signature) is False
        assert provider.verify_request(WEBHOOK.replace("canvass.example.org", "evil.example"), form, signature) is False
        assert provider.verify_request(WEBHOOK, form, None) is False
        assert provider.verify_request(WEBHOOK, form, "") is False
    other = RequestValidator("another-token").compute_signature(WEBHOOK, form)
    assert offline[0].verify_request(WEBHOOK, form, other) is False
