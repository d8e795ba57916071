import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.consent import ConsentLedger
from bot.contact_import import ImportFileError, import_file
from bot.contacts import parse_tag
from bot.db import Database
from bot.models import ConsentEvent, Contact, ContactTag

MESSY = (
    "phone,name,language,tags,ward\n"
    "+91 98765 43210,Asha,hi,volunteer;youth,12\n"  # 2
    "098765-43210,Asha again,,,\n"  # 3 duplicate of line 2
    "9876543211,Ravi,en,,13\n"  # 4
    "abc,Letters,,,\n"  # 5
    ",No number,,,\n"  # 6
    "\n"  # 7 blank
    "12345,Short,,,\n"  # 8
    "9876543212,Meena,,bad tag!,\n"  # 9
    "9876543213,Imran,xx yy,,\n"  # 10
    "9876543214,Too,many,cells,1,extra\n"  # 11
    "011 2345 6789,Landline office,,,\n"  # 12 landline: kept
    '98765 43215,"Quoted, name",mr,senior,7\n'  # 13
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def contacts(db: Database) -> dict[str, Contact]:
    with db.session() as s:
        return {c.phone: c for c in s.scalars(select(Contact))}


def tags_of(db: Database, phone: str) -> dict[str, str | None]:
    with db.session() as s:
        rows = s.execute(select(ContactTag.name, ContactTag.value).join(Contact).where(Contact.phone == phone)).all()
    return dict(rows)


@pytest.mark.parametrize("workers", [1, 2])
def test_messy_file(db: Database, tmp_path: Path, workers: int) -> None:
    path = write(tmp_path, "voters.csv", MESSY)
    report = import_file(db, path, region="IN", tags=[parse_tag("drive=nov")], workers=workers)
    assert (report.imported, report.updated, report.rejected) == (4, 0, 8)
    assert report.rows == 12
    found = contacts(db)
    assert sorted(found) == ["+911123456789", "+919876543210", "+919876543211", "+919876543215"]
    assert found["+919876543210"].name == "Asha"  # the first occurrence wins
    assert found["+919876543210"].language == "hi"
    assert found["+911123456789"].phone_kind == "fixed_line"
    assert found["+919876543215"].name == "Quoted, name"
    assert tags_of(db, "+919876543210") == {"volunteer": None, "youth": None, "ward": "12", "drive": "nov"}
    assert tags_of(db, "+919876543211") == {"ward": "13", "drive": "nov"}

    assert report.rejects_path == tmp_path / "voters.rejects.csv"
    got = {int(r["line"]): r["reason"] for r in rejects(report.rejects_path)}
    assert got == {
        3: "duplicate of line 2",
        5: "no digits",
        6: "empty phone",
        7: "empty line",
        8: "invalid number (too short for IN)",
        9: "tags: tag name 'bad tag!': use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
        10: "language: 'xx yy' is not a language code such as en, hi or mr",
        11: "has 6 cells but the header has 5",
    }
    # The rejects file keeps the original cells, so it can be fixed and imported again.
    first = rejects(report.rejects_path)[0]
    assert (first["phone"], first["name"]) == ("098765-43210", "Asha again")


def test_reimport_updates_and_keeps_what_the_file_leaves_out(db: Database, tmp_path: Path) -> None:
    import_file(db, write(tmp_path, "a.csv", "phone,name,language,ward\n9876543210,Asha,hi,12\n"), region="IN")
    report = import_file(
        db,
        write(tmp_path, "b.csv", "phone,name,tags,ward\n+919876543210,,volunteer,14\n9876543219,New,,\n"),
        region="IN",
    )
    assert (report.imported, report.updated, report.rejected) == (1, 1, 0)
    asha = contacts(db)["+919876543210"]
    assert (asha.name, asha.language) == ("Asha", "hi")  # empty cells do not erase
    assert tags_of(db, "+919876543210") == {"ward": "14", "volunteer": None}


def test_latin1_file_is_read_as_such(db: Database, tmp_path: Path) -> None:
    content = "phone,name\n9876543210,José\n9876543211,Müller\n12,Señor Short\n".encode("latin-1")
    report = import_file(db, write(tmp_path, "latin.csv", content), region="IN")
    assert report.encoding == "cp1252"
    assert (report.imported, report.rejected) == (2, 1)
    assert {c.name for c in contacts(db).values()} == {"José", "Müller"}
    assert rejects(report.rejects_path)[0]["name"] == "Señor Short"


def test_bad_bytes_in_a_utf8_file_reject_only_their_row(db: Database, tmp_path: Path) -> None:
    head = "phone,name\n" + "".join(f"98765432{i:02d},Ok {i}\n" for i in range(10))
    # The sniffed start is clean UTF-8; a broken byte further down rejects that row only.
    content = head.encode() + b"x" * 0 + b"9876543299,Bad \xe9 byte\n"
    report = import_file(db, write(tmp_path, "mixed.csv", content), region="IN", encoding="utf-8")
    assert (report.imported, report.rejected) == (10, 1)
    (row,) = rejects(report.rejects_path)
    assert row["line"] == "12"
    assert row["reason"].startswith("bad encoding:")
    assert "\\xe9" in row["name"]


def test_txt_list(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "numbers.txt", "\ufeff+91 98765 43210\r\n9876543211\r\n\r\nnot a number\r\n9876543210\r\n")
    report = import_file(db, path, region="IN", tags=[parse_tag("source=txt")])
    assert (report.imported, report.updated, report.rejected) == (2, 0, 3)
    got = {int(r["line"]): r["reason"] for r in rejects(report.rejects_path)}
    assert got == {3: "empty line", 4: "no digits", 5: "duplicate of line 1"}
    assert tags_of(db, "+919876543211") == {"source": "txt"}


def test_txt_over_10_mb_is_refused(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"9876543210\n" * (1024 * 1024))
    with pytest.raises(ImportFileError, match="at most 10 MB"):
        import_file(db, path, region="IN")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,ward\nAsha,1\n", "needs a phone column"),
        ("phone,mobile\n1,2\n", "more than one phone column"),
        ("phone,name,Name\n1,a,b\n", "appears twice"),
        ("phone,My Ward!\n1,2\n", "cannot become a valued tag"),
        ("", "the file is empty"),
    ],
)
def test_unusable_header_imports_nothing(db: Database, tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        import_file(db, write(tmp_path, "bad.csv", content), region="IN")
    assert contacts(db) == {}


def test_crash_mid_file_leaves_nothing_behind(db: Database, tmp_path: Path) -> None:
    body = "".join(f"98{i:08d},Voter {i},,,{i % 9}\n" for i in range(20000))
    path = write(tmp_path, "big.csv", "phone,name,language,tags,ward\n" + body)
    seen: list[int] = []

    def crash(done: int) -> None:
        seen.append(done)
        if len(seen) == 2:
            raise KeyboardInterrupt("operator pressed Ctrl-C")

    with pytest.raises(KeyboardInterrupt):
        import_file(db, path, region="IN", progress=crash, workers=2)
    assert contacts(db) == {}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ContactTag)) == 0
    assert not list(tmp_path.glob("*.partial"))
    # The same file then imports whole.
    report = import_file(db, path, region="IN", workers=2)
    assert report.imported == 20000


