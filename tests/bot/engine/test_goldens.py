"""Golden cases for every registered node kind (testdata/<kind>.yaml).

Each case is a flow, a channel and the voter's inputs; ``expect`` holds the sprints.
``pytest --update-goldens`` rewrites the expectations: review them as a diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.engine.nodes import REGISTRY
from tests.bot.engine.goldens import run_case

DATA = Path(__file__).parent / "testdata"


class _Dumper(yaml.SafeDumper):
    """Writes multi-line text (the flows) as readable literal blocks, and never anchors."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


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
    update = request.config.getoption("--update-goldens")
    failures = []
    for case in doc["cases"]:
        got = run_case(case)
        if update:
            case["expect"] = got
        elif case.get("expect") != got:
            failures.append(case["name"])
    if update:
        path.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110))
    assert not failures, f"{path.name}: cases differ from their goldens: {failures} (run with --update-goldens)"
