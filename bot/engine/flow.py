"""A flow: its header, its nodes, and the checks that run over the whole graph."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from bot.engine import yamlsafe
from bot.engine.errors import FlowInvalid, Loc, Problem
from bot.engine.nodes import REGISTRY, NodeKind
from bot.engine.nodes.base import CHANNELS, NODE_ID, ParseContext
from bot.engine.translations import parse_translations
from bot.engine.triggers import parse_triggers
from bot.engine.yamlsafe import LocDict, LocList

HEADER_KEYS = frozenset(
    {"flow", "description", "language", "channels", "triggers", "start", "expire", "funnel", "translations", "nodes"}
)
COMMON_KEYS = frozenset({"next", "end", "funnel", "note"})
MAX_NODES = 500


@dataclasses.dataclass
class Flow:
    """A validated flow, ready for the engine."""

    name: str
    description: str
    language: str
    channels: tuple[str, ...]
    start: str
    nodes: dict[str, NodeKind]
    funnel: list[str]
    triggers: dict[str, Any]
    expire_s: int | None
    version: str
    path: str
    # language -> node -> field -> text (see bot.engine.translations)
    translations: dict[str, Any] = dataclasses.field(default_factory=dict)


def load_path(path: str | Path, *, actions: frozenset[str] | None = None) -> Flow:
    """Read and check a flow file; raise ``FlowInvalid`` listing every problem."""
    p = Path(path)
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        loc = Loc(raw.count(b"\n", 0, exc.start) + 1, len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1)
        raise FlowInvalid([Problem(str(p), loc, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})")]) from None
    # As read_text would: universal newlines.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return load_text(text, str(p), actions=actions)


def load_text(text: str, path: str = "<flow>", *, actions: frozenset[str] | None = None) -> Flow:
    """Check a flow given as YAML text; raise ``FlowInvalid`` listing every problem."""
    data, problems = yamlsafe.load(text, path)
    if data is None and not problems:
        problems = [Problem(path, Loc(1, 1), "the file is empty")]
    if problems and data is None:
        raise FlowInvalid(problems)
    if not isinstance(data, LocDict):
        raise FlowInvalid([Problem(path, Loc(1, 1), "a flow is a mapping with flow, start and nodes")])
    flow = _build(data, path, problems, actions, hashlib.sha256(text.encode()).hexdigest()[:16])
    if problems:
        raise FlowInvalid(problems)
    assert flow is not None
    return flow


def _build(
    data: LocDict, path: str, problems: list[Problem], actions: frozenset[str] | None, version: str
) -> Flow | None:
    def problem(loc: Loc, message: str) -> None:
        problems.append(Problem(path, loc, message))

    for key in data:
        if key not in HEADER_KEYS:
            problem(data.key_loc(key), f"unknown key {key!r}; a flow has {', '.join(sorted(HEADER_KEYS))}")
    name = data.get("flow")
    if not isinstance(name, str) or not NODE_ID.match(name):
        problem(data.value_loc("flow") if "flow" in data else data.loc, "flow: needs a name such as booth_locator")
        name = "flow"
    # Messaging unless the flow says it runs on calls too: a free-text question cannot
    # be answered on a keypad, so voice is something a flow opts into.
    channels: tuple[str, ...] = ("whatsapp", "sms")
    if "channels" in data:
        raw = data["channels"]
        if not isinstance(raw, LocList) or not raw or any(c not in CHANNELS for c in raw):
            problem(data.value_loc("channels"), f"channels: a list of {', '.join(CHANNELS)}")
        else:
            channels = tuple(raw)
    ctx = ParseContext(path, channels, actions)
    expire = ctx.duration(data, "expire")
    language = data.get("language", "en")
    if not isinstance(language, str):
        problem(data.value_loc("language"), "language: a language code such as en or hi")
        language = "en"
    nodes_raw = data.get("nodes")
    nodes: dict[str, NodeKind] = {}
    # Nodes that did not read cleanly, by name, with what was written: where they go is uncertain.
    unsure: dict[str, Any] = {}
    if not isinstance(nodes_raw, LocDict) or not nodes_raw:
        problem(data.value_loc("nodes") if "nodes" in data else data.loc, "nodes: a mapping of node names to nodes")
        nodes_raw = None
    elif len(nodes_raw) > MAX_NODES:
        problem(data.value_loc("nodes"), f"nodes: at most {MAX_NODES} per flow (split it into subflows)")
        nodes_raw = None
    else:
        for node_id, spec in nodes_raw.items():
            before = len(ctx.problems)
            node = _node(str(node_id), spec, nodes_raw.key_loc(node_id), ctx)
            if node is not None:
                nodes[str(node_id)] = node
            if node is None or len(ctx.problems) > before:
                unsure[str(node_id)] = spec
    problems.extend(ctx.problems)
    start = data.get("start")
    if not isinstance(start, str) or start not in (nodes_raw or {}):
        where = data.value_loc("start") if "start" in data else data.loc
        problem(where, f"start: must name a node, got {start!r}" if "start" in data else "start: required")
        start = None
    funnel = _funnel(data, nodes, problem)
    if nodes_raw is not None:
        # Checked even when other problems were found, so that one run lists every problem.
        _check_graph(nodes, unsure, start, problem)
    triggers = parse_triggers(data, path, problems)
    translations = parse_translations(data, nodes, path, problems)
    if problems or start is None:
        return None
    return Flow(
        name=name,
        description=str(data.get("description", "")),
        language=language,
        channels=channels,
        start=start,
        nodes=nodes,
        funnel=funnel,
        triggers=triggers,
        translations=translations,
        expire_s=expire,
        version=version,
        path=path,
    )


def _node(node_id: str, spec: Any, loc: Loc, ctx: ParseContext) -> NodeKind | None:
    if not NODE_ID.match(node_id):
        ctx.problem(loc, f"node name {node_id!r}: use letters, digits, '_' or '-', starting with a letter")
        return None
    if not isinstance(spec, LocDict):
        ctx.problem(loc, f"node {node_id!r}: must be a mapping such as {{say: Hello}}")
        return None
    kinds = [k for k in spec if k in REGISTRY]
    if not kinds:
        if spec.get("end") is True:
            kinds = ["end"]
        else:
            keys = ", ".join(map(str, spec)) or "nothing"
            ctx.problem(loc, f"node {node_id!r}: unknown kind (has {keys}); use one of {', '.join(sorted(REGISTRY))}")
            return None
    if len([k for k in kinds if k != "end"]) > 1:
        ctx.problem(loc, f"node {node_id!r}: one kind per node, got {', '.join(kinds)}")
        return None
    kind = next((k for k in kinds if k != "end"), "end")
    cls = REGISTRY[kind]
    allowed = cls.keys | COMMON_KEYS | {kind}
    for key in spec:
        if key not in allowed:
            ctx.problem(spec.key_loc(key), f"{kind}: unknown key {key!r}; it takes {', '.join(sorted(allowed))}")
    node = cls(node_id, spec, ctx)
    node.loc = loc  # problems about the node as a whole point at its name
    if not (cls.terminal or node.end or node.next or node.branches_cover()):
        ctx.problem(loc, f"node {node_id!r}: says nowhere to go; add next: <node> or end: true")
    return node


def _funnel(data: LocDict, nodes: dict[str, NodeKind], problem: Any) -> list[str]:
    used = []
    for node in nodes.values():
        if node.funnel and node.funnel not in used:
            used.append(node.funnel)
    if "funnel" not in data:
        return used
    declared = data["funnel"]
    if not isinstance(declared, LocList) or not all(isinstance(s, str) for s in declared):
        problem(data.value_loc("funnel"), "funnel: a list of step names, in order")
        return used
    for step in used:
        if step not in declared:
            problem(data.value_loc("funnel"), f"funnel: step {step!r} is used by a node but not listed here")
    return list(declared)


def _check_graph(nodes: dict[str, NodeKind], unsure: dict[str, Any], start: str | None, problem: Any) -> None:
    """Dangling references, unreachable nodes and closed loops.

    A node that did not read cleanly (``unsure``) already has its problems; it is taken
    to go to every node it names anywhere, so that its mistakes do not also make the
    nodes after it look unreachable, and it never counts as part of a closed loop.
    """
    names = set(nodes) | set(unsure)
    edges: dict[str, list[str]] = {}
    for node in nodes.values():
        edges[node.id] = []
        for target, loc in node.exits():
            if target not in names:
                problem(loc, f"node {node.id!r} goes to {target!r}, which does not exist")
            else:
                edges[node.id].append(target)
    for node_id, spec in unsure.items():
        edges.setdefault(node_id, []).extend(sorted(_mentions(spec, names)))
    for cycle in _closed_loops(nodes, edges, set(unsure)):
        first = nodes[cycle[0]]
        path = " -> ".join([*cycle, cycle[0]])
        problem(first.loc, f"loop with no way out and no wait: {path} (add an ask, a wait or a branch that leaves)")
    if start is None:
        return
    seen = {start}
    todo = [start]
    while todo:
        for target in edges.get(todo.pop(), []):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for node in nodes.values():
        if node.id not in seen:
            problem(node.loc, f"node {node.id!r} can never be reached from start {start!r}")


def _mentions(value: Any, names: set[str]) -> set[str]:
    """Every node name written as a text anywhere in ``value``."""
    found: set[str] = set()
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, str) and item in names:
            found.add(item)
    return found


def _closed_loops(nodes: dict[str, NodeKind], edges: dict[str, list[str]], unsure: set[str]) -> list[list[str]]:
    """Strongly connected groups of non-waiting nodes that nothing can leave."""
    live = {n for n, node in nodes.items() if not node.waits and not node.terminal and not node.end and n not in unsure}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        # Iterative Tarjan would be longer; flows are small (a few hundred nodes at most).
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in live:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            groups.append(group[::-1])

    for v in sorted(live):
        if v not in index:
            visit(v)
    closed = []
    for group in groups:
        members = set(group)
        looping = len(group) > 1 or group[0] in edges.get(group[0], [])
        leaves = any(t not in members for m in group for t in edges.get(m, []))
        if looping and not leaves:
            closed.append(group)
    return closed
