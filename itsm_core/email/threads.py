"""Which ticket a mail continues: by Message-ID, then the ticket token in the subject, then an external number.

A reply joins a ticket only with proof that its sender is part of the conversation, since ticket numbers are
sequential and anyone can write `[#T-000123]` in a subject:
- its In-Reply-To / References name a Message-ID of the ticket's thread (only those who got a mail of it know one);
- or its subject token carries the ticket's secret (`[#T-000123-k7f2xq]`, in every mail the hub sends: an HMAC
  of the ticket number with the installation's `reply_token` key);
- or its sender is already on the ticket (its requester, a watcher, someone who wrote on its thread).
A token or an external number without proof is a *mention*: the mail becomes a new ticket that names the one it
mentions, and its sender does not become a watcher of it.

Contract: `ThreadIndex.lookup` is built once per batch with a handful of queries; matching a mail is then a
few dictionary look-ups and compiled regexes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from itsm_core.store.bulk import one_of
from itsm_core.store.tables import ExternalRefRow, HubKeyRow, MailMessageRow, TicketRow, TicketWatcherRow
from itsm_core.store.tickets import format_ticket_id

mail_messages = MailMessageRow.__table__
external_refs = ExternalRefRow.__table__
tickets = TicketRow.__table__
watchers = TicketWatcherRow.__table__
SECRET_LENGTH = 6  # base32: 2^30 values; the flood limits bound the guesses long before


def token_pattern(token_format: str) -> re.Pattern[str]:
    """`[#{number}]` → a regex finding `[#T-000123]` or `[#T-000123-k7f2xq]`, capturing 123 and the secret."""
    before, _, after = token_format.partition("{number}")
    secret = rf"(?:-([a-z2-7]{{{SECRET_LENGTH}}}))?"
    return re.compile(re.escape(before) + r"T-0*(\d{1,12})" + secret + re.escape(after), re.IGNORECASE)


def reply_key(conn: Connection) -> bytes:
    """The installation's key for ticket secrets (made by migration 0007)."""
    value = conn.execute(select(HubKeyRow.value).where(HubKeyRow.name == "reply_token")).scalar_one()
    return value.encode()


def ticket_secret(key: bytes, ticket_id: int) -> str:
    """The ticket's secret for subject tokens: stable, unguessable without the key."""
    digest = hmac.new(key, str(ticket_id).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:SECRET_LENGTH]


def ticket_token_number(key: bytes, ticket_id: int) -> str:
    """What `{number}` stands for in the subject token of mail the hub sends: T-000123-k7f2xq."""
    return f"{format_ticket_id(ticket_id)}-{ticket_secret(key, ticket_id)}"


@dataclass(frozen=True)
class ThreadMatcher:
    token: re.Pattern[str]
    external: dict[str, re.Pattern[str]]  # system → pattern with one group

    @classmethod
    def compile(cls, token_format: str, external_patterns: dict[str, str]) -> ThreadMatcher:
        return cls(token_pattern(token_format), {k: re.compile(v) for k, v in external_patterns.items()})

    def candidates(self, mail: dict) -> tuple[list[str], list[tuple[int, str | None]], list[tuple[str, str]]]:
        """(message ids it refers to, (ticket number, secret or None) of each token in its subject, (system,
        number) pairs in its subject)."""
        refs = [mail.get("in_reply_to"), *reversed(mail.get("references") or [])]
        subject = mail.get("subject") or ""
        numbers = [(int(n), secret.lower() or None) for n, secret in self.token.findall(subject)]
        external = [(system, m.group(1)) for system, p in self.external.items() for m in p.finditer(subject)]
        return [r for r in refs if r], numbers, external


@dataclass(frozen=True)
class Match:
    ticket_id: int
    how: str  # what proved it, for the audit trail


@dataclass(frozen=True)
class Mention:
    """Tickets a mail names without proof that its sender takes part in them."""

    ticket_ids: tuple[int, ...]


