"""Typed problems of flows: each carries where it is, never a bare exception."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, order=True)
class Loc:
    """A position in a flow file (1-based)."""

    line: int
    col: int


@dataclasses.dataclass(frozen=True)
class Problem:
    """One mistake in a flow, at a place in its file."""

    path: str
    loc: Loc
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.loc.line}:{self.loc.col}: {self.message}"


class FlowInvalid(ValueError):
    """A flow has problems; ``problems`` lists every one, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.loc))
        super().__init__("\n".join(str(p) for p in self.problems))


class EngineMisuse(RuntimeError):
    """The host called the engine wrongly (a programming fault, not an author's)."""
