"""Every error `digest` raises on purpose, each with a hint for the person running it.

DigestError                 base: message + hint; the CLI prints both and exits 2 (or 1)
├── InputError              something a person wrote is wrong (exit 2)
│   ├── SettingsError       digest.yaml: unknown key, wrong type, missing file
│   ├── SubscribersError    subscribers.yaml: bad address, duplicate, unknown region/topic
│   ├── TaxonomyError       a replacement taxonomy file is malformed
│   └── TemplateError       a template is missing or does not render/compile
├── SourceError             one source (listing, Markdown file, feed) cannot be read
├── DeliveryError           the message could not be handed over
│   ├── TemporaryDeliveryError   4xx, dropped connection, timeout: retry later
│   ├── PermanentDeliveryError   5xx for one recipient: this subscriber failed
│   └── DeliveryConfigError      auth, TLS, unreachable server: stop the whole run
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


class DeliveryError(DigestError):
    exit_code = 1


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying: a 4xx reply, a dropped connection, a timeout."""


class PermanentDeliveryError(DeliveryError):
    """The server refused this message for good (5xx)."""


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
