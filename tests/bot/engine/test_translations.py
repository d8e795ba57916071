import pytest

from bot.engine import FlowInvalid, inputs, load_text, resume, start

FLOW = """
flow: t
language: en
start: hello
translations:
  hi:
    hello: "नमस्ते {{ contact.name }}!"
    q:
      text: "क्या आप वोट देंगे?"
      on_invalid: "कृपया 1 या 2 भेजें।"
      labels: {"1": "हाँ", "2": "नहीं"}
  mr:
    hello: "नमस्कार {{ contact.name }}!"
nodes:
  hello: {say: "Hello {{ contact.name }}!", next: q}
  q:
    ask: "Will you vote?"
    choices: [{key: "1", label: "Yes", next: bye}, {key: "2", label: "No", next: bye}]
    save: will_vote
  bye: {say: "Thank you.", end: true}
"""


def texts(sprint) -> list[str]:
    return [e.text for e in sprint.events if e.type == "message"]


def test_the_contacts_language_picks_the_translation() -> None:
    flow = load_text(FLOW)
    hi = start(flow, {"name": "Asha", "phone": "+919876543210", "language": "hi-IN"}, channel="sms", now="t")
    assert texts(hi) == ["नमस्ते Asha!", "क्या आप वोट देंगे?"]
    assert [c["label"] for c in hi.events[-2].choices] == ["हाँ", "नहीं"]
    again = resume(flow, hi.state, inputs.Text("maybe"), now="t")
    assert texts(again)[0] == "कृपया 1 या 2 भेजें।"
    # A translated label is a valid answer too; an untranslated node falls back to English.
    done = resume(flow, again.state, inputs.Text("हाँ"), now="t")
    assert done.state["answers"] == {"will_vote": "1"} and texts(done) == ["Thank you."]
    mr = start(flow, {"name": "Ravi", "phone": "+919876543211", "language": "mr"}, channel="sms", now="t")
    assert texts(mr) == ["नमस्कार Ravi!", "Will you vote?"]
    en = start(flow, {"name": "Jo", "phone": "+919876543212"}, channel="sms", now="t")
    assert texts(en) == ["Hello Jo!", "Will you vote?"]


def test_translation_mistakes_are_problems() -> None:
    bad = FLOW.replace("  mr:\n    hello:", "  Marathi!:\n    nowhere:").replace('on_invalid: "', 'colour: "')
    with pytest.raises(FlowInvalid) as err:
        load_text(bad, "t.yaml")
    messages = [p.message for p in err.value.problems]
    assert "translations: hi.q: unknown field 'colour'; use text, on_invalid, labels" in messages
    assert "translations: 'Marathi!' is not a language code such as hi or mr" in messages
