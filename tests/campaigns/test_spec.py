"""Campaign spec files: their shape, with every problem at its line."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.engine.errors import FlowInvalid
from campaigns import spec
from tests.campaigns.conftest import EXAMPLES

SPECS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".template.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_examples_parse(path) -> None:  # type: ignore[no-untyped-def]
    text = path.read_text()
    fields = spec.parse(text, str(path))
    assert fields["name"] and fields["channel"] in ("whatsapp", "sms", "voice")


@pytest.mark.parametrize(
    ("value", "per_second"),
    [("10/s", 10.0), ("600/h", 1 / 6), ("30/min", 0.5), ("30 per minute", 0.5), (2, 2.0), ("0.5/s", 0.5)],
)
def test_pace(value: object, per_second: float) -> None:
    assert spec.parse_pace(value) == pytest.approx(per_second)


@pytest.mark.parametrize("value", ["fast", "0/s", "-3/s", "10/day", True, "5000/s"])
def test_bad_pace(value: object) -> None:
    with pytest.raises(ValueError, match="pace"):
        spec.parse_pace(value)


def test_when_needs_an_offset() -> None:
    assert spec.parse_when("2026-12-01T09:00:00+05:30") == dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC)
    assert spec.parse_when("2026-12-01T09:00:00Z").hour == 9
    with pytest.raises(ValueError, match="no UTC offset"):
        spec.parse_when("2026-12-01T09:00:00")
    with pytest.raises(ValueError, match="not an ISO-8601"):
        spec.parse_when("tomorrow")


def test_every_problem_is_reported_at_its_line() -> None:
    text = "\n".join(
        [
            "name: ''",  # 1
            "channel: fax",  # 2
            "template: {name: t}",  # 3
            "variables: {0: {contact: name}}",  # 4
            "audience: {tag: ward, oops: 1}",  # 5
            "pace: quick",  # 6
            "schedule: '2026-12-01 09:00'",  # 7
            "colour: blue",  # 8
            "test: true",  # 9
        ]
    )
    with pytest.raises(FlowInvalid) as raised:
        spec.parse(text, "c.yaml")
    lines = [str(p) for p in raised.value.problems]
    assert any(line.startswith("c.yaml:1:7: name:") for line in lines), lines
    assert any(line.startswith("c.yaml:2:10: channel: must be one of") for line in lines), lines
    assert any(line.startswith("c.yaml:4:") and "numbered from 1" in line for line in lines), lines
    assert any(line.startswith("c.yaml:5:") and "audience" in line for line in lines), lines
    assert any(line.startswith("c.yaml:6:7: pace:") for line in lines), lines
    assert any(line.startswith("c.yaml:7:") and "no UTC offset" in line for line in lines), lines
    assert any(line.startswith("c.yaml:8:1: unknown key 'colour'") for line in lines), lines
    assert any(line.startswith("c.yaml:9:") and "test_numbers" in line for line in lines), lines


def test_audience_is_required_and_all_is_explicit() -> None:
    with pytest.raises(FlowInvalid, match="audience: required"):
        spec.parse("name: x\nchannel: sms\n", "c.yaml")
    assert spec.parse("name: x\nchannel: sms\naudience: all\n", "c.yaml")["segment"] == {}


def test_unsafe_yaml_is_refused() -> None:
    with pytest.raises(FlowInvalid, match="anchors"):
        spec.parse("name: &a x\nchannel: sms\naudience: all\ndescription: *a\n", "c.yaml")
    with pytest.raises(FlowInvalid):
        spec.parse("name: !!python/object/apply:os.system ['true']\nchannel: sms\naudience: all\n", "c.yaml")


def test_windows_blackouts_deadline_and_budget() -> None:
    text = "\n".join(
        [
            "name: x",
            "channel: sms",
            "audience: all",
            "send_window: [india_election, {start: '10:00', end: '18:00'}]",
            "blackouts:",
            "  - {from: '2026-11-18T18:00:00+05:30', to: '2026-11-20T18:00:00+05:30',",
            "     tag: constituency, value: kothrud}",
            "deadline: '2026-11-20T07:00:00+05:30'",
            "budget: 125.50",
        ]
    )
    fields = spec.parse(text, "c.yaml")
    assert fields["send_windows"] == ["india_election", {"start": "10:00", "end": "18:00"}]
    assert fields["blackouts"][0]["value"] == "kothrud" and fields["budget_micros"] == 125_500_000
    assert fields["deadline"] == dt.datetime(2026, 11, 20, 1, 30, tzinfo=dt.UTC)
    with pytest.raises(FlowInvalid, match=r"c.yaml:4:14: send_window\[0\]: unknown preset 'dawn'"):
        spec.parse(text.replace("india_election", "dawn"), "c.yaml")
