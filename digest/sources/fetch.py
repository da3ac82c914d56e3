"""Fetching a feed URL: httpx with a timeout, a size limit, redirects, gzip and a User-Agent
naming the project, and conditional GET (ETag / Last-Modified), so an unchanged feed costs
one 304.

httpx rather than urllib: it decodes gzip and deflate as it streams (so the size limit counts
the bytes the feed really is, and a small gzip bomb cannot grow past it), follows redirects
with a limit and keeps their history (a permanent move is reported), and has one timeout for
connecting and for each read. The whole fetch also has a deadline, so a server that trickles
a byte at a time cannot hold a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import SourceError

if TYPE_CHECKING:  # imported on the first fetch: most runs read files only
    import httpx

USER_AGENT = f"digest/{__version__} (regional migration-news digest; feed reader)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
RETRY_HINT = "check the URL; the feed's earlier items are kept, and it is fetched again next time"


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 20.0  # seconds to connect, for each read, and for the whole fetch
    max_bytes: int = 10 * 1024 * 1024  # the feed as decoded (after gzip)
    max_redirects: int = 5


@dataclass(frozen=True)
class Fetched:
    url: str  # where the feed was found, after redirects
    status: int  # 200, or 304: not modified since the ETag / Last-Modified sent
    body: bytes = b""
    content_type: str | None = None
    content_language: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None  # a permanent redirect (301, 308) pointed here
    redirects: list[int] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher:
    """One HTTP client for every feed a pickup fetches: connections and TLS are set up once,
    on the first URL."""

    def __init__(self, limits: FetchLimits | None = None) -> None:
        self.limits = limits or FetchLimits()
        self._client: httpx.Client | None = None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> httpx.Client:
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                timeout=self.limits.timeout,
                follow_redirects=True,
                max_redirects=self.limits.max_redirects,
                headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
            )
        return self._client

    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """GET `url`; with `etag` or `last_modified`, a conditional GET. Raises SourceError
        naming the URL and what went wrong (HTTP status, timeout, size, redirects, network)."""
        import httpx

        limits = self.limits
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                return _received(url, response, limits)
        except httpx.TooManyRedirects as exc:
            raise _failed(url, f"more than {limits.max_redirects} redirects") from exc
        except httpx.TimeoutException as exc:
            raise _failed(url, f"no answer within {limits.timeout:g} s ({_why(exc)})") from exc
        except httpx.HTTPError as exc:
            raise _failed(url, _why(exc)) from exc


def fetch(
    url: str,
    etag: str | None = None,
    last_modified: str | None = None,
    limits: FetchLimits | None = None,
) -> Fetched:
    """One URL fetched on its own (see `Fetcher.fetch`)."""
    with Fetcher(limits) as fetcher:
        return fetcher.fetch(url, etag, last_modified)


def _received(url: str, response: httpx.Response, limits: FetchLimits) -> Fetched:
    redirects = [r.status_code for r in response.history]
    moved = str(response.url) if any(code in (301, 308) for code in redirects) else None
    if response.status_code == 304:
        return Fetched(str(response.url), 304, moved_to=moved, redirects=redirects,
                       etag=response.headers.get("etag"),
                       last_modified=response.headers.get("last-modified"))  # fmt: skip
    if response.status_code != 200:
        reason = response.reason_phrase or "error"
        raise _failed(url, f"HTTP {response.status_code} {reason}")
    return Fetched(
        url=str(response.url),
        status=200,
        body=_body(url, response, limits),
        content_type=response.headers.get("content-type"),
        content_language=response.headers.get("content-language"),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        moved_to=moved,
        redirects=redirects,
    )


def _body(url: str, response: httpx.Response, limits: FetchLimits) -> bytes:
    """The decoded body, refused past `max_bytes` or past the whole fetch's deadline."""
    declared = response.headers.get("content-length", "")
    too_big = f"larger than the limit of {limits.max_bytes:,} bytes"
    plain = "content-encoding" not in response.headers  # else it counts compressed bytes
    if plain and declared.isdigit() and int(declared) > limits.max_bytes:
        raise _failed(url, f"{too_big} ({int(declared):,} bytes announced); not read")
    deadline = time.monotonic() + limits.timeout
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise _failed(url, f"{too_big}; stopped reading")
        if time.monotonic() > deadline:
            raise _failed(url, f"still arriving after {limits.timeout:g} s; stopped reading")
        chunks.append(chunk)
    return b"".join(chunks)


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.removeprefix("[Errno 111] ")


def _failed(url: str, why: str) -> SourceError:
    return SourceError(f"{url}: cannot fetch feed: {why}", hint=RETRY_HINT)
