"""webhook: call an HTTP endpoint; the host makes the request, outside the engine.

Example::

    nodes:
      lookup:
        webhook:
          url: "https://api.example.org/booth?phone={{ contact.phone | urlencode }}"
          method: POST
          headers: {X-Key: abc}
          body: {phone: "{{ contact.phone }}", source: canvass}
          timeout: 5s
          save: booth
        on_error: sorry
        next: tell_booth
      tell_booth:
        say: "Your booth: {{ vars.booth.name }}."
        end: true
      sorry:
        say: "Sorry, we could not look that up just now."
        end: true

``url``, header values and every text inside ``body`` are templates. ``method`` is GET
(the default without a body), POST (the default with one), PUT, PATCH or DELETE;
``timeout`` is at most 30s (10s by default). On a 2xx answer the response body is saved
in ``vars.<save>`` and the flow goes on to ``next``; on any other answer (or none) the
flow reports an error and goes to ``on_error``, or carries on to ``next`` without it.
"""

from __future__ import annotations

import http
import re
from typing import Any
from urllib.parse import urlsplit

from bot.engine import templates
from bot.engine.errors import Loc
from bot.engine.events import WebhookRequested
from bot.engine.inputs import Input, Timeout, WebhookDone
from bot.engine.nodes.base import Continue, Goto, NodeKind, Outcome, Park, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict, LocList

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SETTINGS = ("url", "method", "headers", "body", "timeout", "save")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
SAVE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CONTROL = re.compile(r"[\x00-\x20\x7f]")
MAX_TIMEOUT = 30
DEFAULT_TIMEOUT = 10


