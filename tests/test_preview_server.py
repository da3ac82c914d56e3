"""The preview server's routes, through a real HTTP client against a real server on loopback.

The server runs in a thread of this process (so a test can start several). One test starts
`digest preview --serve` as a real subprocess (the printed address, --open, Ctrl-C); the
command's checks run in this process through click's CliRunner. Expected values come from the
library (`digest.send.open_previews`), never from the server under test.
"""

from __future__ import annotations

import email
import email.policy
import html
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import yaml
from click.testing import CliRunner, Result
from flask import Flask
from markupsafe import escape

from digest.cli import main
from digest.clock import utcnow
from digest.compose.render import GMAIL_CLIP
from digest.models import Subscriber
from digest.preview.app import PreviewServer, create_app, make_server
from digest.preview.site import PreviewSite, site_of
from digest.send import Composer, PreviewResult, load_inputs, open_previews, send
from digest.settings import load_settings
from digest.state import State

from .conftest import Project, SmtpServer, free_port

LONG_POLL = 60.0  # only the long-poll test waits on it, and it returns as soon as a file changes
SHUTDOWN_POLL = 0.02  # how often a test's server looks whether it should stop


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Running:
    app: Flask
    server: PreviewServer
    project: Project

    @property
    def site(self) -> PreviewSite:
        return site_of(self.app)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            connection.close()

    def get(self, path: str, **kwargs: object) -> Reply:
        return self.request("GET", path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None) -> Reply:
        return self.request(
            "POST",
            path,
            body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )

    def token(self) -> str:
        reply = self.get("/__changes")
        assert reply.status == 200
        return str(json.loads(reply.body)["token"])


@pytest.fixture
def start(project: Project) -> Iterator[Callable[..., Running]]:
    servers: list[Running] = []

    def start_server(poll_timeout: float = LONG_POLL) -> Running:
        app = create_app(project.config, load_settings(project.config), poll_timeout=poll_timeout)
        server = make_server(app, 0)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, daemon=True
        ).start()
        servers.append(Running(app, server, project))
        return servers[-1]

    yield start_server
    for running in servers:
        running.site.watcher.stopping.set()
        running.server.shutdown()
        running.server.server_close()


@pytest.fixture
def preview(start: Callable[..., Running]) -> Running:
    return start()


def expected(project: Project, address: str | None = None) -> list[PreviewResult]:
    """What the library says each subscriber would get."""
    settings = load_settings(project.config)
    only = [address] if address else []
    with open_previews(settings, load_inputs(settings), only) as previews:
        return list(previews.results())


def esc(text: str) -> str:
    """As Jinja2's autoescape writes it."""
    return str(escape(text))


def rows(page: str) -> dict[str, str]:
    """The index's table rows by subscriber address."""
    found = {}
    for chunk in page.split("<tr data-search=")[1:]:
        row = chunk.split("</tr>")[0]
        address = re.search(r'href="/s/([^"]+)"', row)
        assert address, row
        found[html.unescape(address.group(1))] = row
    return found


def visible(row: str) -> bool:
    return " hidden>" not in row.split(">")[0] + ">"


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no test-send form on the page"
    return found.group(1)


def send_to(project: Project, address: str) -> None:
    """A real send to one subscriber, recorded in the state (the library, in this process)."""
    report = send(load_settings(project.config), only=[address])
    assert [(o.email, o.status) for o in report.outcomes] == [(address, "sent")]


def write_item(
    project: Project, name: str, title: str, regions: str, topics: str, body: str = ""
) -> None:
    (project.root / "items" / name).write_text(
        f"---\ntitle: {title!r}\ndate: 2020-10-20\nlink: https://example.org/{name}\n"
        f"regions: [{regions}]\ntopics: [{topics}]\n---\n{body or 'A story for the test.'}\n",
        encoding="utf-8",
    )


# -- the index -------------------------------------------------------------------------------


