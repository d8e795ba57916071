"""Run rasa-sdk custom actions for a flow's ``action`` nodes; their results become ``ActionDone``.

The engine emits ``ActionRequested(node, name)`` and parks; the host calls ``run`` and
resumes the session with the ``ActionDone`` it returns. ``ActionRunner`` runs the
``CANVASS_ACTIONS`` package in process, each call in a daemon thread with a timeout (a
thread cannot be killed: an overrunning action is abandoned, its late result dropped).
``RemoteActionRunner`` posts to a Rasa action server (``RASA_ACTION_ENDPOINT``).

An action sees: ``sender_id`` = the contact's phone; slots = the session's ``vars`` and
``answers`` merged (answers win, so a re-asked question's fresh answer is not hidden by
the ``None`` a validation set); tracker events ending in one ``SlotSet`` per slot with a
value, as Rasa's form leaves its candidates, so a ``FormValidationAction`` validates every
known value; a domain from the flow (``save`` names and ``set`` vars are slots, each
``validate_<form>`` action a form; no responses).

It returns: ``SlotSet`` events become variables, ``FollowupAction(name)`` the node to go
to, ``ConversationPaused`` a handoff to a person. Each response becomes one text: its
text and an image or attachment URL, its buttons the message's choices (quick replies on
WhatsApp, "1. Yes" lines on SMS, keys on a call); a response with none of those (a
template name) is logged and dropped. A
rejection, an exception (type and message), a timeout or an unknown name becomes
``failed``: an action's failure is data for the flow's ``on_error``.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import copy
import hashlib
import http.client
import importlib
import inspect
import json
import logging
import pkgutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import rasa_sdk
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.interfaces import ActionExecutionRejection

from bot.engine.flow import Flow
from bot.engine.inputs import ActionDone

log = logging.getLogger(__name__)

FORM_PREFIX = "validate_"
# Sent as the caller's Rasa version: the action server warns when major.minor differ from its own.
RASA_VERSION = rasa_sdk.__version__
_TIMED_OUT = object()
Forms = Mapping[str, Sequence[str]]
State = Mapping[str, Any]
# What rasa-sdk's endpoint answers: 400 ActionExecutionRejection, 404 ActionNotFoundException,
# 449 ActionMissingDomainException (handled by re-sending), 500 anything the action raised.
_SERVER_ERRORS = {
    400: "{name} rejected execution: {error}",
    404: "unknown action {name!r} on the action server",
    500: "{name} raised an error on the action server: {error}",
}


class _Bridge(abc.ABC):
    """What both runners share: the request (tracker and domain) an action receives."""

    def __init__(self, forms: Forms | None) -> None:
        self.forms = {form: list(slots) for form, slots in (forms or {}).items()}
        self._domains: dict[tuple[str, str], dict[str, Any]] = {}

    def domain(self, flow: Flow) -> dict[str, Any]:
        """The domain for ``flow``, built once per flow version (see ``build_domain``)."""
        key = (flow.name, flow.version)
        if key not in self._domains:
            self._domains[key] = build_domain(flow, self.forms)
        return self._domains[key]

    def action_call(self, name: str, state: State, flow: Flow, latest_text: str | None) -> dict[str, Any]:
        """The request (next_action, sender_id, tracker, domain, version) ``ActionExecutor.run`` takes."""
        domain = self.domain(flow)
        slots = {**state.get("vars", {}), **state.get("answers", {})}
        latest: dict[str, Any] = {"text": latest_text, "intent": {}, "entities": []}
        events: list[dict[str, Any]] = []
        if latest_text is not None:
            channel = state.get("channel")
            events.append({"event": "user", "text": latest_text, "parse_data": latest, "input_channel": channel})
        events += [SlotSet(slot, value) for slot, value in slots.items() if value is not None]
        form = name.removeprefix(FORM_PREFIX)
        sender = (state.get("contact") or {}).get("phone") or "unknown"
        tracker = {
            "sender_id": sender,
            "slots": slots,
            "latest_message": latest,
            "events": events,
            "paused": False,
            "followup_action": None,
            "active_loop": {"name": form} if name.startswith(FORM_PREFIX) and form in domain["forms"] else {},
            "latest_action_name": "action_listen",
            "stack": [],
        }
        return {"next_action": name, "sender_id": sender, "tracker": tracker, "domain": domain, "version": RASA_VERSION}

    def run(
        self, name: str, state: State, flow: Flow, *, timeout_s: float = 10.0, latest_text: str | None = None
    ) -> ActionDone:
        """Run action ``name`` for a session, waiting at most ``timeout_s``.

        Args:
            name: The action's name (``ActionRequested.name``).
            state: The session state.
            flow: The session's flow.
            timeout_s: How long to wait; an overrunning action is abandoned.
            latest_text: The voter's last message, if any.

        Returns:
            The input to resume the session with; ``failed`` says what went wrong.
        """
        return self._run(name, self.action_call(name, state, flow, latest_text), timeout_s)

    @abc.abstractmethod
    def _run(self, name: str, call: dict[str, Any], timeout_s: float) -> ActionDone:
        """Execute one prepared call (in process, or on an action server)."""


def build_domain(flow: Flow, forms: Forms) -> dict[str, Any]:
    """A minimal domain that rasa-sdk's ``Action``, ``ValidationAction`` and ``FormValidationAction`` accept.

    Args:
        flow: Its nodes' ``save`` names and ``set`` vars become slots, each ``validate_<form>``
            action it runs a form; the ``forms`` not listed require every slot of the flow.
        forms: Known forms' required slots.
    """
    slots: list[str] = []
    actions: list[str] = []
    for node in flow.nodes.values():
        save, variables = getattr(node, "save", None), getattr(node, "vars", None)
        slots += [save] if isinstance(save, str) else []
        slots += list(variables) if isinstance(variables, dict) else []
        action = getattr(node, "name", None) if getattr(node, "kind", None) == "action" else None
        actions += [action] if isinstance(action, str) and action else []
    slots = list(dict.fromkeys(slots))
    used = [name.removeprefix(FORM_PREFIX) for name in actions if name.startswith(FORM_PREFIX)]
    form_slots = {**dict.fromkeys(used, slots), **{f: list(required) for f, required in forms.items()}}
    mappings: dict[str, list[dict[str, Any]]] = {slot: [{"type": "custom"}] for slot in slots}
    for form, required in form_slots.items():
        for slot in required:
            # A form's slots are the form's to validate, not the global ValidationAction's.
            mappings[slot] = [{"type": "custom", "conditions": [{"active_loop": form}]}]
    return {
        "version": "3.1",
        "intents": [],
        "entities": [],
        "slots": {s: {"type": "any", "influence_conversation": False, "mappings": m} for s, m in mappings.items()},
        "responses": {},
        "actions": sorted(set(actions)),
        "forms": {form: {"required_slots": required} for form, required in form_slots.items()},
    }


class ActionRunner(_Bridge):
    """Run the rasa-sdk actions of a Python package in this process."""

    def __init__(self, package: str, *, forms: Forms | None = None) -> None:
        """Import ``package`` and its submodules and register their ``Action`` subclasses.

        Args:
            package: A dotted package name: the ``CANVASS_ACTIONS`` setting, e.g. ``flows.actions``.
            forms: Required slots per form; by default a ``FormValidationAction``'s ``validate_<slot>``
                and ``extract_<slot>`` methods.

        Raises:
            ImportError: The package or one of its modules cannot be imported.
        """
        # register_package calls sys.exit(1) on an ImportError: import first to raise it here.
        _import_tree(package)
        executor = ActionExecutor()
        executor.register_package(package)
        # rasa-sdk registers every Action subclass imported anywhere in the process; keep ours.
        self._actions = {n: fn for n, fn in executor.actions.items() if _belongs(fn, package)}
        self._local = threading.local()
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._loops_lock = threading.Lock()
        owners = [getattr(fn, "__self__", None) for fn in self._actions.values()]
        known = {o.form_name(): _form_slots(type(o)) for o in owners if isinstance(o, FormValidationAction)}
        super().__init__({**known, **(forms or {})})

    def names(self) -> frozenset[str]:
        """The action names, for the flow validator: ``bot.engine.load_text(..., actions=...)``."""
        return frozenset(self._actions)

    def _run(self, name: str, call: dict[str, Any], timeout_s: float) -> ActionDone:
        action = self._actions.get(name)
        if action is None:
            return ActionDone(failed=f"unknown action {name!r}")
        if inspect.iscoroutinefunction(action) and not _loop_running():
            return self._run_here(name, call, timeout_s)
        # A synchronous action blocks whoever runs it, so it runs on a thread of its own
        # that can be abandoned at the deadline (so does an async one when this thread
        # already runs an event loop, as under an async server: it cannot run a second).
        # A fresh executor (it keeps the last domain it saw) and a deep copy of the
        # request: nothing is shared with it.
        executor = ActionExecutor()
        executor.actions = {name: action}
        call = copy.deepcopy(call)
        future: Future[Any] = Future()
        args = (future, executor, call, timeout_s)
        threading.Thread(target=_in_thread, args=args, name=f"action {name}", daemon=True).start()
        concurrent.futures.wait([future], timeout=timeout_s)
        if not future.done():
            return ActionDone(failed=_too_slow(name, timeout_s))
        error = future.exception()
        if isinstance(error, ActionExecutionRejection):
            return ActionDone(failed=f"{name} rejected execution: {error.message}")
        if error is not None:
            log.warning("custom action %s raised %s", name, type(error).__name__, exc_info=error)
            return ActionDone(failed=f"{name} raised {type(error).__name__}: {error}")
        result = future.result()
        if result is _TIMED_OUT:
            return ActionDone(failed=_too_slow(name, timeout_s))
        return to_action_done(name, result.events, result.responses)

    def close(self) -> None:
        """Close the event loops this runner made (one per thread that ran an async action)."""
        with self._loops_lock:
            loops, self._loops = self._loops, []
        for loop in loops:
            if not loop.is_running():
                loop.close()
        self._local = threading.local()

    def __enter__(self) -> ActionRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run_here(self, name: str, call: dict[str, Any], timeout_s: float) -> ActionDone:
        """Run an async action on this thread's own event loop, cancelled at the deadline.

        Handing each call to another thread costs ~90 us of wake-ups, five times the
        executor's own work; an async action can be timed out where it runs. (It must not
        block inside: that is the asyncio contract.) The executor is per thread, so the
        domain it remembers is never another thread's, and the request is built fresh for
        each call, so nothing needs copying.
        """
        local = self._local
        if getattr(local, "loop", None) is None:
            local.loop = asyncio.new_event_loop()
            local.executor = ActionExecutor()
            local.executor.actions = self._actions
            with self._loops_lock:
                self._loops.append(local.loop)
        loop = local.loop
        task = loop.create_task(local.executor.run(call))
        # A timer that cancels the task is cheaper than asyncio.wait_for's extra task.
        deadline = loop.call_later(timeout_s, task.cancel)
        try:
            result = loop.run_until_complete(task)
        except asyncio.CancelledError:
            return ActionDone(failed=_too_slow(name, timeout_s))
        except ActionExecutionRejection as error:
            return ActionDone(failed=f"{name} rejected execution: {error.message}")
        except Exception as error:
            log.warning("custom action %s raised %s", name, type(error).__name__, exc_info=error)
            return ActionDone(failed=f"{name} raised {type(error).__name__}: {error}")
        finally:
            deadline.cancel()
        return _done(name, result)


class RemoteActionRunner(_Bridge):
    """Run actions on a Rasa action server through its HTTP webhook."""

    def __init__(self, endpoint: str, *, forms: Forms | None = None) -> None:
        """Talk to the action server at ``endpoint``.

        Args:
            endpoint: The webhook URL: the ``RASA_ACTION_ENDPOINT`` setting, e.g. ``http://localhost:5055/webhook``.
            forms: Required slots per form; a form not listed requires every slot of the flow.

        Raises:
            ValueError: ``endpoint`` is not an http(s) URL.
        """
        if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError(f"the action endpoint must be an http(s) URL, got {endpoint!r}")
        super().__init__(forms)
        self.endpoint = endpoint

    def names(self, *, timeout_s: float = 10.0) -> frozenset[str]:
        """The action names the server lists at ``GET /actions`` (``OSError`` when it cannot be reached)."""
        url = urllib.parse.urljoin(self.endpoint.rstrip("/"), "actions")
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - scheme checked in __init__
            return frozenset(item["name"] for item in json.loads(response.read()))

    def _run(self, name: str, call: dict[str, Any], timeout_s: float) -> ActionDone:
        """Send the domain as a digest; on HTTP 449 (the server lacks it) send it again with the domain."""
        domain = call.pop("domain")
        call["domain_digest"] = hashlib.sha256(json.dumps(domain, sort_keys=True).encode()).hexdigest()
        try:
            status, body = self._post(call, timeout_s)
            if status == 449:
                status, body = self._post({**call, "domain": domain}, timeout_s)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
                return ActionDone(failed=_too_slow(name, timeout_s))
            return ActionDone(failed=f"the action server did not answer: {type(exc).__name__}: {exc}")
        error = body.get("error") if isinstance(body, dict) else None
        if status == 200 and isinstance(body, dict):
            events, responses = body.get("events"), body.get("responses")
            if isinstance(events, list) and isinstance(responses, list):
                return to_action_done(name, events, responses)
        why = _SERVER_ERRORS.get(status, "the action server answered HTTP {status}: {error}")
        return ActionDone(failed=why.format(name=name, status=status, error=error or "an unexpected body"))

    def _post(self, payload: dict[str, Any], timeout_s: float) -> tuple[int, Any]:
        """POST ``payload`` as JSON; return the status and the decoded body (None if not JSON)."""
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.endpoint, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - checked in __init__
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None


def to_action_done(name: str, events: Sequence[Any], responses: Sequence[Any]) -> ActionDone:
    """Map an action's events and responses to ``ActionDone`` (see the module's docstring).

    Only ``slot``, ``followup``, ``pause`` (a person takes over) and
    ``action_execution_rejected`` events count; a rejection drops the other events, as
    Rasa does.
    """
    variables: dict[str, Any] = {}
    followup: str | None = None
    handoff = False
    for event in events:
        kind = event.get("event") if isinstance(event, dict) else None
        if kind == "slot" and isinstance(event.get("name"), str):
            variables[event["name"]] = event.get("value")
        elif kind == "followup" and isinstance(event.get("name"), str):
            followup = event["name"]
        elif kind == "pause":
            handoff = True
        elif kind == "action_execution_rejected":
            return ActionDone(failed=f"{name} rejected execution")
        else:
            log.info("action %s: ignored event %r", name, kind)
    messages = [message for message in (_message_text(name, r) for r in responses if isinstance(r, dict)) if message]
    return ActionDone(variables=variables, messages=messages, followup=followup, handoff=handoff)


def _done(name: str, result: Any) -> ActionDone:
    return to_action_done(name, result.events, result.responses)


def _message_text(name: str, response: dict[str, Any]) -> str | dict[str, Any] | None:
    """A response as a message: text (and media URLs); buttons become choices (quick replies)."""
    parts = [str(response["text"])] if response.get("text") else []
    parts += [str(response[key]) for key in ("image", "attachment") if response.get(key)]
    choices = [
        {"key": str(number), "label": str(button.get("title") or button.get("payload") or number)}
        for number, button in enumerate(response.get("buttons") or [], start=1)
        if isinstance(button, dict)
    ]
    if not parts and not choices:
        log.warning("action %s: dropped a response without text (the domain has no responses): %r", name, response)
        return None
    text = "\n".join(parts)
    return {"text": text, "choices": choices} if choices else text


def _loop_running() -> bool:
    """True when this thread is inside a running asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_thread(future: Future[Any], executor: ActionExecutor, call: dict[str, Any], limit: float) -> None:
    """Run the executor on a fresh event loop; hand its result or exception to ``future``."""
    try:
        future.set_result(asyncio.run(_bounded(executor.run(call), limit)))
    except BaseException as exc:  # noqa: BLE001 - the action's failure goes to the caller, which reports it
        future.set_exception(exc)


async def _bounded(coroutine: Coroutine[Any, Any, Any], timeout_s: float) -> Any:
    """Await ``coroutine``, cancelling it after ``timeout_s`` so an async action's thread ends too."""
    task = asyncio.ensure_future(coroutine)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        return _TIMED_OUT
    return task.result()


def _too_slow(name: str, timeout_s: float) -> str:
    return f"{name} took longer than {timeout_s:g} s"


def _import_tree(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(getattr(module, "__path__", []), prefix=f"{package}."):
        _import_tree(info.name)


def _belongs(fn: Callable[..., Any], package: str) -> bool:
    owner = getattr(fn, "__self__", None)
    module = type(owner).__module__ if owner is not None else getattr(fn, "__module__", "")
    return module == package or module.startswith(f"{package}.")


def _form_slots(cls: type) -> list[str]:
    """The slots a form validation class handles, in the order its methods are defined."""
    names = [attr for klass in reversed(cls.__mro__) for attr in vars(klass)]
    slots = [n.split("_", 1)[1] for n in names if n.startswith(("validate_", "extract_")) and callable(getattr(cls, n))]
    return list(dict.fromkeys(slots))
