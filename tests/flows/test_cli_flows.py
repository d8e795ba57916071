import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CANVASS = Path(sys.executable).with_name("canvass")


def canvass(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CANVASS, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_validate_reports_every_problem_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.yml").write_text("flow: good\nstart: a\nnodes:\n  a: {say: hi, end: true}\n")
    (tmp_path / "sub" / "bad.yaml").write_text(
        "flow: bad\nstart: a\nnodes:\n  a: {say: hi, next: nowhere}\n  b: {say: lonely, end: true}\n"
    )
    result = canvass("flows", "validate", str(tmp_path))
    assert result.returncode == 1
    bad = tmp_path / "sub" / "bad.yaml"
    assert result.stdout.splitlines() == [
        f"{bad}:4:22: node 'a' goes to 'nowhere', which does not exist",
        f"{bad}:5:3: node 'b' can never be reached from start 'a'",
    ]
    assert "2 problem(s) in 1 file(s); 1 file(s) valid" in result.stderr
    ok = canvass("flows", "validate", str(tmp_path / "good.yml"))
    assert ok.returncode == 0 and "ok  " in ok.stderr


def test_validate_with_nothing_to_check(tmp_path: Path) -> None:
    result = canvass("flows", "validate", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: no *.yaml or *.yml files")


def test_simulate_script_json_on_voice() -> None:
    result = canvass(
        "flows",
        "simulate",
        "flows/ivr_survey.yaml",
        "--channel",
        "voice",
        "--script",
        "-",
        "--json",
        stdin="1\n# a comment line is skipped\n9\n2\n3\n",
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["text"] for x in lines if x.get("who") == "voter"] == ["1", "9", "2", "3"]
    assert [x["funnel"] for x in lines if "funnel" in x and "at" in x] == ["started", "q1", "q2", "q3", "completed"]
    assert lines[-1]["status"] == "ended"
    assert lines[-1]["answers"] == {"will_vote": "1", "knows_booth": "2", "transport": "3"}


def test_simulate_stops_cleanly_when_the_script_runs_out() -> None:
    result = canvass("flows", "simulate", "flows/ivr_survey.yaml", "--script", "-", stdin="yes\n")
    assert result.returncode == 0
    assert "voter  yes" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("-- waiting;")


def test_simulate_refuses_a_channel_the_flow_does_not_run_on() -> None:
    result = canvass("flows", "simulate", "flows/grievance_intake.yaml", "--channel", "voice")
    assert result.returncode == 2
    assert "grievance_intake runs on whatsapp, sms" in result.stderr


def test_graph_formats() -> None:
    mermaid = canvass("flows", "graph", "flows/ivr_survey.yaml").stdout
    assert mermaid.startswith("flowchart TD")
    assert "  will_vote --> knows_booth" in mermaid and "  will_vote --> goodbye" in mermaid
    dot = canvass("flows", "graph", "flows/ivr_survey.yaml", "--format", "dot").stdout
    assert dot.startswith('digraph "ivr_survey" {') and '"thanks" [label="thanks (say) · completed"' in dot


def test_subflows_are_checked_across_files_and_simulated(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text(
        "flow: main\nchannels: [sms, voice]\nstart: a\nnodes:\n"
        "  a: {subflow: child, next: b}\n  b: {say: back, next: c}\n  c: {subflow: ghost, end: true}\n"
    )
    (tmp_path / "child.yaml").write_text(
        'flow: child\nchannels: [sms]\nstart: q\nnodes:\n  q: {ask: "Number?", expect: number, save: n, end: true}\n'
    )
    result = canvass("flows", "validate", str(tmp_path))
    assert result.returncode == 1
    main = tmp_path / "main.yaml"
    assert result.stdout.splitlines() == [
        f"{main}:5:16: subflow: 'child' does not run on voice, which this flow does",
        f"{main}:7:16: subflow: no flow named 'ghost' here",
    ]
    sim = canvass("flows", "simulate", str(main), "--channel", "sms", "--script", "-", stdin="42\n")
    assert sim.returncode == 0, sim.stderr
    assert "bot    Number?" in sim.stdout and "bot    back" in sim.stdout
    assert "subflow 'ghost' is not available" in sim.stdout


def test_validate_knows_the_configured_actions(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(
        "flow: f\nstart: a\nnodes:\n  a: {action: action_find_booth, next: b}\n  b: {action: action_nope, end: true}\n"
    )
    assert canvass("flows", "validate", str(flow)).returncode == 0  # no actions configured: names are not checked
    result = canvass("flows", "validate", str(flow), "--actions", "flows.actions")
    assert result.returncode == 1
    assert result.stdout.startswith(f"{flow}:5:15: action: unknown action 'action_nope' (known: action_find_booth")
    bad = canvass("flows", "validate", str(flow), "--actions", "no.such.package")
    assert bad.returncode == 2 and "cannot import 'no.such.package'" in bad.stderr
