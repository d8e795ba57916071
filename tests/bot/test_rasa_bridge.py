"""The rasa-sdk bridge: in-process actions, their mapping to ActionDone, and Rasa's own action server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.engine import load_path, load_text, resume, start
from bot.engine.inputs import ActionDone, Text
from bot.rasa_bridge import ActionRunner, RemoteActionRunner, build_domain
from flows.actions import find_booth

ROOT = Path(__file__).resolve().parents[2]
NOW = "2024-11-01T10:00:00+05:30"
VOLUNTEER_FLOW = """\
flow: volunteer
start: name
nodes:
  name: {ask: "Your name?", save: volunteer_name, next: ward}
  ward: {ask: "Your ward?", expect: number, save: volunteer_ward, next: hours}
  hours: {ask: "Hours a week?", expect: number, save: volunteer_hours, next: check}
  check: {action: validate_volunteer_form, on_error: sorry, next: thanks}
  thanks: {say: "Thank you, {{ vars.volunteer_name }}!", end: true}
  sorry: {say: "Sorry, something went wrong.", end: true}
"""
# A second actions package, written per test run: actions that misbehave on purpose.
ODD_ACTIONS = '''\
"""Actions that misbehave on purpose."""

import asyncio

from rasa_sdk import Action
from rasa_sdk.events import FollowupAction, SlotSet


class ActionBroken(Action):
    def name(self):
        return "action_broken"

    def run(self, dispatcher, tracker, domain):
        return {"booth": 1}["ward"]


class ActionWaitForever(Action):
    def name(self):
        return "action_wait_forever"

    async def run(self, dispatcher, tracker, domain):
        await asyncio.sleep(60)
        return []


class ActionMenu(Action):
    def name(self):
        return "action_menu"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="Pick one", buttons=[{"title": "Yes", "payload": "/y"}, {"title": "No"}])
        dispatcher.utter_message(response="utter_unknown_template")
        dispatcher.utter_message(image="https://example.org/booth.png")
        return [SlotSet("sender", tracker.sender_id), SlotSet("heard", tracker.latest_message["text"]),
                {"event": "active_loop", "name": None}, FollowupAction("result")]
'''


def _state(**answers: Any) -> dict[str, Any]:
    return {"vars": {}, "answers": answers, "contact": {"phone": "+919812345678"}, "channel": "whatsapp"}


@pytest.fixture(scope="module")
def runner() -> Iterator[ActionRunner]:
    with ActionRunner("flows.actions") as bridge:
        yield bridge


@pytest.fixture(scope="module")
def booth_flow(runner: ActionRunner) -> Any:
    return load_path(ROOT / "flows" / "booth_locator.yaml", actions=runner.names())


@pytest.fixture(scope="module")
def volunteer_flow(runner: ActionRunner) -> Any:
    return load_text(VOLUNTEER_FLOW, actions=runner.names())


@pytest.fixture
def odd_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ActionRunner]:
    package = tmp_path / "canvass_odd_actions"
    package.mkdir()
    (package / "__init__.py").write_text(ODD_ACTIONS)
    monkeypatch.syspath_prepend(str(tmp_path))
    with ActionRunner("canvass_odd_actions") as bridge:
        yield bridge


def test_names_are_the_packages_own_actions(runner: ActionRunner, odd_runner: ActionRunner) -> None:
    assert runner.names() == {"action_find_booth", "validate_volunteer_form", "action_slow_demo"}
    # rasa-sdk registers every Action subclass in the process; each runner keeps its package's.
    assert odd_runner.names() == {"action_broken", "action_wait_forever", "action_menu"}
    assert runner.forms == {"volunteer_form": ["volunteer_name", "volunteer_ward", "volunteer_hours"]}


def test_a_missing_package_is_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        ActionRunner("flows.no_such_actions")


def test_find_booth_sets_variables_and_says_so(runner: ActionRunner, booth_flow: Any) -> None:
    done = runner.run("action_find_booth", _state(epic="ABC1234567"), booth_flow)
    assert done == ActionDone(
        variables={"booth_name": "Booth 14, Government Girls School", "booth_address": "Station Road, Ward 7"},
        messages=["Looking that up…"],
    )
    fallback = runner.run("action_find_booth", _state(epic="qwe0000001"), booth_flow)
    name, address = find_booth("QWE0000001")
    assert fallback.variables == {"booth_name": name, "booth_address": address}
    assert name.startswith("Booth ") and fallback.failed is None


def test_find_booth_without_an_epic_is_rejected(runner: ActionRunner, booth_flow: Any) -> None:
    done = runner.run("action_find_booth", _state(), booth_flow)
    assert done == ActionDone(failed="action_find_booth rejected execution: no EPIC number to look up")


def test_the_booth_flow_runs_end_to_end(runner: ActionRunner, booth_flow: Any) -> None:
    sprint = start(booth_flow, {"name": "Asha", "phone": "+919812345678"}, channel="whatsapp", now=NOW)
    sprint = resume(booth_flow, sprint.state, Text("2"), now=NOW)
    sprint = resume(booth_flow, sprint.state, Text("XYZ7654321"), now=NOW)
    requested = [e for e in sprint.events if e.type == "action"]
    assert [(e.node, e.name) for e in requested] == [("lookup", "action_find_booth")]
    done = runner.run(requested[0].name, sprint.state, booth_flow, latest_text="XYZ7654321")
    sprint = resume(booth_flow, sprint.state, done, now=NOW)
    texts = [e.text for e in sprint.events if e.type == "message"]
    assert texts[0] == "Looking that up…"
    assert texts[1].startswith("Your booth is Booth 3, Community Hall, Gandhi Nagar, Ward 12.")
    assert sprint.ended


def test_volunteer_form_keeps_valid_values(runner: ActionRunner, volunteer_flow: Any) -> None:
    state = _state(volunteer_name=" Asha ", volunteer_ward=12, volunteer_hours="6")
    done = runner.run("validate_volunteer_form", state, volunteer_flow)
    assert done == ActionDone(variables={"volunteer_name": "Asha", "volunteer_ward": 12, "volunteer_hours": 6})


def test_volunteer_form_clears_an_invalid_ward_and_says_why(runner: ActionRunner, volunteer_flow: Any) -> None:
    state = _state(volunteer_name="Asha", volunteer_ward=500, volunteer_hours=6)
    done = runner.run("validate_volunteer_form", state, volunteer_flow)
    assert done.variables == {"volunteer_name": "Asha", "volunteer_ward": None, "volunteer_hours": 6}
    assert done.messages == ["Please send your ward number, from 1 to 200."]
    assert done.failed is None
    # The voter answers again: the fresh answer wins over the None the validation set.
    state["vars"]["volunteer_ward"] = None
    state["answers"]["volunteer_ward"] = 7
    assert runner.run("validate_volunteer_form", state, volunteer_flow).variables["volunteer_ward"] == 7


def test_the_volunteer_flow_asks_again_for_an_invalid_ward(runner: ActionRunner) -> None:
    flow = load_path(ROOT / "flows" / "volunteer_signup.yaml", actions=runner.names())
    sprint = start(flow, {"name": "Asha", "phone": "+919812345678"}, channel="sms", now=NOW)
    said: list[str] = []
    # The ward is re-asked after the validation, then the flow goes straight back to the check.
    for reply in ("Asha Devi", "500", "6", "12"):
        sprint = resume(flow, sprint.state, Text(reply), now=NOW)
        while requested := [e for e in sprint.events if e.type == "action"]:
            said += [e.text for e in sprint.events if e.type == "message"]
            done = runner.run(requested[0].name, sprint.state, flow, latest_text=reply)
            sprint = resume(flow, sprint.state, done, now=NOW)
        said += [e.text for e in sprint.events if e.type == "message"]
    assert said[-1].startswith("Welcome aboard, Asha Devi!")
    assert "Please send your ward number, from 1 to 200." in said
    assert sprint.ended and sprint.state["vars"]["volunteer_ward"] == 12


def test_the_domain_has_the_flows_slots_and_forms(runner: ActionRunner, volunteer_flow: Any) -> None:
    domain = runner.domain(volunteer_flow)
    assert domain["actions"] == ["validate_volunteer_form"]
    assert domain["forms"] == {
        "volunteer_form": {"required_slots": ["volunteer_name", "volunteer_ward", "volunteer_hours"]}
    }
    assert domain["slots"]["volunteer_ward"]["mappings"] == [
        {"type": "custom", "conditions": [{"active_loop": "volunteer_form"}]}
    ]
    assert domain["responses"] == {}
    # Without known forms (a remote server), a form requires every slot of the flow.
    assert build_domain(volunteer_flow, {})["forms"]["volunteer_form"]["required_slots"] == [
        "volunteer_name",
        "volunteer_ward",
        "volunteer_hours",
    ]


def test_a_slow_action_times_out(runner: ActionRunner, booth_flow: Any) -> None:
    state = _state()
    state["vars"]["sleep_s"] = 2
    began = time.monotonic()
    done = runner.run("action_slow_demo", state, booth_flow, timeout_s=0.5)
    assert time.monotonic() - began < 1.0
    assert done == ActionDone(failed="action_slow_demo took longer than 0.5 s")


def test_an_async_action_that_overruns_is_cancelled(odd_runner: ActionRunner, booth_flow: Any) -> None:
    done = odd_runner.run("action_wait_forever", _state(), booth_flow, timeout_s=0.3)
    assert done.failed == "action_wait_forever took longer than 0.3 s"
    deadline = time.monotonic() + 2
    while any(t.name == "action action_wait_forever" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the cancelled action's thread is still running"
        time.sleep(0.05)


def test_an_unknown_action_fails(runner: ActionRunner, booth_flow: Any, odd_runner: ActionRunner) -> None:
    assert runner.run("action_nope", _state(), booth_flow) == ActionDone(failed="unknown action 'action_nope'")
    # Registered in the process, but not by this runner's package.
    assert runner.run("action_broken", _state(), booth_flow).failed == "unknown action 'action_broken'"


def test_an_action_that_raises_fails_with_the_exception(odd_runner: ActionRunner, booth_flow: Any) -> None:
    done = odd_runner.run("action_broken", _state(), booth_flow)
    assert done == ActionDone(failed="action_broken raised KeyError: 'ward'")


def test_buttons_images_and_followup(odd_runner: ActionRunner, booth_flow: Any) -> None:
    done = odd_runner.run("action_menu", _state(), booth_flow, latest_text="menu please")
    assert done == ActionDone(
        variables={"sender": "+919812345678", "heard": "menu please"},
        messages=[
            {"text": "Pick one", "choices": [{"key": "1", "label": "Yes"}, {"key": "2", "label": "No"}]},
            "https://example.org/booth.png",
        ],
        followup="result",
    )


# Rasa's own action server, as a subprocess on a free loopback port.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("action_server") / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SANIC_HOST": "127.0.0.1"}
    command = [sys.executable, "-m", "rasa_sdk", "--actions", "flows.actions", "--port", str(port)]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, f"the action server exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"the action server did not start:\n{log_path.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def remote(action_server: str) -> RemoteActionRunner:
    return RemoteActionRunner(action_server)


def test_remote_find_booth_matches_in_process(
    remote: RemoteActionRunner, runner: ActionRunner, booth_flow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses: list[int] = []
    post = remote._post

    def spy(payload: dict[str, Any], timeout_s: float) -> tuple[int, Any]:
        status, body = post(payload, timeout_s)
        statuses.append(status)
        return status, body

    monkeypatch.setattr(remote, "_post", spy)
    state = _state(epic="ABC1234567")
    local = runner.run("action_find_booth", state, booth_flow)
    assert remote.run("action_find_booth", state, booth_flow) == local
    # The server did not have our domain: 449, then the same request with the domain.
    assert statuses == [449, 200]
    other = _state(epic="LMN1112223")
    assert remote.run("action_find_booth", other, booth_flow) == runner.run("action_find_booth", other, booth_flow)
    assert statuses == [449, 200, 200]
    assert remote.names() == runner.names()


def test_remote_failures(remote: RemoteActionRunner, runner: ActionRunner, booth_flow: Any) -> None:
    assert remote.run("action_nope", _state(), booth_flow).failed == "unknown action 'action_nope' on the action server"
    assert remote.run("action_find_booth", _state(), booth_flow) == runner.run(
        "action_find_booth", _state(), booth_flow
    )
    state = _state()
    state["vars"]["sleep_s"] = 1
    began = time.monotonic()
    done = remote.run("action_slow_demo", state, booth_flow, timeout_s=0.3)
    assert time.monotonic() - began < 1.0
    assert done == ActionDone(failed="action_slow_demo took longer than 0.3 s")


def test_remote_server_unreachable(booth_flow: Any) -> None:
    done = RemoteActionRunner(f"http://127.0.0.1:{_free_port()}/webhook").run("action_find_booth", _state(), booth_flow)
    assert done.failed is not None
    assert done.failed.startswith("the action server did not answer: URLError")


def test_remote_endpoint_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        RemoteActionRunner("file:///etc/passwd")


def test_conversation_paused_becomes_a_handoff() -> None:
    from rasa_sdk.events import ConversationPaused, SlotSet

    from bot.rasa_bridge import to_action_done

    done = to_action_done("action_escalate", [ConversationPaused(), SlotSet("reason", "asked")], [])
    assert done.handoff and done.variables == {"reason": "asked"}


def test_an_async_action_runs_even_inside_a_running_event_loop(runner: ActionRunner, booth_flow: Any) -> None:
    """Under an async server (or Playwright's loop in tests) this thread already runs a loop."""
    import asyncio

    async def inside() -> ActionDone:
        return runner.run("action_find_booth", _state(epic="ABC1234567"), booth_flow)

    done = asyncio.run(inside())
    assert done.failed is None and done.variables["booth_name"] == "Booth 14, Government Girls School"
