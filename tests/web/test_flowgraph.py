"""The server-side flow graph: well-formed, accessible SVG for every demo flow, laid out without overlaps."""

from __future__ import annotations

import itertools
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bot.engine import Flow, load_path, load_text
from web.console.flowgraph import NODE_H, NODE_W, edges, render_svg

FLOWS = sorted((Path(__file__).resolve().parents[2] / "flows").glob("*.yaml"))
SVG = "{http://www.w3.org/2000/svg}"


def parse(flow: Flow) -> ET.Element:
    return ET.fromstring(str(render_svg(flow)))


def boxes(root: ET.Element) -> dict[str, tuple[float, float]]:
    found = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "fg-node":
            rect = g.find(f"{SVG}rect")
            assert rect is not None
            found[g.get("data-node", "")] = (float(rect.get("x", 0)), float(rect.get("y", 0)))
    return found


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.stem)
def test_every_demo_flow_draws_as_well_formed_accessible_svg(path: Path) -> None:
    flow = load_path(path)
    root = parse(flow)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("aria-labelledby") == "fg-title fg-desc"
    assert root.findtext(f"{SVG}title") == f"Graph of the flow {flow.name}"
    desc = root.findtext(f"{SVG}desc") or ""
    assert desc.startswith(f"Starts at {flow.start}.")
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    assert root.get("viewBox") == f"0 0 {width:.0f} {height:.0f}"
    placed = boxes(root)
    assert set(placed) == set(flow.nodes)
    # Every box lies inside the drawing, and no two boxes overlap.
    for x, y in placed.values():
        assert x >= 0 and x + NODE_W <= width and y >= 0 and y + NODE_H <= height
    for (a, (ax, ay)), (b, (bx, by)) in itertools.combinations(placed.items(), 2):
        assert abs(ax - bx) >= NODE_W or abs(ay - by) >= NODE_H, f"{a} overlaps {b}"
    drawn = {(p.get("data-from"), p.get("data-to")) for p in root.iter(f"{SVG}path") if p.get("data-from")}
    assert drawn == {(n.id, target) for n in flow.nodes.values() for target, _ in n.exits()}
    steps = {g.get("data-node"): g.get("data-funnel") for g in root.iter(f"{SVG}g") if g.get("data-funnel")}
    assert steps == {n.id: n.funnel for n in flow.nodes.values() if n.funnel}


def test_choice_keys_and_failure_exits_label_the_edges() -> None:
    flow = load_path(next(p for p in FLOWS if p.stem == "booth_locator"))
    labels = {(e.source, e.target): e.label for e in edges(flow)}
    assert labels[("knows", "thanks")] == "1"
    assert labels[("knows", "epic")] == "2"
    assert labels[("knows", "human")] == "fail"
    assert labels[("knows", "reminder")] == "timeout"
    assert labels[("lookup", "lookup_failed")] == "error"
    assert labels[("welcome", "knows")] == ""
    texts = {t.text for t in parse(flow).iter(f"{SVG}text")}
    assert {"1", "2", "fail", "timeout", "error", "ask", "◆ greeted", "start"} <= texts
    # The reminder goes back up to the question: drawn dashed.
    back = [p for p in parse(flow).iter(f"{SVG}path") if "fg-back" in (p.get("class") or "")]
    assert [(p.get("data-from"), p.get("data-to")) for p in back] == [("reminder", "knows")]


def test_branches_loops_and_markup_in_names_are_drawn_safely() -> None:
    flow = load_text(
        """flow: odd
start: ab
nodes:
  ab:
    split: random
    branches:
      - {weight: 3, next: again}
      - {weight: 1, next: test}
  again:
    ask: "<b>Again?</b> & more"
    choices:
      - {key: "1", next: again}
      - {key: "2", next: test}
  test:
    split:
      - {when: "vars.x == '<script>'", next: done}
    next: done
  done:
    say: bye
    end: true
"""
    )
    labels = {(e.source, e.target): (e.label, e.detail) for e in edges(flow)}
    assert labels[("ab", "again")] == ("75%", "75%")
    assert labels[("again", "again")] == ("1", "1")
    assert labels[("test", "done")] == ("vars.x == '<scr… · else", "vars.x == '<script>' · else")
    svg = str(render_svg(flow))
    assert "<script>" not in svg and "<b>" not in svg
    root = ET.fromstring(svg)
    assert "&" in "".join(root.itertext())
    assert set(boxes(root)) == {"ab", "again", "test", "done"}


def test_a_long_flow_draws_quickly() -> None:
    body = "".join(f"  n{i}:\n    say: step {i}\n    next: n{i + 1}\n" for i in range(499))
    flow = load_text(f"flow: long\nstart: n0\nnodes:\n{body}  n499:\n    say: last\n    end: true\n")
    began = time.monotonic()
    root = parse(flow)
    assert time.monotonic() - began < 5
    assert len(boxes(root)) == 500
