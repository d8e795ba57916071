"""canvass flows: validate, simulate and draw bot flows."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from flask.cli import ScriptInfo, with_appcontext
from sqlalchemy.orm import Session

from bot.engine import Flow, FlowInvalid, Problem, inputs, load_path
from bot.engine.events import (
    AnswerSaved,
    FlowEnded,
    FunnelReached,
    InputAwaited,
    MessageSent,
)
from bot.engine.nodes.base import CHANNELS
from bot.flowfiles import flow_files
from bot.flowhost import FlowHost
from bot.flowlibrary import FlowLibrary
from bot.flowstore import load_stored, store
from web.context import runtime

SPECIAL = {"<timeout>": inputs.Timeout(), "<hangup>": inputs.CallEnded()}


@click.group("flows")
def flows_group() -> None:
    """Validate, simulate and draw bot flows (YAML files under flows/)."""


@flows_group.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--actions", "actions_package", metavar="PACKAGE", help="rasa-sdk actions package (default: CANVASS_ACTIONS)."
)
def validate_cmd(paths: tuple[Path, ...], actions_package: str | None) -> None:
    """Check flow files or folders (recursively; default: flows/). Prints path:line:col: message.

    With custom actions configured (CANVASS_ACTIONS, RASA_ACTION_ENDPOINT or --actions),
    an action node naming an unknown action is a problem too.
    """
    problems: list[Problem] = []
    bridge = _actions(actions_package)
    names = _names(bridge)
    files = list(flow_files(paths or (Path("flows"),)))
    if not files:
        raise click.ClickException(f"no *.yaml or *.yml files in {', '.join(map(str, paths or ('flows',)))}")
    good = 0
    checked: list[Flow] = []
    for path in files:
        try:
            flow = load_path(path, actions=names)
        except FlowInvalid as exc:
            problems.extend(exc.problems)
            continue
        good += 1
        checked.append(flow)
        click.echo(f"ok  {path}  ({flow.name}: {len(flow.nodes)} nodes, {', '.join(flow.channels)})", err=True)
    problems.extend(subflow_problems(checked))
    for problem in problems:
        click.echo(str(problem))
    if problems:
        bad = len({p.path for p in problems})
        click.echo(f"{len(problems)} problem(s) in {bad} file(s); {good} file(s) valid", err=True)
        sys.exit(1)


def subflow_problems(flows: list[Flow]) -> list[Problem]:
    """Subflow nodes that call a flow not among ``flows``, or one that misses a channel."""
    by_name = {f.name: f for f in flows}
    problems = []
    for flow in flows:
        for node in flow.nodes.values():
            if node.kind != "subflow":
                continue
            called = by_name.get(node.flow_name)
            if called is None:
                problems.append(Problem(flow.path, node.name_loc, f"subflow: no flow named {node.flow_name!r} here"))
                continue
            missing = [c for c in flow.channels if c not in called.channels]
            if missing:
                message = f"subflow: {node.flow_name!r} does not run on {', '.join(missing)}, which this flow does"
                problems.append(Problem(flow.path, node.name_loc, message))
    return problems


def stored_subflow_problems(session: Session, flow: Flow) -> list[Problem]:
    """A flow's subflow nodes checked against the stored flows (the console's and the API's saves)."""
    others = [f for n, f in FlowLibrary(session).subflows().items() if n != flow.name]
    return [p for p in subflow_problems([flow, *others]) if p.path == flow.path]


def _library(flow: Flow, target: str) -> dict[str, Flow]:
    """The flows beside a flow file (its folder and below), for its subflow nodes."""
    path = Path(target)
    if not path.exists():
        return {}
    library = {}
    for candidate in flow_files([path.parent]):
        try:
            loaded = load_path(candidate)
        except FlowInvalid:
            continue
        library[loaded.name] = loaded
    return library


