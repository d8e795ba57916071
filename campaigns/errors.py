"""The error that the campaign checks share: a value refused, with the field it was in."""

from __future__ import annotations


class FieldError(ValueError):
    """``field`` holds a value that is refused; ``message`` says why and what to do instead."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
