"""Segments in the console: the builder's form -> spec, live counts, saving, roles, CSRF.

Also saved segments where they are used: the contacts filter and campaign specs
(``audience: {segment: NAME}``), resolved at launch.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from bot.models import Contact, ContactTag, Segment
from bot.saved_segments import SavedSegmentError, save
from bot.segments import SegmentError, check, condition
from campaigns import planner, readiness, spec
from campaigns.audiences import campaigns_naming
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.conftest import csrf_token, login
from web.console.segment_form import Builder, Group, Row, builder_from_form, builder_from_spec, describe
from web.users import create_user

PASSWORD = "a long passphrase"


def rows(*items: tuple[str, ...], match: str = "all", modes: tuple[str, ...] = ("all",)) -> MultiDict[str, str]:
    """The builder's form fields: each item is (group, kind, not, name, op, value[, consent])."""
    form: MultiDict[str, str] = MultiDict([("match", match)])
    for mode in modes:
        form.add("group_mode", mode)
    for item in items:
        group, kind, negate, name, op, value, *consent = item
        for key, val in zip(
            ("row_group", "row_kind", "row_not", "row_name", "row_op", "row_value", "row_consent"),
            (group, kind, negate, name, op, value, consent[0] if consent else "unknown"),
            strict=True,
        ):
            form.add(key, val)
    return form


# 1. The form -> spec, and back -----------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (rows(), {}),
        (rows(("0", "tag", "", "", "eq", "")), {}),  # the blank row offered at the end is skipped
        (rows(("0", "valued", "", "ward", "eq", "3")), {"tag": "ward", "eq": "3"}),
        (
            rows(("0", "valued", "", "ward", "eq", "3"), ("0", "tag", "not", "youth", "eq", "")),
            {"all": [{"tag": "ward", "eq": "3"}, {"not": {"tag": "youth"}}]},
        ),
        (rows(("0", "valued", "", "ward", "in", " 3, 4 ,,5")), {"tag": "ward", "in": ["3", "4", "5"]}),
        (rows(("0", "field", "", "language", "eq", "hi")), {"field": "language", "eq": "hi"}),
        (rows(("0", "field", "", "fields.region", "exists", "")), {"field": "fields.region", "exists": True}),
        (rows(("0", "consent", "", "", "eq", "", "opted_in")), {"consent": "opted_in"}),
        (rows(("0", "opted_out", "not", "", "eq", "")), {"not": {"consent": "opted_out"}}),
        (
            rows(("0", "tag", "", "volunteer", "eq", ""), ("0", "tag", "", "youth", "eq", ""), modes=("any",)),
            {"any": [{"tag": "volunteer"}, {"tag": "youth"}]},
        ),
        (
            rows(("0", "tag", "", "volunteer", "eq", ""), ("0", "tag", "", "youth", "eq", ""), modes=("none",)),
            {"not": {"any": [{"tag": "volunteer"}, {"tag": "youth"}]}},
        ),
        (
            rows(
                ("0", "valued", "", "ward", "eq", "3"),
                ("1", "tag", "", "volunteer", "eq", ""),
                ("1", "field", "", "language", "eq", "hi"),
                match="all",
                modes=("all", "any"),
            ),
            {"all": [{"tag": "ward", "eq": "3"}, {"any": [{"tag": "volunteer"}, {"field": "language", "eq": "hi"}]}]},
        ),
    ],
)
def test_the_builders_form_becomes_a_spec(form: MultiDict[str, str], expected: dict[str, Any]) -> None:
    built = builder_from_form(form).spec()
    assert built == expected
    check(built)
    # And the rows the page shows for a saved spec give the same spec back.
    assert builder_from_spec(built).spec() == expected


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (rows(("0", "valued", "", "ward", "eq", "")), "group 1, row 1: value: required"),
        (rows(("0", "valued", "", "ward", "in", " , ")), "group 1, row 1: values: one or more"),
        (rows(("0", "tag", "", "x", "eq", ""), ("0", "tag", "", "bad tag!", "eq", "")), "group 1, row 2: tag: "),
        (rows(("0", "field", "", "colour", "eq", "red")), "group 1, row 1: field: unknown field 'colour'"),
        (rows(("0", "consent", "", "", "eq", "", "maybe")), "group 1, row 1: consent: must be unknown, opted_in"),
        (rows(("0", "valued", "", "", "eq", "3")), "group 1, row 1: a tag name is required"),
        (rows(("0", "magic", "", "x", "eq", "")), "group 1, row 1: unknown kind 'magic'"),
        (rows(("0", "tag", "", "x", "eq", ""), match="some"), "match: must be all or any"),
        (rows(*[("0", "tag", "", f"t{n}", "eq", "") for n in range(61)]), "rows: at most 60 conditions, got 61"),
    ],
)
def test_bad_conditions_name_their_row(form: MultiDict[str, str], message: str) -> None:
    with pytest.raises(SegmentError) as caught:
        builder_from_form(form).spec()
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_spec_the_rows_cannot_show_is_edited_as_json() -> None:
    odd = {"all": [{"tag": "ward", "prefix": "1"}, {"active_within_days": 30}]}
    builder = builder_from_spec(odd)
    assert builder.json_text is not None and builder.spec() == odd
    with pytest.raises(SegmentError, match="json: not valid JSON"):
        Builder(json_text="{nope").spec()
    assert describe(odd) == "ward starts with 1 and active within days 30"
    assert describe({}) == "every contact"
    assert describe({"all": [{"tag": "ward", "in": ["3", "4"]}, {"not": {"tag": "youth"}}]}) == (
        "ward in (3, 4) and not youth"
    )
    assert Builder(groups=[Group("all", [Row("tag", "x")])]).with_blank_rows().groups[0].rows[-1].blank()


