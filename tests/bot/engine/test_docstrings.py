"""Every node kind documents itself with a YAML example; the example must load and run."""

from __future__ import annotations

import re
import sys
import textwrap

import pytest
import yaml

from bot.engine import load_text, start
from bot.engine.nodes import REGISTRY

EXAMPLE = re.compile(r"Examples?::\n\n(.*?)(?:\n\S|\Z)", re.S)


def example_flow(kind: str) -> str:
    module = sys.modules[REGISTRY[kind].__module__]
    match = EXAMPLE.search(module.__doc__ or "")
    assert match, f"{module.__name__}: the docstring needs an 'Example::' block of YAML nodes"
    doc = yaml.safe_load(textwrap.dedent(match.group(1)))
    nodes = doc["nodes"]
    # References to nodes the example leaves out become simple endings.
    targets = set(re.findall(r"(?:next|on_fail|on_timeout|on_error): ([A-Za-z][\w-]*)", match.group(1)))
    for name in sorted(targets - set(nodes)):
        nodes[name] = {"say": f"({name})", "end": True}
    channels = ["voice"] if REGISTRY[kind].voice_only else ["whatsapp", "sms"]
    body = {"flow": f"example_{kind}", "channels": channels, "start": next(iter(nodes)), "nodes": nodes}
    return yaml.safe_dump(body, sort_keys=False)


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_docstring_example_loads_and_runs(kind: str) -> None:
    flow = load_text(example_flow(kind), f"<{kind} docstring>")
    # Flows that the example calls by name stand in as one-line flows.
    called = {n.flow_name for n in flow.nodes.values() if n.kind == "subflow"}
    library = {
        name: load_text(
            f"flow: {name}\nchannels: {list(flow.channels)}\nstart: s\nnodes:\n  s: {{say: hi, end: true}}\n"
        )
        for name in called
    }
    sprint = start(
        flow,
        {"name": "Asha", "phone": "+919876543210"},
        channel=flow.channels[0],
        now="2026-11-23T06:00:00Z",
        library=library,
    )
    assert sprint.events, f"the {kind} example produced no events"
    assert not [e for e in sprint.events if e.type == "error"], [e.to_dict() for e in sprint.events]
