"""An operator's whole campaign in a real headless Chromium, with a real worker process on real Redis.

All in the browser: contacts imported at /contacts/import (a CSV with two bad rows; the
progress bar reaches 100 % while ``python worker.py --burst`` imports it), the segment
``ward = 3`` built and saved at /segments/new with its live count, then the wizard on the
sandbox WhatsApp sender with that saved segment as the audience and the demo
booth_locator flow, launch, the live progress bar while the worker sends, a voter's
replies in the sandbox simulator, the funnel chart following them, and the funnel CSV
downloaded and read. Every step is saved as a screenshot (var/test-screenshots/journey-*.png).
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bot.segments import count as segment_count
from tests.campaigns.conftest import ROOT, WHATSAPP, World
from tests.conftest import REDIS_URL
from tests.web.browser import PHONE, Watched

VOTERS = """phone,name,ward,consent
+91 98000 00000,Asha,3,opted_in
9800000001,Ravi,3,
not-a-number,Nobody,3,
9800000002,Meena,3,
9800000001,Ravi again,3,
9800000003,Kiran,3,
9800000004,Farah,3,
9800000005,Opted Out,3,opted_out
9800000009,Elsewhere,4,
"""
ASHA = "+919800000000"


def wait_until(check: Any, timeout: float = 10.0, what: str = "the page") -> Any:
    """Poll ``check()`` until it is truthy (the console's CSP refuses Playwright's string predicates)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def count(page: Any, group: str) -> int:
    return int(page.locator(f"#progress [data-count='{group}']").inner_text().replace(",", ""))


