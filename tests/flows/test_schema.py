"""flows/schema.json (for editors) agrees with what the loader accepts."""

import json
import re
from pathlib import Path

import jsonschema
import pytest

from bot.engine import yamlsafe
from bot.engine.nodes import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "flows" / "schema.json").read_text())
README_BLOCKS = re.findall(r"```yaml\n(.*?)```", (ROOT / "flows" / "README.md").read_text(), re.S)
FLOW_FILES = sorted((ROOT / "flows").rglob("*.y*ml"))


def test_schema_is_valid_and_knows_every_kind() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert set(REGISTRY) <= set(SCHEMA["$defs"])


@pytest.mark.parametrize("text", [p.read_text() for p in FLOW_FILES] + README_BLOCKS, ids=lambda t: t.split("\n", 1)[0])
def test_valid_flows_match_the_schema(text: str) -> None:
    # Read as the engine reads it (YAML 1.2 booleans: `yes` stays a word).
    data, problems = yamlsafe.load(text, "flow")
    assert not problems
    jsonschema.validate(data, SCHEMA)


@pytest.mark.parametrize(
    "bad",
    [
        {"flow": "x", "start": "a", "nodes": {"a": {"shout": "hi"}}},
        {"flow": "x", "start": "a", "nodes": {"a": {"say": "hi", "nxt": "b"}}},
        {"flow": "x", "start": "a", "channels": ["fax"], "nodes": {"a": {"end": True}}},
        {"flow": "x", "nodes": {"a": {"end": True}}},
    ],
)
def test_schema_refuses_mistakes(bad: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)
