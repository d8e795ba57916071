"""Fixtures for the web tests: the campaign world, and a real browser (tests/web/browser.py)."""

from __future__ import annotations

from typing import Any

# Fixtures shared with other test folders, made visible here by importing them.
from tests.campaigns.conftest import world  # noqa: F401
from tests.ivr.conftest import tone  # noqa: F401
from tests.web.browser import SHOT_DIRS, browser, live_server, open_console, shots  # noqa: F401


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the browser tests' screenshots are, to look at them."""
    for folder in SHOT_DIRS:
        if any(folder.glob("*.png")):
            terminalreporter.write_line(f"console screenshots: {folder}")
