"""Contacts import and the segment builder in a real headless Chromium.

An operator uploads a CSV with a few bad rows, watches the progress bar reach 100 % while
a real RQ worker imports it, downloads the rejected rows, then builds the segment
``ward=3 AND NOT tag youth`` row by row, sees the live count match the database, and
saves it. Screenshots at a laptop width (1280) and a phone width (390).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.models import Contact, Segment
from bot.segments import count
from tests.campaigns.conftest import World
from tests.web.browser import PHONE

ROWS = [
    ("9876500001", "Asha", "3", "volunteer"),
    ("9876500002", "Bala", "3", "youth"),
    ("not-a-number", "Chitra", "3", ""),
    ("9876500004", "Dev", "4", ""),
    ("9876500001", "Asha twice", "3", ""),
    ("9876500006", "Esha", "3", "youth;volunteer"),
    ("9876500007", "Farid", "3", ""),
    ("12", "Gita", "3", ""),
]
WARD3_NOT_YOUTH = {"all": [{"tag": "ward", "eq": "3"}, {"not": {"tag": "youth"}}]}


def fits(page: Any, width: int) -> bool:
    """Nothing on the page is wider than the window (no sideways scrolling)."""
    return page.evaluate("() => document.documentElement.scrollWidth") <= width


def run_worker(world: World) -> None:
    import worker

    # On this (the main) thread: RQ installs signal handlers. The page keeps polling meanwhile.
    with world.app.app_context():
        assert worker.run_worker(burst=True, rt=world.rt) == 0


def test_import_then_build_and_save_a_segment(world: World, open_console, shots, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upload = tmp_path / "ward-voters.csv"
    with upload.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phone", "name", "ward", "tags"])
        writer.writerows(ROWS)

    watched = open_console("operator")
    page = watched.page
    page.get_by_role("link", name="Contacts", exact=True).click()
    page.get_by_role("link", name="Import contacts").click()
    page.get_by_label("File (CSV or TXT)").set_input_files(str(upload))
    page.get_by_label("Tags for every contact (optional)").fill("drive=nov")
    shots(page, "import-form")
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/contacts/import/import-*")
    assert page.locator("[data-field='state']").inner_text() == "queued"
    assert page.locator("progress[data-bar]").get_attribute("value") == "0.0"
    shots(page, "import-queued")

    run_worker(world)
    page.wait_for_function("() => document.querySelector('progress[data-bar]').value === 100", timeout=15_000)
    assert page.locator("[data-field='state']").inner_text() == "finished"
    counts = {f: page.locator(f"[data-field='{f}']").inner_text() for f in ("rows", "imported", "updated", "rejected")}
    assert counts == {"rows": "8", "imported": "5", "updated": "0", "rejected": "3"}
    assert page.locator("[data-when='waiting']").is_hidden()
    shots(page, "import-done")
    page.set_viewport_size(PHONE)
    assert fits(page, PHONE["width"])
    shots(page, "import-done")
    page.set_viewport_size({"width": 1280, "height": 800})

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the rejected rows (CSV)").click()
    assert download.value.suggested_filename == "ward-voters.rejects.csv"
    table = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert table[0] == ["line", "reason", "phone", "name", "ward", "tags"]
    assert [(r[0], r[2], r[3]) for r in table[1:]] == [
        ("4", "not-a-number", "Chitra"),
        ("6", "9876500001", "Asha twice"),
        ("9", "12", "Gita"),
    ]
    assert table[2][1] == "duplicate of line 2" and all(r[1] for r in table[1:])

    # The segment builder: ward = 3, and not the tag youth.
    page.get_by_role("link", name="Segments", exact=True).first.click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Group 1, row 1: condition").select_option("valued")
    page.get_by_label("Group 1, row 1: name").fill("ward")
    page.get_by_label("Group 1, row 1: value").fill("3")
    page.get_by_role("button", name="+ condition").click()
    page.get_by_label("Group 1, row 2: is or is not").select_option("not")
    page.get_by_label("Group 1, row 2: name").fill("youth")
    page.wait_for_function(
        "() => document.querySelector('[data-description]').textContent === 'ward = 3 and not youth'"
    )
    with world.rt.db.session() as s:
        expected = count(s, WARD3_NOT_YOUTH)
        names = set(s.scalars(select(Contact.name).where(Contact.phone.in_(["+919876500001", "+919876500007"]))))
    assert expected == 2 and names == {"Asha", "Farid"}
    assert page.locator("[data-count]").inner_text() == str(expected)
    preview = page.locator("[data-preview] tbody tr")
    assert preview.count() == expected
    assert {preview.nth(i).locator("td").nth(1).inner_text() for i in range(expected)} == names
    # A mistake is named at once, and the count says it cannot count.
    page.get_by_label("Group 1, row 1: value").fill("")
    page.wait_for_function("() => !document.querySelector('[data-error]').hidden")
    assert page.locator("[data-error]").inner_text() == "group 1, row 1: value: required"
    assert page.locator("[data-count]").inner_text() == "—"
    assert page.locator("[data-row]").nth(0).get_attribute("aria-invalid") == "true"
    shots(page, "segment-error")
    page.get_by_label("Group 1, row 1: value").fill("3")
    page.wait_for_function("() => document.querySelector('[data-error]').hidden")
    page.wait_for_function(f"() => document.querySelector('[data-count]').textContent === '{expected}'")
    shots(page, "segment-builder")

    page.get_by_label("Segment name").fill("Ward 3 non-youth")
    page.get_by_role("button", name="Save segment").click()
    assert page.locator(".flash.info").inner_text() == "Saved “Ward 3 non-youth”: ward = 3 and not youth."
    with world.rt.db.session() as s:
        assert s.scalar(select(Segment.spec).where(Segment.name == "Ward 3 non-youth")) == WARD3_NOT_YOUTH
    assert page.locator("[data-count]").inner_text() == str(expected)
    shots(page, "segment-saved")

    page.set_viewport_size(PHONE)
    assert fits(page, PHONE["width"])
    shots(page, "segment-saved")
    page.set_viewport_size({"width": 1280, "height": 800})

    # The contacts list filtered by the saved segment.
    page.goto("/contacts?segment=Ward+3+non-youth")
    assert page.locator("tbody tr").count() == expected
    shots(page, "contacts-by-segment")
    page.get_by_role("link", name="Segments", exact=True).first.click()
    assert "ward = 3 and not youth" in page.locator("tr[data-segment]").inner_text()
    # The only refused requests: the counts asked while the value was missing (422, shown above).
    assert [p for p in watched.problems if not (p.startswith("422 ") and "/segments/count?" in p)] == []
