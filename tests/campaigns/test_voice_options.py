"""A call campaign's ``voice:`` options: defaults, every mistake named, and the opt-out key's clash check."""

from __future__ import annotations

import pytest

from bot.engine import load_path
from bot.engine.errors import FlowInvalid
from campaigns import spec, voice_options
from tests.campaigns.conftest import ROOT

CALL = """
name: Call
channel: voice
sender: "+919999900003"
flow: ivr_survey
audience: all
"""


def test_a_call_campaign_gets_every_default() -> None:
    assert spec.parse(CALL, "c.yaml")["voice"] == voice_options.DEFAULTS


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("voice: {attempts: 0}", "voice.attempts: a whole number from 1 to 10, got 0"),
        ("voice: {attempts: true}", "voice.attempts: a whole number from 1 to 10, got True"),
        ("voice: {retry_after: 10s}", "voice.retry_after: between 60s and 604800s, got '10s'"),
        ("voice: {ring_timeout: soon}", "voice.ring_timeout: a duration such as 30s, 60m or 2h, got 'soon'"),
        ("voice: {on_machine: shout}", "voice.on_machine: one of continue, hangup, message, got 'shout'"),
        ("voice: {on_machine: message}", "voice.on_machine: message needs voice.machine_message"),
        ("voice: {opt_out_digit: '99'}", "voice.opt_out_digit: one key of 0-9, * or #, got '99'"),
        ("voice: {ring: 30s}", "voice: unknown key 'ring'"),
    ],
)
def test_each_mistake_is_named_with_its_line(block: str, message: str) -> None:
    with pytest.raises(FlowInvalid) as caught:
        spec.parse(CALL + block + "\n", "c.yaml")
    text = str(caught.value)
    assert "c.yaml:7:" in text and message in text, text


def test_voice_options_belong_to_call_campaigns_only() -> None:
    sms = CALL.replace("channel: voice", "channel: sms") + "voice: {attempts: 2}\n"
    with pytest.raises(FlowInvalid, match="only a call campaign"):
        spec.parse(sms, "c.yaml")


def test_hanging_up_on_machines_turns_machine_detection_on() -> None:
    options = voice_options.parse({"on_machine": "hangup"})
    assert options["machine_detection"] is True


def test_an_opt_out_key_that_answers_a_question_is_a_clash() -> None:
    flow = load_path(ROOT / "flows" / "ivr_survey.yaml")
    assert voice_options.clashes({"opt_out_digit": "9"}, flow) == []
    clash = voice_options.clashes({"opt_out_digit": "2"}, flow)
    assert clash[0] == "voice.opt_out_digit: '2' is also an answer to question 'will_vote' of flow ivr_survey"
    assert len(clash) == 3
