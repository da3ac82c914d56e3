"""One SMTP connection per `SMTPSender`, reused for the whole run, with RFC 2920 pipelining
when the server offers it: the next message's envelope rides with this message's data."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from typing import NoReturn

from ..compose.mime import NoDotLines
from ..errors import DeliveryConfigError, PermanentDeliveryError, TemporaryDeliveryError
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
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise DeliveryConfigError(
                f"cannot reach SMTP server {self.where}: {exc}",
                hint="check delivery.smtp.host and port, and that the server is running",
            ) from exc
        except (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected, OSError) as exc:
            # A greeting refused (e.g. 421 busy) or a timeout is worth another try.
            raise TemporaryDeliveryError(
                f"SMTP server {self.where} did not accept a connection: {exc}"
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
        try:
            self._transaction(self.conn, (sender, recipient), data, self.following)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TemporaryDeliveryError(f"connection to {self.where} lost: {exc}") from exc
        self.following = None

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
        conn.send(b"".join((stuffed, b".\r\n", _group(follow) if follow else b"")))  # one copy
        self.announced = follow
        code, message = conn.getreply()
        if code != 250:
            if code == 421:
                self._drop()
            self._raise_for(code, message, reset=False)  # the transaction is over either way

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