def _load(target: str) -> Flow:
    """A flow file, or else the newest stored version of the flow named ``target``."""
    path = Path(target)
    try:
        if path.exists():
            return load_path(path)
        if path.suffix in (".yaml", ".yml") or "/" in target:
            raise click.BadParameter(f"{target}: no such file", param_hint="FLOW")
        app = click.get_current_context().ensure_object(ScriptInfo).load_app()
        with app.app_context(), runtime().db.session() as session:
            flow = load_stored(session, target)
    except FlowInvalid as exc:
        raise click.ClickException(f"{target} is not valid:\n{exc}") from None
    if flow is None:
        raise click.BadParameter(f"{target}: no such file, and no stored flow of that name", param_hint="FLOW")
    return flow


@flows_group.command("load")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@with_appcontext
def load_cmd(paths: tuple[Path, ...]) -> None:
    """Store flows (files or folders; default: flows/) as new versions when they changed.

    Every file is checked first; when any is invalid nothing is stored. A running session
    keeps the version it started on.
    """
    files = list(flow_files(paths or (Path("flows"),)))
    if not files:
        raise click.ClickException("no *.yaml or *.yml files to load")
    loaded, problems = [], []
    for path in files:
        try:
            loaded.append((path, load_path(path), path.read_text(encoding="utf-8")))
        except FlowInvalid as exc:
            problems.extend(exc.problems)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"nothing stored: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    names = [flow.name for _, flow, _ in loaded]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise click.ClickException(f"nothing stored: flow name(s) used by more than one file: {', '.join(twice)}")
    with runtime().db.session() as session:
        for path, flow, source in loaded:
            result = store(session, flow, source, path=str(path), by="cli")
            verb = "stored   " if result.changed else "unchanged"
            click.echo(f"{verb} {result.name} v{result.version}  ({path})")


@flows_group.command("simulate")
@click.argument("flow")
@click.option("--channel", type=click.Choice(CHANNELS), default="whatsapp", show_default=True)
@click.option(
    "--script", type=click.File("r", encoding="utf-8"), help="One voter input per line (<timeout>, <hangup>)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a transcript.")
@click.option("--name", default="Test Voter", show_default=True, help="The simulated contact's name.")
@click.option("--phone", default="+919999999999", show_default=True, help="The simulated contact's number.")
@click.option("--language", help="The contact's language (picks the flow's translations), e.g. hi.")
@click.option(
    "--actions", "actions_package", metavar="PACKAGE", help="rasa-sdk actions package (default: CANVASS_ACTIONS)."
)
def simulate_cmd(
    flow: str,
    channel: str,
    script: Any,
    as_json: bool,
    name: str,
    phone: str,
    language: str | None,
    actions_package: str | None,
) -> None:
    """Talk to a flow as a voter: interactively, or with --script FILE (exits 0 when it runs out).

    Custom actions run for real (CANVASS_ACTIONS or RASA_ACTION_ENDPOINT, or --actions),
    and so do webhooks.
    """
    loaded = _load(flow)
    if channel not in loaded.channels:
        raise click.BadParameter(f"{loaded.name} runs on {', '.join(loaded.channels)}", param_hint="--channel")
    out = _Transcript(as_json)
    host = FlowHost(loaded, actions=_actions(actions_package), library=_library(loaded, flow))
    out.events(host.start({"name": name, "phone": phone, "language": language}, channel=channel))
    lines = _script_lines(script) if script else _interactive(channel)
    for line in lines:
        if not host.waiting:
            break
        out.voter(line)
        received = SPECIAL.get(line) or (inputs.Digits(line) if channel == "voice" else inputs.Text(line))
        out.events(host.send(received))
    assert host.sprint is not None
    out.finish(host.sprint.state)
    if hasattr(host.actions, "close"):
        host.actions.close()


def _names(bridge: Any) -> frozenset[str] | None:
    """The known action names (None: not configured, or the server cannot say)."""
    if bridge is None:
        return None
    try:
        return frozenset(bridge.names())
    except (OSError, ValueError) as exc:
        click.echo(f"note: cannot list the action server's actions ({exc}); action names are not checked", err=True)
        return None
    finally:
        if hasattr(bridge, "close"):
            bridge.close()


