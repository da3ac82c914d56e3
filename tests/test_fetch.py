"""Feed URLs over real HTTP on loopback: 200, 304 (conditional GET), 301, 404, 500, a server
too slow to answer, one that trickles, huge bodies, gzip and a gzip bomb; the User-Agent; and a
failing feed keeping its earlier items, shown by `digest send` and `digest check`."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from digest.errors import SourceError
from digest.sources import USER_AGENT, FetchLimits, read_sources
from digest.sources.fetch import fetch

from .conftest import Project
from .feed_server import FeedServer, Route, feed_server

QUICK = FetchLimits(timeout=0.5, max_bytes=200_000)


def rss(*titles: str, language: str = "en", link_base: str = "https://wire.example.org") -> bytes:
    """A news wire's RSS 2.0, shaped as CMSs write it, one entry per title."""
    items = "".join(
        f"""
    <item>
      <title>{title}</title>
      <link>{link_base}/{n}</link>
      <guid isPermaLink="false">wire-{n}-{abs(hash(title)) % 10_000}</guid>
      <pubDate>Mon, 23 Nov 2026 1{n % 10}:00:00 +0000</pubDate>
      <description><![CDATA[<p>{title}. More details will follow as the office learns them.</p>]]></description>
    </item>"""
        for n, title in enumerate(titles)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>Regional wire</title>
    <link>https://wire.example.org/</link>
    <description>Migration news from the region</description>
    <language>{language}</language>{items}
  </channel>
</rss>
""".encode()


STORIES = (
    "Guatemala receives returned migrants at the new reception centre",
    "Hurricane displaces thousands of families in Haiti",
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def test_a_feed_is_fetched_with_the_projects_user_agent(server: FeedServer) -> None:
    server.routes["/feed.xml"] = Route(rss(*STORIES))
    result = read_sources([server.url("/feed.xml")])
    assert [i.title for i in result.items] == list(STORIES)
    assert not result.problems and not result.warnings
    [request] = server.hits("/feed.xml")
    assert request.headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("digest/")
    assert "gzip" in request.headers["accept-encoding"]
    assert "if-none-match" not in request.headers


def test_an_unchanged_feed_costs_one_304(server: FeedServer) -> None:
    route = server.routes["/feed.xml"] = Route(rss(*STORIES))
    url = server.url("/feed.xml")
    first = read_sources([url], seen={})
    [record] = first.records
    assert record.etag == route.etag and record.last_modified == server.modified
    again = read_sources([url], seen={url: record})
    assert (again.items, again.unchanged, again.problems) == ([], 1, [])
    second = server.hits("/feed.xml")[-1]
    assert second.headers["if-none-match"] == route.etag
    assert second.headers["if-modified-since"] == server.modified
    assert second.status == 304
    [kept] = again.records
    assert (kept.etag, kept.fingerprint, kept.error) == (record.etag, record.fingerprint, None)

    server.routes["/feed.xml"] = Route(rss(*STORIES, "A third story about asylum in Mexico"))
    changed = read_sources([url], seen={url: kept})
    assert len(changed.items) == 3 and changed.unchanged == 0
    assert server.hits("/feed.xml")[-1].status == 200


def test_a_server_without_validators_sending_the_same_bytes_counts_as_unchanged(
    server: FeedServer,
) -> None:
    server.routes["/feed.xml"] = Route(rss(*STORIES), validators=False)
    url = server.url("/feed.xml")
    [record] = read_sources([url], seen={}).records
    assert record.etag is None and record.fingerprint
    again = read_sources([url], seen={url: record})
    assert (again.items, again.unchanged) == ([], 1)


def test_a_permanent_redirect_is_followed_and_reported(server: FeedServer) -> None:
    server.routes["/old.xml"] = Route(status=301, location="/feed.xml")
    server.routes["/feed.xml"] = Route(rss(*STORIES, link_base="/news"))
    result = read_sources([server.url("/old.xml")])
    assert len(result.items) == 2
    # relative links resolve against where the feed was found
    assert result.items[0].link == server.url("/news/0")
    [warning] = result.warnings
    assert f"has moved permanently to {server.url('/feed.xml')}" in warning


def test_too_many_redirects_fail(server: FeedServer) -> None:
    server.routes["/loop.xml"] = Route(status=302, location="/loop.xml")
    with pytest.raises(SourceError, match=r"loop\.xml: cannot fetch feed: more than 5 redirects"):
        fetch(server.url("/loop.xml"))


@pytest.mark.parametrize(
    ("status", "reason"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")]
)
def test_http_errors_name_the_url_and_status(server: FeedServer, status: int, reason: str) -> None:
    server.routes["/feed.xml"] = Route(b"<html>oops</html>", status=status)
    url = server.url("/feed.xml")
    result = read_sources([url], seen={})
    [problem] = result.problems
    assert problem.message == f"{url}: cannot fetch feed: {reason}"
    assert "earlier items are kept" in (problem.hint or "")
    assert result.failed == [url]
    [record] = result.records
    assert record.error == problem.message and record.etag is None


def test_a_server_that_does_not_answer_times_out(server: FeedServer) -> None:
    server.routes["/slow.xml"] = Route(rss(*STORIES), delay=3)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"slow\.xml: cannot fetch feed: no answer within 0.5 s"):
        fetch(server.url("/slow.xml"), limits=QUICK)
    assert time.monotonic() - started < 2


def test_a_server_that_trickles_is_cut_off_at_the_deadline(server: FeedServer) -> None:
    server.routes["/trickle.xml"] = Route(rss(*STORIES), trickle=0.05)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"still arriving after 0.5 s; stopped reading"):
        fetch(server.url("/trickle.xml"), limits=QUICK)
    assert time.monotonic() - started < 2


def test_a_huge_feed_announced_is_refused_unread(server: FeedServer) -> None:
    server.routes["/huge.xml"] = Route(rss(*STORIES) + b" " * 300_000)
    with pytest.raises(
        SourceError,
        match=r"larger than the limit of 200,000 bytes \(30\d,\d{3} bytes announced\); not read",
    ):
        fetch(server.url("/huge.xml"), limits=QUICK)


def test_a_huge_feed_without_a_length_is_stopped_at_the_limit(server: FeedServer) -> None:
    server.routes["/huge.xml"] = Route(b" " * 5_000_000 + rss(*STORIES), chunked=True)
    with pytest.raises(
        SourceError, match=r"larger than the limit of 200,000 bytes; stopped reading"
    ):
        fetch(server.url("/huge.xml"), limits=QUICK)


def test_gzip_is_decoded(server: FeedServer) -> None:
    body = rss(*STORIES)
    server.routes["/feed.xml"] = Route(body, gzip=True)
    fetched = fetch(server.url("/feed.xml"))
    assert fetched.body == body
    assert len(gzip.compress(body)) < len(body)
    assert [i.title for i in read_sources([server.url("/feed.xml")]).items] == list(STORIES)


def test_a_gzip_bomb_stops_at_the_limit_of_what_it_decodes_to(server: FeedServer) -> None:
    bomb = rss(*STORIES) + b"\n" * 50_000_000  # 50 MB of nothing, about 50 KB gzipped
    server.routes["/bomb.xml"] = Route(bomb, gzip=True)
    with pytest.raises(
        SourceError, match=r"larger than the limit of 200,000 bytes; stopped reading"
    ):
        fetch(server.url("/bomb.xml"), limits=QUICK)


def test_an_unreachable_host_names_the_url() -> None:
    with pytest.raises(SourceError, match=r"^http://127.0.0.1:9/feed.xml: cannot fetch feed: "):
        fetch("http://127.0.0.1:9/feed.xml", limits=QUICK)


# -- the CLI: pickup through the state, a failing feed keeps its earlier items --------------
def _send_json(project: Project) -> dict:
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_failing_feed_keeps_its_items_and_is_shown_by_send_and_check(
    project: Project, server: FeedServer
) -> None:
    url = server.url("/feed.xml")
    server.routes["/feed.xml"] = Route(rss(*STORIES))
    project.settings(sources=["items", {"path": url, "name": "Regional wire"}])

    first = _send_json(project)["picked_up"]
    assert first["new"] == 12 and first["failed_sources"] == []

    second = _send_json(project)["picked_up"]  # unchanged: one 304, nothing read
    assert (second["new"], second["unchanged_sources"]) == (0, 2)
    assert server.hits("/feed.xml")[-1].status == 304

    server.routes["/feed.xml"] = Route(b"<html>down</html>", status=500)
    failing = project.run("send")
    assert failing.returncode == 0
    assert f"warning: {url}: cannot fetch feed: HTTP 500 Internal Server Error" in failing.stderr
    assert f"1 failed). Failed: 'Regional wire' ({url}); their earlier items are kept" in (
        failing.stdout
    )
    as_json = _send_json(project)["picked_up"]
    assert as_json["failed_sources"] == [url]
    assert as_json["problems"] == [f"{url}: cannot fetch feed: HTTP 500 Internal Server Error"]

    items = json.loads(project.run("items", "--json", "--no-pickup", check=True).stdout)
    wire = [i for i in items if i["source"] == url]
    assert [i["title"] for i in wire] == list(STORIES)
    assert {i["source_name"] for i in wire} == {"Regional wire"}

    server.routes["/feed.xml"] = Route(rss(*STORIES))  # back up: check reads it fine now
    check = project.run("check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert (
        f"warning: source 'Regional wire' ({url}) failed when last picked up (" in check.stderr
        and "UTC): cannot fetch feed: HTTP 500 Internal Server Error; its earlier items are kept"
        in check.stderr
    )

    after = _send_json(project)["picked_up"]  # read whole again after the failure
    assert after["failed_sources"] == [] and after["unchanged_sources"] == 1
    assert "if-none-match" not in server.hits("/feed.xml")[-1].headers
    assert "failed when last picked up" not in project.run("check").stderr


def test_check_reports_a_feed_failing_now_as_a_problem(
    project: Project, server: FeedServer
) -> None:
    url = server.url("/gone.xml")
    project.settings(sources=["items", url])
    check = project.run("check")
    assert check.returncode == 2
    assert f"error: {url}: cannot fetch feed: HTTP 404 Not Found" in check.stderr


def test_the_state_remembers_when_each_feed_was_checked(
    project: Project, server: FeedServer
) -> None:
    import sqlite3

    url = server.url("/feed.xml")
    server.routes["/feed.xml"] = Route(rss(*STORIES))
    project.settings(sources=[url])
    project.run("items", check=True)
    with sqlite3.connect(project.state) as db:
        etag, checked, error = db.execute(
            "SELECT etag, checked_at, error FROM sources WHERE location = ?", (url,)
        ).fetchone()
    assert etag == server.routes["/feed.xml"].etag and error is None
    assert datetime.fromisoformat(checked).astimezone(UTC).year >= 2026


def test_a_feed_read_with_another_language_setting_is_fetched_whole(server: FeedServer) -> None:
    from digest.settings import SourceSettings

    server.routes["/feed.xml"] = Route(rss(*STORIES))
    url = server.url("/feed.xml")
    [record] = read_sources([url], seen={}).records
    spanish = SourceSettings(url, language="es")
    again = read_sources([spanish], seen={url: record})
    assert "if-none-match" not in server.hits("/feed.xml")[-1].headers
    assert {i.language for i in again.items} == {"es"} and again.unchanged == 0
    [keyed] = again.records
    assert keyed.fingerprint.endswith("~2:es")
    third = read_sources([spanish], seen={url: keyed})
    assert third.unchanged == 1 and server.hits("/feed.xml")[-1].status == 304
