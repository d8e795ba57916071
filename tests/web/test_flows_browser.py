"""The flows pages in a real headless Chromium: list, graph, and editing the YAML through a mistake to a new version.

Screenshots at a laptop width (1280) and a phone width (390); the folder is printed at the
end of the run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.models import FlowVersion
from tests.campaigns.conftest import World
from tests.web.browser import PHONE

MISTAKE = ("    on_fail: human\n    timeout: 4h", "    on_fail: humann\n    timeout: 4h")
CHANGE = ("Polling day is 20 November.", "Polling day is Wednesday, 20 November.")


def page_width(page: Any) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def unexpected(watched: Any) -> list[str]:
    """The page's problems, but for the refused save (422, on purpose)."""
    return [p for p in watched.problems if not (p.startswith("422 ") and p.endswith("/flows/booth_locator/edit"))]


def stored(world: World) -> list[int]:
    with world.rt.db.session() as db:
        return list(db.scalars(select(FlowVersion.version).where(FlowVersion.name == "booth_locator")))


def test_an_editor_reads_a_flow_fixes_a_mistake_and_saves_a_new_version(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    watched = open_console("editor")
    page = watched.page
    page.get_by_role("link", name="Flows", exact=True).click()
    row = page.locator("table.flows tr[data-flow='booth_locator']")
    assert "v1" in row.inner_text() and "whatsapp" in row.inner_text()
    shots(page, "flows")

    row.get_by_role("link", name="booth_locator").click()
    graph = page.locator("svg.flow-graph")
    graph.wait_for(state="visible")
    assert graph.get_attribute("aria-labelledby") == "fg-title fg-desc"
    assert page.locator("svg.flow-graph g.fg-node").count() == 9
    assert page.locator("g.fg-node[data-node='knows']").is_visible()
    assert page.locator("[data-version]").inner_text() == "v1 · newest"
    shots(page, "flow")

    # A typo in a node name: the save is refused with the line and column, the text is kept.
    page.get_by_role("link", name="Edit YAML").click()
    box = page.locator("#source")
    original = box.input_value()
    assert original.startswith("flow: booth_locator")
    box.fill(original.replace(*MISTAKE))
    page.get_by_role("button", name="Check and save").click()
    problems = page.locator(".problem-list li")
    assert problems.count() == 1
    bad_line = original.split("\n").index("    on_fail: human") + 1
    assert problems.first.inner_text().startswith(f"{bad_line}:14 ")
    assert "humann" in problems.first.inner_text()
    marked = page.locator(".listing li.has-problem")
    assert marked.count() == 1 and marked.get_attribute("id") == f"L{bad_line}"
    assert "humann" in marked.inner_text()
    assert box.input_value() == original.replace(*MISTAKE)
    assert stored(world) == [1]
    # A click on the problem puts the cursor on that line of the text box.
    problems.first.get_by_role("link").click()
    assert page.evaluate("() => document.activeElement.id") == "source"
    before = page.evaluate("() => document.getElementById('source').selectionStart")
    assert box.input_value()[:before].count("\n") == bad_line - 1
    shots(page, "flow-edit-problem")

    # Fixed (and one sentence changed): stored as version 2 and shown.
    box.fill(box.input_value().replace(MISTAKE[1], MISTAKE[0]).replace(*CHANGE))
    page.get_by_role("button", name="Check and save").click()
    page.wait_for_url("**/flows/booth_locator?version=2")
    assert page.locator(".flash").inner_text().startswith("Stored booth_locator v2.")
    assert page.locator("[data-version]").inner_text() == "v2 · newest"
    assert "Wednesday, 20 November" in page.locator(".listing").inner_text()
    assert page.locator("table.versions tbody tr").count() == 2
    assert stored(world) == [1, 2]
    shots(page, "flow-saved")
    assert unexpected(watched) == []


def test_flow_pages_fit_a_phone(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    watched = open_console("editor", PHONE)
    page = watched.page
    page.goto("/flows")
    assert page_width(page) <= PHONE["width"]
    shots(page, "flows")
    page.goto("/flows/booth_locator")
    scroller = page.locator(".graph-scroll")
    scroller.wait_for(state="visible")
    # The page itself does not scroll sideways; the graph scrolls inside its box.
    assert page_width(page) <= PHONE["width"]
    assert scroller.evaluate("(el) => el.scrollWidth > el.clientWidth")
    shots(page, "flow")
    page.goto("/flows/booth_locator/edit")
    box = page.locator("#source")
    box.fill(box.input_value().replace(*MISTAKE))
    page.get_by_role("button", name="Check and save").click()
    assert page.locator(".problem-list li").count() == 1
    assert page_width(page) <= PHONE["width"]
    shots(page, "flow-edit-problem")
    assert unexpected(watched) == []
