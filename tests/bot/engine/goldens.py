"""Run golden cases: a flow, a contact, a channel and voter inputs -> the sprints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bot.engine import inputs, load_text, resume, start

CLOCK = [f"2026-11-23T06:{m:02d}:00Z" for m in range(60)]


def to_input(raw: Any) -> inputs.Input:
    """Read a case's input: text, {digits}, timeout, hangup, {action}, {webhook}."""
    if isinstance(raw, str):
        return {"<timeout>": inputs.Timeout(), "<hangup>": inputs.CallEnded()}.get(raw, inputs.Text(raw))
    if "digits" in raw:
        return inputs.Digits(str(raw["digits"]))
    if "action" in raw:
        return inputs.ActionDone(**raw["action"])
    if "webhook" in raw:
        return inputs.WebhookDone(**raw["webhook"])
    raise ValueError(f"unknown input {raw!r}")


def run_case(case: dict[str, Any]) -> list[dict[str, Any]]:
    """Start the flow, feed every input while the session waits, return each sprint."""
    flow = load_text(case["flow"], f"<{case['name']}>")
    library = {f.name: f for f in (load_text(text, "<library>") for text in case.get("library", []))}
    contact = case.get("contact", {"name": "Asha", "phone": "+919876543210"})
    channel = case.get("channel", "whatsapp")
    sprint = start(flow, contact, channel=channel, now=CLOCK[0], trigger=case.get("trigger"), library=library)
    steps = [_step(sprint)]
    for i, raw in enumerate(case.get("inputs", []), start=1):
        if not sprint.waiting:
            steps.append({"error": f"input {raw!r} given, but the session is {sprint.state['status']}"})
            break
        sprint = resume(flow, sprint.state, to_input(raw), now=CLOCK[i], library=library)
        steps.append(_step(sprint))
    return steps


def _step(sprint: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"events": [e.to_dict() for e in sprint.events], "status": sprint.state["status"]}
    if sprint.state["vars"]:
        out["vars"] = sprint.state["vars"]
    return out


class _Dumper(yaml.SafeDumper):
    """Writes multi-line text (the flows) as readable literal blocks, and never anchors."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def compare_goldens(path: Path, doc: dict[str, Any], compute: Callable[[dict[str, Any]], Any], *, update: bool) -> None:
    """Check every case's ``expect`` against ``compute(case)``; with ``update``, rewrite the file."""
    differ = []
    for case in doc["cases"]:
        got = compute(case)
        if update:
            case["expect"] = got
        elif case.get("expect") != got:
            differ.append(case["name"])
    if update:
        path.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110))
    assert not differ, (
        f"{path.name}: cases differ from their goldens: {differ} (run with --update-goldens, review the diff)"
    )