def test_a_broken_quote_fails_whole_file_with_its_line(db: Database, tmp_path: Path) -> None:
    import csv as csv_module

    csv_module.field_size_limit(1000)
    try:
        content = 'phone,name\n9876543210,ok\n9876543211,"never closed\n' + "x" * 2000 + "\n"
        with pytest.raises(ImportFileError, match=r"bad\.csv:3: field larger than field limit"):
            import_file(db, write(tmp_path, "bad.csv", content), region="IN", workers=1)
    finally:
        csv_module.field_size_limit(131072)
    assert contacts(db) == {}


def test_consent_column_goes_through_the_ledger(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path, "c.csv", "phone,consent\n9876543210,opted_out\n9876543211,opted_in\n9876543212,\n9876543213,maybe\n"
    )
    report = import_file(db, path, region="IN")
    assert (report.imported, report.rejected) == (3, 1)
    assert rejects(report.rejects_path)[0]["reason"] == "consent: 'maybe' must be opted_in, opted_out or empty"
    found = contacts(db)
    assert found["+919876543210"].consent == "opted_out"
    assert found["+919876543212"].consent == "unknown"
    with db.session() as s:
        ledger = ConsentLedger(s)
        assert ledger.status_of(found["+919876543210"].id).value == "opted_out"
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 2
    # Importing the same status again adds no ledger entry.
    import_file(db, path, region="IN")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 2


