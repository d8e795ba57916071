"""Twilio's voice webhooks: answered and incoming calls, keypad steps, call statuses.

Signatures are checked first, like the messaging webhooks (``web.webhooks``): a request
that fails gets 403 and changes nothing. After that, a caller must never hear a 500:
whatever goes wrong while running the flow, Twilio gets valid TwiML that apologises and
hangs up, and the fault is logged with the call's id.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Blueprint, Flask, Response, request
from rq import Queue

from bot.conversations import action_bridge
from bot.mediastore import MediaStore
from bot.outbox import queue_sends
from bot.runtime import Runtime
from campaigns import call_tracking
from ivr import twiml
from ivr.calls import CallDesk, CallRefused
from ivr.fastpath import FastPool
from ivr.links import CallLinks
from ivr.prompts import PromptAudio
from ivr.providers import REGISTRY
from ivr.quickanswer import QuickAnswers
from ivr.quickstatus import QuickStatus
from ivr.quickstep import QuickSteps
from web.auth.access import csrf, public
from web.context import runtime
from web.errors import BadInput
from web.metrics import note_outcome
from web.webhooks import kept_provider, verified_parse

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)
_MAKING = threading.Lock()
csrf.exempt(bp)


def init_app(app: Flask) -> None:
    """Register the voice webhooks and the prompt audio they play."""
    rt = app.extensions["canvass"]
    prompts = PromptAudio(rt.settings.var_dir, rt.settings.tts)
    base = rt.settings.public_base_url

    def cached(text: str, language: str) -> str | None:
        # The webhook never waits on synthesis: a prompt not rendered yet is spoken by <Say>.
        name = prompts.cached_name(text, language)
        return MediaStore.url(base, name) if name else None

    def render(text: str, language: str) -> str | None:
        # The sandbox phone renders on demand and plays from this very server.
        name = prompts.url_name(text, language)
        return f"/media/{name}" if name else None

    rt.services["voice:audio"] = cached
    rt.services["voice:render"] = render
    rt.services["voice:prompts"] = prompts
    app.register_blueprint(bp)


def call_links() -> CallLinks:
    """The call URLs of this deployment."""
    return CallLinks.of(runtime().settings)


def quick_steps(rt: Runtime | None = None) -> QuickSteps:
    """This process's fast path for keypad steps (made on first use)."""
    return _fast_path(rt or runtime(), "voice:quick", QuickSteps)  # type: ignore[no-any-return]


def quick_answers(rt: Runtime | None = None) -> QuickAnswers:
    """This process's fast path for the answer of an incoming call (made on first use)."""
    rt = rt or runtime()
    return _fast_path(rt, "voice:quick-answer", QuickAnswers, region=rt.settings.default_region)  # type: ignore[no-any-return]


def quick_status(rt: Runtime | None = None) -> QuickStatus:
    """This process's fast path for the final status of a call outside campaigns (made on first use)."""
    return _fast_path(rt or runtime(), "voice:quick-status", QuickStatus)  # type: ignore[no-any-return]


def _fast_path(rt: Runtime, key: str, make: Any, **kwargs: Any) -> Any:
    found = rt.services.get(key)
    if found is None:
        with _MAKING:  # one per process, all three sharing one pool
            found = rt.services.get(key)
            if found is None:
                pool = rt.services.get("voice:pool")
                if pool is None:
                    pool = rt.services["voice:pool"] = FastPool(rt.db)
                audio = rt.services.get("voice:audio")
                links = CallLinks.of(rt.settings)
                found = make(rt.db, links=links, actions=action_bridge(rt), audio=audio, pool=pool, **kwargs)
                rt.services[key] = found
    return found


def voice_provider(rt: Runtime | None = None) -> Any:
    """The process's Twilio voice provider, for checking the webhooks' signatures."""
    return kept_provider("twilio_voice", REGISTRY["twilio"], rt)


def query_number(raw: str | None) -> int | None:
    """A call or step number from the query string; None unless all digits."""
    return int(raw) if raw and raw.isdigit() else None


def _verified(kind: str) -> Any:
    return verified_parse(voice_provider(), request.form.to_dict(), kind)


def queue_callbacks(conn: Any, call_ids: list[int]) -> None:
    """Queue the call-backs a missed call asked for (high priority: the voter is waiting)."""
    if call_ids:
        queue = Queue("high", connection=conn)
        for call_id in call_ids:
            queue.enqueue("ivr.tasks.call_back", call_id, job_id=f"call-back-{call_id}")


