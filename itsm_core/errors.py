"""Every exception the hub raises on purpose, in one place.

Each message says what went wrong and what to do next; none carries a secret.
The CLI turns `ConfigError` into exit status 2 and the others into status 1.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of all errors raised by itsm-hub on purpose."""


class ConfigError(HubError):
    """The configuration file is missing, unreadable or invalid.

    `key` is the dotted path of the offending key (e.g. ``sources[0].path``) when one is known.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class RecordError(HubError):
    """One upstream record cannot be turned into canonical data; it is quarantined, the run goes on.

    `stage` names the step that refused it: ``parse`` (the connector could not read the payload)
    or ``map`` (the mapping could not turn it into canonical fields).
    """

    stage = "map"


class ParseError(RecordError):
    """The connector could not read a raw payload (corrupt mail, invalid JSON, ...)."""

    stage = "parse"


class MailParseError(ParseError):
    """A message file is not a readable RFC 5322 message."""


class MappingError(RecordError):
    """A parsed record lacks a field the mapping needs, or has a value the mapping cannot translate."""


class InvalidTransition(HubError):
    """A ticket status change that the canonical transition table does not allow."""

    def __init__(self, current: str, requested: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none (final status)"
        super().__init__(
            f"cannot move a ticket from '{current}' to '{requested}'; allowed from '{current}': {allowed_text}"
        )
        self.current = current
        self.requested = requested
        self.allowed = allowed


class NotFound(HubError):
    """A ticket, dead letter or source named by the user does not exist."""


class StoreError(HubError):
    """The store cannot be reached or is not at the expected schema version."""


class ImapUnavailable(HubError):
    """An IMAP mailbox cannot be opened (unreachable, TLS failure, login refused)."""


class SmtpUnavailable(HubError):
    """The outgoing mail server cannot be reached or refuses the login; the mail stays queued."""
