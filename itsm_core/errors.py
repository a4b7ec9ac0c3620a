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


class ModelError(HubError):
    """The classifier model cannot be trained, loaded or used; the message says what to do."""


class StoreError(HubError):
    """The store cannot be reached or is not at the expected schema version."""


class SourceBusy(HubError):
    """Another run holds the source's run lock (`itsm_core/store/locks.py`): this one did nothing."""


class WriterLost(HubError):
    """A process writing a first load's pages died mid-page (killed: out of memory, most often). Its page's
    transaction rolled back; the pages committed before it stay, and the next run goes on from them."""


class CycleFailed(HubError):
    """A cycle in which some sources (or the dispatch, or the push) failed; `results` holds every outcome, the
    counts of the parts that worked and the error of those that did not, so they can still be shown."""

    def __init__(self, results: dict[str, object], failed: list[str]) -> None:
        super().__init__(f"{len(failed)} part(s) of the cycle failed: {', '.join(failed)}; see their runs")
        self.results = results


class ImapUnavailable(HubError):
    """An IMAP mailbox cannot be opened (unreachable, TLS failure, login refused)."""


class SmtpUnavailable(HubError):
    """The outgoing mail server cannot be reached or refuses the login; the mail stays queued."""


class FileTooLarge(HubError):
    """A file from a linked system (a GLPI document) is larger than the source's cap, so it was not downloaded:
    the hub did not start reading when the declared size (Content-Length) was already over the cap, and otherwise
    stopped as soon as the body passed it. The caller leaves the file out and says so (`over_cap`).

    `size` is the file's size in bytes when it is known, None when reading stopped at the cap; `limit` is the cap.
    """

    def __init__(self, message: str, *, size: int | None, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ReportNotMailed(HubError):
    """A report run wrote its files but could not mail them to the definition's `mail_to`: the files stay where
    they were written; the message says why and what to check."""


# --- linked systems (GLPI now; SAP Solman and webhook targets next) ------------------------------------------------


class UpstreamError(HubError):
    """A linked system (GLPI, SAP Solman, a webhook target) refused a request or could not be talked to.

    Attributes, for logs, dead letters and the decision to retry:

    - `system`: the configured name of the source or push target (e.g. ``glpi-prod``), never a URL with secrets;
    - `code`: the upstream's own error code when it gave one (GLPI: ``ERROR_RIGHT_MISSING``), else None;
    - `status`: the HTTP status when there was an answer, else None (network failure, timeout);
    - `detail`: the upstream's own message, cleaned (GLPI's "view documentation …" tail removed), else None;
    - `transient`: True when the same request may succeed later without anyone changing anything.

    Raised as such (not a subclass) when the answer is not the protocol the hub speaks: a web page instead of the
    API (wrong base URL, an SSO or proxy login page), a redirect, an untrusted TLS certificate, an itemtype the
    instance does not know, or a request the client built wrong. Retrying does not help: the operator checks the
    source's URL and settings; if they are right, it is a bug in the hub's client, to report with this message.
    Messages say what to do next and never carry a secret.
    """

    transient = False

    def __init__(
        self,
        message: str,
        *,
        system: str,
        code: str | None = None,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.system = system
        self.code = code
        self.status = status
        self.detail = detail


class UpstreamUnavailable(UpstreamError):
    """The system did not answer usefully for now: network failure, timeout, 429 or 5xx after the retry budget.

    Transient: nothing to fix in the hub's config; the run (or the outbox) tries again later. If it persists, the
    operator checks that the system and any proxy in front of it are up.

    `maybe_applied` is True when a write may have been carried out although no answer came back (a timeout or a
    5xx after the request was sent): replaying it blindly could, say, add a followup twice, so the caller checks
    the upstream state before trying again. It is False for reads and whenever the request surely was not applied
    (connection refused, 429, 503).
    """

    transient = True

    def __init__(
        self,
        message: str,
        *,
        system: str,
        code: str | None = None,
        status: int | None = None,
        detail: str | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(message, system=system, code=code, status=status, detail=detail)
        self.maybe_applied = maybe_applied


class UpstreamAuthError(UpstreamError):
    """The system refuses the hub itself: bad credentials or app token, caller's IP not allowed, API disabled.

    Fatal for the whole source: no request can succeed until the operator fixes the source's credentials or the
    system's API settings (the message says which). Never retried.
    """


class UpstreamForbidden(UpstreamError):
    """The hub's account may not read or change this record (GLPI: 403 ``ERROR_RIGHT_MISSING``).

    Fatal for that record, not for the run: give the hub's account the missing right (or entity) in the upstream
    system, then replay the record.
    """


class UpstreamNotFound(UpstreamError):
    """The record does not exist upstream, or is hidden from the hub's account (GLPI: 404 ``ERROR_ITEM_NOT_FOUND``).

    A record the hub knew and that is now gone was purged upstream: a tombstone candidate, not an operator task.
    """


class UpstreamRejected(UpstreamError):
    """The system understood the request and refused it on business grounds, or refused its parameters.

    E.g. GLPI's ``ERROR_GLPI_ADD`` "already solved", ``ERROR_GLPI_UPDATE``, a generic ``ERROR`` for a bad range,
    sort or search criterion. Retrying the same request gives the same answer: the record goes to a dead letter
    with the upstream's message (`detail`); the operator corrects the data or the mapping and replays it.
    """


def failure_text(exc: BaseException) -> str:
    """One line for a run that failed: the hub's own errors already read as sentences; anything else is named."""
    return str(exc) if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"


def over_cap(what: str, size: int | None, key: str, limit: int) -> str:
    """How the hub says it left something out for its size, the same for every cap: ``attachment big.log (5000
    bytes) left out: over max_attachment_bytes (1024)``. An unknown `size` (reading stopped at the cap) reads
    "more than `limit` bytes". Callers add what to do next."""
    said = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return f"{what} ({said}) left out: over {key} ({limit})"