def _number(name: str) -> int | None:
    return query_number(request.args.get(name))


def desk(db: Any, *, play_audio: bool = True) -> CallDesk:
    """A ``CallDesk`` for this request's transaction.

    ``play_audio=False`` writes every text as ``<Say>`` (the sandbox phone shows the text
    and plays the audio it renders itself).
    """
    rt = runtime()
    return CallDesk(
        db,
        links=call_links(),
        region=rt.settings.default_region,
        actions=action_bridge(rt),
        audio=rt.services.get("voice:audio") if play_audio else None,
        wanted=lambda call: call_tracking.wanted(db, call),
    )


def _answer(run: Any) -> Response:
    """Run one step in a transaction; whatever fails, the caller hears an apology."""
    rt = runtime()
    try:
        with rt.db.session(write=True) as db:
            answered = run(desk(db))
            followed = call_tracking.follow(db, answered.call) if answered.call is not None else None
    except CallRefused as exc:
        log.warning("voice webhook %s refused: %s", request.full_path, exc)
        note_outcome("apology")
        return _twiml(twiml.apology())
    except Exception:
        log.exception("voice webhook %s failed; the caller heard an apology", request.full_path)
        note_outcome("apology")
        return _twiml(twiml.apology())
    try:
        # Committed: whatever fails from here on, the caller gets this step's own TwiML.
        queue_sends(rt.redis, answered.outbound)
        queue_callbacks(rt.redis, answered.callbacks)
        call_tracking.after_commit(rt, followed)
    except Exception:
        log.exception(
            "voice webhook %s: the work after the commit failed (the reconciler catches up)", request.full_path
        )
    return _twiml(answered.twiml)


def _twiml(document: str) -> Response:
    return Response(document, mimetype="text/xml")


def _parsed(kind: str) -> Any:
    """The verified request; a signed request we cannot read is answered with an apology, not an error page."""
    try:
        return _verified(kind)
    except BadInput as exc:
        log.warning("voice webhook %s: a signed request canvass cannot read (%s)", request.full_path, exc)
        note_outcome("apology")
        return None


@bp.post("/webhooks/twilio/voice")
@public
def answer() -> Response:
    """A call we placed was answered, or a voter is calling one of our numbers."""
    call = _parsed("voice")
    if call is None:
        return _twiml(twiml.apology())
    call_id = _number("c")
    if call_id is None:
        try:
            document = quick_answers().answer(call)
        except Exception:
            # Nothing was stored that the full path would not see: it takes the call over.
            log.exception("voice answer %s: the fast path failed; the full path takes it", request.full_path)
            document = None
        if document is not None:
            return _twiml(document)
    return _answer(lambda d: d.answer(call, call_id, request.args.get("s")))


@bp.post("/webhooks/twilio/voice/step")
@public
def step() -> Response:
    """The keys of a ``<Gather>``, the end of a ``<Record>``, or their silence."""
    call = _parsed("voice")
    call_id, step_no = _number("c"), _number("n")
    if call is None or call_id is None or step_no is None:
        log.warning("voice step without a readable request or call reference: %s", request.full_path)
        return _twiml(twiml.apology())
    signature = request.args.get("s", "")
    try:
        document = quick_steps().step(call, call_id, step_no, signature)
    except Exception:
        # Nothing was stored that the full path would not see: it takes the step over.
        log.exception("voice step %s: the fast path failed; the full path takes it", request.full_path)
        document = None
    if document is not None:
        return _twiml(document)
    return _answer(lambda d: d.step(call, call_id, step_no, signature))


@bp.post("/webhooks/twilio/call-status")
@public
def call_status() -> Response:
    """A call status callback: the call moves forward, a finished call's flow ends.

    A call outside campaigns that ends is only marked here (``ivr.quickstatus``); its flow
    ends within a second, in the scheduler (``ivr.endings``).
    """
    update, call_id = _verified("status"), _number("c")
    try:
        recorded = quick_status().apply(update, call_id)
    except Exception:
        log.exception("call status %s: the fast path failed; the full path takes it", request.full_path)
        recorded = False
    if not recorded:
        apply_status(update, call_id)
    return Response(status=204)


def apply_status(update: Any, call_id: int | None) -> bool:
    """Move a call with a status update, its campaign recipient after it; False for an unknown call."""
    rt = runtime()
    with rt.db.session(write=True) as db:
        call = desk(db).status(update, call_id)
        followed = call_tracking.follow(db, call) if call is not None else None
    call_tracking.after_commit(rt, followed)
    return call is not None
