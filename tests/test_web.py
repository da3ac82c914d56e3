"""`digest serve` on loopback (on a thread, and once as a process of its own), driven by a real
HTTP client (urllib with a cookie jar), with `digest send` delivering to a real SMTP server:
one-click unsubscribe, the unsubscribe page, the preference centre, sign-up with confirmation,
bad tokens, CSRF and rate limits."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from digest.compose.links import make_legacy_token, make_token

from .conftest import Project, SmtpServer, free_port

SECRET = "web-tests-secret"
CONSULAR = "Four countries discuss the role of their consular staff in protecting migrant workers"
OECS = "IOM and the Organization of Eastern Caribbean States partner"
ANA = {
    "email": "ana@example.org",
    "name": "Ana Pérez",
    "regions": ["Central America"],
    "topics": ["Labour migration", "Migrant protection", "Children and youth"],
}
NEWSROOM = {"email": "newsroom@example.org", "name": "Regional newsroom"}


# -- a server and a client --------------------------------------------------------------------
@dataclass
class WebServer:
    base: str
    stop: Callable[[], None]

    def url(self, path: str, **query: str) -> str:
        return self.base + path + (f"?{urlencode(query)}" if query else "")


def start_server(
    project: Project,
    secret: str | None = SECRET,
    path: str = "/unsubscribe",
    process: bool = False,
    waitress_options: dict[str, Any] | None = None,
    **web: Any,
) -> WebServer:
    """`digest serve` on a free port, with `unsubscribe_url` pointing at it: what the command
    runs (`digest.web.serve` on waitress) on a thread of this process, or with `process=True`
    the command itself in a process of its own. The token secret comes from the environment
    as the server starts (`secret`), or from the state when it is None."""
    port = free_port()
    project.settings(unsubscribe_url=f"http://127.0.0.1:{port}{path}", web=web)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("DIGEST_TOKEN_SECRET", None)
    if secret is not None:
        env["DIGEST_TOKEN_SECRET"] = secret
    health = path.rsplit("/", 1)[0] + "/healthz"
    if process:
        return _serve_process(project, port, env, health)
    return _serve_thread(project, port, env, health, **(waitress_options or {}))


def _serve_thread(
    project: Project, port: int, env: dict[str, str], health: str, **options: Any
) -> WebServer:
    from waitress import wasyncore

    from digest.settings import load_settings
    from digest.web import make_server

    settings = load_settings(project.config)
    # The app reads the secret (and a DKIM key) from the environment as it is made.
    with mock.patch.dict(os.environ, env, clear=True):
        server = make_server(settings, "127.0.0.1", port, **options)
    thread = threading.Thread(target=server.run, name=f"digest-serve-{port}", daemon=True)
    thread.start()

    def stop() -> None:
        # Close every socket from the server's own loop, which then ends (and the thread).
        # Once is enough: a second call (or a loop that already ended) has nothing to close.
        if thread.is_alive():
            with contextlib.suppress(OSError):
                server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
            thread.join(10)
        server.task_dispatcher.shutdown()
        assert not thread.is_alive(), "the server thread did not stop"

    web = WebServer(f"http://127.0.0.1:{port}", stop)
    with urllib.request.urlopen(web.url(health), timeout=10) as reply:
        assert reply.status == 200
    return web


def _serve_process(project: Project, port: int, env: dict[str, str], health: str) -> WebServer:
    log = project.root / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "digest",
                "serve",
                "--port",
                str(port),
                "--config",
                str(project.config),
            ],
            cwd=project.root,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    server = WebServer(f"http://127.0.0.1:{port}", stop)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"digest serve exited {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(server.url(health), timeout=2) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError(f"digest serve did not answer in 30 s:\n{log.read_text()}")


@pytest.fixture
def web(project: Project) -> Iterator[WebServer]:
    # Limits out of the way; the rate-limit tests set their own.
    server = start_server(project, posts_per_minute=1000, requests_per_minute=1000)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Reply:
    status: int
    headers: Any
    text: str

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def forms(self) -> list[dict[str, str]]:
        """Each form's action and CSRF field, as the page wrote them."""
        found = []
        for match in re.finditer(r"<form\b[^>]*>.*?</form>", self.text, re.S):
            form = match.group(0)
            action = re.search(r'action="([^"]*)"', form)
            csrf = re.search(r'name="csrf" value="([^"]*)"', form)
            found.append(
                {
                    "action": html.unescape(action.group(1)) if action else "",
                    "csrf": html.unescape(csrf.group(1)) if csrf else "",
                    "html": form,
                }
            )
        return found

    def link(self, text: str) -> str:
        match = re.search(r'<a [^>]*href="([^"]*)"[^>]*>' + re.escape(text) + "</a>", self.text)
        assert match, f"no link {text!r} in:\n{self.text}"
        return html.unescape(match.group(1))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """A small browser: keeps its cookies, follows no redirects, returns every status."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirects()
        )

    def _absolute(self, url: str) -> str:
        return url if url.startswith("http") else self.server.base + url

    def request(
        self,
        method: str,
        url: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        request = urllib.request.Request(
            self._absolute(url), data=data, method=method, headers=headers or {}
        )
        try:
            with self.opener.open(request, timeout=30) as reply:
                return Reply(reply.status, reply.headers, reply.read().decode())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers, error.read().decode())

    def get(self, url: str, **headers: str) -> Reply:
        return self.request("GET", url, headers=headers)

    def post(
        self,
        url: str,
        fields: dict[str, Any] | list[tuple[str, str]],
        headers: dict[str, str] | None = None,
    ) -> Reply:
        body = urlencode(fields, doseq=True).encode()
        return self.request(
            "POST",
            url,
            body,
            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )

    def submit(self, page: Reply, index: int = 0, **fields: Any) -> Reply:
        """Send the page's form number `index` with its CSRF field, as a browser would."""
        form = page.forms()[index]
        return self.post(
            form["action"], {"csrf": form["csrf"], **fields}, {"Origin": self.server.base}
        )


