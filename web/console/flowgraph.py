"""Draw a flow as an SVG graph on the server (the console inlines it: no JavaScript, no CDN).

A small layered layout, top-down: nodes are placed in layers by the longest path from
the start; edges that skip layers pass through invisible points so they route between
nodes; edges that go back up (a reminder returning to its question) are dashed and
enter their target from the side; a few barycentre sweeps order each layer to keep
crossings down. Nodes say their kind, funnel step and whether they end the session;
choice keys, branch conditions and fail / timeout / error label the edges. A title and
a description that reads the graph out in words make it accessible.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from markupsafe import Markup, escape

from bot.engine import Flow

NODE_W, NODE_H, DUMMY_W = 184, 58, 16  # a node's box; the width an edge passing a layer takes
GAP_X, LAYER_H, MARGIN, TOP = 34, 112, 24, 44
# Fill and stroke per node kind (light fills keep the dark text above 4.5:1 contrast).
DEFAULT_COLOURS = ("#f3f5f8", "#5b6475")
COLOURS = {
    "ask": ("#e8f1fb", "#1d4f91"),
    "split": ("#f1ecfb", "#5b3a9e"),
    "subflow": ("#e3f4ec", "#0b6e4f"),
    "handoff": ("#fdf0ef", "#b42318"),
    **dict.fromkeys(("action", "webhook"), ("#fdf3e1", "#8a4b00")),
    **dict.fromkeys(("end", "hangup"), ("#e9ebef", "#1d2433")),
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', sans-serif"


@dataclasses.dataclass(frozen=True)
class Edge:
    """Where a node may go, with the labels of every way there (choice keys, fail, ...)."""

    source: str
    target: str
    label: str
    # The labels in full (a branch's condition is clipped on the drawing).
    detail: str = ""


def edges(flow: Flow) -> list[Edge]:
    """Every edge of the flow, one per (node, target) pair, labels joined."""
    found: list[Edge] = []
    for node in flow.nodes.values():
        labels = _exit_labels(node)
        by_target: dict[str, list[str]] = {}
        for ref in node.exits():
            by_target.setdefault(ref[0], [])
            label = labels.get(ref, "next")
            if label not in by_target[ref[0]]:
                by_target[ref[0]].append(label)
        for target, names in by_target.items():
            # A plain next needs no label unless another way leads to the same node.
            names = [] if names == ["next"] else names
            short = " · ".join(_clip(n, 16) for n in names)
            found.append(Edge(node.id, target, short, " · ".join(names)))
    return found


def _exit_labels(node: Any) -> dict[Any, str]:
    """What each exit of a node means, keyed by the exit's (target, location) reference."""
    labels: dict[Any, str] = {}
    for attr, label in (("on_fail", "fail"), ("on_timeout", "timeout"), ("on_error", "error")):
        if getattr(node, attr, None):
            labels[getattr(node, attr)] = label
    for choice in getattr(node, "choices", None) or []:
        if choice.get("next"):
            labels[choice["next"]] = str(choice["key"])
    branches = getattr(node, "branches", None) or []
    total = sum(b.get("weight", 0) for b in branches) or 1
    for branch in branches:
        if branch.get("next"):
            when = branch.get("when")
            labels[branch["next"]] = " ".join(when.split()) if when else f"{round(100 * branch['weight'] / total)}%"
    if node.kind == "split" and node.next:
        labels[node.next] = "else"
    return labels


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclasses.dataclass
class _Item:
    """A node, or an invisible point of an edge that crosses a layer."""

    key: str
    layer: int
    width: int
    x: float = 0.0


