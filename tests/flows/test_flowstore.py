from pathlib import Path

from sqlalchemy import select

from bot.flowstore import load_stored
from bot.models import FlowVersion

FLOW = 'flow: hello\nstart: a\nnodes:\n  a: {say: "{greeting}", end: true}\n'


def test_load_stores_changed_flows_as_new_versions(app, cli, tmp_path: Path) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(FLOW.replace("{greeting}", "Hello"))
    first = cli("flows", "load", str(path))
    assert first.exit_code == 0, first.output
    assert first.output.startswith("stored    hello v1")
    assert cli("flows", "load", str(path)).output.startswith("unchanged hello v1")
    path.write_text(FLOW.replace("{greeting}", "Namaste"))
    assert cli("flows", "load", str(tmp_path)).output.startswith("stored    hello v2")
    db = app.extensions["canvass"].db
    with db.session() as s:
        assert [v.version for v in s.scalars(select(FlowVersion).order_by(FlowVersion.version))] == [1, 2]
        # Each version stays as it was: a session started on v1 finishes on v1.
        v1 = load_stored(s, "hello", 1)
        newest = load_stored(s, "hello")
    assert v1.nodes["a"].text == "Hello" and newest.nodes["a"].text == "Namaste"
    assert v1.version != newest.version


def test_an_invalid_file_stores_nothing(app, cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(FLOW.replace("{greeting}", "Hi"))
    (tmp_path / "b.yaml").write_text("flow: b\nstart: x\nnodes:\n  x: {say: hi, next: y}\n")
    result = cli("flows", "load", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'b.yaml'}:4:22: node 'x' goes to 'y', which does not exist" in result.output
    with app.extensions["canvass"].db.session() as s:
        assert s.scalars(select(FlowVersion)).first() is None


def test_two_files_with_one_name_are_refused(app, cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(FLOW.replace("{greeting}", "A"))
    (tmp_path / "b.yaml").write_text(FLOW.replace("{greeting}", "B"))
    result = cli("flows", "load", str(tmp_path))
    assert result.exit_code == 1
    assert "flow name(s) used by more than one file: hello" in result.output
