"""canvass audio upload / prerender, through the real CLI group on each database backend."""

from __future__ import annotations

import re
from pathlib import Path

from tests.campaigns.test_media_files import PNG

ROOT = Path(__file__).resolve().parents[2]


def test_upload_prints_the_name_and_the_public_url(cli, client, tone) -> None:  # type: ignore[no-untyped-def]
    result = cli("audio", "upload", str(tone("greeting.m4a", codec=["-c:a", "aac"])))
    assert result.exit_code == 0, result.output
    name, url = result.output.splitlines()[:2]
    assert name.endswith(".wav") and url == f"http://127.0.0.1:5000/media/{name}"
    assert re.search(r"^2\.0\d s, 8 kHz mono WAV$", result.output, re.M)  # AAC adds a few ms of priming
    served = client.get(f"/media/{name}")
    assert served.status_code == 200 and served.mimetype == "audio/wav" and served.data[:4] == b"RIFF"
    served.close()


def test_upload_with_a_name_for_flows_to_play(cli, client, tone) -> None:  # type: ignore[no-untyped-def]
    result = cli("audio", "upload", str(tone("greeting.mp3")), "--name", "media/welcome_hi.mp3")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == ["welcome_hi.mp3", "http://127.0.0.1:5000/media/welcome_hi.mp3"]
    with client.get("/media/welcome_hi.mp3") as served:
        assert served.status_code == 200 and served.mimetype == "audio/wav" and served.data[:4] == b"RIFF"
    bad = cli("audio", "upload", str(tone("other.mp3")), "--name", "../x.mp3")
    assert bad.exit_code == 1 and bad.output.startswith("Error: --name: '../x.mp3' is not a usable name")
    assert "the recording was stored as " in bad.output


def test_a_bad_upload_exits_1_with_a_one_line_reason(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "greeting.mp3"
    fake.write_bytes(PNG)
    result = cli("audio", "upload", str(fake))
    assert result.exit_code == 1
    assert result.output == "Error: greeting.mp3: not an audio file ffmpeg can read\n"


def test_prerender_a_file_then_the_stored_flow(cli) -> None:  # type: ignore[no-untyped-def]
    survey = str(ROOT / "flows" / "ivr_survey.yaml")
    first = cli("audio", "prerender", survey)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[-1] == "ivr_survey: 8 rendered, 0 cached, 0 dynamic"
    assert "rendering ivr_survey" in first.output  # the progress bar
    assert cli("flows", "load", survey).exit_code == 0
    again = cli("audio", "prerender", "ivr_survey")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == "ivr_survey: 0 rendered, 8 cached, 0 dynamic"


def test_prerender_names_dynamic_prompts_and_unknown_flows(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "hello.yaml"
    flow.write_text(
        "flow: hello\nchannels: [voice]\nstart: hi\nnodes:\n"
        '  hi: {say: "Hello {{ contact.name }}", next: bye}\n  bye: {say: "Bye.", end: true}\n'
    )
    result = cli("audio", "prerender", str(flow))
    assert result.exit_code == 0, result.output
    assert "hello: hi (en) has a template; it is spoken during the call" in result.output
    assert result.output.splitlines()[-1] == "hello: 1 rendered, 0 cached, 1 dynamic"
    missing = cli("audio", "prerender", "no_such_flow")
    assert missing.exit_code == 2 and "no stored flow of that name" in missing.output
