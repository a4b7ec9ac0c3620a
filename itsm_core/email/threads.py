"""Which ticket a mail continues: by Message-ID, then the ticket token in the subject, then an external number.

Contract: `ThreadIndex.lookup` is built once per batch with a handful of queries; matching a mail is then a
few dictionary look-ups and compiled regexes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from itsm_core.store.bulk import one_of
from itsm_core.store.tables import ExternalRefRow, MailMessageRow, TicketRow

mail_messages = MailMessageRow.__table__
external_refs = ExternalRefRow.__table__
tickets = TicketRow.__table__


def token_pattern(token_format: str) -> re.Pattern[str]:
    """`[#{number}]` → a regex finding `[#T-000123]` and capturing 123."""
    before, _, after = token_format.partition("{number}")
    return re.compile(re.escape(before) + r"T-0*(\d{1,12})" + re.escape(after), re.IGNORECASE)


@dataclass(frozen=True)
class ThreadMatcher:
    token: re.Pattern[str]
    external: dict[str, re.Pattern[str]]  # system → pattern with one group

    @classmethod
    def compile(cls, token_format: str, external_patterns: dict[str, str]) -> ThreadMatcher:
        return cls(token_pattern(token_format), {k: re.compile(v) for k, v in external_patterns.items()})

    def candidates(self, mail: dict) -> tuple[list[str], list[int], list[tuple[str, str]]]:
        """(message ids it refers to, ticket numbers in its subject, (system, number) pairs in its subject)."""
        refs = [mail.get("in_reply_to"), *reversed(mail.get("references") or [])]
        subject = mail.get("subject") or ""
        numbers = [int(m) for m in self.token.findall(subject)]
        external = [(system, m.group(1)) for system, p in self.external.items() for m in p.finditer(subject)]
        return [r for r in refs if r], numbers, external


@dataclass
class ThreadIndex:
    """The store's answers for one batch's candidates."""

    by_message_id: dict[str, int]
    existing_tickets: set[int]
    by_external: dict[tuple[str, str], int]
    sent_by_hub: dict[str, int]  # the subset of by_message_id that the hub itself sent

    @classmethod
    def lookup(
        cls,
        conn: Connection,
        message_ids: Iterable[str],
        numbers: Iterable[int],
        external: Iterable[tuple[str, str]],
    ) -> ThreadIndex:
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
        return cls(by_message_id, existing, by_external, sent_by_hub)

    def tickets(self) -> set[int]:
        """Every ticket a candidate of the batch may thread to."""
        return {*self.by_message_id.values(), *self.existing_tickets, *self.by_external.values()}

    def match(self, refs: list[str], numbers: list[int], external: list[tuple[str, str]]) -> tuple[int, str] | None:
        for ref in refs:
            if ref in self.by_message_id:
                return self.by_message_id[ref], "In-Reply-To/References"
        for number in numbers:
            if number in self.existing_tickets:
                return number, "ticket token in the subject"
        for key in external:
            if key in self.by_external:
                return self.by_external[key], f"{key[0]} number in the subject"
        return None