class _Layout:
    """Layers, order and x positions of the nodes and of the points long edges pass."""

    def __init__(self, flow: Flow, graph: list[Edge]) -> None:
        order = self._depth_first(flow, graph)
        finished = {name: i for i, name in enumerate(order["post"])}
        # In a depth-first walk, an edge goes back (closes a loop) when its target finishes after its source.
        self.back = {(e.source, e.target) for e in graph if finished[e.target] >= finished[e.source]}
        layer: dict[str, int] = {}
        rank = {name: i for i, name in enumerate(order["post"][::-1])}
        preds: dict[str, list[str]] = {n: [] for n in flow.nodes}
        for e in graph:
            if (e.source, e.target) not in self.back:
                preds[e.target].append(e.source)
        for name in sorted(flow.nodes, key=rank.__getitem__):
            layer[name] = max((layer[p] + 1 for p in preds[name]), default=0)
        self.items: dict[str, _Item] = {n: _Item(n, layer[n], NODE_W) for n in flow.nodes}
        # An edge over several layers passes invisible points, one per layer in between. A
        # chain runs top-down: an edge going back up is laid out from its target to its source.
        self.chains: dict[tuple[str, str], list[str]] = {}
        for e in graph:
            if e.source == e.target:
                continue  # a node that loops to itself is drawn as a small loop beside it
            upper, lower = (e.target, e.source) if (e.source, e.target) in self.back else (e.source, e.target)
            chain = [upper]
            for depth in range(layer[upper] + 1, layer[lower]):
                key = f"{e.source}>{e.target}#{depth}"
                self.items[key] = _Item(key, depth, DUMMY_W)
                chain.append(key)
            self.chains[(e.source, e.target)] = [*chain, lower]
        self.layers: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
        seen = {name: i for i, name in enumerate(order["pre"])}
        for key in sorted(self.items, key=lambda k: seen.get(k.split(">")[0], 0)):
            self.layers[self.items[key].layer].append(key)
        self._order()
        self._place()

    @staticmethod
    def _depth_first(flow: Flow, graph: list[Edge]) -> dict[str, list[str]]:
        """Pre- and post-order of a depth-first walk from the start (then any node left)."""
        succ: dict[str, list[str]] = {n: [] for n in flow.nodes}
        for e in graph:
            succ[e.source].append(e.target)
        pre: list[str] = []
        post: list[str] = []
        visited = set[str]()
        for root in [flow.start, *flow.nodes]:
            if root in visited:
                continue
            # Iterative, so that a 500-node chain does not hit Python's recursion limit.
            visited.add(root)
            pre.append(root)
            stack = [(root, iter(succ[root]))]
            while stack:
                name, rest = stack[-1]
                child = next(rest, None)
                if child is None:
                    stack.pop()
                    post.append(name)
                elif child not in visited:
                    visited.add(child)
                    pre.append(child)
                    stack.append((child, iter(succ[child])))
        return {"pre": pre, "post": post}

    def _neighbours(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        up: dict[str, list[str]] = {k: [] for k in self.items}
        down: dict[str, list[str]] = {k: [] for k in self.items}
        for chain in self.chains.values():
            for a, b in itertools.pairwise(chain):
                down[a].append(b)
                up[b].append(a)
        return up, down

    def _order(self) -> None:
        """Barycentre sweeps, down then up: each item moves to the mean place of its neighbours."""
        up, down = self._neighbours()
        for sweep in range(6):
            rows = self.layers[1:] if sweep % 2 == 0 else self.layers[-2::-1]
            near = up if sweep % 2 == 0 else down
            for row in rows:
                index = {k: i for r in self.layers for i, k in enumerate(r)}
                centre = {k: sum(index[n] for n in near[k]) / len(near[k]) if near[k] else index[k] for k in row}
                row.sort(key=centre.__getitem__)

    def _place(self) -> None:
        """Set x by relaxation towards the neighbours' centres, keeping order and spacing."""
        up, down = self._neighbours()
        for row in self.layers:
            x = 0.0
            for key in row:
                self.items[key].x = x + self.items[key].width / 2
                x += self.items[key].width + GAP_X
        widest = max((self._row_width(r) for r in self.layers), default=0)
        for row in self.layers:
            shift = (widest - self._row_width(row)) / 2
            for key in row:
                self.items[key].x += shift
        for _ in range(8):
            for row in self.layers:
                for key in row:
                    near = up[key] + down[key]
                    if near:
                        self.items[key].x = sum(self.items[n].x for n in near) / len(near)
                self._spread(row)
        low = min((self.items[r[0]].x - self.items[r[0]].width / 2 for r in self.layers if r), default=0)
        for item in self.items.values():
            item.x += MARGIN - low

    def _spread(self, row: list[str]) -> None:
        """Push items apart (left to right, then back) so that none overlap."""
        for a, b in itertools.pairwise(row):
            least = self.items[a].x + (self.items[a].width + self.items[b].width) / 2 + GAP_X
            self.items[b].x = max(self.items[b].x, least)
        for b, a in itertools.pairwise(row[::-1]):
            most = self.items[b].x - (self.items[a].width + self.items[b].width) / 2 - GAP_X
            self.items[a].x = min(self.items[a].x, most)

    def _row_width(self, row: list[str]) -> float:
        return sum(self.items[k].width for k in row) + GAP_X * max(len(row) - 1, 0)

    def top(self, key: str) -> float:
        """The y of an item's upper edge."""
        return TOP + self.items[key].layer * LAYER_H


def render_svg(flow: Flow) -> Markup:
    """The flow as an accessible SVG document fragment (title, description, labelled parts)."""
    graph = edges(flow)
    lay = _Layout(flow, graph)
    start = lay.items[flow.start]
    parts = [
        f'<g class="fg-start"><text x="{start.x:.1f}" y="{TOP - 26}" text-anchor="middle" font-size="12" '
        f'fill="#0b6e4f" font-weight="600">start</text><path d="M{start.x:.1f},{TOP - 20} V{TOP - 2}" '
        'stroke="#0b6e4f" stroke-width="2" marker-end="url(#fg-arrow)"/></g>'
    ]
    labels: list[tuple[float, float, Edge]] = []
    for source in flow.nodes:
        out = [e for e in graph if e.source == source]
        down = [e for e in out if (e.source, e.target) not in lay.back]
        down.sort(key=lambda e: lay.items[lay.chains[(e.source, e.target)][1]].x)
        for i, e in enumerate(down):
            port = lay.items[source].x - NODE_W / 2 + NODE_W * (i + 1) / (len(down) + 1)
            path, at = _forward_path(lay, e, port)
            parts.append(path)
            if e.label:
                labels.append((*at, e))
        up = [e for e in out if (e.source, e.target) in lay.back]
        for i, e in enumerate(up):
            path, at = _back_path(lay, e, i)
            parts.append(path)
            if e.label:
                labels.append((*at, e))
    drawn, label_end = _labels(labels)
    parts.extend(drawn)
    parts.extend(_node(flow, name, lay) for name in flow.nodes)
    right = max((i.x + i.width / 2 for i in lay.items.values()), default=0)
    width = max(right + MARGIN + 36, label_end + MARGIN)
    height = TOP + len(lay.layers) * LAYER_H - (LAYER_H - NODE_H) + MARGIN
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-labelledby="fg-title fg-desc" '
        f'font-family="{FONT}" data-flow="{escape(flow.name)}">',
        f'<title id="fg-title">Graph of the flow {escape(flow.name)}</title>',
        f'<desc id="fg-desc">{escape(describe(flow, graph))}</desc>',
        '<defs><marker id="fg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5b6475"/></marker></defs>',
    ]
    # Every name and text from the flow went through escape() above.
    return Markup("".join([*head, *parts, "</svg>"]))  # noqa: S704