# 2. Saved segments and where they are used ------------------------------------------------


def ward_world(world: World) -> dict[str, int]:
    ids = {
        "a": world.voter("+919876500001", "ward=3", name="Asha"),
        "b": world.voter("+919876500002", "ward=3", "youth", name="Bala"),
        "c": world.voter("+919876500003", "ward=4", name="Chitra"),
        "d": world.voter("+919876500004", "ward=3", name="Dev", consent="opted_out"),
    }
    return ids


WARD3_NOT_YOUTH = {"all": [{"tag": "ward", "eq": "3"}, {"not": {"tag": "youth"}}]}


def test_saved_segments_resolve_by_name_and_refuse_loops(world: World) -> None:
    ward_world(world)
    with world.rt.db.session() as s:
        save(s, "  Ward 3   non-youth ", WARD3_NOT_YOUTH, by="ops@example.org")
        assert s.scalar(select(Segment.name)) == "Ward 3 non-youth"
        where = condition(s, {"all": [{"segment": "Ward 3 non-youth"}, {"not": {"consent": "opted_out"}}]})
        assert s.scalars(select(Contact.name).where(where)).all() == ["Asha"]
        with pytest.raises(SavedSegmentError, match="name: there is already a segment named 'Ward 3 non-youth'"):
            save(s, "Ward 3 non-youth", {}, by=None)
        with pytest.raises(SavedSegmentError, match="segment: segment: there is no saved segment named 'nope'"):
            save(s, "other", {"segment": "nope"}, by=None)
        outer = save(s, "outer", {"segment": "Ward 3 non-youth"}, by=None)
        inner = s.scalar(select(Segment).where(Segment.name == "Ward 3 non-youth"))
        assert inner is not None
        with pytest.raises(SavedSegmentError, match="cannot include itself"):
            save(s, inner.name, {"segment": "outer"}, by=None, segment_id=inner.id)
        with pytest.raises(SavedSegmentError, match="name: a name of 1 to 80"):
            save(s, " ", {}, by=None)
        assert outer.spec == {"segment": "Ward 3 non-youth"}
    with pytest.raises(SegmentError, match="segment: a saved segment can only be used where the database is at hand"):
        from bot.segments import compile_segment

        compile_segment({"segment": "x"}, dialect="sqlite")