def worker(world: World, backend: Any) -> subprocess.Popen[str]:
    """``python worker.py --burst``: a real RQ worker process on the test database and Redis."""
    env = {
        **os.environ,
        "DATABASE_URL": backend.url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test",
        "CANVASS_VAR_DIR": str(world.rt.settings.var_dir),
        "CANVASS_ACTIONS": "flows.actions",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def chart(page: Any) -> list[int] | None:
    """The funnel chart's numbers as Chart.js draws them."""
    return page.evaluate(
        "() => { const c = Chart.getChart(document.getElementById('funnel-chart'));"
        " return c ? c.data.datasets[0].data : null; }"
    )


def finished(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def test_an_operator_runs_a_campaign_from_the_wizard_to_the_export(  # type: ignore[no-untyped-def]
    world: World, backend, open_console, shots, tmp_path: Path
) -> None:
    voters = tmp_path / "voters.csv"
    voters.write_text(VOTERS)

    watched = open_console("operator")
    page = watched.page
    page.on("dialog", lambda dialog: dialog.accept())  # "Start sending now?"

    # 0a. Contacts imported from the browser: the bar reaches 100 % while a worker imports them.
    page.get_by_role("link", name="Contacts", exact=True).click()
    page.get_by_role("link", name="Import contacts").click()
    page.get_by_label("File (CSV or TXT)").set_input_files(str(voters))
    shots(page, "journey-0-import-form")
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/contacts/import/import-*")
    assert page.locator("[data-field='state']").inner_text() == "queued"
    finished(worker(world, backend))
    bar = page.locator("progress[data-bar]")
    wait_until(lambda: bar.evaluate("b => b.value") == 100, timeout=15, what="the import's bar at 100 %")
    assert page.locator("[data-field='state']").inner_text() == "finished"
    counts = {f: page.locator(f"[data-field='{f}']").inner_text() for f in ("rows", "imported", "updated", "rejected")}
    assert counts == {"rows": "9", "imported": "7", "updated": "0", "rejected": "2"}
    shots(page, "journey-0-import-done")

    # 0b. The segment ward = 3, built row by row; its live count is the database's.
    page.get_by_role("link", name="Segments", exact=True).first.click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Group 1, row 1: condition").select_option("valued")
    page.get_by_label("Group 1, row 1: name").fill("ward")
    page.get_by_label("Group 1, row 1: value").fill("3")
    with world.rt.db.session() as s:
        ward3 = segment_count(s, {"tag": "ward", "eq": "3"})
    assert ward3 == 6  # the opted-out voter included: the campaign skips them at launch
    wait_until(lambda: page.locator("[data-count]").inner_text() == str(ward3), what="the builder's live count")
    assert page.locator("[data-description]").inner_text() == "ward = 3"
    page.get_by_label("Segment name").fill("Ward 3")
    page.get_by_role("button", name="Save segment").click()
    assert page.locator(".flash.info").inner_text() == "Saved “Ward 3”: ward = 3."
    shots(page, "journey-0-segment")

    page.get_by_role("link", name="Campaigns", exact=True).click()
    page.get_by_role("link", name="New campaign").click()

    # 1. Basics: the sender list follows the channel.
    assert page.locator("nav .steps li.current").inner_text().split() == ["1", "Basics"]
    page.get_by_label("Name", exact=True).fill("Ward 3 booth reminder")
    page.get_by_label("Description").fill("Who knows their booth, before polling day")
    assert page.locator("optgroup[data-channel='sms']").evaluate("g => g.hidden")
    page.get_by_label("Sender").select_option(label=f"{WHATSAPP} · sandbox")
    shots(page, "journey-1-basics")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/edit/audience")
    assert page.locator(".flash.info").inner_text().startswith("Draft campaign")

    # 2. Audience: the saved segment, counted as it is chosen.
    page.get_by_label("A saved segment").select_option("Ward 3")
    wait_until(lambda: page.locator("[data-audience-count]").inner_text() == "5 contacts", what="the live count")
    # Everyone: the opted-out voter is then skipped at launch, with its code.
    page.get_by_label("Consent", exact=True).select_option("any")
    wait_until(lambda: page.locator("[data-audience-count]").inner_text() == "6 contacts", what="the recount")
    page.locator("#exclude").fill("bad tag!")
    # A mistake is named under its field as it is typed.
    note = page.locator("#err-exclude")
    wait_until(lambda: note.count() and "tag name 'bad tag!'" in note.inner_text(), what="the error under the field")
    assert page.locator("#exclude").get_attribute("aria-invalid") == "true"
    assert page.locator("[data-audience-count]").inner_text() == "—"
    shots(page, "journey-2-audience-error")
    page.locator("#exclude").fill("")
    wait_until(lambda: page.locator("[data-audience-count]").inner_text() == "6 contacts", what="the recount")
    assert note.count() == 0 and not page.get_by_role("button", name="Save and count").is_visible()
    shots(page, "journey-2-audience")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/edit/message")

    # 3. Template and variables: choosing the template shows its placeholders; a missing value is refused.
    page.get_by_label("Approved whatsapp template").select_option(label="booth_reminder · en")
    page.locator("select[name='variables.2.kind']").wait_for()
    page.locator("select[name='variables.1.kind']").select_option("contact:name")
    page.get_by_label("Default for {{1}}").fill("voter")
    page.locator("select[name='variables.2.kind']").select_option("tag")
    page.get_by_role("button", name="Save and continue").click()
    error = page.locator("#err-variables-2")
    assert error.inner_text() == "must be non-empty text"
    assert page.locator("input[name='variables.2.value']").get_attribute("aria-invalid") == "true"
    shots(page, "journey-3-message-error")
    page.get_by_label("Tag, field, answer or text for {{2}}").fill("ward")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/edit/flow")
    page.get_by_role("link", name="3 Message").click()
    assert page.locator("[data-preview]").inner_text().startswith("Namaste Asha! Polling in ward 3")
    shots(page, "journey-3-message")
    page.get_by_role("button", name="Save and continue").click()

    # 4. Flow, with a link to its graph.
    page.wait_for_url("**/edit/flow")
    card = page.locator(".flow-card", has_text="booth_locator")
    assert card.get_by_role("link", name="See its graph").get_attribute("href") == "/flows/booth_locator"
    card.get_by_role("radio").check()
    card.get_by_label("The template asks the question of").select_option("knows")
    shots(page, "journey-4-flow")
    page.get_by_role("button", name="Save and continue").click()

    # 5. Schedule and pace: 2 a second, so the bar is seen moving.
    page.wait_for_url("**/edit/schedule")
    # The audience's zone, as imports derive it from the number (phonenumbers' name for IST).
    assert page.get_by_label("Times on this page are in the time zone").input_value() == "Asia/Calcutta"
    page.get_by_label("Pace", exact=True).fill("2")
    shots(page, "journey-5-schedule")
    page.get_by_role("button", name="Save and continue").click()

    # 6. Budget: no cap; the estimate says no price is set.
    page.wait_for_url("**/edit/budget")
    assert "without a whatsapp price" in page.locator("[data-warnings]").inner_text()
    shots(page, "journey-6-budget")
    page.get_by_role("button", name="Save and continue").click()

    # 7. Review, then launch.
    page.wait_for_url("**/edit/review")
    assert page.locator("[data-voters]").inner_text() == "6"
    assert page.locator("[data-audience]").inner_text().startswith("voters in the saved segment “Ward 3”")
    assert page.locator("[data-problems]").count() == 0
    shots(page, "journey-7-review")
    page.set_viewport_size(PHONE)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shots(page, "journey-7-review")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="Save & launch").click()
    page.wait_for_url(re.compile(r".*/campaigns/\d+$"))
    assert page.locator(".flash").inner_text() == (
        "Launched: 6 recipients, 5 to send in 1 batch(es); skipped: opted_out 1."
    )
    assert count(page, "pending") == 5 and count(page, "skipped") == 1
    campaign_id = int(page.url.rsplit("/", 1)[1])

    # A real worker sends while the page polls; the bar moves until the campaign completes.
    sending = worker(world, backend)
    try:
        wait_until(lambda: count(page, "completed") > 0, timeout=60, what="the first send")
        if count(page, "completed") < 5:
            shots(page, "journey-8-sending")
        wait_until(lambda: count(page, "completed") == 5, timeout=30, what="every send")
        wait_until(lambda: page.locator("[data-status-badge]").first.inner_text() == "completed", what="completed")
    finally:
        out = finished(sending)
    assert f"campaign {campaign_id} batch 0: {{'delivered': 5}}" in out
    assert count(page, "pending") == 0
    assert page.locator("#progress [data-seg='completed']").get_attribute("width") == f"{100 * 5 / 6:.2f}"
    shots(page, "journey-8-completed")

    # The funnel chart, drawn: every voter sent the template reached "answered"'s question.
    page.locator("#funnel-chart").wait_for(state="visible")
    assert wait_until(lambda: chart(page), what="the chart") == [0, 5, 0, 0]

    # A voter answers in the sandbox simulator (another tab): "No", then their EPIC number.
    sandbox = Watched(page.context.new_page())
    voter = sandbox.page
    voter.goto("/sandbox")
    voter.get_by_label("Voter's number").fill("9800000000")
    voter.get_by_role("button", name="Open").click()
    assert "Namaste Asha! Polling in ward 3" in voter.locator(".chat").inner_text()
    voter.get_by_role("button", name="No", exact=True).click()
    assert "Please send your EPIC" in voter.locator(".chat").inner_text()
    finished(worker(world, backend))  # the bot's replies are sent by the worker too
    voter.get_by_label(f"Reply as {ASHA}").fill("ABC1234567")
    voter.get_by_role("button", name="Send", exact=True).click()
    finished(worker(world, backend))
    voter.reload()
    assert "Your booth is" in voter.locator(".chat").inner_text()
    assert "pending" not in voter.locator(".chat .meta").all_inner_texts()[-1]
    shots(voter, "journey-9-sandbox")
    assert sandbox.problems == []

    # Meanwhile the campaign page, still open, moved its chart (greeted, answered, epic_given, booth_shared).
    wait_until(lambda: chart(page) == [0, 5, 1, 1], what="the chart to follow the replies")
    assert page.locator("[data-replied]").inner_text() == "1"
    shots(page, "journey-10-funnel")

    # The funnel CSV: one row per recipient, statuses, funnel steps and answers.
    with page.expect_download() as download:
        page.get_by_role("link", name="Funnel CSV").click()
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    by_phone = {r["phone"]: r for r in rows}
    assert len(rows) == 6 and "+919800000009" not in by_phone
    assert sorted(r["status"] for r in rows) == ["delivered"] * 5 + ["skipped"]
    assert (by_phone["+919800000005"]["status"], by_phone["+919800000005"]["error_code"]) == ("skipped", "opted_out")
    asha = by_phone[ASHA]
    assert (asha["answer:knows_booth"], asha["answer:epic"]) == ("2", "ABC1234567")
    assert all(asha[f"funnel:{step}"].endswith("Z") for step in ("answered", "epic_given", "booth_shared"))
    assert asha["replied_at"].endswith("Z") and asha["completed_at"].endswith("Z")
    ravi = by_phone["+919800000001"]  # sent the question, never answered it
    assert ravi["funnel:answered"].endswith("Z") and not ravi["funnel:epic_given"] and not ravi["replied_at"]
    # The one refusal was the step sent with a missing value (422, as intended); nothing else failed.
    base = page.url.split("/campaigns/")[0]
    assert watched.problems == [f"422 {base}/campaigns/{campaign_id}/edit/message"]
