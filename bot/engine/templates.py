"""Jinja2 text in a sandbox: flows are written by staff, not trusted with Python."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError


@functools.cache
def _env() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def check(text: str) -> str | None:
    """Return a syntax problem in ``text``, or None."""
    if "{" not in text:
        return None
    try:
        _env().parse(text)
    except TemplateSyntaxError as exc:
        return f"template: {exc.message}"
    except RecursionError:
        return "template: nested too deeply"
    return None


def render(text: str, context: dict[str, Any]) -> tuple[str, str | None]:
    """Render ``text``; return (result, problem). A missing value renders empty."""
    if "{" not in text:
        return text, None
    env = _env()
    try:
        return env.from_string(text).render(context), None
    except UndefinedError as exc:
        lenient = ImmutableSandboxedEnvironment(autoescape=False)
        try:
            return lenient.from_string(text).render(context), f"template: {exc.message}"
        except Exception as again:  # noqa: BLE001 - a second failure is reported, not raised
            return "", f"template: {again}"
    except SecurityError as exc:
        return "", f"template: not allowed ({exc})"
    except TemplateSyntaxError as exc:
        return "", f"template: {exc.message}"
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        return "", f"template: {type(exc).__name__}: {exc}"