def test_a_campaign_spec_names_a_saved_segment(world: World) -> None:
    ward_world(world)
    text = BOOTH_SPEC.replace("audience: {tag: ward}", "audience: {segment: Ward 3 non-youth}")
    fields = spec.parse(text, "spec.yaml")  # the name is checked against the database later
    assert fields["segment"] == {"segment": "Ward 3 non-youth"}
    with pytest.raises(Exception, match="audience: segment: must be the name of a saved segment"):
        spec.parse(BOOTH_SPEC.replace("audience: {tag: ward}", "audience: {segment: [1]}"), "spec.yaml")
    campaign = world.campaign(text)
    with world.rt.db.session() as s:
        c = s.merge(campaign)
        assert "audience: segment: there is no saved segment named 'Ward 3 non-youth'" in readiness.problems(
            s, c, region="IN"
        )
        save(s, "Ward 3 non-youth", WARD3_NOT_YOUTH, by=None)
        assert not [p for p in readiness.problems(s, c, region="IN") if p.startswith("audience")]
        who = s.scalars(select(Contact.name).where(planner.audience(s, c)).order_by(Contact.name)).all()
        assert who == ["Asha", "Dev"]  # consent is the planner's skip code, not the audience's
        assert [x.id for x in campaigns_naming(s, "Ward 3 non-youth")] == [c.id]


# 3. The pages ------------------------------------------------------------------------------


def signed_in(world: World, role: str):  # type: ignore[no-untyped-def]
    client = world.app.test_client()
    with world.rt.db.session() as s:
        create_user(s, f"{role}@example.org", role, PASSWORD)
    assert login(client, f"{role}@example.org", PASSWORD).status_code == 302
    return client


def db_count(world: World, spec_: Any) -> int:
    with world.rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(Contact).where(condition(s, spec_))) or 0


def test_the_live_count_matches_the_database(world: World) -> None:
    ward_world(world)
    client = signed_in(world, "viewer")
    form = rows(("0", "valued", "", "ward", "eq", "3"), ("0", "tag", "not", "youth", "eq", ""))
    answer = client.get("/segments/count", query_string=form)
    assert answer.status_code == 200
    data = answer.get_json()
    assert data["spec"] == WARD3_NOT_YOUTH
    assert data["count"] == db_count(world, WARD3_NOT_YOUTH) == 2
    with world.rt.db.session() as s:
        by_hand = {
            c.phone
            for c in s.scalars(select(Contact))
            if any(t.name == "ward" and t.value == "3" for t in c.tags) and not any(t.name == "youth" for t in c.tags)
        }
    assert {c["phone"] for c in data["preview"]} == by_hand
    assert data["preview"][0]["tags"] == ["ward=3"] and data["description"] == "ward = 3 and not youth"

    bad = client.get("/segments/count", query_string=rows(("0", "valued", "", "ward", "in", "")))
    assert bad.status_code == 422
    assert bad.get_json()["message"].startswith("group 1, row 1: values:")
    assert bad.get_json()["field"] == "group 1, row 1"

    # Without JavaScript: the form submitted as a query string renders the count.
    page = client.get("/segments/new", query_string=form).get_data(as_text=True)
    assert "<strong data-count>2</strong>" in page and "ward = 3 and not youth" in page
    assert "+919876500001" in page and "+919876500002" not in page
    assert 'name="name"' not in page and "Save segment" not in page  # viewers do not save
    more = client.get("/segments/new", query_string=MultiDict([*form.items(multi=True), ("action", "add_group")]))
    assert more.get_data(as_text=True).count("data-group>") == 2


@pytest.mark.parametrize(
    ("who", "status"), [(None, 302), ("viewer", 403), ("operator", 302), ("editor", 302), ("admin", 302)]
)
def test_saving_needs_an_operator(world: World, who: str | None, status: int) -> None:
    client = signed_in(world, who) if who else world.app.test_client()
    form = rows(("0", "valued", "", "ward", "eq", "3"))
    form.add("name", "Ward 3")
    form.add("action", "save")
    form.add("csrf_token", csrf_token(client, "/login" if who is None else "/segments"))
    answer = client.post("/segments/new", data=form)
    expected = status if who else 401
    assert answer.status_code == expected
    with world.rt.db.session() as s:
        saved = s.scalars(select(Segment.name)).all()
    assert saved == (["Ward 3"] if status == 302 and who else [])
    if who in (None, "viewer"):
        return
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Saved “Ward 3”: ward = 3." in page
    assert client.get("/segments").get_data(as_text=True).count("<tr data-segment=") == 1


