"""Sending through the twilio SDK's asynchronous API, on one event loop.

A batch job keeps about a hundred sends in flight. Through the SDK's blocking client each
one holds a thread, and a hundred threads taking turns at one interpreter cost more CPU
than the requests themselves: about 1.1 ms a message against 0.35 ms for the same
``messages.create_async`` calls as coroutines on one loop (``bench/RESULTS.md``). So the
campaign sender calls ``create_async`` from an event loop (``campaigns.asyncpool``),
through an ``AsyncHttpClient`` of our own on aiohttp:

- the request is the SDK's (its URL, headers, form and Basic auth), the body encoded as
  ``requests`` encodes it (a list is a repeated field);
- the timeout is per connect and per read, as with ``TwilioHttpClient``; nothing is ever
  retried below us (a resent create could message the voter twice);
- proxies and the CA bundle come from the environment once, as ``make_client`` reads them
  (HTTP and HTTPS proxies: aiohttp does not speak SOCKS, which ``requests`` can with PySocks);
- a failure means what it means on the blocking path (``send_error``): no connection
  (refused, unresolvable, connect timeout) sent nothing; a read timeout or a connection
  lost once the request went may have been taken (``maybe_taken``).

One client (one aiohttp session, its pooled connections) per account and event loop,
kept for the process's life (not closed at exit: the connections die with the process); a
forked process starts without any.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import certifi
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.channels.base import SendError, Sent
from bot.channels.twilio_base import (
    POOL_SIZE,
    TwilioAccount,
    connection_lost,
    environment,
    send_error,
    sent_from,
    unanswered,
    unreachable,
    unreadable,
)

FORM = "application/x-www-form-urlencoded"


class AioHttpClient(AsyncHttpClient):
    """The SDK's asynchronous transport on one aiohttp session (made in its event loop on first use).

    At most ``pool_size`` requests at once, one per pooled connection; the others wait
    their turn before their timeout starts.
    """

    pool_size = POOL_SIZE

    def __init__(self, account: TwilioAccount) -> None:
        super().__init__(None, True, account.timeout_s)  # type: ignore[arg-type]
        self.session: aiohttp.ClientSession | None = None
        self._free: asyncio.Semaphore | None = None
        self._auth: dict[tuple[str, str], str] = {}
        proxies, bundle = environment(account.api_base)
        scheme = urllib.parse.urlsplit(account.api_base).scheme
        self.proxy = proxies.get(scheme) or proxies.get("all") or None
        self.ssl = _ssl_context(bundle) if scheme == "https" else None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            timeout = _timeout(self.timeout)
            connector = aiohttp.TCPConnector(limit=self.pool_size, ssl=self.ssl if self.ssl is not None else True)
            self.session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True)
            self._free = asyncio.Semaphore(self.pool_size)
        return self.session

    async def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """One HTTP request as ``TwilioHttpClient`` would make it; the SDK reads the answer."""
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = self._basic(auth)
        body = None
        if data:
            body = urllib.parse.urlencode(_pairs(data), doseq=True).encode()
            sent["Content-Type"] = FORM
        if params:
            url = f"{url}?{urllib.parse.urlencode(_pairs(params), doseq=True)}"
        options: dict[str, Any] = {"allow_redirects": allow_redirects, "proxy": self.proxy}
        if timeout is not None:
            options["timeout"] = _timeout(timeout)
        session = self._session()
        assert self._free is not None
        # More requests than pooled connections wait here, off the clock: the connect timeout
        # is for reaching Twilio, not for waiting our turn (a send that timed out in the
        # pool's queue would be retried for nothing).
        async with self._free, session.request(method.upper(), url, data=body, headers=sent, **options) as answer:
            text = (await answer.read()).decode(answer.charset or "utf-8", errors="replace")
            return Response(answer.status, text, answer.headers)

    def _basic(self, auth: tuple[str, str]) -> str:
        found = self._auth.get(auth)
        if found is None:
            found = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self._auth[auth] = found
        return found

    async def close(self) -> None:
        """Close the session and its connections."""
        if self.session is not None:
            await self.session.close()
            self.session = self._free = None


def _ssl_context(bundle: str | None) -> ssl.SSLContext:
    """Certificates checked against the environment's CA bundle (a file or a directory), else certifi's."""
    if bundle and os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle or certifi.where())


def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    """At most ``seconds`` to connect (name lookup included), and between two reads."""
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds, sock_read=seconds)


def _pairs(fields: Mapping[str, object]) -> list[tuple[str, object]]:
    """Form fields as ``requests`` sends them: a list is one field per item, None is left out."""
    return [(name, value) for name, value in fields.items() if value is not None]


# By event loop (weakly: a loop that is gone takes its clients with it), then by account.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[TwilioAccount, Any], Client]] = (
    weakref.WeakKeyDictionary()
)


HttpMaker = Callable[[TwilioAccount], AsyncHttpClient]


def async_client(account: TwilioAccount, http: HttpMaker = AioHttpClient) -> Client:
    """The asynchronous SDK client of ``account`` for the running event loop (made once).

    ``http`` makes its transport (tests record what goes through it).
    """
    mine = _clients.setdefault(asyncio.get_running_loop(), {})
    client = mine.get((account, http))
    if client is None:
        client = Client(account.account_sid, account.auth_token, http_client=http(account))
        client.edge = None  # as make_client: api_base says where to go
        client.region = None
        client.api.base_url = account.api_base.rstrip("/")
        mine[account, http] = client
    return client


async def close_clients() -> None:
    """Close the running loop's clients (their sessions and connections); made again if used."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.http_client.close()  # type: ignore[attr-defined]


