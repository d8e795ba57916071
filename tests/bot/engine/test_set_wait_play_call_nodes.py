"""Parse-time problems of the set, wait, play, record, dial and hangup node kinds."""

from __future__ import annotations

import pytest

from bot.engine import FlowInvalid, load_text

VOICE = "channels: [whatsapp, sms, voice]\n"


def _flow(node: str, header: str = "") -> str:
    return f"flow: t\n{header}start: n\nnodes:\n  n: {node}\n  done: {{say: ok, end: true}}\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(FlowInvalid) as caught:
        load_text(text)
    return [p.message for p in caught.value.problems]


@pytest.mark.parametrize(
    ("node", "header", "expected"),
    [
        ("{set: {}, next: done}", "", "set: a mapping with one or more of vars, fields, language, tags"),
        ("{set: {colour: red}, next: done}", "", "set: unknown key 'colour'"),
        ("{set: {vars: {2x: a}}, next: done}", "", "set.vars: '2x' is not a name"),
        ("{set: {vars: {a: [1]}}, next: done}", "", "set.vars.a: must be text, a number or true/false"),
        ('{set: {fields: {age: "{{ x"}}, next: done}', "", "set.fields.age: template:"),
        ("{set: {language: Hindi}, next: done}", "", "set.language: a code such as en or hi"),
        ("{set: {tags: {add: [Not A Tag]}}, next: done}", "", "set.tags.add: 'Not A Tag' is not a tag"),
        ('{set: {tags: {add: ["ward="]}}, next: done}', "", "set.tags.add: 'ward=': no value"),
        ('{set: {tags: {remove: ["ward=12"]}}, next: done}', "", "remove tags by name, without =value"),
        ("{set: {tags: {add: [x], remove: [x]}}, next: done}", "", "set.tags: 'x' is both added and removed"),
        ("{set: {tags: [x]}, next: done}", "", "set.tags: {add: [tag, name=value], remove: [tag]}"),
        ("{wait: soon, next: done}", "", "wait: must be a duration"),
        ("{wait: 0s, next: done}", "", "wait: must be a duration"),
        ("{play: media/welcome.txt, next: done}", "", "play: 'media/welcome.txt' must end in .mp3"),
        ("{play: /etc/passwd.mp3, next: done}", "", "is neither an http(s) URL nor a relative path"),
        ("{play: ../secret.mp3, next: done}", "", "is neither an http(s) URL nor a relative path"),
        ("{play: ftp://example.org/a.mp3, next: done}", "", "is not an http(s) URL"),
        ("{record: {prompt: hi, max_seconds: 0}, next: done}", VOICE, "max_seconds: must be a whole number"),
        ("{record: {save: 'my audio'}, next: done}", VOICE, "record.save: must be a name"),
        ("{record: {beep: true}, next: done}", VOICE, "record: unknown key 'beep'"),
        ("{record: yes please, next: done}", VOICE, "record: true, or {prompt, max_seconds, save}"),
        ('{dial: {number: "011 2345 6789"}}', VOICE, "dial.number: '011 2345 6789' is not a number"),
        ("{dial: {timeout: 30s}}", VOICE, "number: required"),
        ('{dial: {number: "+911123456789", timeout: 1h}}', VOICE, "dial.timeout: at most 10m"),
        ('{dial: "+911123456789"}', VOICE, "dial: {number:"),
        ("{hangup: false}", VOICE, "hangup: must be true"),
        ("{hangup: true}", "", "hangup: only works on calls"),
        ("{record: true, next: done}", "", "record: only works on calls"),
    ],
)
def test_problem(node: str, header: str, expected: str) -> None:
    problems = _problems(_flow(node, header))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "node",
    [
        '{set: {vars: {booth: "12", n: 3}, fields: {age: "{{ answers.age }}"}, language: hi}, next: done}',
        '{set: {tags: {add: [volunteer, "ward={{ answers.ward }}"], remove: [youth]}}, next: done}',
        "{wait: 2h, next: done}",
        "{play: https://example.org/a.mp3, next: done}",
        "{play: media/welcome.M4A, next: done}",
        '{play: "media/welcome_{{ language }}.wav", next: done}',
        '{record: {prompt: "After the beep", max_seconds: 60, save: grievance_audio}, next: done}',
        '{dial: {number: "+911123456789", timeout: 30s}}',
        '{dial: {number: "{{ vars.office }}"}}',
        "{hangup: true}",
    ],
)
def test_valid(node: str) -> None:
    text = _flow(node, VOICE)
    if "next: done" not in node:
        text = text.replace("  done: {say: ok, end: true}\n", "")  # a terminal node goes nowhere
    assert load_text(text).nodes["n"].kind in ("set", "wait", "play", "record", "dial", "hangup")
