"""The examples in flows/README.md load and run, so the reference cannot rot."""

import re
from pathlib import Path

import pytest

from bot.engine import load_text, start
from bot.engine.nodes import REGISTRY

README = Path(__file__).resolve().parents[2] / "flows" / "README.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)


def test_every_node_kind_has_an_example() -> None:
    shown = {kind for block in BLOCKS for kind in REGISTRY if re.search(rf"^\s+{kind}:", block, re.M)}
    assert shown == set(REGISTRY), f"no README example for {sorted(set(REGISTRY) - shown)}"


@pytest.mark.parametrize("block", BLOCKS, ids=[re.search(r"flow: (\S+)", b).group(1) for b in BLOCKS])
def test_example_loads_and_starts(block: str) -> None:
    flow = load_text(block, "README example")
    library = {f.name: f for f in (load_text(b, "README example") for b in BLOCKS)}
    sprint = start(
        flow,
        {"name": "Asha", "phone": "+919876543210", "tags": {"ward": "12"}},
        channel=flow.channels[0],
        now="2026-11-23T06:00:00Z",
        library=library,
    )
    assert sprint.events
    assert not [e for e in sprint.events if e.type == "error"], [e.to_dict() for e in sprint.events]