@register
class Webhook(NodeKind):
    """Ask the host to make an HTTP request and wait for the answer."""

    kind = "webhook"
    keys = frozenset({"on_error"})
    # The session pauses until the host reports back, so a loop through here is not a busy loop.
    waits = True

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the request (url, method, headers, body, timeout) and where to save the answer."""
        self.url = ""
        self.method = "GET"
        self.headers: dict[str, str] = {}
        self.body: Any = None
        self.timeout = DEFAULT_TIMEOUT
        self.save: str | None = None
        self.on_error = ctx.ref(spec, "on_error")
        raw = spec["webhook"]
        if not isinstance(raw, LocDict):
            ctx.problem(
                spec.value_loc("webhook"), "webhook: a mapping with url (and method, headers, body, timeout, save)"
            )
            return
        for key in raw:
            if key not in SETTINGS:
                ctx.problem(raw.key_loc(key), f"webhook: unknown key {key!r}; it takes {', '.join(SETTINGS)}")
        self._url(raw, ctx)
        self._method(raw, ctx)
        self._headers(raw, ctx)
        if "body" in raw:
            self.body = _body(raw["body"], raw.value_loc("body"), "body", ctx)
        timeout = ctx.duration(raw, "timeout")
        if timeout is not None and timeout > MAX_TIMEOUT:
            ctx.problem(raw.value_loc("timeout"), f"timeout: at most {MAX_TIMEOUT}s, got {raw['timeout']!r}")
        elif timeout is not None:
            self.timeout = timeout
        if "save" in raw:
            save = raw["save"]
            if not isinstance(save, str) or not SAVE_NAME.match(save):
                ctx.problem(raw.value_loc("save"), f"save: must be a name such as booth, got {save!r}")
            else:
                self.save = save

    def _url(self, raw: LocDict, ctx: ParseContext) -> None:
        url = ctx.text(raw, "url", required=True)
        if url is None:
            return
        self.url = url
        if url.lstrip().startswith("{"):
            return  # the scheme itself comes from a template: checked once rendered
        if not re.match(r"^https?://", url, re.IGNORECASE):
            ctx.problem(raw.value_loc("url"), f"url: must start with http:// or https://, got {url!r}")
        elif "{" not in url and (problem := _url_problem(url)):
            ctx.problem(raw.value_loc("url"), f"url: {problem}")

    def _method(self, raw: LocDict, ctx: ParseContext) -> None:
        method = raw.get("method", "POST" if "body" in raw else "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            ctx.problem(raw.value_loc("method"), f"method: one of {', '.join(METHODS)}, got {method!r}")
            return
        self.method = method.upper()
        if self.method == "GET" and "body" in raw:
            ctx.problem(raw.value_loc("method"), "method: a GET request has no body; use POST (or drop the body)")

    def _headers(self, raw: LocDict, ctx: ParseContext) -> None:
        if "headers" not in raw:
            return
        headers = raw["headers"]
        if not isinstance(headers, LocDict):
            ctx.problem(raw.value_loc("headers"), "headers: a mapping of header names to text")
            return
        for name in headers:
            if not isinstance(name, str) or not HEADER_NAME.match(name):
                ctx.problem(headers.key_loc(name), f"headers: {name!r} is not a header name")
                continue
            value = ctx.text(headers, name)
            if value is None:
                continue
            if "\r" in value or "\n" in value:
                ctx.problem(headers.value_loc(name), f"{name}: a header value is one line")
                continue
            self.headers[name] = value

    def exits(self) -> list[tuple[str, Any]]:
        """Next and on_error."""
        return [r for r in (self.next, self.on_error) if r]

    def enter(self, run: Run) -> Outcome:
        """Render the request, ask the host to make it, and wait for the answer."""
        url = run.render(self.id, self.url).strip()
        problem = _url_problem(url)
        if problem:
            return self._failed(run, f"url {url[:200]!r}: {problem}")
        headers = {}
        for name, value in self.headers.items():
            rendered = run.render(self.id, value)
            if "\r" in rendered or "\n" in rendered:
                return self._failed(run, f"header {name}: a header value is one line")
            headers[name] = rendered
        body = _render(run, self.id, self.body)
        run.emit(
            WebhookRequested(
                node=self.id, method=self.method, url=url, headers=headers, body=body, timeout_s=self.timeout
            )
        )
        return Park({"kind": "webhook"})

    def resume(self, run: Run, received: Input, waiting: dict[str, Any]) -> Outcome:
        """Save a 2xx answer and go on; anything else is an error. Voter input meanwhile is ignored."""
        if isinstance(received, Timeout):
            return self._failed(run, f"no answer within {self.timeout}s")
        if not isinstance(received, WebhookDone):
            return Park({"kind": "webhook"})
        status = received.status
        if isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 299:
            if self.save:
                run.set_var(self.save, received.body)
            return Continue()
        return self._failed(run, f"status {status} ({_reason(status)})")

    def _failed(self, run: Run, why: str) -> Outcome:
        run.error(self.id, f"webhook {self.method}: {why}")
        return Goto(self.on_error[0]) if self.on_error else Continue()


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be requested, or None."""
    if CONTROL.search(url):
        return "spaces and control characters must be encoded"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    return None


def _reason(status: Any) -> str:
    if status == 0:
        return "no answer"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "unexpected status"


def _body(value: Any, loc: Loc, where: str, ctx: ParseContext) -> Any:
    """Check a request body: plain data whose texts are templates. Returns plain dicts and lists."""
    if isinstance(value, LocDict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                ctx.problem(value.key_loc(key), f"{where}: key {key!r} must be text")
                continue
            out[key] = _body(item, value.value_loc(key), f"{where}.{key}", ctx)
        return out
    if isinstance(value, LocList):
        return [_body(item, value.item_locs[i], f"{where}[{i}]", ctx) for i, item in enumerate(value)]
    if isinstance(value, str):
        problem = templates.check(value)
        if problem:
            ctx.problem(loc, f"{where}: {problem}")
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    ctx.problem(loc, f"{where}: must be text, a number, true, false or null (quote dates and other values)")
    return None


def _render(run: Run, node: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _render(run, node, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(run, node, item) for item in value]
    if isinstance(value, str):
        return run.render(node, value)
    return value