def test_index_lists_every_subscriber_with_what_they_would_get(
    project: Project, preview: Running
) -> None:
    reply = preview.get("/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    listed = rows(reply.text)
    subscribers = yaml.safe_load((project.root / "subscribers.yaml").read_text())["subscribers"]
    assert list(listed) == [s["email"] for s in subscribers]
    for entry in subscribers:
        row = listed[entry["email"]]
        for name in entry.get("regions") or ["All regions"]:
            assert f">{esc(name)}</span>" in row
        for name in entry.get("topics") or ["All topics"]:
            assert f">{esc(name)}</span>" in row
    for result in expected(project):
        assert result.message is not None
        row = listed[result.subscriber.email]
        rendered = result.message.rendered
        assert f'<td class="num items">{rendered.shown}' in row
        assert esc(rendered.subject) in row
        assert f"{len(rendered.html.encode()) / 1024:.1f} KB" in row
    assert f"{len(subscribers)} would get an email" in reply.text


def test_index_shows_who_would_get_nothing(project: Project, preview: Running) -> None:
    send_to(project, "ana@example.org")  # ana has had everything now
    listed = rows(preview.get("/").text)
    assert "Nothing new: no email" in listed["ana@example.org"]
    assert '<td class="num items">0</td>' in listed["ana@example.org"]
    assert "Nothing new" not in listed["newsroom@example.org"]
    page = preview.get("/s/ana@example.org")
    assert page.status == 200
    assert "No email: nothing new" in page.text
    assert "<iframe" not in page.text


def test_search_filters_the_subscribers(preview: Running) -> None:
    listed = rows(preview.get("/?q=caribbean").text)
    assert {a for a, row in listed.items() if visible(row)} == {
        "marlon.james@example.org",
        "jean-baptiste@example.org",
    }
    page = preview.get("/?q=" + quote("CARIBBEAN diaspora")).text
    assert {a for a, row in rows(page).items() if visible(row)} == {"marlon.james@example.org"}
    assert '<span id="shown-count">1</span>' in page
    page = preview.get("/?q=nobody-matches-this").text
    assert not any(visible(row) for row in rows(page).values())
    assert '<tr id="no-match">' in page


# -- one subscriber --------------------------------------------------------------------------


def test_subscriber_page_shows_the_email_as_it_will_be_sent(
    project: Project, preview: Running
) -> None:
    address = "marlon.james@example.org"
    [result] = expected(project, address)
    assert result.message is not None
    rendered = result.message.rendered
    reply = preview.get(f"/s/{address}")
    assert reply.status == 200
    page = reply.text
    assert f"<h1>{esc(rendered.subject)}</h1>" in page
    headers = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", page))
    assert headers["From"] == "Regional Migration Digest &lt;digest@example.org&gt;"
    assert headers["To"] == "Marlon James &lt;marlon.james@example.org&gt;"
    assert headers["Subject"] == esc(rendered.subject)
    assert headers["Message-ID"] == esc(result.message.message_id)
    assert headers["List-Unsubscribe"].startswith("&lt;https://example.org/unsubscribe?token=")
    assert {"Date", "List-Id", "List-Unsubscribe-Post"} <= set(headers)
    # Both frames load the HTML part, sandboxed, at desktop and phone width.
    frames = re.findall(r"<iframe [^>]*>", page)
    assert len(frames) == 2
    for frame in frames:
        assert f'src="/s/{address}/html"' in frame
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "Desktop · 640 px" in page and "Phone · 375 px" in page
    assert esc(rendered.text).strip() in page
    assert f"{len(rendered.html.encode()) / 1024:.1f} KB" in page
    assert "fits" in page and "near the limit" not in page

    part = preview.get(f"/s/{address}/html")
    assert part.status == 200
    assert part.headers["content-type"] == "text/html; charset=utf-8"
    assert "sandbox" in part.headers["content-security-policy"]
    assert part.text == rendered.html
    for item in result.message.digest.items[: rendered.shown]:
        assert esc(item.item.title) in part.text

    text = preview.get(f"/s/{address}/text")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text == rendered.text
    eml = preview.get(f"/s/{address}/eml")
    assert eml.headers["content-type"] == "message/rfc822"
    message = email.message_from_bytes(eml.body, policy=email.policy.default)
    assert message["Subject"] == rendered.subject
    assert message["Message-ID"] == result.message.message_id


def test_address_in_the_url_is_matched_regardless_of_case(preview: Running) -> None:
    assert preview.get("/s/ANA@Example.org").status == 200


def test_addresses_with_url_characters_have_their_pages(project: Project, preview: Running) -> None:
    odd = ["a/b@example.org", "100%real@example.org", "what?#@example.org"]
    project.subscribers([{"email": address, "regions": ["Caribbean"]} for address in odd])
    urls = {address: "/s/" + quote(address, safe="@+") for address in odd}
    assert ["/s/" + path for path in rows(preview.get("/").text)] == list(urls.values())
    for address, url in urls.items():
        page = preview.get(url)
        assert page.status == 200, url
        assert f"<tr><th>To</th><td>{esc(address)}</td></tr>" in page.text
        assert preview.get(f"{url}/html").status == 200, url
        message = email.message_from_bytes(
            preview.get(f"{url}/eml").body, policy=email.policy.default
        )
        assert message["To"] == address


def test_unknown_subscriber_and_page_are_404(preview: Running) -> None:
    for path in ("/s/nobody@example.org", "/s/nobody@example.org/html", "/nothing-here"):
        reply = preview.get(path)
        assert reply.status == 404, path
    page = preview.get("/s/nobody@example.org").text
    assert "There is no subscriber &#39;nobody@example.org&#39; in the subscribers file." in page
    assert "There is no page at &#39;/nothing-here&#39;." in preview.get("/nothing-here").text


def test_size_near_gmails_limit_is_warned(project: Project, preview: Running) -> None:
    project.settings(max_items=100)  # past the 25 stories that fit anyway
    long_summary = " ".join(["Regional consultations on labour mobility continued."] * 40)
    for n in range(60):
        write_item(
            project,
            f"long-{n:02}.md",
            f"Long report number {n}",
            "Caribbean",
            "Diaspora",
            long_summary,
        )
    [result] = expected(project, "newsroom@example.org")
    assert result.message is not None
    size = len(result.message.rendered.html.encode())
    assert 90 * 1024 <= size < GMAIL_CLIP, "the renderer's cap should land in the warning band"
    page = preview.get("/s/newsroom@example.org").text
    assert "near the limit" in page
    assert "Close to the limit: Gmail cuts messages above about 102.0 KB" in page
    assert f"{size / 1024:.1f} KB" in page
    shown, total = result.message.rendered.shown, len(result.message.digest.items)
    assert shown < total
    assert f"of {total}</span>" in page
    assert f"This digest hit the size limit:\n  {total - shown} more stories are" in page
    assert "left for the next digest" in page
    row = rows(preview.get("/").text)["newsroom@example.org"]
    assert 'class="badge warn"' in row
    assert 'class="badge ok"' in rows(preview.get("/").text)["ana@example.org"]


def test_markup_in_items_and_names_is_shown_as_text(project: Project, preview: Running) -> None:
    write_item(
        project,
        "markup.md",
        '<script>alert("item")</script> Diaspora <b>bonds</b>',
        "Caribbean",
        "Diaspora",
    )
    data = yaml.safe_load((project.root / "subscribers.yaml").read_text())
    data["subscribers"][1]["name"] = "<img src=x onerror=alert(1)> Marlon"
    (project.root / "subscribers.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    for path in ("/", "/s/marlon.james@example.org", "/?q=%3Cscript%3E"):
        page = preview.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>bonds" not in page
        assert "&lt;img src=x onerror=alert(1)&gt; Marlon" in page
    page = preview.get("/s/marlon.james@example.org").text
    assert "&lt;script&gt;alert(&#34;item&#34;)&lt;/script&gt; Diaspora &lt;b&gt;bonds" in page
    part = preview.get("/s/marlon.james@example.org/html").text
    assert "&lt;script&gt;alert" in part and "<script>alert" not in part


# -- ad-hoc preferences ----------------------------------------------------------------------


def test_adhoc_preferences_render_what_a_new_subscriber_would_get(
    project: Project, preview: Running
) -> None:
    settings = load_settings(project.config)
    inputs = load_inputs(settings)
    now = utcnow()
    assert not project.state.exists()  # nothing sent yet: a new subscriber sees the same as a run
    with open_previews(settings, inputs, now=now) as previews:
        items = previews.items
    composer = Composer(inputs, None, items, b"preview", now)
    wanted = Subscriber("preview@localhost", regions=("Caribbean",), topics=("Health",))
    digest = composer.digest_for(wanted)
    assert digest is not None
    titles = [t.item.title for t in digest.items]

    reply = preview.get("/preview?regions=Caribbean&topics=Health")
    assert reply.status == 200
    assert "Regions <b>Caribbean</b>" in reply.text and "Topics <b>Health</b>" in reply.text
    assert 'src="/preview/html?regions=Caribbean&amp;topics=Health&amp;group_by=region"' in (
        reply.text
    )
    part = preview.get("/preview/html?regions=Caribbean&topics=Health&group_by=region")
    assert part.status == 200
    for title in titles:
        assert esc(title) in part.text
    assert 'name="csrf"' not in reply.text  # no test send for someone not in the file

    # Case and commas do not matter; the names come back as the taxonomy spells them.
    reply = preview.get("/preview?" + urlencode({"regions": "caribbean, SOUTH america"}))
    assert reply.status == 200
    assert "Regions <b>Caribbean, South America</b>" in reply.text
    assert "Topics <b>all</b>" in reply.text

    reply = preview.get("/preview?regions=North+America&topics=Health&group_by=topic")
    assert reply.status == 200
    assert "No email: nothing new" in reply.text
    assert "Grouped by <b>topic</b>" in reply.text


def test_adhoc_bad_input_is_a_400_naming_the_known_names(preview: Running) -> None:
    reply = preview.get("/preview?regions=Atlantis&topics=Helth&group_by=date&colour=red")
    assert reply.status == 400
    page = reply.text
    assert "unknown region &#39;Atlantis&#39;" in page
    assert "unknown topic &#39;Helth&#39; (did you mean &#39;Health&#39;?)" in page
    assert "group_by must be region or topic, not &#39;date&#39;" in page
    assert "unknown parameter &#39;colour&#39;" in page
    for name in ("Central America", "Caribbean", "Rest of the world", "Labour migration"):
        assert f'<span class="mono">{name}</span>' in page
    assert preview.get("/preview/html?regions=Atlantis").status == 400


# -- errors in the inputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "line", "broken", "shown"),
    [
        ("digest.mjml.j2", 4, "    <mj-title>{% if %}</mj-title>", "template syntax error"),
        ("digest.txt.j2", 2, "{{ no_such_thing.title }}", "UndefinedError"),
    ],
)
def test_template_error_is_a_page_with_file_and_line(
    project: Project, preview: Running, template: str, line: int, broken: str, shown: str
) -> None:
    assert preview.get("/").status == 200
    path = project.root / "templates" / template
    original = path.read_text()
    lines = original.splitlines()
    lines[line - 1] = broken
    path.write_text("\n".join(lines) + "\n")
    for page in ("/", "/s/ana@example.org", "/preview?regions=Caribbean"):
        reply = preview.get(page)
        assert reply.status == 500, page
        assert "Template error" in reply.text
        assert f"{path.resolve()}:{line}:" in reply.text
        assert shown in reply.text
    excerpt = re.search(r'<tr class="here"><td class="n">(\d+)</td><td>(.*?)</td></tr>', reply.text)
    assert excerpt and excerpt.group(1) == str(line)
    assert excerpt.group(2) == esc(broken)
    path.write_text(original + "\n")  # fixed (and a different size, so surely a change)
    assert preview.get("/").status == 200


def test_settings_and_subscribers_errors_are_pages_too(project: Project, preview: Running) -> None:
    settings_text = project.config.read_text()
    project.config.write_text(settings_text + "delivery: [unclosed\n")
    reply = preview.get("/")
    assert reply.status == 500
    assert "Settings error" in reply.text
    assert f"{project.config}:" in reply.text and "not valid YAML" in reply.text
    project.config.write_text(settings_text)
    assert preview.get("/").status == 200

    subscribers = project.root / "subscribers.yaml"
    original = subscribers.read_text()
    subscribers.write_text(original.replace("regions: [Caribbean]", "regions: [Carribean]", 1))
    reply = preview.get("/s/ana@example.org")
    assert reply.status == 500
    assert "Subscribers error" in reply.text
    assert "unknown region &#39;Carribean&#39; (did you mean &#39;Caribbean&#39;?)" in reply.text
    line = original.splitlines().index("    regions: [Caribbean]") + 1
    assert f"{subscribers}:{line}:" in reply.text
    subscribers.write_text(original)
    assert preview.get("/s/ana@example.org").status == 200


# -- reload on change ------------------------------------------------------------------------


EDITS: dict[str, Callable[[Project], object]] = {
    "template": lambda p: (p.root / "templates" / "subject.txt.j2").write_text(
        "Edited: {{ count }} stories ({{ period }})\n"
    ),
    "settings": lambda p: p.settings(lookback="30d"),
    "subscribers": lambda p: p.subscribers([{"email": "one@example.org"}]),
    "item file": lambda p: (p.root / "items" / "office-news-2020.txt").write_text(
        (p.root / "items" / "office-news-2020.txt").read_text() + "\nOne more line.\n"
    ),
    "new item file": lambda p: write_item(p, "new.md", "A new story", "Caribbean", "Health"),
    "removed item file": lambda p: (p.root / "items" / "office-news-2020.txt").unlink(),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_change_token_moves_when_a_watched_file_changes(
    project: Project, preview: Running, edit: str
) -> None:
    write_item(project, "existing.md", "A story", "Caribbean", "Health")
    before = preview.token()
    assert preview.token() == before  # no edit, no change
    EDITS[edit](project)
    assert preview.token() != before


def test_editor_swap_files_and_readonly_state_opens_do_not_count(
    project: Project, preview: Running
) -> None:
    send_to(project, "ana@example.org")
    before = preview.token()
    (project.root / "templates" / ".digest.mjml.j2.swp").write_bytes(b"vim swap")
    (project.root / "templates" / "digest.mjml.j2~").write_text("backup")
    for path in ("/", "/s/ana@example.org", "/s/ana@example.org/html"):
        preview.get(path)
    assert preview.token() == before


def test_long_poll_answers_when_a_file_changes(
    project: Project, start: Callable[..., Running]
) -> None:
    preview = start(poll_timeout=LONG_POLL)
    token = preview.token()
    answer: list[Reply] = []
    waiting = threading.Thread(
        target=lambda: answer.append(preview.get(f"/__changes?since={token}", timeout=LONG_POLL))
    )
    waiting.start()
    deadline = time.monotonic() + LONG_POLL
    while (
        preview.site.watcher.waiting == 0 and time.monotonic() < deadline
    ):  # held, not answered yet
        time.sleep(0.01)
    assert preview.site.watcher.waiting == 1 and not answer
    EDITS["template"](project)
    waiting.join(LONG_POLL + 10)
    assert answer and answer[0].status == 200
    assert json.loads(answer[0].body)["token"] not in ("", token)

    quick = start(poll_timeout=0.2)  # nothing changes: the same token comes back
    same = quick.token()
    assert json.loads(quick.get(f"/__changes?since={same}").body)["token"] == same


HELD_POLLS = 16  # open pages each hold one; more than a fixed pool's threads (waitress: 4)


def test_many_held_long_polls_do_not_block_other_pages(start: Callable[..., Running]) -> None:
    preview = start(poll_timeout=LONG_POLL)
    watcher = preview.site.watcher
    token = preview.token()
    answers: list[int] = []

    def hold() -> None:
        answers.append(preview.get(f"/__changes?since={token}", timeout=LONG_POLL).status)

    polls = [threading.Thread(target=hold) for _ in range(HELD_POLLS)]
    for poll in polls:
        poll.start()
    deadline = time.monotonic() + LONG_POLL
    while watcher.waiting < HELD_POLLS and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.waiting == HELD_POLLS and not answers
    for path in ("/", "/s/ana@example.org", "/s/ana@example.org/html", "/static/preview.js"):
        assert preview.get(path, timeout=LONG_POLL).status == 200, path
    assert watcher.waiting == HELD_POLLS and not answers  # all still held meanwhile
    watcher.stopping.set()  # as when the server stops: every held poll answers at once
    for poll in polls:
        poll.join(LONG_POLL)
    assert answers == [200] * HELD_POLLS


def test_pages_show_edits_without_a_restart(project: Project, preview: Running) -> None:
    assert "Your migration news digest" in preview.get("/s/ana@example.org").text
    EDITS["template"](project)
    assert "<h1>Edited: " in preview.get("/s/ana@example.org").text
    project.subscribers([{"email": "only.one@example.org", "regions": ["Caribbean"]}])
    assert list(rows(preview.get("/").text)) == ["only.one@example.org"]


# -- previewing writes nothing ---------------------------------------------------------------


def every_page(preview: Running) -> list[str]:
    paths = ["/", "/?q=caribbean", "/__changes", "/static/preview.js", "/favicon.ico"]
    for address in rows(preview.get("/").text):
        base = f"/s/{address}"
        paths += [base, f"{base}/html", f"{base}/text", f"{base}/eml"]
    query = "regions=Caribbean&topics=Health"
    paths += [f"/preview?{query}", f"/preview/html?{query}", f"/preview/text?{query}"]
    paths += ["/preview?regions=Atlantis", "/s/nobody@example.org", "/missing"]
    for path in paths:
        assert preview.get(path).status in (200, 204, 400, 404), path
    return paths


def tree(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def dump(database: Path) -> list[str]:
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as db:
        return list(db.iterdump())


def test_browsing_every_page_writes_no_state_and_sends_nothing(
    project: Project, preview: Running
) -> None:
    send_to(project, "ana@example.org")
    assert len(project.maildir_messages()) == 1
    state_before, rows_before = project.state.read_bytes(), dump(project.state)
    outbox_before = tree(project.outbox)
    visited = every_page(preview)
    assert len(visited) > 30
    assert project.state.read_bytes() == state_before
    assert dump(project.state) == rows_before
    wal = project.state.with_name("state.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # a read-only open leaves it empty
    assert tree(project.outbox) == outbox_before


def test_browsing_before_any_run_creates_no_state(project: Project, preview: Running) -> None:
    every_page(preview)
    assert not project.state.parent.exists()
    assert not project.outbox.exists()


# -- the test-send button --------------------------------------------------------------------


def test_send_button_sends_a_test_copy_and_records_nothing(
    project: Project, smtp_server: SmtpServer, preview: Running
) -> None:
    project.use_smtp(smtp_server)
    page = preview.get("/s/ana@example.org").text
    assert "Through SMTP 127.0.0.1:" in page
    reply = preview.post(
        "/s/ana@example.org/send", {"to": "editor@example.org", "csrf": csrf_of(page)}
    )
    assert reply.status == 200, reply.text
    assert "Test copy sent" in reply.text
    assert "data-token" not in reply.text  # a POST result must not reload (and resend)
    [message] = smtp_server.handler.messages_for("editor@example.org")
    [result] = expected(project, "ana@example.org")
    assert result.message is not None
    assert message["Subject"] == "[TEST] " + result.message.rendered.subject
    assert message["To"] == "Ana Pérez <ana@example.org>"
    assert smtp_server.handler.count_for("ana@example.org") == 0
    with State(project.state) as state:
        assert state.runs() == [] and state.deliveries() == []
        assert state.sent_item_ids("ana@example.org") == set()


def test_send_button_refuses_bad_addresses_and_foreign_forms(
    project: Project, smtp_server: SmtpServer, preview: Running
) -> None:
    project.use_smtp(smtp_server)
    token = csrf_of(preview.get("/s/ana@example.org").text)
    bad = preview.post("/s/ana@example.org/send", {"to": "not an address", "csrf": token})
    assert bad.status == 400
    assert "&#39;not an address&#39; is not an email address." in bad.text
    assert preview.post("/s/ana@example.org/send", {"to": "editor@example.org"}).status == 403
    wrong = {"to": "editor@example.org", "csrf": "guessed"}
    assert preview.post("/s/ana@example.org/send", wrong).status == 403
    good = {"to": "editor@example.org", "csrf": token}
    origin = {"Origin": "http://evil.example"}
    assert preview.post("/s/ana@example.org/send", good, headers=origin).status == 403
    rebound = {"Host": f"evil.example:{preview.port}"}
    assert preview.post("/s/ana@example.org/send", good, headers=rebound).status == 403
    assert preview.get("/", headers={"Host": "evil.example"}).status == 403
    assert preview.post("/s/nobody@example.org/send", good).status == 404
    assert smtp_server.handler.received == []
    assert preview.request("GET", "/s/ana@example.org/send").status == 405
    assert preview.post("/", good).status == 405


def test_send_failure_is_shown_on_the_page(
    project: Project, smtp_server: SmtpServer, preview: Running
) -> None:
    project.use_smtp(smtp_server)
    smtp_server.handler.rcpt_replies["editor@example.org"] = "550 5.1.1 no such user here"
    token = csrf_of(preview.get("/s/ana@example.org").text)
    reply = preview.post("/s/ana@example.org/send", {"to": "editor@example.org", "csrf": token})
    assert reply.status == 502
    assert "Test copy not sent" in reply.text
    assert "no such user here" in reply.text
    assert smtp_server.handler.received == []


def test_send_through_an_unreachable_server_is_shown(project: Project, preview: Running) -> None:
    project.settings(
        delivery={
            "method": "smtp",
            "smtp": {"host": "127.0.0.1", "port": free_port(), "security": "none", "timeout": 5},
        }
    )
    token = csrf_of(preview.get("/s/ana@example.org").text)
    reply = preview.post("/s/ana@example.org/send", {"to": "editor@example.org", "csrf": token})
    assert reply.status == 502
    assert "Test copy not sent" in reply.text
    assert preview.get("/").status == 200  # still serving


def test_form_larger_than_a_form_is_refused(preview: Running) -> None:
    token = csrf_of(preview.get("/s/ana@example.org").text)
    form = {"to": "editor@example.org", "csrf": token, "padding": "x" * 17 * 1024}
    reply = preview.post("/s/ana@example.org/send", form)
    assert reply.status == 413
    assert reply.text == "The form is too large."


# -- headers and files -----------------------------------------------------------------------


def test_every_answer_carries_the_safety_headers(project: Project, preview: Running) -> None:
    answers = {
        path: preview.get(path)
        for path in (
            "/",
            "/s/ana@example.org",
            "/s/ana@example.org/html",
            "/s/ana@example.org/text",
            "/preview?regions=Atlantis",
            "/nothing-here",
            "/static/preview.js",
            "/__changes",
        )
    }
    answers["403"] = preview.get("/", headers={"Host": "evil.example"})
    settings_text = project.config.read_text()
    project.config.write_text(settings_text + "delivery: [unclosed\n")
    answers["500"] = preview.get("/")
    project.config.write_text(settings_text)
    assert answers["403"].status == 403 and answers["500"].status == 500
    for name, reply in answers.items():
        assert reply.headers["cache-control"] == "no-store", name
        assert reply.headers["x-content-type-options"] == "nosniff", name
        assert reply.headers["referrer-policy"] == "no-referrer", name
    for name in ("/", "/s/ana@example.org", "/preview?regions=Atlantis", "/nothing-here", "500"):
        policy = answers[name].headers["content-security-policy"]
        for directive in (
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ):
            assert directive in policy.split("; "), (name, directive)
    policy = answers["/s/ana@example.org/html"].headers["content-security-policy"]
    assert policy.startswith("sandbox allow-popups allow-popups-to-escape-sandbox; ")
    assert "script-src 'none'" in policy.split("; ")
    for name in ("/s/ana@example.org/text", "/static/preview.js", "/__changes", "403"):
        assert "content-security-policy" not in answers[name].headers, name


def test_static_files_are_only_the_two_named_ones(preview: Running) -> None:
    shipped = resources.files("digest.preview") / "templates"
    script = preview.get("/static/preview.js")
    assert script.status == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.body == (shipped / "preview.js").read_bytes()
    icon = preview.get("/static/favicon.svg")
    assert icon.status == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.body == (shipped / "favicon.svg").read_bytes()
    for path in (
        "/static/index.html",  # a template beside them: never served raw
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%5capp.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ):
        reply = preview.get(path)
        assert reply.status == 404, path
        for leaked in (b"import ", b"{%", b"root:", b"[project]"):
            assert leaked not in reply.body, (path, leaked)


# -- the server and the command --------------------------------------------------------------


def test_server_listens_on_loopback_only(preview: Running) -> None:
    assert preview.server.server_address[0] == "127.0.0.1"
    with socket.socket() as other:  # another loopback address reaches any all-interfaces server
        other.settimeout(5)
        assert other.connect_ex(("127.0.0.2", preview.port)) != 0


def start_cli(project: Project, *args: str, env: dict[str, str] | None = None):  # noqa: ANN201
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digest",
            "preview",
            "--serve",
            *args,
            "--config",
            str(project.config),
        ],
        cwd=project.root,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job ignores SIGINT, and a child inherits that: give it back the
        # default, so Ctrl-C (the test's SIGINT) reaches the command wherever pytest runs.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_cli_serves_prints_the_address_and_opens_the_browser_and_stops_on_ctrl_c(
    project: Project, tmp_path: Path
) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "fake-browser"  # a real program that records what it was asked to open
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}.part && mv {opened}.part {opened}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    process = start_cli(project, "--port", "0", "--open", env={"BROWSER": f"{browser} %s"})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.fullmatch(r"Preview at (http://127\.0\.0\.1:(\d+)/)\n", line)
        assert found, line + (process.stderr.read() if process.poll() is not None else "")
        url, port = found.group(1), int(found.group(2))
        deadline = time.monotonic() + 60
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert opened.read_text() == url
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200
        page = response.read().decode()
        assert "ana@example.org" in page
        connection.close()

        # Ctrl-C while a page holds a long-poll: the command stops at once, without a traceback.
        token = re.search(r'data-token="([^"]+)"', page)
        assert token
        held = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        held.request("GET", f"/__changes?since={token.group(1)}")
        time.sleep(0.3)  # let the server take the request (it holds it for LONG_POLL seconds)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        held.close()
        assert process.returncode == 0, err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err
        assert '"GET / HTTP/1.1" 200' in err  # each page is logged, the long-polls are not
        assert "__changes" not in err
    finally:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=30)


