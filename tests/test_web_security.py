"""Issue 15's findings about `digest serve`, each against the real server over HTTP (and a real
aiosmtpd for the confirmation emails): stalled request bodies (slowloris), sign-up used to mail
others, confirmation links bound to their own sign-up, 503 rather than 500 when the state or
the mail server is unavailable, and control characters in names."""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from digest.settings import load_settings
from digest.state import State, WebChanges
from digest.subscribers import FieldError, load_subscribers
from digest.subscribers.fields import check_name
from digest.taxonomy import load_taxonomy
from digest.web.app import server_options

from .conftest import Project, SmtpServer, free_port
from .test_web import (
    ANA,
    NEWSROOM,
    PREFERENCES_FORM,
    Client,
    Reply,
    WebServer,
    _confirmation_link,
    _sign_up,
    start_server,
    subscribers,
    token,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OPEN_LIMITS = {"posts_per_minute": 1000, "requests_per_minute": 1000}


@pytest.fixture
def served(project: Project, smtp_server: SmtpServer) -> Iterator[WebServer]:
    """`digest serve` sending its confirmation emails to the real SMTP server."""
    project.use_smtp(smtp_server)
    project.subscribers([ANA, NEWSROOM])
    server = start_server(project, **OPEN_LIMITS)
    try:
        yield server
    finally:
        server.stop()


# -- 4. slowloris ------------------------------------------------------------------------------
def _stalled_bodies(server: WebServer, count: int) -> list[socket.socket]:
    """Connections that sent their headers and the start of a body, then nothing more."""
    parts = urlsplit(server.base)
    head = (
        f"POST /subscribe HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4096\r\n\r\n"
        "email=slow%40example.org&name="
    ).encode()
    stalled = []
    for _ in range(count):
        connection = socket.create_connection((parts.hostname, parts.port), timeout=5)
        connection.sendall(head)
        stalled.append(connection)
    return stalled


def _closed_by_server(connection: socket.socket, deadline: float) -> bool:
    connection.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return connection.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_stalled_request_bodies_neither_starve_the_health_check_nor_stay_open(
    project: Project,
) -> None:
    # `digest serve`'s own limits, with its 30 s channel timeout shortened to 3 s (and the
    # clean-ups every second) so the test can watch the stalled connections being closed.
    assert server_options(load_settings(project.config), "127.0.0.1", 1, 8)["channel_timeout"] == 30
    shortened = {"channel_timeout": 3, "cleanup_interval": 1}
    server = start_server(project, waitress_options=shortened, **OPEN_LIMITS)
    stalled: list[socket.socket] = []
    try:
        stalled = _stalled_bodies(server, 120)
        started = time.monotonic()
        time.sleep(1)  # the server accepts and reads them all
        asked = time.monotonic()
        with urllib.request.urlopen(server.url("/healthz"), timeout=10) as reply:
            assert reply.status == 200 and reply.read() == b"ok\n"
        assert time.monotonic() - asked < 2
        assert Client(server).get("/subscribe").status == 200

        # Each stalled connection is closed after `channel_timeout` of silence, give or take
        # the time between waitress's clean-ups; not before, so a slow client has its time.
        deadline = started + 15
        assert all(_closed_by_server(c, deadline) for c in stalled)
        waited = time.monotonic() - started
        assert 2.5 <= waited <= 15, waited
    finally:
        for connection in stalled:
            connection.close()
        server.stop()


@pytest.mark.parametrize(
    ("soft", "hard", "expected"),
    [(256, 4096, (1000, 1128)), (256, 512, (384, 512)), (8192, 8192, (1000, 8192))],
)
def test_the_connection_limit_raises_the_open_file_limit_or_fits_under_it(
    soft: int, hard: int, expected: tuple[int, int]
) -> None:
    """In a process of its own, since it changes the process's limits."""
    import resource

    allowed = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if allowed != resource.RLIM_INFINITY and hard > allowed:
        pytest.skip(f"this machine's hard open-file limit is {allowed}")
    program = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))\n"
        "from digest.web.app import connection_limit\n"
        "print(connection_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert tuple(int(n) for n in result.stdout.split()) == expected, result.stderr


# -- 5. sign-up used to mail others ------------------------------------------------------------
BAIT = "Claim your prize at http://evil.example/x"


