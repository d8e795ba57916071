"""Golden cases for every registered node kind (testdata/<kind>.yaml).

Each case is a flow, a channel and the voter's inputs; ``expect`` holds the sprints.
``pytest --update-goldens`` rewrites the expectations: review them as a diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.engine.nodes import REGISTRY
from tests.bot.engine.goldens import compare_goldens, run_case

DATA = Path(__file__).parent / "testdata"


def _files() -> list[Path]:
    return sorted(DATA.glob("*.yaml"))


def test_every_node_kind_has_golden_cases() -> None:
    missing = [kind for kind in REGISTRY if not (DATA / f"{kind}.yaml").exists()]
    assert not missing, f"node kinds without golden cases in {DATA}: {missing}"
    for path in _files():
        cases = yaml.safe_load(path.read_text())["cases"]
        assert cases, f"{path.name} has no cases"


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.stem)
def test_golden_cases(path: Path, request: pytest.FixtureRequest) -> None:
    doc = yaml.safe_load(path.read_text())
    compare_goldens(path, doc, run_case, update=request.config.getoption("--update-goldens"))