@dataclass
class ThreadIndex:
    """The store's answers for one batch's candidates."""

    by_message_id: dict[str, int]
    existing_tickets: set[int]
    by_external: dict[tuple[str, str], int]
    sent_by_hub: dict[str, int]  # the subset of by_message_id that the hub itself sent
    key: bytes = b""
    participants: dict[int, set[str]] = field(default_factory=dict)  # who is on each named ticket

    @classmethod
    def lookup(
        cls,
        conn: Connection,
        message_ids: Iterable[str],
        numbers: Iterable[int],
        external: Iterable[tuple[str, str]],
    ) -> ThreadIndex:
        """`numbers` are the ticket numbers of subject tokens (without their secrets)."""
        message_ids, numbers, external = set(message_ids), set(numbers), set(external)
        by_message_id: dict[str, int] = {}
        sent_by_hub: dict[str, int] = {}
        if message_ids:
            rows = conn.execute(
                select(mail_messages.c.message_id, mail_messages.c.ticket_id, mail_messages.c.direction).where(
                    one_of(conn, mail_messages.c.message_id, message_ids), mail_messages.c.ticket_id.is_not(None)
                )
            )
            for message_id, ticket_id, direction in rows:
                by_message_id[message_id] = ticket_id
                if direction == "out":
                    sent_by_hub[message_id] = ticket_id
        existing: set[int] = set()
        if numbers:
            existing = set(conn.execute(select(tickets.c.id).where(one_of(conn, tickets.c.id, numbers))).scalars())
        by_external: dict[tuple[str, str], int] = {}
        for system in {s for s, _ in external}:
            ids = [n for s, n in external if s == system]
            rows = conn.execute(
                select(external_refs.c.external_id, external_refs.c.ticket_id).where(
                    external_refs.c.system == system,
                    one_of(conn, external_refs.c.external_id, ids),
                    external_refs.c.ticket_id.is_not(None),
                )
            )
            by_external.update({(system, external_id): ticket_id for external_id, ticket_id in rows})
        named = existing | set(by_external.values())
        key = reply_key(conn) if existing else b""
        return cls(by_message_id, existing, by_external, sent_by_hub, key, _participants(conn, named))

    def tickets(self) -> set[int]:
        """Every ticket a candidate of the batch may thread to."""
        return {*self.by_message_id.values(), *self.existing_tickets, *self.by_external.values()}

    def match(
        self, refs: list[str], numbers: list[tuple[int, str | None]], external: list[tuple[str, str]], sender: str
    ) -> Match | Mention | None:
        """The ticket this mail continues, with what proved it; else the tickets it only mentions; else None."""
        for ref in refs:
            if ref in self.by_message_id:
                return Match(self.by_message_id[ref], "In-Reply-To/References")
        mentioned: list[int] = []
        for number, secret in numbers:
            if number not in self.existing_tickets:
                continue
            if secret is not None and hmac.compare_digest(secret, ticket_secret(self.key, number)):
                return Match(number, "ticket token (with its secret) in the subject")
            if sender in self.participants.get(number, ()):
                return Match(number, "ticket token in the subject, from someone on the ticket")
            mentioned.append(number)
        for key in external:
            if key in self.by_external:
                ticket_id = self.by_external[key]
                if sender in self.participants.get(ticket_id, ()):
                    return Match(ticket_id, f"{key[0]} number in the subject, from someone on the ticket")
                mentioned.append(ticket_id)
        return Mention(tuple(dict.fromkeys(mentioned))) if mentioned else None


def _participants(conn: Connection, ticket_ids: set[int]) -> dict[int, set[str]]:
    """Per ticket, the lower-cased addresses of its requester, its watchers and whoever wrote on its thread."""
    found: dict[int, set[str]] = {ticket_id: set() for ticket_id in ticket_ids}
    if not ticket_ids:
        return found
    queries = (
        select(tickets.c.id, tickets.c.requester).where(one_of(conn, tickets.c.id, ticket_ids)),
        select(watchers.c.ticket_id, watchers.c.address).where(one_of(conn, watchers.c.ticket_id, ticket_ids)),
        select(mail_messages.c.ticket_id, mail_messages.c.address).where(
            mail_messages.c.direction == "in", one_of(conn, mail_messages.c.ticket_id, ticket_ids)
        ),
    )
    for query in queries:
        for ticket_id, address in conn.execute(query):
            if address:
                found[ticket_id].add(address.lower())
    return found
