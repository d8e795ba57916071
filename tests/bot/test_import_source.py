import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bot.import_source
from bot.import_source import FileProblem, read_pieces, split_piece


def _text(content: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(content.encode("utf-8", "surrogateescape")), encoding="utf-8", newline="")


def _one_reader(content: str) -> list[tuple[int, list[str]]]:
    """What one csv.reader over the whole file gives, with each record's first line."""
    reader = csv.reader(io.StringIO(content, newline=""))
    next(reader)
    rows = []
    while True:
        line = reader.line_num + 1
        try:
            rows.append((line, next(reader)))
        except StopIteration:
            return rows


def _pieces(content: str, is_txt: bool = False) -> list[tuple[int, list[str]]]:
    _, pieces = read_pieces(_text(content), is_txt)
    return [row for piece in pieces for row in split_piece(piece, is_txt)]


cells = st.text(alphabet='ab,"\r\n é', max_size=12)
bodies = st.lists(cells, max_size=30).map("".join)


@settings(max_examples=1500, deadline=None)
@given(body=bodies, block=st.integers(min_value=1, max_value=40))
def test_pieces_give_the_rows_of_one_reader(body: str, block: int) -> None:
    """Quoted fields across lines and blocks, stray quotes, \\r\\n split by a block: same rows, same lines."""
    content = "phone,name\n" + body
    with pytest.MonkeyPatch.context() as m:
        m.setattr(bot.import_source, "BLOCK_CHARS", block)
        assert _pieces(content) == _one_reader(content)


@settings(max_examples=500, deadline=None)
@given(body=st.text(alphabet='ab"\r\n\ufeff', max_size=60), block=st.integers(min_value=1, max_value=20))
def test_txt_pieces_are_its_lines(body: str, block: int) -> None:
    expected = [(n, [line.rstrip("\r\n").lstrip("\ufeff")]) for n, line in enumerate(_text(body), start=1)]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(bot.import_source, "BLOCK_CHARS", block)
        assert _pieces(body, is_txt=True) == expected


def test_a_quote_free_block_goes_to_the_workers_as_text() -> None:
    _, pieces = read_pieces(_text('phone,name\n1,a\n2,b\n3,"c, d"\n'), False)
    assert list(pieces) == [[(2, ["1", "a"]), (3, ["2", "b"]), (4, ["3", "c, d"])]]
    _, pieces = read_pieces(_text("phone,name\n1,a\r\n2,b\n"), False)
    assert list(pieces) == [(2, "1,a\r\n2,b\n")]


def test_a_broken_record_names_its_line_in_a_worker_too() -> None:
    old = csv.field_size_limit(10)
    try:
        with pytest.raises(FileProblem) as err:
            split_piece((7, "1,a\n2," + "x" * 20 + "\n"), False)
    finally:
        csv.field_size_limit(old)
    assert err.value.where("f.csv") == "f.csv:8: field larger than field limit (10)"