def _edge(e: Edge, d: str, back: bool = False) -> str:
    return (
        f'<path class="fg-edge{" fg-back" if back else ""}" data-from="{escape(e.source)}" '
        f'data-to="{escape(e.target)}" d="{d}" fill="none" stroke="#8a93a3" stroke-width="1.5"'
        + (' stroke-dasharray="5 3"' if back else "")
        + ' marker-end="url(#fg-arrow)"/>'
    )


def _forward_path(lay: _Layout, e: Edge, port: float) -> tuple[str, tuple[float, float]]:
    """A downward edge from a port on the source's bottom to the target's top; and where its label goes."""
    chain = lay.chains[(e.source, e.target)]
    points = [(port, lay.top(e.source) + NODE_H)]
    for key in chain[1:-1]:
        points += [(lay.items[key].x, lay.top(key)), (lay.items[key].x, lay.top(key) + NODE_H)]
    points.append((lay.items[e.target].x, lay.top(e.target) - 2))
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 == x1:
            d.append(f"L{x1:.1f},{y1:.1f}")
        else:
            mid = (y0 + y1) / 2
            d.append(f"C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} {x1:.1f},{y1:.1f}")
    # The label sits halfway down the first stretch, where the edges of one node have fanned out.
    (x0, y0), (x1, y1) = points[0], points[1]
    return _edge(e, " ".join(d)), ((x0 + x1) / 2, (y0 + y1) / 2 + 4)


def _back_path(lay: _Layout, e: Edge, i: int) -> tuple[str, tuple[float, float]]:
    """An edge going back up: from the source's top, up the gaps between nodes, into the target's side."""
    source, target = lay.items[e.source], lay.items[e.target]
    if e.source == e.target:
        x, y = source.x + NODE_W / 2, lay.top(e.source)
        d = f"M{x - 24:.1f},{y:.1f} V{y - 12:.1f} H{x + 12:.1f} V{y + NODE_H / 2:.1f} H{x + 2:.1f}"
        return _edge(e, d, back=True), (x + 12, y - 12)
    port = source.x + NODE_W / 2 - 18 - 14 * i
    points = [(port, lay.top(e.source))]
    for key in lay.chains[(e.source, e.target)][-2:0:-1]:
        points += [(lay.items[key].x, lay.top(key) + NODE_H), (lay.items[key].x, lay.top(key))]
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    x0, y0 = points[0]
    for x1, y1 in points[1:]:
        d.append(
            f"L{x1:.1f},{y1:.1f}"
            if x0 == x1
            else f"C{x0:.1f},{(y0 + y1) / 2:.1f} {x1:.1f},{(y0 + y1) / 2:.1f} {x1:.1f},{y1:.1f}"
        )
        x0, y0 = x1, y1
    # Into the target's nearer side, through a lane just beside it (never across its box).
    side = 1 if x0 >= target.x else -1
    lane = target.x + side * (NODE_W / 2 + 12 + 6 * (i % 3))
    mid = lay.top(e.target) + NODE_H / 2
    gap = y0 - 10 - 4 * (i % 3)
    end = target.x + side * (NODE_W / 2 + 2)
    d.append(f"L{x0:.1f},{gap:.1f} L{lane:.1f},{gap:.1f} L{lane:.1f},{mid:.1f} L{end:.1f},{mid:.1f}")
    return _edge(e, " ".join(d), back=True), (points[0][0], points[0][1] - 4)


