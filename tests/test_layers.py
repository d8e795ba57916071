"""The house's layering, checked on the source: imports only go downward.

web/ and worker.py may import anything; campaigns/ may import ivr/ and bot/ (it drives
every channel, calls included); ivr/ may import bot/; bot/ imports only itself; and the
pure engine, bot/engine, imports nothing of the app at all (no Flask, SQLAlchemy, Redis
or HTTP) beyond its own modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "bot": {"bot"},
    "ivr": {"ivr", "bot"},
    "campaigns": {"campaigns", "ivr", "bot"},
    "flows": {"flows", "bot"},
}
APP = {"bot", "ivr", "campaigns", "web", "flows", "worker"}
ENGINE_FORBIDDEN = {"flask", "sqlalchemy", "redis", "rq", "requests", "urllib3", "twilio", "psycopg", "httpx"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_go_downward(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] in APP and name.split(".")[0] not in ALLOWED[package]
    ]
    assert not wrong, "imports that run upward:\n" + "\n".join(wrong)


def test_the_engine_is_pure() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted((ROOT / "bot" / "engine").rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] in ENGINE_FORBIDDEN or (name.split(".")[0] in APP and not name.startswith("bot.engine"))
    ]
    assert not wrong, "the engine must stay pure:\n" + "\n".join(wrong)