def token(purpose: str, email: str, expires_at: float | None = None, secret: str = SECRET) -> str:
    return make_token(secret.encode(), purpose, email, expires_at)


def subscribers(project: Project, *flags: str) -> dict[str, dict[str, Any]]:
    result = project.run("subscribers", "--json", *flags, check=True)
    return {entry["email"]: entry for entry in json.loads(result.stdout)}


def plain(message: Any) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())


def send_json(project: Project, *args: str) -> dict[str, Any]:
    result = project.run("send", "--json", *args, env={"DIGEST_TOKEN_SECRET": SECRET})
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


PREFERENCES_FORM = {
    "action": "save",
    "name": "Ana Pérez",
    "group_by": "region",
    "frequency": "weekly",
    "timezone": "",
    "regions": ["Central America"],
    "topics": ["Labour migration"],
}


# -- one-click ---------------------------------------------------------------------------------
def test_one_click_post_from_a_sent_digest_unsubscribes_at_once_and_the_next_send_skips_it(
    any_project: Project, smtp_server: SmtpServer
) -> None:
    project = any_project
    # No secret in the environment: the server and the send share the one kept in the state.
    # `digest serve` itself, in a process of its own.
    project.use_smtp(smtp_server)
    project.subscribers([ANA, NEWSROOM])
    server = start_server(project, secret=None, process=True)
    try:
        project.run("send", check=True)
        handler = smtp_server.handler
        digest = handler.messages_for("ana@example.org")[0]
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = digest["List-Unsubscribe"].strip("<>")
        assert link.startswith(server.url("/unsubscribe?token="))

        # As a mail provider sends it: the URL's token, this body, no cookie, no CSRF field.
        reply = Client(server).post(link, {"List-Unsubscribe": "One-Click"})
        assert reply.status == 200 and reply.location is None
        assert "You are unsubscribed" in reply.text
        assert Client(server).post(link, {"List-Unsubscribe": "One-Click"}).status == 200

        listed = subscribers(project, "--all")
        assert listed["ana@example.org"]["status"] == "unsubscribed"
        assert listed["ana@example.org"]["unsubscribed_via"] == "one-click"
        assert listed["newsroom@example.org"]["status"] == "active"

        # A new story Ana would get: the next send still leaves her out.
        (project.root / "items" / "guatemala.md").write_text(
            "---\ntitle: Guatemala widens protection for migrant workers abroad\n"
            "date: 2026-11-20\n---\nConsulates in Mexico will help Guatemalan migrant workers.\n"
        )
        report = json.loads(project.run("send", "--json", check=True).stdout)
        assert [s["email"] for s in report["subscribers"]] == ["newsroom@example.org"]
        assert handler.count_for("newsroom@example.org") == 2
        assert handler.count_for("ana@example.org") == 1
    finally:
        server.stop()


