"""The embedded default: each message written into a local Maildir (`new/`)."""

from __future__ import annotations

import mailbox
from pathlib import Path

from ..errors import DeliveryConfigError


class MaildirSender:
    """Writes each message into a Maildir (new/), creating it when needed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.box = mailbox.Maildir(str(self.path), create=True)
        except OSError as exc:
            raise DeliveryConfigError(
                f"cannot open Maildir {self.path}: {exc}",
                hint="check 'delivery.maildir' in the settings and the folder's permissions",
            ) from exc

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        try:
            self.box.add(data.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise DeliveryConfigError(f"cannot write to Maildir {self.path}: {exc}") from exc

    def close(self) -> None:
        return None
