"""Where bounce mail is read from: a Maildir, a single file, an mbox file, or IMAP over TLS.

Every source yields (identifier, raw bytes) and is told `mark_done(identifier)` once the mail
is recorded. Nothing is ever deleted: a Maildir mail moves from new/ to cur/ (flag S), an IMAP
mail gets \\Seen, files and mbox files are left as they are (they were named explicitly).
With `dry_run` nothing moves or is flagged.

`fingerprint(data)` names a mail by its content, so the same mail read twice (from a copy,
from IMAP and a Maildir) counts once: the caller stores it with the event.
"""

from __future__ import annotations

import contextlib
import hashlib
import mailbox as stdlib_mailbox
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ..errors import InputError


class MailboxError(InputError):
    """A bounce mailbox that cannot be opened or read."""


class MailSource(Protocol):
    """A place mail is read from."""

    name: str

    def __iter__(self) -> Iterator[tuple[str, bytes]]: ...

    def mark_done(self, identifier: str) -> None: ...


def fingerprint(data: bytes) -> str:
    """sha256 of the mail with line endings made LF: the same for a Maildir file and the
    same mail fetched over IMAP (CRLF)."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


class MaildirSource:
    """The mails in `new/`; done ones move to `cur/NAME:2,S` (renamed, never copied)."""

    def __init__(self, path: Path, dry_run: bool = False) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.dry_run = dry_run
        self.problems: list[MailboxError] = []  # mails that could not be read (left in new/)
        if not (self.path / "new").is_dir():
            raise MailboxError(
                f"{self.path}: not a Maildir (no new/ folder)",
                hint="give a Maildir folder (with new/, cur/, tmp/), a mail file or an mbox file",
            )

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        new = self.path / "new"
        for entry in sorted(os.scandir(new), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            try:
                if not entry.is_file():
                    continue
                with open(entry.path, "rb") as handle:
                    data = handle.read()
            except FileNotFoundError:  # taken by a concurrent run
                continue
            except OSError as exc:  # one unreadable mail: say so, read the others
                self.problems.append(MailboxError(f"{entry.path}: cannot read: {exc.strerror}"))
                continue
            yield entry.path, data

    def mark_done(self, identifier: str) -> None:
        if self.dry_run:
            return
        source = Path(identifier)
        base = source.name if ":2," in source.name else f"{source.name}:2,S"
        (self.path / "cur").mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # already moved by a concurrent run
            os.rename(source, self.path / "cur" / base)


class FileSource:
    """One mail in one file, named on the command line; left in place."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        try:
            yield self.name, self.path.read_bytes()
        except OSError as exc:
            raise MailboxError(f"{self.path}: cannot read: {exc.strerror}") from exc

    def mark_done(self, identifier: str) -> None:
        pass


class MboxSource:
    """Each mail of an mbox file, as `PATH#N` (N from 1); the file is never changed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        box = stdlib_mailbox.mbox(self.path, create=False)
        try:
            for number, key in enumerate(box.iterkeys(), start=1):
                yield f"{self.path}#{number}", box.get_bytes(key)
        finally:
            box.close()

    def mark_done(self, identifier: str) -> None:
        pass


class ImapSource:
    """Unseen mail of one IMAP folder over TLS; done mails are flagged \\Seen.

    `url` is `imaps://user@host[:port]/FOLDER`; the password comes from the environment
    variable `password_env`. Mails are fetched with BODY.PEEK so reading flags nothing.
    """

    def __init__(
        self,
        url: str,
        password_env: str | None,
        dry_run: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "imaps" or not parts.hostname or not parts.username:
            raise MailboxError(
                f"{url}: not an IMAP mailbox address",
                hint="write it as imaps://user@host[:port]/FOLDER",
            )
        self.name = url
        self.host = parts.hostname
        self.port = parts.port or 993
        self.user = unquote(parts.username)
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        self.password = os.environ.get(password_env or "", "")
        if not self.password:
            raise MailboxError(
                f"{url}: no password: ${password_env or 'bounces.password_env'} is empty",
                hint="set bounces.password_env to the name of a variable holding the password",
            )
        self.dry_run = dry_run
        self.ssl_context = ssl_context
        self._client: object | None = None

    def _connect(self):  # -> imapclient.IMAPClient, imported here: only IMAP users need it
        import imapclient

        try:
            client = imapclient.IMAPClient(
                self.host, port=self.port, ssl=True, ssl_context=self.ssl_context, timeout=60
            )
            client.login(self.user, self.password)
            client.select_folder(self.folder, readonly=self.dry_run)
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise MailboxError(
                f"{self.name}: cannot open the mailbox: {exc}",
                hint="check the host, port, user, folder and the password variable",
            ) from exc
        return client

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        client = self._connect()
        self._client = client
        uids = client.search(["UNSEEN"])
        for start in range(0, len(uids), 100):
            batch = uids[start : start + 100]
            for uid, data in client.fetch(batch, ["BODY.PEEK[]"]).items():
                yield f"{self.name};UID={uid}", bytes(data[b"BODY[]"])

    def mark_done(self, identifier: str) -> None:
        if self.dry_run or self._client is None:
            return
        uid = int(identifier.rsplit(";UID=", 1)[1])
        self._client.add_flags([uid], [b"\\Seen"])  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._client.logout()  # type: ignore[attr-defined]
            self._client = None


def open_source(
    where: str | Path, dry_run: bool = False, password_env: str | None = None
) -> MailSource:
    """The source for a mailbox setting or a command-line argument: an imaps:// address, a
    Maildir folder, an mbox file (starts with "From "), or one mail file."""
    text = str(where)
    if text.startswith("imaps://"):
        return ImapSource(text, password_env, dry_run)
    if text.startswith(("imap://", "pop3://", "pop://")):
        raise MailboxError(f"{text}: only imaps:// (IMAP over TLS) is supported")
    path = Path(text)
    if path.is_dir():
        return MaildirSource(path, dry_run)
    if not path.exists():
        raise MailboxError(f"{path}: no such file or folder")
    with open(path, "rb") as handle:
        start = handle.read(5)
    return MboxSource(path) if start == b"From " else FileSource(path)