def invoke(project: Project, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """`digest ARGS` in this process (click's CliRunner), run in the project's folder."""
    monkeypatch.chdir(project.root)
    return CliRunner().invoke(main, [*args, "--config", str(project.config)], env={"NO_COLOR": "1"})


def test_cli_says_when_the_port_is_taken(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(project, monkeypatch, "preview", "--serve", "--port", str(port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port 0" in result.stderr


def test_cli_without_serve_still_writes_files(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(project, monkeypatch, "preview", "--out", "files")
    assert result.exit_code == 0, result.output
    assert "Preview in files" in result.stdout
    assert (project.root / "files" / "ana@example.org.html").is_file()
    assert (project.root / "files" / "ana@example.org.eml").is_file()
    refused = invoke(project, monkeypatch, "preview", "--port", "9000")
    assert refused.exit_code == 2 and "--port and --open need --serve" in refused.stderr
    refused = invoke(project, monkeypatch, "preview", "--serve", "--only", "ana@example.org")
    assert refused.exit_code == 2 and "do not go with --serve" in refused.stderr


def test_adhoc_language_shows_what_a_new_spanish_reader_would_get(
    project: Project, preview: Running
) -> None:
    reply = preview.get("/preview?language=es&item_languages=es,en&regions=Caribbean")
    assert reply.status == 200
    assert "Language <b>es</b>, news in <b>es, en</b>" in reply.text
    assert "language=es" in reply.text and "item_languages=en" in reply.text
    query = "regions=Caribbean&group_by=region&language=es&item_languages=es&item_languages=en"
    part = preview.get("/preview/html?" + query)
    assert part.status == 200
    assert '<html lang="es"' in part.text and "Caribe" in part.text
    reply = preview.get("/preview?language=de")
    assert reply.status == 400 and "no translation for &#39;de&#39;" in reply.text
