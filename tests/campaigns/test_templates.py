"""Templates: the file format with problems at their lines, language versions, immutability."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.engine.errors import FlowInvalid
from campaigns import templates
from campaigns.models import Template, TemplateVersion
from tests.campaigns.conftest import EXAMPLES

GOOD = """
template: reminder_one
channel: whatsapp
category: reminder
languages:
  en:
    body: "Hi {{1}}, polling is on {{2}}."
    samples: {1: Asha, 2: Sunday}
"""


def load(db, text: str):  # type: ignore[no-untyped-def]
    return templates.store(db, templates.parse_file(text, "t.yaml"))


def versions(db, name: str) -> list[tuple[str, int, str, bool]]:  # type: ignore[no-untyped-def]
    rows = db.execute(
        select(TemplateVersion.language, TemplateVersion.version, TemplateVersion.status, TemplateVersion.used_at)
        .join(Template, Template.id == TemplateVersion.template_id)
        .where(Template.name == name)
        .order_by(TemplateVersion.language, TemplateVersion.version)
    )
    return [(lang, v, status, used is not None) for lang, v, status, used in rows]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.template.yaml")), ids=lambda p: p.name)
def test_shipped_templates_parse(path) -> None:  # type: ignore[no-untyped-def]
    assert templates.parse_file(path.read_text(), str(path))["languages"]


def test_problems_at_their_lines() -> None:
    text = "\n".join(
        [
            "template: Bad Name",  # 1
            "channel: whatsapp",  # 2
            "category: gossip",  # 3
            "languages:",  # 4
            "  en:",  # 5
            "    body: 'Hi {{1}} and {{3}}'",  # 6
            "  xx_notalanguage: {body: hi}",  # 7
            "  hi:",  # 8
            "    body: 'नमस्ते {{1}}'",  # 9
            "    buttons: [a, b, c, d]",  # 10
            "    samples: {1: आशा}",  # 11
        ]
    )
    with pytest.raises(FlowInvalid) as raised:
        templates.parse_file(text, "t.yaml")
    lines = [str(p) for p in raised.value.problems]
    assert any(line.startswith("t.yaml:1:11: template:") for line in lines), lines
    assert any(line.startswith("t.yaml:3:11: category:") for line in lines), lines
    assert any(line.startswith("t.yaml:6:11: languages.en.body:") and "gaps" in line for line in lines), lines
    assert any(line.startswith("t.yaml:7:3:") and "not a language code" in line for line in lines), lines
    assert any(line.startswith("t.yaml:10:14: languages.hi.buttons: at most 3") for line in lines), lines


@pytest.mark.parametrize(
    ("languages", "message"),
    [
        ("{en: {body: 'Hi {{1}}'}}", "languages.en.samples: WhatsApp's review needs an example for {{1}}"),
        ("{en: {body: ''}}", "languages.en.body: the message text is required"),
        ("{en: {body: hi, media: {url: 'http://x.org/a.png'}}}", "https://"),
        ("{en: {body: hi, media: {url: 'https://x.org/a.png', kind: gif}}}", "kind must be one of image, video"),
        ("{en: {body: hi, colour: red}}", "languages.en.colour: unknown key"),
        ("{en: {body: hi, buttons: ['a very long button title']}}", "at most 20 characters"),
        ("{en: {body: hi, buttons: ['Yes', ' Yes']}}", "languages.en.buttons: two buttons have the same title"),
    ],
)
def test_version_rules(languages: str, message: str) -> None:
    with pytest.raises(FlowInvalid, match=message.replace("{", r"\{").replace("}", r"\}").replace("(", r"\(")):
        templates.parse_file(f"template: t\nchannel: whatsapp\nlanguages: {languages}\n", "t.yaml")


def test_sms_snippets_need_no_approval_and_have_no_buttons(db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        load(s, "template: s\nchannel: sms\nlanguages: {en: {body: 'Hi {{1}}'}}\n")
        assert versions(s, "s") == [("en", 1, "approved", False)]
    with pytest.raises(FlowInvalid, match="SMS has no buttons"):
        templates.parse_file("template: s\nchannel: sms\nlanguages: {en: {body: hi, buttons: [a]}}\n", "t.yaml")


def test_a_draft_changes_in_place_but_a_used_or_submitted_version_never_does(db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        assert load(s, GOOD).versions == [("en", 1, "new")]
        assert load(s, GOOD).versions == [("en", 1, "unchanged")]
        changed = GOOD.replace("polling is", "voting is")
        assert load(s, changed).versions == [("en", 1, "changed")]  # an unused draft: edited in place
        version = templates.latest_version(s, s.scalar(select(Template.id)), "en")  # type: ignore[arg-type]
        assert version is not None
        templates.approve_in_sandbox(version)
        again = GOOD.replace("polling is", "the poll is")
        assert load(s, again).versions == [("en", 2, "new")]  # approved v1 is kept as it was
        assert versions(s, "reminder_one") == [("en", 1, "approved", False), ("en", 2, "draft", False)]
        assert "voting is" in s.scalar(select(TemplateVersion.body).where(TemplateVersion.version == 1))
        assert templates.latest_version(s, version.template_id, "en", approved=True).version == 1  # type: ignore[union-attr]


def test_a_template_keeps_its_channel(db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        load(s, GOOD)
        with pytest.raises(ValueError, match="is a whatsapp template; it cannot become sms"):
            load(s, "template: reminder_one\nchannel: sms\nlanguages: {en: {body: hi}}\n")


def test_header_and_language_checks_name_their_key() -> None:
    assert templates.header_problems("booth_reminder", "sms", "reminder") == []
    keys = [key for key, _ in templates.header_problems("Booth", "fax", "gossip")]
    assert keys == ["template", "channel", "category"]
    assert templates.language_problem("mr-IN") is None
    assert templates.language_problem("Hindi") == "'Hindi' is not a language code such as en, hi or mr-IN"


@pytest.mark.parametrize(
    ("body", "samples", "filled"),
    [
        ("Hi {{1}}, ward {{2}}", {"1": "Asha", "2": "12"}, "Hi Asha, ward 12"),
        ("Hi {{1}}, ward {{2}}", {"1": "Asha"}, "Hi Asha, ward xxxxxxxxxx"),
        # A malformed placeholder is counted as typed rather than refused (the counter runs while typing).
        ("Hi {{ 1 }} and {{1}}", {"1": "Asha"}, "Hi {{ 1 }} and Asha"),
    ],
)
def test_sample_text_fills_what_an_sms_is_counted_by(body: str, samples: dict[str, str], filled: str) -> None:
    assert templates.sample_text(body, samples) == filled