def test_save_edit_delete_and_the_errors_that_keep_the_form(world: World) -> None:
    ward_world(world)
    client = signed_in(world, "operator")
    token = csrf_token(client, "/segments/new")

    def post(path: str, form: MultiDict[str, str], name: str, action: str = "save", token_: str | None = None):  # type: ignore[no-untyped-def]
        data = MultiDict([*form.items(multi=True), ("name", name), ("action", action)])
        data.add("csrf_token", token if token_ is None else token_)
        return client.post(path, data=data)

    good = rows(("0", "valued", "", "ward", "eq", "3"), ("0", "tag", "not", "youth", "eq", ""))
    missing = post("/segments/new", rows(("0", "valued", "", "ward", "eq", "")), "Ward 3 non-youth")
    assert missing.status_code == 422
    text = missing.get_data(as_text=True)
    assert "Not saved: group 1, row 1: value: required" in text
    assert 'value="ward"' in text and 'value="Ward 3 non-youth"' in text  # nothing lost

    assert post("/segments/new", good, "Ward 3 non-youth", token_="forged").status_code == 400  # CSRF
    assert post("/segments/new", good, "Ward 3 non-youth", action="count").status_code == 200  # counts, saves not
    with world.rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Segment)) == 0
    created = post("/segments/new", good, "Ward 3 non-youth")
    assert created.status_code == 302
    path = created.headers["Location"]
    segment_id = int(path.rsplit("/", 1)[1])
    edit = client.get(path).get_data(as_text=True)
    assert 'value="ward"' in edit and 'value="youth"' in edit and "<strong data-count>2</strong>" in edit
    dup = post("/segments/new", good, "ward 3 NON-youth ".replace("ward", "Ward").replace("NON", "non"))
    assert "Not saved. Name: there is already a segment named &#39;Ward 3 non-youth&#39;" in dup.get_data(as_text=True)

    # Contacts filtered by the saved segment are the segment's contacts.
    listing = client.get("/contacts", query_string={"segment": "Ward 3 non-youth"}).get_data(as_text=True)
    assert listing.count('<td class="mono">') == 2 and "Contacts <small>2</small>" in listing

    # A campaign waiting for launch names it: no renaming, no deleting.
    world.campaign(BOOTH_SPEC.replace("audience: {tag: ward}", "audience: {segment: Ward 3 non-youth}"))
    renamed = post(path, good, "Ward three")
    assert renamed.status_code == 422
    assert "campaigns waiting for launch use “Ward 3 non-youth” (#1 Booth reminder)" in renamed.get_data(as_text=True)
    changed = post(path, rows(("0", "valued", "", "ward", "in", "3, 4")), "Ward 3 non-youth")
    assert changed.status_code == 302
    assert db_count(world, {"segment": "Ward 3 non-youth"}) == 4
    refused = client.post(f"/segments/{segment_id}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "is the audience of #1 Booth reminder: change their audience first" in refused.get_data(as_text=True)
    with world.rt.db.session() as s:
        from campaigns.models import Campaign

        s.execute(Campaign.__table__.delete())
    assert client.post(f"/segments/{segment_id}/delete", data={}).status_code == 400  # no CSRF token
    gone = client.post(f"/segments/{segment_id}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Deleted “Ward 3 non-youth”." in gone.get_data(as_text=True)
    assert client.get(path).status_code == 404


def test_viewers_cannot_delete(world: World) -> None:
    with world.rt.db.session() as s:
        segment_id = save(s, "x", {"tag": "x"}, by=None).id
    client = signed_in(world, "viewer")
    answer = client.post(f"/segments/{segment_id}/delete", data={"csrf_token": csrf_token(client, "/segments")})
    assert answer.status_code == 403
    with world.rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ContactTag)) == 0
        assert s.get(Segment, segment_id) is not None