def test_one_click_accepts_multipart_and_records_an_address_no_longer_in_the_file(
    project: Project, web: WebServer
) -> None:
    link = web.url("/unsubscribe", token=token("unsubscribe", "gone@example.org"))
    boundary = "----digest-test"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    reply = Client(web).request(
        "POST", link, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert reply.status == 200
    gone = subscribers(project, "--all")["gone@example.org"]
    assert gone["status"] == "unsubscribed" and gone["origin"] == "web"
    assert "gone@example.org" not in subscribers(project)


# -- the unsubscribe page ----------------------------------------------------------------------
def test_get_shows_a_button_and_changes_nothing_until_it_is_pressed(
    project: Project, web: WebServer
) -> None:
    client = Client(web)
    link = web.url("/unsubscribe", token=token("unsubscribe", "ana@example.org"))
    page = client.get(link)
    assert page.status == 200
    assert "ana@example.org" in page.text
    form = page.forms()[0]
    assert 'method="post"' in form["html"] and "<button" in form["html"] and form["csrf"]
    assert "/preferences?token=" in page.link("Change my preferences")
    # Scanners follow GET links (and some send HEAD): neither unsubscribes.
    assert client.get(link).status == 200
    assert client.request("HEAD", link).status == 200
    assert subscribers(project, "--all")["ana@example.org"]["status"] == "active"

    pressed = client.submit(page, action="unsubscribe")
    assert pressed.status == 303 and pressed.location == link.removeprefix(web.base)
    after = client.get(pressed.location)
    assert "You are unsubscribed" in after.text and not after.forms()
    ana = subscribers(project, "--all")["ana@example.org"]
    assert ana["status"] == "unsubscribed" and ana["unsubscribed_via"] == "unsubscribe-page"
    report = send_json(project, "--dry-run")
    assert "ana@example.org" not in [s["email"] for s in report["subscribers"]]
    assert "newsroom@example.org" in [s["email"] for s in report["subscribers"]]


# -- the preference centre ---------------------------------------------------------------------
def test_preference_changes_reach_the_next_send(
    any_project: Project, smtp_server: SmtpServer
) -> None:
    project = any_project
    project.use_smtp(smtp_server)
    bea = {**ANA, "email": "bea@example.org", "name": "Bea"}  # same choices, left alone
    project.subscribers([ANA, bea])
    server = start_server(project)
    try:
        client = Client(server)
        start = client.get(
            server.url("/unsubscribe", token=token("unsubscribe", "ana@example.org"))
        )
        page = client.get(start.link("Change my preferences"))
        assert page.status == 200
        assert re.search(r'value="Central America" checked', page.text)
        assert re.search(r'value="region" checked', page.text)
        saved = client.submit(
            page,
            action="save",
            name="Ana Pérez",
            regions=["Caribbean"],
            group_by="topic",
            frequency="monthly",
            timezone="America/Jamaica",
        )
        assert saved.status == 303 and "done=saved" in (saved.location or "")
        shown = client.get(saved.location or "")
        assert "Your preferences are saved" in shown.text
        assert re.search(r'value="Caribbean" checked', shown.text)
        assert not re.search(r'value="Central America" checked', shown.text)
        assert "<option selected>America/Jamaica</option>" in shown.text

        listed = subscribers(project)["ana@example.org"]
        assert listed["regions"] == ["Caribbean"] and listed["topics"] == []
        assert (listed["group_by"], listed["frequency"], listed["timezone"]) == (
            "topic",
            "monthly",
            "America/Jamaica",
        )
        assert listed["sources"] == {
            "name": "file",
            "regions": "web",
            "topics": "web",
            "group_by": "web",
            "order": "default",
            "frequency": "web",
            "timezone": "web",
            "language": "default",
            "item_languages": "default",
        }

        project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
        ana = plain(smtp_server.handler.messages_for("ana@example.org")[0])
        bea_mail = plain(smtp_server.handler.messages_for("bea@example.org")[0])
        assert OECS in ana and CONSULAR not in ana and "grouped by topic" in ana
        assert CONSULAR in bea_mail and OECS not in bea_mail and "grouped by region" in bea_mail
    finally:
        server.stop()


def test_unsubscribe_and_resubscribe_from_the_preference_centre(
    project: Project, web: WebServer
) -> None:
    client = Client(web)
    page = client.get(
        web.url("/preferences", token=token("preferences", "ana@example.org", time.time() + 600))
    )
    forms = page.forms()
    unsubscribe = next(i for i, f in enumerate(forms) if 'value="unsubscribe"' in f["html"])
    gone = client.get(client.submit(page, unsubscribe, action="unsubscribe").location or "")
    assert "you unsubscribed" in gone.text and "Subscribe again" in gone.text
    assert subscribers(project, "--all")["ana@example.org"]["unsubscribed_via"] == "preferences"
    back = client.submit(gone, 0, action="resubscribe")
    assert back.status == 303
    assert "Welcome back" in client.get(back.location or "").text
    ana = subscribers(project)["ana@example.org"]
    assert ana["status"] == "active" and ana["unsubscribed_at"] is None


def test_a_bad_choice_is_shown_and_nothing_is_saved(project: Project, web: WebServer) -> None:
    client = Client(web)
    page = client.get(
        web.url("/preferences", token=token("preferences", "ana@example.org", time.time() + 600))
    )
    reply = client.submit(
        page, **{**PREFERENCES_FORM, "regions": ["Atlantis"], "timezone": "Mars/Olympus"}
    )
    assert reply.status == 400
    assert "Unknown choice: Atlantis." in reply.text
    assert "Choose a timezone from the list." in reply.text
    assert subscribers(project)["ana@example.org"]["sources"]["regions"] == "file"


# -- sign-up -----------------------------------------------------------------------------------
def _sign_up(client: Client, email: str, **fields: Any) -> Reply:
    page = client.get("/subscribe")
    assert page.status == 200
    return client.submit(
        page, email=email, **{"group_by": "region", "frequency": "weekly", "timezone": "", **fields}
    )


def _confirmation_link(smtp_server: SmtpServer, address: str, which: int = -1) -> str:
    message = smtp_server.handler.messages_for(address)[which]
    assert message["Subject"] == "Please confirm your subscription to Regional Migration Digest"
    match = re.search(r"(http://\S+/confirm\?token=\S+)", message.get_content())
    assert match, message.get_content()
    return match.group(1)


def test_sign_up_confirms_by_email_then_the_next_send_includes_the_address(
    any_project: Project, smtp_server: SmtpServer
) -> None:
    project = any_project
    project.use_smtp(smtp_server)
    project.subscribers([NEWSROOM])
    server = start_server(project)
    try:
        client = Client(server)
        reply = _sign_up(
            client,
            "Nuevo@Example.org",
            name="Nuevo Lector",
            regions=["Caribbean"],
            group_by="topic",
            timezone="America/Jamaica",
        )
        assert reply.status == 200 and "Check your inbox" in reply.text
        assert smtp_server.handler.count_for("Nuevo@Example.org") == 1
        message = smtp_server.handler.messages_for("Nuevo@Example.org")[0]
        assert message["To"] == "Nuevo@Example.org"  # nothing the asker wrote (issue 15)
        assert message["From"] == "Regional Migration Digest <digest@example.org>"

        # Not confirmed: listed as pending, never sent to.
        assert "Nuevo@Example.org" not in subscribers(project)
        assert subscribers(project, "--all")["Nuevo@Example.org"]["status"] == "pending"
        dry = send_json(project, "--dry-run")
        assert [s["email"] for s in dry["subscribers"]] == ["newsroom@example.org"]

        # Signing up again (another spelling of the address) still makes one subscriber.
        _sign_up(
            Client(server),
            "nuevo@example.org",
            name="Nuevo Lector",
            regions=["Caribbean"],
            group_by="topic",
            timezone="America/Jamaica",
        )
        assert smtp_server.handler.count_for("nuevo@example.org") == 1
        everyone = subscribers(project, "--all")
        assert [e for e in everyone if e.casefold() == "nuevo@example.org"] == ["Nuevo@Example.org"]

        link = _confirmation_link(smtp_server, "nuevo@example.org")
        assert link.startswith(server.url("/confirm?token="))
        page = client.get(link)
        assert page.status == 200 and "Caribbean" in page.text and "<button" in page.text
        assert subscribers(project, "--all")["Nuevo@Example.org"]["status"] == "pending"
        confirmed = client.submit(page)
        assert confirmed.status == 303 and "done=confirmed" in (confirmed.location or "")
        centre = client.get(confirmed.location or "")
        assert "your subscription is confirmed" in centre.text
        assert re.search(r'value="Caribbean" checked', centre.text)

        entry = subscribers(project)["Nuevo@Example.org"]
        assert (entry["origin"], entry["status"], entry["regions"]) == (
            "web",
            "active",
            ["Caribbean"],
        )
        assert {k: v for k, v in entry["sources"].items() if v != "web"} == {
            "language": "default",  # this form post names no language
        }
        assert entry["confirmed_at"] is not None

        project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
        digest = smtp_server.handler.messages_for("Nuevo@Example.org")[-1]
        assert digest["Subject"].startswith("Your migration news digest")
        assert OECS in plain(digest) and CONSULAR not in plain(digest)
        assert smtp_server.handler.count_for("newsroom@example.org") == 1
        # The older link still works, and says so.
        assert (
            "Already confirmed"
            in client.get(_confirmation_link(smtp_server, "Nuevo@Example.org", 0)).text
        )
    finally:
        server.stop()


def test_signing_up_an_address_already_in_the_file_adds_no_second_subscriber(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    project.subscribers([ANA])
    server = start_server(project)
    try:
        client = Client(server)
        assert _sign_up(client, "ANA@example.org", name="Ana P.", topics=["Health"]).status == 200
        page = client.get(_confirmation_link(smtp_server, "ANA@example.org"))
        assert client.submit(page).status == 303
        listed = subscribers(project, "--all")
        assert list(listed) == ["ana@example.org"]
        ana = listed["ana@example.org"]
        assert (ana["origin"], ana["name"], ana["topics"]) == ("file", "Ana P.", ["Health"])
        # Only what differs from the file is kept as a web change.
        assert ana["sources"]["group_by"] == "default" and ana["sources"]["topics"] == "web"
        assert ana["regions"] == [] and ana["sources"]["regions"] == "web"
        report = send_json(project, "--dry-run")
        assert [s["email"] for s in report["subscribers"]] == ["ana@example.org"]
    finally:
        server.stop()


def test_a_sign_up_with_a_bad_address_is_refused_with_the_reason(
    project: Project, web: WebServer, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    reply = _sign_up(Client(web), "not-an-address")
    assert reply.status == 400 and "Enter an email address like name@example.org." in reply.text
    assert 'value="not-an-address"' in reply.text
    assert smtp_server.handler.received == []


# -- tokens ------------------------------------------------------------------------------------
def test_forged_expired_and_foreign_tokens_get_a_clear_page_and_change_nothing(
    project: Project, web: WebServer
) -> None:
    client = Client(web)
    good = token("unsubscribe", "ana@example.org")
    tampered = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    readable = make_legacy_token(SECRET.encode(), "unsubscribe", "ana@example.org")
    cases = [
        ("/unsubscribe", tampered, 403, "This link is not valid"),
        ("/unsubscribe", readable, 403, "This link is too old"),  # a fresh state sent none
        (
            "/unsubscribe",
            token("unsubscribe", "ana@example.org", secret="another"),
            403,
            "This link is not valid",
        ),
        ("/unsubscribe", token("preferences", "ana@example.org"), 403, "This link is not valid"),
        ("/preferences", good, 403, "This link is not valid"),
        (
            "/preferences",
            token("preferences", "ana@example.org", time.time() - 5),
            403,
            "This link has expired",
        ),
        (
            "/confirm",
            token("confirm", "ana@example.org", time.time() - 5),
            403,
            "This link has expired",
        ),
        ("/confirm", token("unsubscribe", "ana@example.org"), 403, "This link is not valid"),
        ("/unsubscribe", "", 400, "This link is incomplete"),
        ("/unsubscribe", "not a token", 400, "This link is damaged"),
        ("/preferences", "bm90IGpzb24.AAAAAAAAAAAAAAAAAAAAAAAAAAA", 403, "This link is too old"),
        ("/preferences", "A" * 60, 403, "This link is not valid"),
    ]
    for path, bad, status, title in cases:
        url = web.url(path, token=bad) if bad else web.url(path)
        page = client.get(url)
        assert (page.status, title in page.text) == (status, True), (path, bad, page.text)
        assert "Nothing was changed." in page.text
        one_click = client.post(url, {"List-Unsubscribe": "One-Click"})
        assert one_click.status == status, (path, bad)
    expired = client.get(web.url("/confirm", token=token("confirm", "x@example.org", 1)))
    assert "Sign up again" in expired.text
    assert all(e["status"] == "active" for e in subscribers(project, "--all").values())
    assert subscribers(project, "--all").keys() == subscribers(project).keys()


def test_an_expired_confirmation_link_confirms_nothing(project: Project, web: WebServer) -> None:
    client = Client(web)
    assert _sign_up(client, "late@example.org").status == 200
    [message] = project.maildir_messages()  # the fixture's server delivers to the Maildir
    link = re.findall(r"http://\S+/confirm\?\S+", message.get_content())[0]
    page = client.get(link)
    form = page.forms()[0]
    sign_up = parse_qs(urlsplit(link).query)["signup"][0]
    late = token(f"confirm|{sign_up}", "late@example.org", time.time() - 1)
    expired = web.url("/confirm", token=late, signup=sign_up)
    reply = client.post(expired, {"csrf": form["csrf"]}, {"Origin": web.base})
    assert reply.status == 403 and "This link has expired" in reply.text
    assert subscribers(project, "--all")["late@example.org"]["status"] == "pending"


# -- CSRF ------------------------------------------------------------------------------------
def test_forms_refuse_cross_site_and_unsigned_posts(
    project: Project, web: WebServer, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    client = Client(web)
    ana_url = web.url(
        "/preferences", token=token("preferences", "ana@example.org", time.time() + 600)
    )
    page = client.get(ana_url)
    csrf = page.forms()[0]["csrf"]
    changed = {**PREFERENCES_FORM, "regions": ["Caribbean"]}
    refused = [
        client.post(ana_url, changed, {"Origin": web.base}),  # no CSRF field
        Client(web).post(ana_url, {**changed, "csrf": csrf}, {"Origin": web.base}),  # no cookie
        client.post(ana_url, {**changed, "csrf": csrf}, {"Origin": "https://evil.example"}),
        client.post(ana_url, {**changed, "csrf": csrf}, {"Referer": "https://evil.example/page"}),
        client.post(ana_url, {**changed, "csrf": csrf + "x"}, {"Origin": web.base}),
    ]
    # A field made for Newsroom's page (same browser, same cookie) is not valid on Ana's.
    other = client.get(
        web.url(
            "/preferences", token=token("preferences", "newsroom@example.org", time.time() + 600)
        )
    )
    refused.append(client.post(ana_url, {**changed, "csrf": other.forms()[0]["csrf"]}))
    # Nor one from the sign-up page.
    signup = client.get("/subscribe")
    refused.append(client.post(ana_url, {**changed, "csrf": signup.forms()[0]["csrf"]}))
    for reply in refused:
        assert reply.status == 403, reply.text
        assert "Nothing was changed." in reply.text
    assert subscribers(project)["ana@example.org"]["regions"] == ["Central America"]

    # The unsubscribe button and the sign-up form are checked the same way.
    unsubscribe = web.url("/unsubscribe", token=token("unsubscribe", "ana@example.org"))
    assert client.post(unsubscribe, {"action": "unsubscribe"}).status == 403
    assert (
        Client(web)
        .post("/subscribe", {"email": "x@example.org", "csrf": signup.forms()[0]["csrf"]})
        .status
        == 403
    )
    assert smtp_server.handler.received == []
    assert subscribers(project, "--all")["ana@example.org"]["status"] == "active"

    # The same request from the page itself goes through.
    accepted = client.post(ana_url, {**changed, "csrf": csrf}, {"Origin": web.base})
    assert accepted.status == 303
    assert subscribers(project)["ana@example.org"]["regions"] == ["Caribbean"]


def test_pages_are_marked_private_and_framing_and_outside_styles_are_refused(
    web: WebServer,
) -> None:
    page = Client(web).get("/subscribe")
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert '<html lang="en">' in page.text and 'name="viewport"' in page.text
    assert '<label for="email">' in page.text


# -- rate limits -----------------------------------------------------------------------------
def test_posts_per_client_are_limited_but_one_click_is_never_turned_away(project: Project) -> None:
    project.subscribers([ANA, NEWSROOM])
    server = start_server(project, posts_per_minute=3)
    try:
        client = Client(server)
        url = server.url(
            "/preferences", token=token("preferences", "ana@example.org", time.time() + 600)
        )
        page = client.get(url)
        statuses = [client.submit(page, **PREFERENCES_FORM).status for _ in range(4)]
        assert statuses == [303, 303, 303, 429]
        limited = client.submit(page, **PREFERENCES_FORM)
        assert limited.status == 429 and "Too many" in limited.text
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # Mail providers send many one-click POSTs from few addresses.
        for address in ("ana@example.org", "newsroom@example.org"):
            link = server.url("/unsubscribe", token=token("unsubscribe", address))
            assert client.post(link, {"List-Unsubscribe": "One-Click"}).status == 200
        # A forged one-click token does count.
        forged = server.url("/unsubscribe", token=token("unsubscribe", "x@example.org", secret="x"))
        assert client.post(forged, {"List-Unsubscribe": "One-Click"}).status == 429
        assert {e["status"] for e in subscribers(project, "--all").values()} == {"unsubscribed"}
    finally:
        server.stop()


def test_confirmation_emails_per_address_are_limited(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    server = start_server(project, signups_per_hour=2, posts_per_minute=100)
    try:
        replies = [_sign_up(Client(server), "flood@example.org") for _ in range(3)]
        assert [r.status for r in replies] == [200, 200, 429]
        assert int(replies[-1].headers["Retry-After"]) > 60
        assert smtp_server.handler.count_for("flood@example.org") == 2
        assert _sign_up(Client(server), "calm@example.org").status == 200
    finally:
        server.stop()


def test_requests_per_client_are_limited(project: Project) -> None:
    server = start_server(project, requests_per_minute=5)
    try:
        client = Client(server)
        statuses = [client.get("/subscribe").status for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        assert client.get("/healthz").status == 200  # the proxy's checks are not counted
    finally:
        server.stop()


# -- the service itself ------------------------------------------------------------------------
def test_pages_live_beside_the_unsubscribe_path(project: Project) -> None:
    server = start_server(project, path="/digest/unsubscribe")
    try:
        client = Client(server)
        page = client.get(
            server.url("/digest/unsubscribe", token=token("unsubscribe", "ana@example.org"))
        )
        assert page.status == 200
        assert page.link("Change my preferences").startswith("/digest/preferences?token=")
        assert page.forms()[0]["action"].startswith("/digest/unsubscribe?token=")
        assert client.get("/digest/subscribe").status == 200
        assert client.get("/subscribe").status == 404
    finally:
        server.stop()


def test_serve_refuses_bad_web_settings_with_the_key(project: Project) -> None:
    project.settings(web={"trusted_proxy": "the proxy", "posts_per_minute": 0})
    result = project.run("serve", "--port", str(free_port()))
    assert result.returncode == 2
    assert "setting 'web.trusted_proxy': expected the proxy's IP address" in result.stderr
    assert "setting 'web.posts_per_minute': expected a whole number" in result.stderr


def test_urls_in_pages_are_relative_to_the_site(web: WebServer) -> None:
    page = Client(web).get(web.url("/unsubscribe", token=token("unsubscribe", "ana@example.org")))
    for href in re.findall(r'(?:href|action)="([^"]*)"', page.text):
        assert urlsplit(html.unescape(href)).netloc == "", href
