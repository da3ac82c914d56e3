"""One SMTP connection per `SMTPSender`, reused for the whole run, with RFC 2920 pipelining
when the server offers it: the next message's envelope rides with this message's data.

Faults and what they mean for the run:
- refused, unreachable, or silent at the greeting: `ServerUnavailableError`, the run stops
  (exit 1; the next run or the scheduler tries again);
- login, TLS: `DeliveryConfigError`, the run stops (exit 2: a person must fix the settings);
- a 4xx reply or a connection lost before the message's end: `TemporaryDeliveryError`, retried;
- a 5xx reply, or a message larger than the server's SIZE: `PermanentDeliveryError`;
- no reply to the message's end within `data_timeout` (RFC 5321 gives 10 minutes):
  `UncertainDeliveryError`, never retried in the run, since the server may have taken it.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from typing import NoReturn

from ..compose.mime import NoDotLines
from ..errors import (
    DeliveryConfigError,
    PermanentDeliveryError,
    ServerUnavailableError,
    TemporaryDeliveryError,
    UncertainDeliveryError,
)
from ..settings import SmtpSettings
from .envelope import Envelope


def _reply_text(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"


class SMTPSender:
    """One SMTP connection, opened on first use and reused for the whole run."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.conn: smtplib.SMTP | None = None
        # The next message's MAIL, RCPT and DATA, written after this one's data; replies unread.
        self.announced: Envelope | None = None
        self.following: Envelope | None = None  # what the caller will send next, if known

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def connect(self) -> None:
        s = self.settings
        context = ssl.create_default_context()
        try:
            if s.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=context
                )
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise DeliveryConfigError(
                        f"SMTP server {self.where} does not offer STARTTLS",
                        hint="set delivery.smtp.security to ssl or none, or fix the server",
                    )
                conn.starttls(context=context)
                conn.ehlo()
            if s.username:
                password = s.password
                if password is None:
                    conn.close()
                    raise DeliveryConfigError(
                        f"SMTP login to {self.where} needs a password, but ${s.password_env} "
                        "is not set",
                        hint=f"export {s.password_env}=... (delivery.smtp.password_env names it)",
                    )
                conn.login(s.username, password)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryConfigError(
                f"SMTP login to {self.where} as {s.username!r} failed: "
                f"{_reply_text(exc.smtp_code, exc.smtp_error)}",
                hint=f"check delivery.smtp.username and the password in ${s.password_env}",
            ) from exc
        except ssl.SSLError as exc:
            raise DeliveryConfigError(
                f"TLS with SMTP server {self.where} failed: {exc.reason or exc}",
                hint="check delivery.smtp.security (starttls on 587, ssl on 465) and the "
                "server's certificate",
            ) from exc
        except smtplib.SMTPConnectError as exc:  # a greeting that says busy (421): try again
            raise TemporaryDeliveryError(
                f"SMTP server {self.where} did not accept a connection: "
                f"{_reply_text(exc.smtp_code, exc.smtp_error)}"
            ) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Refused, unreachable, or silent: no subscriber would get through now.
            raise ServerUnavailableError(
                f"cannot reach SMTP server {self.where}: {_why(exc)}",
                hint="check delivery.smtp.host and port and that the server is running; "
                "the next run (or the scheduler) tries again",
            ) from exc
        except smtplib.SMTPException as exc:
            raise DeliveryConfigError(f"SMTP server {self.where}: {exc}") from exc
        self.conn = conn

    def expect_next(self, envelope: Envelope | None) -> None:
        """The envelope of the message the caller will send next, if known: it is written right
        behind the next message's data (see `_transaction`)."""
        self.following = envelope

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        """One message."""
        if self.announced is not None and self.announced != (sender, recipient):
            # Announced for another message (a retry came first): the server may be waiting
            # for that message's data, so only a new connection ends it without sending it.
            self._drop()
        if self.conn is None:
            self.connect()
        assert self.conn is not None
        self._check_size(len(data), (sender, recipient))
        try:
            self._transaction(self.conn, (sender, recipient), data, self.following)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TemporaryDeliveryError(f"connection to {self.where} lost: {exc}") from exc
        self.following = None

    def _check_size(self, size: int, envelope: Envelope) -> None:
        """Refuse a message over the server's advertised SIZE (RFC 1870) before uploading it."""
        assert self.conn is not None
        limit = self.conn.esmtp_features.get("size", "").strip()
        if not limit.isdigit() or int(limit) == 0 or size <= int(limit):
            return
        if self.announced == envelope:
            self._drop()  # its envelope went ahead: only a new connection ends it unsent
        raise PermanentDeliveryError(
            f"the message is {size:,} bytes and {self.where} accepts at most {int(limit):,} "
            "(its SIZE); it was not sent",
            hint="fewer items per digest (a smaller message) would fit",
        )

    def _transaction(
        self, conn: smtplib.SMTP, envelope: Envelope, data: bytes, then: Envelope | None
    ) -> None:
        """MAIL, RCPT, DATA and the message, dot-stuffed by bytes.replace rather than smtplib's
        regular expression (which took a sixth of a large run's time).

        When the server offers PIPELINING (RFC 2920), the commands go in one write, and the next
        message's commands go in the same write as this message's data (a group may start with
        message content): one round trip per message instead of two. Their replies are read
        by the next call, by which time they have usually arrived."""
        pipelining = conn.has_extn("pipelining")
        if self.announced == envelope:
            self.announced = None
            replies = [conn.getreply() for _ in range(3)]
        elif pipelining:
            conn.send(_group(envelope))
            replies = [conn.getreply() for _ in range(3)]
        else:
            replies = []
            for command in _commands(envelope):
                conn.putcmd(command)
                replies.append(conn.getreply())
                if replies[-1][0] >= 400:
                    break
        for (code, message), wanted in zip(replies, (250, 250, 354), strict=False):
            if code != wanted and not (wanted == 250 and code == 251):
                if code == 421:
                    self._drop()
                self._raise_for(code, message)
        stuffed = data if isinstance(data, NoDotLines) else data.replace(b"\r\n.", b"\r\n..")
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        follow = then if pipelining else None
        tail = b".\r\n" + (_group(follow) if follow else b"")
        self._write(conn, stuffed, tail)
        self.announced = follow
        code, message = self._final_reply(conn, followed=follow is not None)
        if code != 250:
            if code == 421:
                self._drop()
            self._raise_for(code, message, reset=False)  # the transaction is over either way

    def _write(self, conn: smtplib.SMTP, data: bytes, tail: bytes) -> None:
        """The message and its end ("." and any next envelope) in one write. A connection lost
        once the end was handed over is uncertain: the server may have taken the message."""
        assert conn.sock is not None
        buffer = memoryview(b"".join((data, tail)))
        sent = 0
        try:
            while sent < len(buffer):
                sent += conn.sock.send(buffer[sent:])
        except OSError as exc:
            if sent < len(data) + 3:  # not past ".\r\n": the server cannot have taken it
                raise
            self._drop()
            raise self._uncertain(exc) from exc

    def _final_reply(self, conn: smtplib.SMTP, followed: bool) -> tuple[int, bytes]:
        """The reply to the message's end, waited for `data_timeout` (RFC 5321: 10 minutes).

        No reply is uncertain, except a reset when nothing followed the end: the server's
        system resets a connection closed with data still unread, so the end was never read."""
        assert conn.sock is not None
        conn.sock.settimeout(self.settings.data_timeout)
        try:
            return conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            reset = isinstance(exc, ConnectionResetError) or isinstance(
                exc.__context__, ConnectionResetError
            )
            if reset and not followed:
                raise TemporaryDeliveryError(
                    f"{self.where} hung up before reading the end of the message: {_why(exc)}"
                ) from exc
            raise self._uncertain(exc) from exc
        finally:
            if conn.sock is not None:
                conn.sock.settimeout(self.settings.timeout)

    def _uncertain(self, exc: BaseException) -> UncertainDeliveryError:
        return UncertainDeliveryError(
            f"{self.where} never answered the end of the message ({_why(exc)}): it may have "
            "been delivered; a later run resends it once, with the same Message-ID",
            hint="receiving systems drop a copy with a Message-ID they already have",
        )

    def _raise_for(self, code: int, message: bytes | str, reset: bool = True) -> NoReturn:
        reply = _reply_text(code, message)
        if reset:
            self._reset()
        if 400 <= code < 500:
            raise TemporaryDeliveryError(f"{self.where} replied {reply}")
        raise PermanentDeliveryError(f"{self.where} replied {reply}")

    def _reset(self) -> None:
        if self.conn is not None:
            try:
                self.conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None
        self.announced = None

    def close(self) -> None:
        if self.conn is not None and self.announced is None:  # else the server awaits data
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.quit()
        self._drop()


def _commands(envelope: Envelope) -> tuple[str, str, str]:
    sender, recipient = envelope
    return f"MAIL FROM:<{sender}>", f"RCPT TO:<{recipient}>", "DATA"


def _group(envelope: Envelope) -> bytes:
    """The envelope's commands as one pipelined write."""
    return "".join(c + "\r\n" for c in _commands(envelope)).encode("ascii")


def _why(exc: BaseException) -> str:
    # smtplib reports a timeout as "Connection unexpectedly closed: timed out".
    if isinstance(exc, TimeoutError | socket.timeout) or "timed out" in str(exc):
        return "no answer (timed out)"
    return str(exc) or type(exc).__name__
