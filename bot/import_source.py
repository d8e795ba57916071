"""Read an import file as pieces that the parsing workers split into rows themselves.

The main process only reads text: a piece is a block of whole lines with the number of
its first line, and a worker runs ``csv.reader`` over it. That is exact only where no
quoted field can run past the block's end, so a block holding a double quote is split
into rows here instead, by one ``csv.reader`` that carries a quoted field on into the
following lines of the file when it has to. Either way the rows and their line numbers
are those of one ``csv.reader`` over the whole file, because a record always ends where
a piece does.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import Any

from bot.import_rows import Layout

BLOCK_CHARS = 128 * 1024
CHUNK_ROWS = 4000
# (first line, text of whole lines) for a worker to split, or rows already split here.
Piece = tuple[int, str] | list[tuple[int, list[str]]]


class FileProblem(ValueError):
    """The file as a whole cannot be read past ``line`` (picklable, raised in workers too)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(line, message)
        self.line = line
        self.message = message

    def where(self, path: object) -> str:
        """The problem as ``path:line: message`` (``path: message`` without a line)."""
        return f"{path}:{self.line}: {self.message}" if self.line else f"{path}: {self.message}"


def read_pieces(text: io.TextIOWrapper, is_txt: bool) -> tuple[Layout | None, Iterator[Piece]]:
    """Read the header (CSV) and return the layout (None for TXT) and the pieces after it."""
    if is_txt:
        return None, _pieces(text, 1, is_txt=True)
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem(0, "the file is empty") from None
    except csv.Error as exc:
        raise FileProblem(1, str(exc)) from None
    try:
        layout = Layout.from_header(header)
    except ValueError as exc:
        raise FileProblem(0, str(exc)) from None
    return layout, _pieces(text, reader.line_num + 1, is_txt=False)


def read_rows(text: io.TextIOWrapper, is_txt: bool) -> Iterator[tuple[int, list[str]]]:
    """Every data row as ``(line, cells)``, in file order (for a second pass over a file)."""
    _, pieces = read_pieces(text, is_txt)
    for piece in pieces:
        yield from split_piece(piece, is_txt)


def count_rows(piece: Piece) -> int:
    """How many rows ``split_piece`` will find in a piece (a block of text: one per line)."""
    if isinstance(piece, list):
        return len(piece)
    block = piece[1]
    ends = block.count("\n") + block.count("\r") - block.count("\r\n")
    return ends if block[-1] in "\r\n" else ends + 1


def split_piece(piece: Piece, is_txt: bool) -> list[tuple[int, list[str]]]:
    """The rows of one piece as ``(line, cells)`` (in a parsing worker)."""
    if isinstance(piece, list):
        return piece
    first, block = piece
    lines = io.StringIO(block, newline="")
    if is_txt:
        return [(first + i, [line.rstrip("\r\n").lstrip("\ufeff")]) for i, line in enumerate(lines)]
    # No quotes in the block: one record per line.
    reader = csv.reader(lines)
    try:
        return list(zip(itertools.count(first), reader))
    except csv.Error as exc:
        raise FileProblem(first + reader.line_num - 1, str(exc)) from None


def _pieces(text: io.TextIOWrapper, line: int, is_txt: bool) -> Iterator[Piece]:
    source = _Lines(text)
    while True:
        block = source.block()
        if not block:
            return
        if is_txt or '"' not in block:
            yield line, block
            line += block.count("\n") + block.count("\r") - block.count("\r\n")
            continue
        rows, line = _split_quoted(block, line, source)
        for start in range(0, len(rows), CHUNK_ROWS):
            yield rows[start : start + CHUNK_ROWS]


class _Lines:
    r"""The file as blocks of whole lines, or line by line (``readline`` keeps "\r\n" whole)."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self.text = text
        # A whole line read ahead to learn where the block before it ended.
        self.carry = ""

    def block(self) -> str:
        """About ``BLOCK_CHARS`` of text, ending where a line ends ("" at the end)."""
        block = self.carry + self.text.read(BLOCK_CHARS)
        self.carry = ""
        if block and block[-1] not in "\r\n":
            block += self.text.readline()
        if block and block[-1] == "\r":
            # A "\r" may be the first half of "\r\n": split, the "\n" would read as an
            # empty line of its own.
            after = self.text.readline()
            if after == "\n":
                block += after
            else:
                self.carry = after
        return block

    def line(self) -> str:
        """The next whole line ("" at the end)."""
        if self.carry:
            line, self.carry = self.carry, ""
            return line
        return self.text.readline()


def _split_quoted(block: str, first: int, source: _Lines) -> tuple[list[tuple[int, list[str]]], int]:
    """Split a block with quotes into rows; return them and the line after the last one."""
    block_lines = io.StringIO(block, newline="").readlines()
    used = [0]

    def lines() -> Iterator[str]:
        for line in block_lines:
            used[0] += 1
            yield line
        # A quoted field that goes on past the block: its record ends further down.
        yield from iter(source.line, "")

    reader = csv.reader(lines())
    rows: list[tuple[int, list[str]]] = []
    while used[0] < len(block_lines):
        line = first + reader.line_num
        try:
            cells: Any = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise FileProblem(line, str(exc)) from None
        rows.append((line, cells))
    return rows, first + reader.line_num
