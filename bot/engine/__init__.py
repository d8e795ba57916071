"""The pure flow engine: YAML -> Flow, validation, and start / resume -> events.

Nothing here imports Flask, SQLAlchemy, Redis or an HTTP client; the host applies the
events (``bot.effects``) and passes the clock in.
"""

from bot.engine.errors import EngineMisuse, FlowInvalid, Loc, Problem
from bot.engine.flow import Flow, load_path, load_text
from bot.engine.runner import Sprint, resume, start

__all__ = [
    "EngineMisuse",
    "Flow",
    "FlowInvalid",
    "Loc",
    "Problem",
    "Sprint",
    "load_path",
    "load_text",
    "resume",
    "start",
]
