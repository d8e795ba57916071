from tests.conftest import login
from web.users import create_user


def sign_in(app, client, role: str = "viewer") -> None:
    with app.extensions["canvass"].db.session() as s:
        create_user(s, f"{role}@example.org", role, "a long passphrase")
    assert login(client, f"{role}@example.org", "a long passphrase").status_code == 302


def test_dashboard_and_contacts_pages(app, client, cli) -> None:
    assert cli("demo").exit_code == 0
    sign_in(app, client)
    page = client.get("/").get_data(as_text=True)
    assert "40</span><span>contacts" in page
    assert 'href="/contacts?tag=ward"' in page
    assert "Users</a>" not in page  # only admins see the users page

    listing = client.get("/contacts?tag=ward%3D3").get_data(as_text=True)
    assert "Contacts <small>" in listing
    rows = listing.count('<td class="mono">')
    assert rows >= 1 and rows == listing.count('<span class="tag">ward=3</span>')

    bad = client.get("/contacts?tag=bad tag!").get_data(as_text=True)
    assert "tag name &#39;bad tag!&#39;" in bad

    search = client.get("/contacts?q=%2B919800").get_data(as_text=True)
    assert search.count('">+919800') == 10  # the ten demo numbers +919800x..., each a link to its page
    assert "Contacts <small>10</small>" in search


def test_admin_adds_a_user_from_the_console(app, client) -> None:
    from tests.conftest import csrf_token

    sign_in(app, client, "admin")
    token = csrf_token(client, "/users")
    weak = client.post(
        "/users", data={"email": "x@example.org", "role": "viewer", "password": "short", "csrf_token": token}
    )
    assert "password: must be at least 12 characters" in weak.get_data(as_text=True)
    ok = client.post(
        "/users",
        data={"email": "New@Example.org", "role": "editor", "password": "another long one", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Created new@example.org." in ok.get_data(as_text=True)
    assert "<td>editor</td>" in ok.get_data(as_text=True)


def test_sandbox_page_talks_to_a_flow(app, client, cli) -> None:
    from tests.conftest import csrf_token

    assert cli("demo").exit_code == 0
    assert cli("flows", "load", "flows/booth_locator.yaml").exit_code == 0
    from bot.flowlibrary import clear_cache

    clear_cache()
    sign_in(app, client, "operator")
    page = client.get("/sandbox?phone=9876543210&channel=whatsapp").get_data(as_text=True)
    assert "No messages yet" in page
    token = csrf_token(client, "/sandbox?phone=9876543210")
    client.post("/sandbox", data={"phone": "9876543210", "channel": "whatsapp", "text": "booth", "csrf_token": token})
    page = client.get("/sandbox?phone=%2B919876543210&channel=whatsapp").get_data(as_text=True)
    assert "Namaste there! Polling day is 20 November." in page
    assert '<button type="submit" name="text" value="2" class="secondary">No</button>' in page
    client.post("/sandbox", data={"phone": "+919876543210", "channel": "whatsapp", "text": "2", "csrf_token": token})
    page = client.get("/sandbox?phone=%2B919876543210").get_data(as_text=True)
    assert "Please send your EPIC" in page
    # Viewers may not speak as voters.
    viewer = app.test_client()
    sign_in(app, viewer, "viewer")
    assert viewer.get("/sandbox").status_code == 403
