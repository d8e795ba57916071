"""A real browser for the console's tests: Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: it starts ``/usr/bin/chromium`` (installed by
``make test`` through ``scripts/system-deps.sh --tests``) with the flags this machine
needs. When Chromium or Playwright is missing, the browser tests are skipped with the
reason — except with CI=true, where that fails the run. The app is served for real:
werkzeug on a free port of 127.0.0.1, in a thread, on the test database.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.conftest import unavailable

CHROMIUM = Path("/usr/bin/chromium")
# Under var/ (ignored by git) rather than pytest's temporary folders, which other runs
# on the same machine prune.
SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-screenshots"
# Without the background-networking flags Chromium keeps calling Google's hosts, which
# this closed network refuses; a fresh profile per launch keeps runs independent.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # The sandbox phone plays each prompt as it arrives, as a phone would.
    "--autoplay-policy=no-user-gesture-required",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "a long passphrase"
SHOT_DIRS: list[Path] = []  # printed at the end of the run (tests/web/conftest.py)


def in_thread(call: Callable[..., Any], *args: Any) -> Any:
    """Run ``call(*args)`` on a thread of its own and return its result (see ``browser``)."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call(*args))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            errors.append(exc)

    thread = threading.Thread(target=run, name=getattr(call, "__name__", "call"))
    thread.start()
    thread.join(timeout=30)
    if errors:
        raise errors[0]
    return result[0] if result else None


def _unavailable(reason: str) -> None:
    unavailable(f"{reason} (the browser tests need it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (starting it costs a few seconds).

    Not per session: while Playwright's sync API is started, the main thread counts as
    running an asyncio loop, and code that runs a loop of its own there (the rasa-sdk
    bridge's async actions) refuses to. Stopping it at the module's end clears that, so
    later test modules are unaffected; inside a browser test, such code runs on another
    thread (as it does in the server, where each request has a thread).
    """
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright Python package is missing ({exc}); make setup installs it")
    if not CHROMIUM.exists():
        _unavailable(f"Debian's chromium is not installed ({CHROMIUM}); `make test` installs it as root")
    driver = sync_playwright().start()
    try:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, timeout=60_000)
    except Error as exc:
        driver.stop()
        _unavailable(f"{CHROMIUM} did not start: {exc.message.splitlines()[0]}")
    yield launched
    launched.close()
    driver.stop()


@pytest.fixture
def live_server(world: Any) -> Iterator[str]:
    """The world's app served on a free port; yields its base URL."""
    server = make_server("127.0.0.1", 0, world.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``shots(page, "name")`` saves a full-page PNG; the folder is printed after the run.

    ``CANVASS_SCREENSHOTS=DIR`` saves them there instead of ``var/test-screenshots``.
    """
    where = os.environ.get("CANVASS_SCREENSHOTS")
    folder = Path(where) if where else SHOTS
    folder.mkdir(parents=True, exist_ok=True)
    if folder not in SHOT_DIRS:
        SHOT_DIRS.append(folder)
    case = request.node.callspec.id if hasattr(request.node, "callspec") else "run"

    def take(page: Any, name: str) -> Path:
        path = folder / f"{name}-{page.viewport_size['width']}-{case}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


class Watched:
    """A page with its JavaScript errors and refused resources (CSP, 404) collected."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        # A failed load is reported (with its address) by _response, favicon excepted.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        # Chromium asks for /favicon.ico on its own; the console has none.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.problems.append(f"{response.status} {response.url}")


@pytest.fixture
def open_console(browser: Any, live_server: str, world: Any) -> Iterator[Callable[..., Watched]]:
    """``open_console(role, viewport)``: a new browser context signed in through the login form."""
    from web.users import create_user

    contexts: list[Any] = []
    made: set[str] = set()

    def sign_in(role: str = "operator", viewport: dict[str, int] = LAPTOP) -> Watched:
        email = f"{role}@example.org"
        if email not in made:
            with world.rt.db.session() as s:
                create_user(s, email, role, PASSWORD)
            made.add(email)
        context = browser.new_context(viewport=viewport, base_url=live_server)
        contexts.append(context)
        context.set_default_timeout(10_000)
        watched = Watched(context.new_page())
        page = watched.page
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server}/")
        return watched

    yield sign_in
    for context in contexts:
        context.close()