def _actions(package: str | None) -> Any:
    """The action bridge from --actions, else from the settings (None when none is set)."""
    from bot.rasa_bridge import ActionRunner, RemoteActionRunner

    if package is None:
        settings = click.get_current_context().ensure_object(ScriptInfo).load_app().extensions["canvass"].settings
        package = settings.actions_package
        if package is None and settings.rasa_action_endpoint:
            return RemoteActionRunner(settings.rasa_action_endpoint)
    if package is None:
        return None
    try:
        return ActionRunner(package)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import {package!r}: {exc}", param_hint="--actions / CANVASS_ACTIONS"
        ) from None


def _script_lines(handle: Any) -> Iterator[str]:
    for line in handle:
        line = line.rstrip("\r\n")
        if line.strip().startswith("#") or not line.strip():
            continue
        yield line.strip()


def _interactive(channel: str) -> Iterator[str]:
    hint = "digits" if channel == "voice" else "a reply"
    while True:
        try:
            line = input(f"you ({hint}, Ctrl-D to stop)> ")
        except EOFError:
            return
        yield line.strip()


class _Transcript:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def _json(self, data: dict[str, Any]) -> None:
        click.echo(json.dumps(data, ensure_ascii=False))

    def voter(self, text: str) -> None:
        if self.as_json:
            self._json({"who": "voter", "text": text})
        else:
            click.echo(f"voter  {text}")

    def events(self, events: list[Any]) -> None:
        for e in events:
            if isinstance(e, MessageSent):
                if self.as_json:
                    self._json({"who": "bot", "node": e.node, "text": e.text, "choices": e.choices})
                else:
                    keys = "  [" + " | ".join(f"{c['key']}: {c['label']}" for c in e.choices) + "]" if e.choices else ""
                    click.echo(f"bot    {e.text}{keys}   ({e.node})")
            elif isinstance(e, FunnelReached):
                self._json({"funnel": e.step, "at": e.at}) if self.as_json else click.echo(f"       * funnel: {e.step}")
            elif isinstance(e, AnswerSaved):
                if not self.as_json:
                    click.echo(f"       * saved {e.name} = {e.value!r}")
                else:
                    self._json({"answer": e.name, "value": e.value})
            elif isinstance(e, InputAwaited) and not self.as_json:
                continue  # the prompt above already says the bot waits
            elif isinstance(e, FlowEnded):
                self._json({"end": e.reason}) if self.as_json else click.echo(f"-- ended ({e.reason})")
            elif self.as_json:
                self._json({"event": e.to_dict()})
            else:
                click.echo(f"       * {e.type}: {json.dumps(e.to_dict(), ensure_ascii=False)}")

    def finish(self, state: dict[str, Any]) -> None:
        summary = {
            "status": state["status"],
            "vars": state["vars"],
            "answers": state["answers"],
            "funnel": state["funnel"],
        }
        if self.as_json:
            self._json(summary)
        else:
            click.echo(
                f"-- {state['status']}; answers {json.dumps(state['answers'], ensure_ascii=False)}; "
                f"vars {json.dumps(state['vars'], ensure_ascii=False)}"
            )


@flows_group.command("graph")
@click.argument("flow")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def graph_cmd(flow: str, fmt: str) -> None:
    """Print the flow as a Mermaid or Graphviz graph."""
    loaded = _load(flow)
    click.echo(render_graph(loaded, fmt))


def render_graph(flow: Flow, fmt: str) -> str:
    """Nodes (with their kind) and edges of a flow."""
    lines = ["flowchart TD"] if fmt == "mermaid" else [f'digraph "{flow.name}" {{', "  rankdir=TB;"]
    for node in flow.nodes.values():
        label = f"{node.id} ({node.kind})" + (f" · {node.funnel}" if node.funnel else "")
        if fmt == "mermaid":
            lines.append(f'  {node.id}["{label}"]')
        else:
            lines.append(f'  "{node.id}" [label="{label}", shape={"doublecircle" if node.terminal else "box"}];')
    for node in flow.nodes.values():
        for target, _loc in node.exits():
            lines.append(f"  {node.id} --> {target}" if fmt == "mermaid" else f'  "{node.id}" -> "{target}";')
    if fmt == "dot":
        lines.append("}")
    return "\n".join(lines)


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(flows_group)
