"""bot.bulk on both backends: COPY / executemany, ids in order, ``= ANY(array)``, ``UPDATE ... FROM unnest``."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, String, select, text, update

from bot import bulk
from bot.db import Database, utcnow
from bot.models import Contact

C = Contact.__table__


def _contacts(db: Database, n: int, first: int = 0) -> list[int]:
    now = utcnow()
    rows = [
        {"phone": f"+9198000{i:05d}", "name": f'Voter, {i} "quoted"\t', "created_at": now, "updated_at": now}
        for i in range(first, first + n)
    ]
    with db.session() as s:
        return bulk.insert_ids(s, C, rows)


def test_insert_ids_returns_the_ids_in_the_rows_order_with_defaults_filled(db: Database) -> None:
    ids = _contacts(db, 5)
    assert ids == sorted(ids) and len(set(ids)) == 5
    with db.session() as s:
        found = s.execute(select(C.c.id, C.c.phone, C.c.name, C.c.consent, C.c.fields).order_by(C.c.id)).all()
    assert [(r.id, r.phone) for r in found] == [(i, f"+9198000{n:05d}") for n, i in enumerate(ids)]
    # Text that COPY must escape arrives intact; columns left out get their Python defaults.
    assert found[2].name == 'Voter, 2 "quoted"\t'
    assert {r.consent for r in found} == {"unknown"} and {str(r.fields) for r in found} == {"{}"}


def test_ids_drawn_before_are_the_ids_the_rows_get(db: Database) -> None:
    from bot.models import Message

    with db.session() as s:
        drawn = bulk.draw_ids(s, [(C, 3), (Message.__table__, 2)])
    if db.dialect != "postgresql":
        assert drawn is None  # SQLite numbers rows as it inserts them
        return
    assert drawn is not None
    contacts, messages = drawn
    assert contacts == sorted(contacts) and len(set(contacts)) == 3 and len(messages) == 2
    now = utcnow()
    rows = [{"phone": f"+91970000{i:04d}", "created_at": now, "updated_at": now} for i in range(3)]
    with db.session() as s:
        assert bulk.insert_ids(s, C, rows, ids=contacts) == contacts
        found = dict(s.execute(select(C.c.phone, C.c.id)).all())
    assert found == {row["phone"]: cid for row, cid in zip(rows, contacts, strict=True)}
    # Drawn ids are the sequence's own: the next rows numbered by it come after them.
    assert min(_contacts(db, 2, first=10)) > max(contacts)


def test_one_of_matches_integers_and_strings(db: Database) -> None:
    ids = _contacts(db, 6)
    with db.session() as s:
        picked = s.scalars(select(C.c.id).where(bulk.one_of(s, C.c.id, [ids[1], ids[4], 10**12]))).all()
        by_phone = s.scalars(select(C.c.id).where(bulk.one_of(s, C.c.phone, ["+919800000003", "nope"]))).all()
        nothing = s.scalars(select(C.c.id).where(bulk.one_of(s, C.c.id, []))).all()
    assert sorted(picked) == [ids[1], ids[4]]
    assert by_phone == [ids[3]]
    assert nothing == []


def test_rows_update_each_row_with_its_own_values_nulls_included(db: Database) -> None:
    ids = _contacts(db, 5)
    with db.session() as s:
        src = bulk.Rows(s, "u", cid=BigInteger(), nm=String(), lang=String())
        stmt = update(C).where(src.match(C.c.id, "cid")).values(name=src.c.nm, language=src.c.lang)
        src.execute(
            s,
            stmt,
            [
                {"cid": ids[0], "nm": "Asha", "lang": "hi"},
                {"cid": ids[2], "nm": None, "lang": "it's"},
                {"cid": ids[3], "nm": '{braces}, "q"', "lang": None},
                {"cid": ids[4], "nm": "NULL", "lang": 'back\\slash \\"'},
            ],
        )
    with db.session() as s:
        found = {r.id: (r.name, r.language) for r in s.execute(select(C.c.id, C.c.name, C.c.language))}
    assert found[ids[0]] == ("Asha", "hi")
    assert found[ids[1]] == ('Voter, 1 "quoted"\t', None)  # not in the rows: untouched
    assert found[ids[2]] == (None, "it's")
    assert found[ids[3]] == ('{braces}, "q"', None)
    assert found[ids[4]] == ("NULL", 'back\\slash \\"')  # the string, not a null


def test_rows_match_looks_rows_up_by_key_even_with_stale_statistics(db: Database) -> None:
    """Joined on the key alone, a table grown since its last ANALYZE was hashed whole."""
    ids = _contacts(db, 50)
    with db.session() as s:
        if bulk.postgresql(s):
            s.execute(text("ANALYZE contacts"))
    ids += _contacts(db, 5000, first=50)
    rows = [{"cid": cid, "nm": f"Picked {n}"} for n, cid in enumerate(ids[100:4900:100])]
    with db.session() as s:
        src = bulk.Rows(s, "u", cid=BigInteger(), nm=String())
        stmt = update(C).where(src.match(C.c.id, "cid")).values(name=src.c.nm)
        if bulk.postgresql(s):
            compiled = stmt.compile(dialect=s.get_bind().dialect)
            params = {**compiled.params, "cid": bulk.int_array(r["cid"] for r in rows), "nm": [r["nm"] for r in rows]}
            plan = "\n".join(s.connection().exec_driver_sql("EXPLAIN " + str(compiled), params).scalars())
            assert "Seq Scan on contacts" not in plan and "pk_contacts" in plan, plan
        src.execute(s, stmt, rows)
    with db.session() as s:
        named = dict(s.execute(select(C.c.id, C.c.name).where(C.c.name.like("Picked %"))).all())
    assert named == {r["cid"]: r["nm"] for r in rows}


def test_any_of_refuses_a_column_that_is_not_an_integer() -> None:
    with pytest.raises(TypeError, match="integer columns"):
        bulk.any_of(C.c.phone, "phones", True)


def test_int_array_text() -> None:
    assert bulk.int_array([]) == "{}"
    assert bulk.int_array([3, None, -1]) == "{3,NULL,-1}"
    assert bulk.text_array(["a", None, 'say "hi"', "c:\\"]) == '{"a",NULL,"say \\"hi\\"","c:\\\\"}'