def test_the_confirmation_email_leaves_the_submitted_name_out(
    served: WebServer, smtp_server: SmtpServer
) -> None:
    reply = _sign_up(Client(served), "target@example.org", name=BAIT)
    assert reply.status == 200 and "Check your inbox" in reply.text
    [received] = smtp_server.handler.received
    message = received.message
    assert message["To"] == "target@example.org"
    text = message.get_content()
    assert text.startswith("Hello,\r\n")
    for word in ("Claim", "prize", "evil.example"):
        assert word not in text and word.encode() not in received.data
    # The name waits with the sign-up: the confirmation page shows it to the address's owner.
    page = Client(served).get(_confirmation_link(smtp_server, "target@example.org"))
    assert page.status == 200 and BAIT in page.text


def test_plus_tags_and_case_count_as_one_address_for_the_confirmation_limit(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    server = start_server(project, signups_per_hour=2, **OPEN_LIMITS)
    try:
        spellings = ["target@example.org", "target+1@example.org", "Target+prize@EXAMPLE.org"]
        replies = [_sign_up(Client(server), address) for address in spellings]
        assert [r.status for r in replies] == [200, 200, 429]
        assert "several confirmation emails" in replies[-1].text
        assert len(smtp_server.handler.received) == 2
        assert _sign_up(Client(server), "other@example.org").status == 200
    finally:
        server.stop()


def test_confirmation_emails_have_a_global_hourly_cap(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    server = start_server(project, confirmations_per_hour=3, **OPEN_LIMITS)
    try:
        addresses = [f"reader{n}@example.org" for n in range(4)]
        replies = [_sign_up(Client(server), address) for address in addresses]
        assert [r.status for r in replies] == [200, 200, 200, 429]
        capped = replies[-1]
        assert "Please try again in" in capped.text and "Nothing was changed." in capped.text
        assert 60 < int(capped.headers["Retry-After"]) <= 3600
        assert len(smtp_server.handler.received) == 3
        assert smtp_server.handler.count_for(addresses[-1]) == 0
        assert addresses[-1] not in subscribers(project, "--all")
        assert Client(server).get("/subscribe").status == 200
    finally:
        server.stop()


def test_serve_refuses_a_bad_confirmation_cap_with_the_key(project: Project) -> None:
    project.settings(web={"confirmations_per_hour": 0})
    result = project.run("serve", "--port", str(free_port()))
    assert result.returncode == 2
    assert "setting 'web.confirmations_per_hour': expected a whole number" in result.stderr


# -- 6. a confirmation link is bound to its own sign-up ----------------------------------------
def test_a_confirmation_link_confirms_only_the_sign_up_it_was_sent_for(
    project: Project, served: WebServer, smtp_server: SmtpServer
) -> None:
    address = "twice@example.org"
    client = Client(served)
    assert _sign_up(Client(served), address, regions=["Caribbean"]).status == 200
    first_link = _confirmation_link(smtp_server, address, 0)
    first_page = client.get(first_link)  # opened before the second sign-up
    assert first_page.status == 200 and "Caribbean" in first_page.text

    second = _sign_up(Client(served), address, regions=["Central America"], group_by="topic")
    assert second.status == 200
    second_link = _confirmation_link(smtp_server, address, 1)
    assert second_link != first_link

    # The first link neither confirms the second sign-up's settings nor shows them.
    pressed = client.submit(first_page)
    assert pressed.status == 409 and "replaced" in pressed.text
    assert "Nothing was changed." in pressed.text
    again = client.get(first_link)
    assert again.status == 409 and not again.forms() and "Central America" not in again.text
    assert subscribers(project, "--all")[address]["status"] == "pending"

    page = client.get(second_link)
    assert page.status == 200 and "Central America" in page.text
    assert client.submit(page).status == 303
    entry = subscribers(project)[address]
    assert (entry["regions"], entry["group_by"]) == (["Central America"], "topic")


def test_a_changed_sign_up_id_in_the_link_is_refused(
    served: WebServer, smtp_server: SmtpServer
) -> None:
    _sign_up(Client(served), "bound@example.org")
    link = _confirmation_link(smtp_server, "bound@example.org")
    query = parse_qs(urlsplit(link).query)
    forged = served.url("/confirm", token=query["token"][0], signup="A" * 16)
    page = Client(served).get(forged)
    assert page.status == 403 and "This link is not valid" in page.text


def _old_state(path: Path) -> None:
    """A state as the version before sign-up ids left it: no `pending_nonce`, user_version 1,
    and a sign-up waiting for a link sent without an id."""
    with State(path) as state:
        WebChanges(state).sign_up("old@example.org", {"name": "Old"}, NOW, "127.0.0.1")
    db = sqlite3.connect(path)
    db.execute("UPDATE web_subscribers SET pending_nonce = NULL")
    db.execute("ALTER TABLE web_subscribers DROP COLUMN pending_nonce")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def _columns(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in db.execute("PRAGMA table_info(web_subscribers)")]


def test_the_migration_adds_the_sign_up_id_and_a_link_sent_before_it_still_confirms(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    _old_state(path)
    assert "pending_nonce" not in _columns(path)
    with State(path) as state:
        assert state.db.execute("PRAGMA user_version").fetchone()[0] >= 3
        changes = WebChanges(state)
        assert changes.sign_up_status("old@example.org", None) == "waiting"
        keep = lambda pending, prefs: pending  # noqa: E731
        assert changes.confirm("old@example.org", NOW, "x", keep, None) == "confirmed"
    assert _columns(path).count("pending_nonce") == 1

    # A state that already has the column at an older version (two processes upgrading the
    # same file at once) opens as well: the step is idempotent.
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 1")
    with State(path) as state:
        assert state.db.execute("PRAGMA user_version").fetchone()[0] >= 3
    assert _columns(path).count("pending_nonce") == 1


def test_a_sign_up_id_is_checked_by_the_store(tmp_path: Path) -> None:
    with State(tmp_path / "state.db") as state:
        changes = WebChanges(state)
        first = changes.sign_up("x@example.org", {"regions": ["Caribbean"]}, NOW, "a")
        second = changes.sign_up("x@example.org", {"regions": ["North America"]}, NOW, "b")
        assert first != second and len(second) >= 16
        keep = lambda pending, prefs: pending  # noqa: E731
        assert changes.sign_up_status("x@example.org", first) == "replaced"
        assert changes.confirm("x@example.org", NOW, "c", keep, first) == "replaced"
        assert changes.confirm("x@example.org", NOW, "c", keep, None) == "replaced"
        assert changes.sign_up_status("x@example.org", second) == "waiting"
        assert changes.confirm("x@example.org", NOW, "c", keep, second) == "confirmed"
        assert changes.confirm("x@example.org", NOW, "c", keep, second) == "nothing waiting"
        record = changes.record("x@example.org")
        assert record is not None and record.prefs == {"regions": ["North America"]}


# -- 7. 503, not 500 ---------------------------------------------------------------------------
def _damage(path: Path, how: str) -> None:
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        extra.unlink(missing_ok=True)
    if how == "emptied":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"this is not a SQLite database" * 200)


def _assert_unavailable(reply: Reply, changed_nothing: bool = True) -> None:
    assert reply.status == 503, reply.text
    assert "Please try again" in reply.text and "Traceback" not in reply.text
    assert ("Nothing was changed." in reply.text) is changed_nothing
    assert 1 <= int(reply.headers["Retry-After"]) <= 3600


@pytest.mark.parametrize("how", ["emptied", "damaged"])
def test_a_state_that_cannot_be_used_answers_503_and_says_why_in_the_log(
    project: Project, served: WebServer, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = Client(served)
    unsubscribe = served.url("/unsubscribe", token=token("unsubscribe", "ana@example.org"))
    page = client.get(unsubscribe)
    assert page.status == 200
    _damage(project.state, how)

    _assert_unavailable(client.post(unsubscribe, {"List-Unsubscribe": "One-Click"}))
    _assert_unavailable(client.get(unsubscribe))
    _assert_unavailable(client.submit(page, action="unsubscribe"))
    preferences = token("preferences", "ana@example.org", time.time() + 600)
    _assert_unavailable(client.get(served.url("/preferences", token=preferences)))
    _assert_unavailable(_sign_up(client, "new@example.org"))
    log = caplog.text
    assert f"{project.state}: the state file is" in log
    assert "Traceback" not in log and "unexpected error" not in log


def test_a_mail_server_that_is_down_during_sign_up_answers_503(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    closed = free_port()  # nothing listens there
    project.settings(
        delivery={
            "method": "smtp",
            "smtp": {"host": "127.0.0.1", "port": closed, "security": "none", "timeout": 5},
        }
    )
    server = start_server(project, **OPEN_LIMITS)
    try:
        reply = _sign_up(Client(server), "wait@example.org")
        # The sign-up is kept (a new one replaces it), so the page does not say nothing changed.
        _assert_unavailable(reply, changed_nothing=False)
        assert "confirmation email" in reply.text
        assert "confirmation email to wait@example.org failed" in caplog.text
    finally:
        server.stop()


def test_subscribers_yaml_half_written_answers_503(
    project: Project, served: WebServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    whole = (project.root / "subscribers.yaml").read_text()
    # Cut after the last entry's "email:", as a reader catches a file being written.
    (project.root / "subscribers.yaml").write_text(whole[: whole.rindex("email:") + 7])
    preferences = token("preferences", "ana@example.org", time.time() + 600)
    _assert_unavailable(Client(served).get(served.url("/preferences", token=preferences)))
    assert "cannot read" in caplog.text


def test_a_region_name_as_timezone_is_a_form_error_not_a_500(
    served: WebServer, smtp_server: SmtpServer
) -> None:
    # "America" names a folder of the timezone database, not a zone.
    reply = _sign_up(Client(served), "tz@example.org", timezone="America")
    assert reply.status == 400 and "Choose a timezone from the list." in reply.text
    assert smtp_server.handler.received == []


# -- 9. control characters in names ------------------------------------------------------------
CONTROLS = {
    "NUL": "\x00",
    "ESC": "\x1b[2J",
    "tab": "\t",
    "DEL": "\x7f",
    "C1 CSI": "\x9b",
    "NEL": "\x85",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "line feed": "\nBcc: x@evil.example",
}


@pytest.mark.parametrize("control", CONTROLS.values(), ids=CONTROLS.keys())
def test_check_name_refuses_control_characters(control: str) -> None:
    with pytest.raises(FieldError, match="'name': expected one line of text"):
        check_name(f"Ana{control}Pérez")


def test_check_name_keeps_ordinary_names() -> None:
    for name in (
        "Ana Pérez",
        "Zoë O'Brien-Núñez",
        "محمد",
        "Nguyễn Văn An",
        "李小龍",
        "Ana\u00a0P.",
    ):
        assert check_name(f"  {name} ") == name


def test_control_characters_in_subscribers_yaml_name_the_file_line_and_field(
    tmp_path: Path,
) -> None:
    path = tmp_path / "subscribers.yaml"
    path.write_text(
        "subscribers:\n"
        "  - email: ana@example.org\n"
        '    name: "Ana\\e[2J"\n'
        "  - email: bea@example.org\n"
        '    name: "Bea\\0"\n'
        "  - email: cy@example.org\n"
        '    name: "Cy\\L"\n'
    )
    with pytest.raises(Exception) as raised:
        load_subscribers(path, load_taxonomy(None))
    message = str(raised.value)
    for line, who, code in ((3, "ana", "U+001B"), (5, "bea", "U+0000"), (7, "cy", "U+2028")):
        assert (
            f"{path}:{line}: subscriber '{who}@example.org': 'name': expected one line of text"
            in message
        )
        assert code in message


def test_digest_check_reports_a_control_character_in_a_name(project: Project) -> None:
    project.subscribers([{**ANA, "name": "Ana\x1b[31mPérez"}])
    result = project.run("check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "subscribers.yaml:3: subscriber 'ana@example.org': 'name'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("control", ["\x00", "\x1b[2J", "\u2028", "\x85"])
def test_sign_up_refuses_control_characters_in_the_name(
    project: Project, served: WebServer, smtp_server: SmtpServer, control: str
) -> None:
    reply = _sign_up(Client(served), "ctl@example.org", name=f"Ana{control}Pérez")
    assert reply.status == 400
    assert "Please write your name on one line, without control characters." in reply.text
    assert smtp_server.handler.received == []
    assert "ctl@example.org" not in subscribers(project, "--all")


def test_the_preference_centre_refuses_control_characters_in_the_name(
    project: Project, served: WebServer
) -> None:
    client = Client(served)
    url = served.url(
        "/preferences", token=token("preferences", "ana@example.org", time.time() + 600)
    )
    page = client.get(url)
    reply = client.submit(
        page, **{**PREFERENCES_FORM, "name": "Ana\x1b]8;;http://evil.example\x07"}
    )
    assert reply.status == 400
    assert "Please write your name on one line, without control characters." in reply.text
    assert "\x1b" not in reply.text and "\x07" not in reply.text
    ana = subscribers(project)["ana@example.org"]
    assert ana["name"] == "Ana Pérez" and ana["sources"]["name"] == "file"


def test_a_stored_name_with_control_characters_is_not_used(project: Project) -> None:
    """A name the web stored before this check existed: the file's name stays."""
    with State(project.state) as state:
        WebChanges(state).set_preferences("ana@example.org", {"name": "Ana\x00X"}, "web", NOW)
    project.subscribers([ANA])
    assert subscribers(project)["ana@example.org"]["name"] == "Ana Pérez"