def test_own_export_imports_back(db: Database, tmp_path: Path) -> None:
    import io

    from bot.contacts import write_export

    import_file(
        db,
        write(tmp_path, "a.csv", "phone,name,tags,ward\n9876543210,=cmd|calc,volunteer,-12\n9876543211,Ravi,,3\n"),
        region="IN",
    )
    out = io.StringIO()
    with db.session() as s:
        write_export(s, out)
    text = out.getvalue()
    assert "'=cmd|calc" in text  # formula-safe
    assert "+919876543210" in text  # phone stays plain E.164
    before = {p: (c.name, tags_of(db, p)) for p, c in contacts(db).items()}
    report = import_file(db, write(tmp_path, "export.csv", text), region="IN")
    assert (report.imported, report.updated, report.rejected) == (0, 2, 0)
    after = {p: (c.name, tags_of(db, p)) for p, c in contacts(db).items()}
    assert after == before


@pytest.mark.slow
def test_killed_import_process_leaves_nothing(db: Database, settings_env: dict[str, str], tmp_path: Path) -> None:
    """SIGKILL in the middle of `canvass contacts import`: no contact, no tag, no ledger row."""
    import os
    import signal
    import subprocess
    import sys
    import time

    body = "".join(f"98{i:08d},Voter {i},volunteer,{i % 40}\n" for i in range(300_000))
    path = write(tmp_path, "big.csv", "phone,name,tags,ward\n" + body)
    canvass = Path(sys.executable).with_name("canvass")
    proc = subprocess.Popen(
        [canvass, "contacts", "import", str(path)],
        env={**os.environ, **settings_env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Kill once the writer has applied at least one batch inside its transaction.
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        if _writer_has_written(db):
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert killed, "the import finished before it could be killed; make the file bigger"
    with db.session() as s:
        for table in (Contact, ContactTag, ConsentEvent):
            assert s.scalar(select(func.count()).select_from(table)) == 0
    # And the database is usable: the same file imports whole afterwards.
    report = import_file(db, path, region="IN")
    assert report.imported == 300_000


def _writer_has_written(db: Database) -> bool:
    """True when another connection holds uncommitted contact rows (seen from outside)."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            # The importer's transaction has written rows once it holds a RowExclusiveLock
            # on contacts and has been busy for a while.
            return bool(
                conn.execute(
                    text(
                        "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                        "WHERE c.relname = 'contacts' AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()"
                    )
                ).first()
            )
        # SQLite: the importer's write lock makes our BEGIN IMMEDIATE fail at once.
        try:
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("ROLLBACK")
            return False
        except Exception:  # noqa: BLE001 - "database is locked" is the answer we wait for
            return True


def _small_batches(monkeypatch: pytest.MonkeyPatch, rows: int, tries: int | None = None) -> None:
    """Apply every ``rows`` rows (and try at most ``tries`` batches as all new)."""
    import bot.import_pipeline
    import bot.import_source
    import bot.import_staging

    monkeypatch.setattr(bot.import_source, "BLOCK_CHARS", 1)  # one line per piece
    monkeypatch.setattr(bot.import_pipeline, "APPLY_ROWS", rows)
    if tries is not None:
        monkeypatch.setattr(bot.import_staging, "OPTIMISTIC_BATCHES", tries)


@pytest.mark.parametrize("tries", [None, 1])
def test_batches_of_new_numbers_then_known_ones_and_duplicates(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tries: int | None
) -> None:
    """New numbers take the short road batch by batch; a batch that meets a known number or a
    number from an earlier batch is applied by the general upsert, with the same outcome."""
    import_file(db, write(tmp_path, "old.csv", "phone,name,ward\n9876500009,Old,1\n"), region="IN")
    _small_batches(monkeypatch, 3, tries)
    lines = ["phone,name,tags,ward"]
    lines += [f"98765000{i:02d},New {i},volunteer,{i}" for i in range(6)]  # lines 2-7: two all-new batches
    lines += ["9876500020,Late,,20", "9876500001,Again,,", "9876500021,,,"]  # line 9: duplicate of line 3
    lines += ["9876500022,After,,22", "9876500023,After,,23", "9876500024,After,,24"]  # all new again
    lines += ["9876500025,Known,,25", "9876500009,,youth,9", "9876500026,,,"]  # line 15: a known number
    lines += ["9876500027,After,,27"]
    report = import_file(
        db,
        write(tmp_path, "new.csv", "\n".join(lines) + "\n"),
        region="IN",
        tags=[parse_tag("drive=nov"), parse_tag("drive"), parse_tag("ward=0")],
        workers=1,
    )
    assert (report.imported, report.updated, report.rejected) == (14, 1, 1)
    assert {int(r["line"]): r["reason"] for r in rejects(report.rejects_path)} == {9: "duplicate of line 3"}
    found = contacts(db)
    assert len(found) == 15
    assert found["+919876500001"].name == "New 1"
    assert found["+919876500009"].name == "Old"  # an empty cell does not erase
    # --tag drive=nov then --tag drive: one tag, the value kept; --tag ward=0 only where
    # the file gave no ward.
    assert tags_of(db, "+919876500000") == {"volunteer": None, "ward": "0", "drive": "nov"}
    assert tags_of(db, "+919876500009") == {"ward": "9", "youth": None, "drive": "nov"}
    assert tags_of(db, "+919876500023") == {"ward": "23", "drive": "nov"}
    assert tags_of(db, "+919876500027") == {"ward": "27", "drive": "nov"}
    assert tags_of(db, "+919876500021") == {"ward": "0", "drive": "nov"}


def test_tags_and_ledger_rows_point_at_their_contacts(db: Database, tmp_path: Path) -> None:
    """However the rows went in (the tags of new contacts skip the foreign key's per-row
    check where PostgreSQL allows it), each tag and ledger row belongs to its own number."""
    body = "".join(f"98{i:08d},{'opted_out' if i % 3 == 0 else ''},w{i}\n" for i in range(300))
    report = import_file(db, write(tmp_path, "c.csv", "phone,consent,ward\n" + body), region="IN", workers=2)
    assert report.imported == 300
    with db.session() as s:
        rows = s.execute(select(Contact.phone, ContactTag.value).join(ContactTag)).all()
        ledger = s.execute(select(Contact.phone, ConsentEvent.note).join(ConsentEvent)).all()
    assert sorted(rows) == sorted((f"+9198{i:08d}", f"w{i}") for i in range(300))
    assert sorted(ledger) == sorted((f"+9198{i:08d}", f"line {i + 2}") for i in range(0, 300, 3))


def test_without_the_right_to_skip_key_checks_the_import_is_the_same(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.import_staging

    monkeypatch.setattr(bot.import_staging, "may_skip_key_checks", lambda conn: False)
    path = write(tmp_path, "v.csv", "phone,name,tags,ward\n9876543210,Asha,volunteer,12\n9876543211,Ravi,,13\n")
    report = import_file(db, path, region="IN", workers=1)
    assert (report.imported, report.updated, report.rejected) == (2, 0, 0)
    assert tags_of(db, "+919876543210") == {"volunteer": None, "ward": "12"}


def test_skipping_key_checks_needs_the_right_and_no_triggers_of_our_own(db: Database) -> None:
    from bot.import_upsert import may_skip_key_checks

    with db.engine.connect() as conn:
        if db.dialect != "postgresql":
            assert not may_skip_key_checks(conn)
            return
        assert may_skip_key_checks(conn)  # the tests connect as a superuser
        conn.rollback()
        with conn.begin():
            conn.exec_driver_sql(
                "CREATE FUNCTION tag_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER tag_audit AFTER INSERT ON contact_tags FOR EACH ROW EXECUTE FUNCTION tag_audit()"
            )
            # The replica role would silence this trigger too: no shortcut then.
            assert not may_skip_key_checks(conn)
            conn.rollback()


def test_contacts_take_the_ids_drawn_for_their_rows(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL draws ids ahead; when another session drew in between they come as a list."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite draws no ids ahead")
    import bot.import_staging

    drawn: list[list[int]] = []
    consecutive = bot.import_staging.ContactIds.__call__

    def with_gaps(self: bot.import_staging.ContactIds, count: int) -> list[int]:
        first, _ = consecutive(self, count * 2)  # as if someone else took every other id
        drawn.append(list(range(first, first + count * 2, 2)))
        return drawn[-1]

    monkeypatch.setattr(bot.import_staging.ContactIds, "__call__", with_gaps)
    path = write(tmp_path, "v.csv", "phone,tags\n9876543210,a\nnot a number,b\n9876543211,c\n")
    report = import_file(db, path, region="IN", workers=2)
    assert (report.imported, report.rejected) == (2, 1)
    (ids,) = drawn
    found = contacts(db)
    assert (found["+919876543210"].id, found["+919876543211"].id) == (ids[0], ids[2])
    assert tags_of(db, "+919876543211") == {"c": None}
