"""Every error `digest` raises on purpose, each with a hint for the person running it.

DigestError                 base: message + hint; the CLI prints both and exits 2 (or 1)
├── InputError              something a person wrote is wrong (exit 2)
│   ├── SettingsError       digest.yaml: unknown key, wrong type, missing file
│   ├── SubscribersError    subscribers.yaml: bad address, duplicate, unknown region/topic
│   ├── TaxonomyError       a replacement taxonomy file is malformed
│   └── TemplateError       a template is missing or does not render/compile
├── SourceError             one source (listing, Markdown file, feed) cannot be read
├── StateError              the state is empty, damaged, read-only or its disk is full (exit 2)
├── DeliveryError           the message could not be handed over (exit 1)
│   ├── TemporaryDeliveryError   4xx, dropped connection, timeout: retry later
│   ├── PermanentDeliveryError   5xx for one recipient: this subscriber failed
│   ├── UncertainDeliveryError   no reply to the message's end: it may have arrived; never retried
│   ├── ServerUnavailableError   unreachable or silent server: stop the run, the next one retries
│   └── DeliveryConfigError      auth, TLS: stop the whole run (exit 2)
└── LockedError             another send holds the state file
"""

from __future__ import annotations


class DigestError(Exception):
    """Base error: a message saying what went wrong and a hint saying what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(DigestError):
    """Something a person wrote (settings, subscribers, templates) is wrong."""


class SettingsError(InputError):
    pass


class SubscribersError(InputError):
    pass


class TaxonomyError(InputError):
    pass


class TemplateError(InputError):
    pass


class SourceError(DigestError):
    """One source cannot be read; the others still load."""


class StateError(DigestError):
    """The state cannot be used as it is: a person must restore, free space or fix rights."""


class DeliveryError(DigestError):
    exit_code = 1
    attempts = 1  # how many times the message was really tried


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying: a 4xx reply, a dropped connection, a timeout."""


class PermanentDeliveryError(DeliveryError):
    """The server refused this message for good (5xx)."""


class UncertainDeliveryError(DeliveryError):
    """The message was sent whole but its reply never came: the server may have accepted it.
    Retrying could deliver it twice, so a later run resends it once, with the same Message-ID."""


class ServerUnavailableError(DeliveryError):
    """The server refused the connection, or never greeted: no message can go out now, but
    the next run may get through (exit 1)."""


class DeliveryConfigError(DeliveryError):
    """No message can go out: wrong password, TLS failure, unreachable server."""

    exit_code = 2


class LockedError(DigestError):
    exit_code = 1


class ProblemList(InputError):
    """Several input problems found at once; each is listed."""

    def __init__(self, problems: list[DigestError]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
