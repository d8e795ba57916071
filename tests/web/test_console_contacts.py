"""The contacts list's filters and pages, and importing a file from the browser.

The import runs as a real RQ job on a real Redis, taken by a burst worker in the test.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.import_jobs import ImportRequestError, import_progress, start_import, upload_path
from bot.models import Contact, ContactTag
from bot.saved_segments import save
from tests.campaigns.conftest import World
from tests.conftest import csrf_token, login
from web.users import create_user

PASSWORD = "a long passphrase"


def signed_in(world: World, role: str = "viewer"):  # type: ignore[no-untyped-def]
    client = world.app.test_client()
    with world.rt.db.session() as s:
        create_user(s, f"{role}@example.org", role, PASSWORD)
    assert login(client, f"{role}@example.org", PASSWORD).status_code == 302
    return client


def phones(page: str) -> list[str]:
    return [line.split('">')[1].split("<")[0] for line in page.split('<td class="mono"><a href="/contacts/')[1:]]


def test_filters_by_valued_tag_field_consent_and_segment(world: World) -> None:
    world.voter("+919876500001", "ward=3", name="Asha", fields={"region": "north"})
    world.voter("+919876500002", "ward=3", "youth", name="Bala", consent="opted_in")
    world.voter("+919876500003", "ward=12", name="Chitra", fields={"region": "south"})
    world.voter("+919876500004", "volunteer", name="Dev", consent="opted_out")
    with world.rt.db.session() as s:
        s.execute(Contact.__table__.update().where(Contact.name == "Bala").values(language="hi"))
        save(s, "North", {"field": "fields.region", "eq": "north"}, by=None)
    client = signed_in(world)

    def listed(**args: str) -> list[str]:
        page = client.get("/contacts", query_string=args)
        assert page.status_code == 200
        return [p[-1] for p in phones(page.get_data(as_text=True))]

    assert listed() == ["4", "3", "2", "1"]  # newest first
    assert listed(tag="ward=3") == ["2", "1"]
    assert listed(tag="ward=3,12") == ["3", "2", "1"]
    assert listed(tag="ward") == ["3", "2", "1"]
    assert listed(field="language", value="hi") == ["2"]
    assert listed(field="fields.region") == ["3", "1"]  # no value: the field is set
    assert listed(field="fields.region", value="north,south") == ["3", "1"]
    assert listed(consent="opted_out") == ["4"]
    assert listed(segment="North") == ["1"]
    assert listed(segment="North", tag="ward=3", q="Asha") == ["1"]
    assert listed(q="+91987650000") == ["4", "3", "2", "1"]

    bad = client.get("/contacts", query_string={"tag": "bad tag!", "field": "colour", "segment": "Nope"})
    text = bad.get_data(as_text=True)
    assert "Tag: tag name &#39;bad tag!&#39;" in text
    assert "Field: unknown field &#39;colour&#39;" in text
    assert "Segment: there is no saved segment named &#39;Nope&#39;" in text
    assert "No contacts match." in text and 'value="bad tag!"' in text  # the filters are kept
    assert "Import contacts" not in text  # viewers do not import


def test_pages_follow_the_ids_without_offsets(world: World) -> None:
    with world.rt.db.session() as s:
        s.add_all(Contact(phone=f"+9198765{n:05d}", phone_kind="mobile", fields={}) for n in range(120))
        s.flush()
        s.add_all(
            ContactTag(contact_id=c.id, name="ward", value="3" if c.id % 2 else "4") for c in s.scalars(select(Contact))
        )
    client = signed_in(world)
    first = client.get("/contacts", query_string={"tag": "ward=3"}).get_data(as_text=True)
    assert "Contacts <small>60</small>" in first
    seen = phones(first)
    assert len(seen) == 50 and 'rel="prev"' not in first
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert "before=" in older and "tag=ward%3D3" in older
    second = client.get(older).get_data(as_text=True)
    rest = phones(second)
    assert len(rest) == 10 and not set(rest) & set(seen) and 'rel="next"' not in second
    newer = second.split('rel="prev"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert phones(client.get(newer).get_data(as_text=True)) == seen
    with world.rt.db.session() as s:
        expected = s.scalars(
            select(Contact.phone)
            .join(ContactTag)
            .where(ContactTag.name == "ward", ContactTag.value == "3")
            .order_by(Contact.id.desc())
        ).all()
    assert seen + rest == expected


def test_the_total_is_counted_up_to_a_cap(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from web.console import contacts

    for n in range(4):
        world.voter(f"+91987650000{n}")
    monkeypatch.setattr(contacts, "COUNT_CAP", 3)
    client = signed_in(world)
    assert "Contacts <small>more than 3</small>" in client.get("/contacts").get_data(as_text=True)


# Importing -------------------------------------------------------------------------------

CSV = (
    "phone,name,ward\n"
    "9876543210,Asha,3\n"
    "not a number,Bala,3\n"
    "9876543211,Chitra,4\n"
    "9876543210,Asha again,3\n"
    ",Nobody,5\n"
    "+91 98765 43212,Dev,3\n"
)


def run_worker(world: World) -> None:
    import worker

    with world.app.app_context():
        assert worker.run_worker(burst=True, rt=world.rt) == 0


def test_import_a_csv_with_bad_rows_and_download_the_rejects(world: World) -> None:
    client = signed_in(world, "operator")
    page = client.get("/contacts/import")
    assert page.status_code == 200
    token = csrf_token(client, "/contacts/import")
    answer = client.post(
        "/contacts/import",
        data={"csrf_token": token, "tags": "drive=nov, volunteer", "file": (io.BytesIO(CSV.encode()), "voters.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    job_page = answer.headers["Location"]
    job_id = job_page.rsplit("/", 1)[1]
    queued = client.get(f"{job_page}/progress.json").get_json()
    assert queued["state"] == "queued" and queued["filename"] == "voters.csv" and queued["percent"] == 0
    assert "Waiting for a worker" in client.get(job_page).get_data(as_text=True)
    stored = world.rt.settings.var_dir / "imports" / job_id / "upload.csv"
    assert stored.read_text() == CSV

    run_worker(world)
    done = client.get(f"{job_page}/progress.json").get_json()
    assert {k: done[k] for k in ("state", "percent", "rows", "imported", "updated", "rejected", "has_rejects")} == {
        "state": "finished",
        "percent": 100.0,
        "rows": 6,
        "imported": 3,
        "updated": 0,
        "rejected": 3,
        "has_rejects": True,
    }
    html = client.get(job_page).get_data(as_text=True)
    assert 'value="100.0"' in html and "Download the rejected rows" in html
    assert "voters.csv" in client.get("/contacts/import").get_data(as_text=True)  # the latest imports

    with client.get(f"{job_page}/rejects.csv") as rejects:
        assert rejects.status_code == 200 and rejects.mimetype == "text/csv"
        assert "voters.rejects.csv" in rejects.headers["Content-Disposition"]
        table = list(csv.reader(io.StringIO(rejects.get_data(as_text=True))))
    assert table[0] == ["line", "reason", "phone", "name", "ward"]
    assert [row[0] for row in table[1:]] == ["3", "5", "6"]
    assert [row[2:] for row in table[1:]] == [
        ["not a number", "Bala", "3"],
        ["9876543210", "Asha again", "3"],
        ["", "Nobody", "5"],
    ]
    assert table[2][1] == "duplicate of line 2"
    assert all(row[1] for row in table[1:])  # every row says why

    with world.rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 3
        tagged = s.scalars(select(ContactTag.contact_id).where(ContactTag.name == "drive", ContactTag.value == "nov"))
        assert len(tagged.all()) == 3
    listing = client.get("/contacts", query_string={"tag": "ward=3"}).get_data(as_text=True)
    assert phones(listing) == ["+919876543212", "+919876543210"]


def test_an_unusable_file_fails_with_its_reason(world: World) -> None:
    client = signed_in(world, "operator")
    token = csrf_token(client, "/contacts/import")
    answer = client.post(
        "/contacts/import",
        data={"csrf_token": token, "file": (io.BytesIO(b"name,ward\nAsha,3\n"), "no-phone.csv")},
        content_type="multipart/form-data",
    )
    job_page = answer.headers["Location"]
    run_worker(world)
    failed = client.get(f"{job_page}/progress.json").get_json()
    assert failed["state"] == "failed"
    assert failed["error"].startswith("no-phone.csv: ") and "phone" in failed["error"]
    assert str(world.rt.settings.var_dir) not in failed["error"]  # our storage path stays ours
    assert "Nothing was imported: no-phone.csv" in client.get(job_page).get_data(as_text=True)
    assert client.get(f"{job_page}/rejects.csv").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "File: choose a CSV or TXT file to import"),
        ({"file": (b"x", "voters.xlsx")}, "File: must be a .csv or .txt file, got &#39;voters.xlsx&#39;"),
        ({"file": (b"", "voters.csv")}, "File: is empty"),
        (
            {"file": (b"phone\n9876543210\n", "v.csv"), "tags": "ok, bad tag!"},
            "Tags: tag name &#39;tag!&#39;: use 1-64 letters",
        ),
    ],
)
def test_bad_uploads_are_named_and_keep_the_tags(world: World, data: dict, message: str) -> None:  # type: ignore[type-arg]
    client = signed_in(world, "operator")
    token = csrf_token(client, "/contacts/import")
    form = {k: (io.BytesIO(v[0]), v[1]) if k == "file" else v for k, v in data.items()}
    answer = client.post("/contacts/import", data={"csrf_token": token, **form}, content_type="multipart/form-data")
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert message in text, text
    if "tags" in data:
        assert 'value="ok, bad tag!"' in text
    assert not list((world.rt.settings.var_dir / "imports").glob("*/upload.*"))


@pytest.mark.parametrize(("who", "status"), [(None, 302), ("viewer", 403), ("operator", 200), ("admin", 200)])
def test_importing_needs_an_operator(world: World, who: str | None, status: int) -> None:
    client = signed_in(world, who) if who else world.app.test_client()
    assert client.get("/contacts/import").status_code == status
    token = csrf_token(client, "/login" if who is None else "/contacts")
    posted = client.post(
        "/contacts/import",
        data={"csrf_token": token, "file": (io.BytesIO(b"phone\n9876543210\n"), "v.csv")},
        content_type="multipart/form-data",
    )
    assert posted.status_code == {None: 401, "viewer": 403}.get(who, 302)
    if who == "operator":
        forged = client.post(
            "/contacts/import",
            data={"csrf_token": "forged", "file": (io.BytesIO(b"phone\n9876543210\n"), "v.csv")},
            content_type="multipart/form-data",
        )
        assert forged.status_code == 400


def test_start_import_and_progress_for_other_callers(world: World, tmp_path: Path) -> None:
    """The REST API's way in: store the file, start, poll (bot.import_jobs)."""
    job_id, path = upload_path(world.rt.settings.var_dir, "list.TXT")
    assert path.name == "upload.txt"
    path.write_text("9876543210\n98765\n9876543211\n")
    with pytest.raises(ImportRequestError, match="tags: "):
        start_import(world.rt.redis, job_id, path, tags=["ok!"], filename="list.TXT")
    with pytest.raises(ImportRequestError, match=r"file: must be a \.csv or \.txt file"):
        upload_path(world.rt.settings.var_dir, "list.pdf")
    assert start_import(world.rt.redis, job_id, path, tags=["src=api"], filename="list.TXT", by="api") == job_id
    assert import_progress(world.rt.redis, job_id)["state"] == "queued"  # type: ignore[index]
    assert import_progress(world.rt.redis, "import-0000000000000000") is None
    assert import_progress(world.rt.redis, "../../etc") is None
    run_worker(world)
    done = import_progress(world.rt.redis, job_id)
    assert done is not None and (done["imported"], done["rejected"], done["by"]) == (2, 1, "api")
    # A job whose worker vanished (here: its RQ job is gone) is reported failed, not "running" forever.
    world.rt.redis.hset(f"canvass:import:{job_id}", "state", "running")
    world.rt.redis.delete(f"rq:job:{job_id}")
    lost = import_progress(world.rt.redis, job_id)
    assert lost is not None and lost["state"] == "failed" and "worker stopped" in lost["error"]