def _labels(found: list[tuple[float, float, Edge]]) -> tuple[list[str], float]:
    """Edge labels on a white ground, pushed apart where labels of one row would overlap."""
    rows: dict[int, list[tuple[float, float, Edge]]] = {}
    for x, y, e in found:
        rows.setdefault(round(y), []).append((x, y, e))
    out = []
    end_x = 0.0
    for row in rows.values():
        row.sort(key=lambda r: r[0])
        placed: list[tuple[float, float, Edge, float]] = []
        for x, y, e in row:
            width = 7 * len(e.label) + 8
            left = x - width / 2
            if placed:
                left = max(left, placed[-1][3] + 4)
            placed.append((left, y, e, left + width))
        for left, y, e, end in placed:
            end_x = max(end_x, end)
            out.append(
                f'<g class="fg-label"><title>{escape(e.source)} → {escape(e.target)}: {escape(e.detail)}</title>'
                f'<rect x="{left:.1f}" y="{y - 12:.1f}" width="{end - left:.0f}" height="16" rx="3" fill="#fff" '
                f'fill-opacity="0.92"/><text x="{(left + end) / 2:.1f}" y="{y:.1f}" text-anchor="middle" '
                f'font-size="12" fill="#1d2433">{escape(e.label)}</text></g>'
            )
    return out, end_x


def _node(flow: Flow, name: str, lay: _Layout) -> str:
    node = flow.nodes[name]
    item = lay.items[name]
    x, y = item.x - NODE_W / 2, lay.top(name)
    fill, stroke = COLOURS.get(node.kind, DEFAULT_COLOURS)
    ends = node.terminal or node.end
    kind = node.kind + (" · ends" if ends and node.kind != "end" else "")
    said = getattr(node, "prompt", None) or getattr(node, "text", None)
    tip = f"{name} ({node.kind})" + (f": {_clip(said, 140)}" if isinstance(said, str) and said else "")
    out = [
        f'<g class="fg-node" data-node="{escape(name)}" data-kind="{escape(node.kind)}"'
        + (f' data-funnel="{escape(node.funnel)}"' if node.funnel else "")
        + f"><title>{escape(tip)}</title>",
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="{NODE_H / 2 if ends else 8:.0f}" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{2.5 if name == flow.start else 1.2}"/>',
        f'<text x="{item.x:.1f}" y="{y + 20:.1f}" text-anchor="middle" font-size="13" font-weight="600" '
        f'fill="#1d2433">{escape(_clip(name, 24))}</text>',
        f'<text x="{item.x:.1f}" y="{y + 36:.1f}" text-anchor="middle" font-size="12" fill="{stroke}">'
        f"{escape(kind)}</text>",
    ]
    if node.funnel:
        out.append(
            f'<text class="fg-funnel" x="{item.x:.1f}" y="{y + 51:.1f}" text-anchor="middle" font-size="11.5" '
            f'font-weight="600" fill="#0b6e4f">◆ {escape(_clip(node.funnel, 22))}</text>'
        )
    out.append("</g>")
    return "".join(out)


def describe(flow: Flow, graph: list[Edge] | None = None) -> str:
    """The graph in words: where it starts and where each node goes (the SVG's description)."""
    graph = edges(flow) if graph is None else graph
    sentences = [f"Starts at {flow.start}."]
    for node in flow.nodes.values():
        out = [f"{e.target} on {e.detail}" if e.detail else e.target for e in graph if e.source == node.id]
        what = f"{node.id} ({node.kind}" + (f", funnel step {node.funnel}" if node.funnel else "") + ")"
        if out:
            sentences.append(f"{what} goes to {', '.join(out)}" + (", or ends." if node.end else "."))
        else:
            sentences.append(f"{what} ends the session.")
    return " ".join(sentences)