async def create_async(account: TwilioAccount, params: Mapping[str, Any], http: HttpMaker = AioHttpClient) -> Sent:
    """``messages.create_async(**params)`` on ``account``; ``SendError`` as ``call_twilio`` raises it."""
    # Made outside the try: a client that cannot be made (a CA bundle that is missing or
    # unreadable) sent nothing, and is no connection lost; it fails as on the blocking path.
    client = async_client(account, http)
    try:
        created = await client.messages.create_async(**params)
    except (TwilioRestException, TwilioServiceException) as exc:
        raise send_error(exc) from exc
    except aiohttp.ClientError as exc:
        raise aiohttp_error(exc) from exc
    except TimeoutError as exc:  # before OSError, its base class
        raise unanswered(exc) from exc
    except OSError as exc:  # a socket error aiohttp did not wrap: the request may have gone
        raise connection_lost(exc) from exc
    except ValueError as exc:
        raise unreadable(exc) from exc
    return sent_from(created)


def aiohttp_error(exc: aiohttp.ClientError) -> SendError:
    """An aiohttp failure as ``send_error`` reads the same failure of ``requests``.

    Nothing went: no connection (refused, unresolvable, a connect timeout, a proxy that
    refused the tunnel) or a URL that cannot be requested. Anything else happened once
    the request may have gone (a read timeout; a reset, a closed connection, a cut or
    garbled answer): Twilio may have taken it.
    """
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError | aiohttp.ClientHttpProxyError):
        return unreachable(exc)
    if isinstance(exc, aiohttp.InvalidURL):
        return SendError(f"could not send the message to Twilio: {type(exc).__name__}: {exc}", retryable=False)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return unanswered(exc)
    return connection_lost(exc)


# A forked child's copies of the parent's clients: kept, never used nor collected (closing
# their sockets in the child would take them out of the epoll set it shares with the parent).
_inherited: list[Any] = []


def _forget() -> None:
    """In a forked child: the parent's event loops (and their sessions) do not run here."""
    global _clients
    _inherited.append(dict(_clients.items()))
    _clients = weakref.WeakKeyDictionary()


os.register_at_fork(after_in_child=_forget)
