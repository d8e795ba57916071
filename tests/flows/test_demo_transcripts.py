"""Every demo flow in flows/ talked through on each channel it supports; transcripts are goldens.

``pytest --update-goldens`` rewrites tests/flows/testdata/<flow>.yaml's expectations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.engine import inputs, load_path
from bot.flowhost import FlowHost
from bot.rasa_bridge import ActionRunner
from tests.bot.engine.goldens import compare_goldens, to_input

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "testdata"
DEMOS = sorted((ROOT / "flows").glob("*.yaml"))


def _clock() -> Any:
    ticks = iter(f"2026-11-23T06:{m:02d}:00Z" for m in range(60))
    return lambda: next(ticks)


def _webhook(event: Any) -> inputs.WebhookDone:
    return inputs.WebhookDone(status=200, body={"echo": event.url})


def transcript(flow_path: Path, case: dict[str, Any], actions: ActionRunner) -> list[str]:
    flow = load_path(flow_path)
    host = FlowHost(flow, actions=actions, webhook=_webhook, clock=_clock())
    contact = {"name": "Asha", "phone": "+919876543210", "language": case.get("language")}
    lines = _lines(host.start(contact, channel=case["channel"]))
    for raw in case.get("inputs", []):
        if not host.waiting:
            lines.append(f"!! input {raw!r} after the session ended")
            break
        received = to_input(raw)
        if case["channel"] == "voice" and isinstance(received, inputs.Text) and raw not in ("<timeout>", "<hangup>"):
            received = inputs.Digits(str(raw))
        lines.append(f"voter: {raw}")
        lines.extend(_lines(host.send(received)))
    state = host.sprint.state
    lines.append(f"== {state['status']} answers={state['answers']} funnel={state['funnel']}")
    return lines


def _lines(events: list[Any]) -> list[str]:
    out = []
    for e in events:
        d = e.to_dict()
        if d["type"] == "message":
            keys = (
                " [" + " | ".join(f"{c['key']}: {c['label']}" for c in d.get("choices", [])) + "]"
                if d.get("choices")
                else ""
            )
            out.append(f"bot: {d['text']}{keys}")
        elif d["type"] in ("wait_input",):
            continue
        else:
            out.append(
                f"{d['type']}: " + ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("type", "node", "at"))
            )
    return out


@pytest.fixture(scope="module")
def actions() -> Iterator[ActionRunner]:
    with ActionRunner("flows.actions") as bridge:
        yield bridge


def test_every_demo_flow_has_transcripts() -> None:
    missing = [p.stem for p in DEMOS if not (DATA / f"{p.stem}.yaml").exists()]
    assert not missing, f"demo flows without transcript cases: {missing}"


@pytest.mark.parametrize("flow_path", DEMOS, ids=lambda p: p.stem)
def test_demo_transcripts(flow_path: Path, actions: ActionRunner, request: pytest.FixtureRequest) -> None:
    path = DATA / f"{flow_path.stem}.yaml"
    doc = yaml.safe_load(path.read_text())
    flow = load_path(flow_path)
    assert {c["channel"] for c in doc["cases"]} == set(flow.channels), "cover every channel the flow runs on"
    compare_goldens(
        path,
        doc,
        lambda case: transcript(flow_path, case, actions),
        update=request.config.getoption("--update-goldens"),
    )