def test_the_pipeline_reports_its_counts_as_it_reads(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """import_file's on_counts: rows read per piece, bytes growing; the board writes a few times a second."""
    import bot.import_source
    from bot.contact_import import ImportCounts, import_file
    from bot.import_jobs import KEY, ProgressBoard

    # The file is read in pieces of whole lines: here exactly 4,000 lines of 11 characters.
    monkeypatch.setattr(bot.import_source, "BLOCK_CHARS", 4000 * 11)
    path = tmp_path / "many.csv"
    path.write_text("phone\n" + "".join(f"98{n:08d}\n" for n in range(9000)))
    seen: list[ImportCounts] = []
    report = import_file(world.rt.db, path, region="IN", workers=1, on_counts=seen.append)
    assert [c.rows for c in seen] == [4000, 8000, 9000]
    assert [c.bytes_read for c in seen] == sorted(c.bytes_read for c in seen) and seen[
        -1
    ].bytes_read == path.stat().st_size
    assert report.imported == 9000

    board = ProgressBoard(world.rt.redis, "import-00000000000000aa")
    for c in seen:  # in one burst: only the first is written, the rest are within the quarter second
        board.counts(c)
    assert world.rt.redis.hget(KEY.format("import-00000000000000aa"), "rows") == b"4000"
