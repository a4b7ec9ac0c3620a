"""What a received mail is for, decided in this order (first match wins):

1. sent from one of the hub's own addresses, or carrying one in `X-Loop` (the hub marks its mail so) → ignored
   (`own`, `loop`): the hub never answers itself;
2. an auto-reply or a bounce (the connector's `noise`) → ignored; a bounce that cites a Message-ID the hub
   itself sent is noted on that mail's ticket as a private comment (a forged one citing any other gets nothing);
   a message too large to import (the connector kept only its headers) → quarantined, the sender told;
3. a Message-ID already received (the same mail in another mailbox, or fetched again) → `duplicate`;
4. more than `flood_per_sender` mails from one sender within `flood_window_minutes` → quarantined;
5. a reply (In-Reply-To / References to any Message-ID the hub received or sent, else the ticket token in
   the subject, else a linked system's number in the subject — the last two with proof, see `threads.py`) → a
   comment on that ticket, unless that ticket got more than `flood_per_ticket` mails in the window
   (quarantined); a reply to a resolved ticket opens it again (the resolution notice promises so);
6. otherwise a new ticket (naming, in `custom_fields.mentions`, the tickets it named without proof).

A mail whose headers name no usable sender (`requester_unknown`, the parser's placeholder address) is triaged
the same way, but gets no acknowledgement and makes nobody a watcher.

What it records, in the batch's transaction: every Message-ID with its ticket (so replies thread), CC'd
addresses as watchers, and — for a new ticket from a real person — an acknowledgement in the outbox.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from itsm_core.config import EmailConfig
from itsm_core.email.notify import EMAIL_TARGET, mail_payload
from itsm_core.email.threads import Match, Mention, ThreadIndex, ThreadMatcher
from itsm_core.models import Attachment, Comment, RawRecord, TicketStatus, clip, utcnow
from itsm_core.store.bulk import insert_ignoring_conflicts, one_of
from itsm_core.store.comments import add_comments
from itsm_core.store.outbox import enqueue
from itsm_core.store.tables import MailMessageRow, TicketRow, TicketWatcherRow
from itsm_core.store.tickets import format_ticket_id, set_statuses
from itsm_core.sync.intake import AddComment, Defer, Disposition, Ignore, MakeTicket, Refuse, Triaged
from itsm_core.sync.propagate import Change

AUTHOR_LIMIT = 320  # comments.author
mail_messages = MailMessageRow.__table__
watchers = TicketWatcherRow.__table__
tickets = TicketRow.__table__


class EmailIntake:
    def __init__(self, config: EmailConfig, source: str, now: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.source = source
        self.now = now
        self.hub_addresses = {a.lower() for a in config.hub_addresses}
        if config.smtp is not None:
            self.hub_addresses.add(config.smtp.from_address.lower())
        self.matcher = ThreadMatcher.compile(config.ticket_token, config.external_number_patterns)

    # --- deciding ------------------------------------------------------------------------------------

    def triage(
        self, conn: Connection, items: Sequence[tuple[RawRecord, dict[str, Any]]], *, final: bool
    ) -> list[Disposition]:
        mails = [mail for _, mail in items]
        candidates = [self.matcher.candidates(mail) for mail in mails]
        bounced = [(mail.get("noise") or {}).get("original_message_id") for mail in mails]
        index = ThreadIndex.lookup(
            conn,
            [ref for refs, _, _ in candidates for ref in refs] + [b for b in bounced if b],
            [number for _, tokens, _ in candidates for number, _ in tokens],
            [pair for _, _, pairs in candidates for pair in pairs],
        )
        received = self._received(conn, [m.get("message_id") for m in mails])
        recent = self._recent_by_sender(conn, {m.get("from_address", "") for m in mails})
        recent_per_ticket = self._recent_by_ticket(conn, set(index.tickets()))
        batch_ids = {m.get("message_id"): i for i, m in enumerate(mails) if m.get("message_id")}
        seen_in_batch: set[str] = set()
        counted: Counter[str] = Counter()
        counted_per_ticket: Counter[int] = Counter()
        dispositions: list[Disposition] = []
        for position, (mail, (refs, numbers, pairs)) in enumerate(zip(mails, candidates, strict=True)):
            sender = (mail.get("from_address") or "").lower()
            message_id = mail.get("message_id")
            noise = mail.get("noise")
            if sender in self.hub_addresses:
                dispositions.append(Ignore("own", f"sent from the hub's own address {sender}"))
            elif looped := self.hub_addresses.intersection(a.lower() for a in mail.get("x_loop") or ()):
                dispositions.append(Ignore("loop", f"X-Loop names the hub's own address {min(looped)}: a mail loop"))
            elif noise:
                # only a bounce of mail the hub sent says something about a ticket: anyone can forge a DSN
                # citing a Message-ID they received (or guessed)
                ticket = index.sent_by_hub.get(noise.get("original_message_id") or "")
                dispositions.append(Ignore(noise["kind"], noise["reason"], ticket))
            elif oversize := mail.get("oversize"):
                dispositions.append(Refuse(oversize["reason"]))
            elif message_id and (message_id in received or message_id in seen_in_batch):
                dispositions.append(Ignore("duplicate", f"Message-ID {message_id} was received before"))
            elif recent.get(sender, 0) + counted[sender] >= self.config.flood_per_sender:
                dispositions.append(
                    Refuse(
                        f"flood: more than {self.config.flood_per_sender} mails from {sender} within "
                        f"{self.config.flood_window_minutes} minutes; replay once the sender is dealt with"
                    )
                )
            elif isinstance(match := index.match(refs, numbers, pairs, sender), Match):
                ticket_id = match.ticket_id
                if recent_per_ticket.get(ticket_id, 0) + counted_per_ticket[ticket_id] >= self.config.flood_per_ticket:
                    dispositions.append(
                        Refuse(
                            f"flood: more than {self.config.flood_per_ticket} mails to ticket "
                            f"{format_ticket_id(ticket_id)} within {self.config.flood_window_minutes} minutes; "
                            "replay once the loop or the storm is dealt with"
                        )
                    )
                else:
                    counted[sender] += 1
                    counted_per_ticket[ticket_id] += 1
                    dispositions.append(AddComment(match.ticket_id, match.how))
            elif not final and any(batch_ids.get(ref, position) < position for ref in refs):
                dispositions.append(Defer())  # replies to a mail earlier in this batch: thread after it is written
            else:
                if isinstance(match, Mention):  # a token without proof: its own ticket, naming the one it mentions
                    mail["mentions"] = [format_ticket_id(ticket_id) for ticket_id in match.ticket_ids]
                counted[sender] += 1
                dispositions.append(MakeTicket())
            if message_id:
                seen_in_batch.add(message_id)
        return dispositions

    def _received(self, conn: Connection, message_ids: list[str | None]) -> set[str]:
        wanted = {m for m in message_ids if m}
        if not wanted:
            return set()
        query = select(mail_messages.c.message_id).where(
            mail_messages.c.direction == "in", one_of(conn, mail_messages.c.message_id, wanted)
        )
        return set(conn.execute(query).scalars())

    def _recent_by_sender(self, conn: Connection, senders: set[str]) -> dict[str, int]:
        senders = {s.lower() for s in senders if s}
        if not senders:
            return {}
        since = self.now() - timedelta(minutes=self.config.flood_window_minutes)
        query = (
            select(mail_messages.c.address, func.count())
            .where(
                mail_messages.c.direction == "in",
                one_of(conn, mail_messages.c.address, senders),
                mail_messages.c.at >= since,
            )
            .group_by(mail_messages.c.address)
        )
        return {address: count for address, count in conn.execute(query)}

    def _recent_by_ticket(self, conn: Connection, ticket_ids: set[int]) -> dict[int, int]:
        if not ticket_ids:
            return {}
        since = self.now() - timedelta(minutes=self.config.flood_window_minutes)
        query = (
            select(mail_messages.c.ticket_id, func.count())
            .where(
                mail_messages.c.direction == "in",
                one_of(conn, mail_messages.c.ticket_id, ticket_ids),
                mail_messages.c.at >= since,
            )
            .group_by(mail_messages.c.ticket_id)
        )
        return {ticket_id: count for ticket_id, count in conn.execute(query)}

    # --- recording -----------------------------------------------------------------------------------

    def record(self, conn: Connection, items: Sequence[Triaged]) -> list[Change]:
        now = self.now()
        comment_items = [(i, item) for i, item in enumerate(items) if isinstance(item.disposition, AddComment)]
        comment_ids = add_comments(conn, [(item.ticket_id, self._comment(item)) for _, item in comment_items])
        comment_of = {i: cid for (i, _), cid in zip(comment_items, comment_ids, strict=True)}

        bounce_notes = [
            (item.ticket_id, self._bounce_note(item))
            for item in items
            if isinstance(item.disposition, Ignore) and item.disposition.kind == "bounce" and item.ticket_id
        ]
        add_comments(conn, bounce_notes)

        messages, watcher_rows, acknowledgements = [], [], []
        requester_of = self._requesters(conn, {item.ticket_id for item in items if item.ticket_id is not None})
        for i, item in enumerate(items):
            mail, ticket_id = item.decoded, item.ticket_id
            threaded = isinstance(item.disposition, AddComment | MakeTicket) and ticket_id is not None
            if threaded and mail.get("message_id"):
                messages.append(
                    {
                        "message_id": mail["message_id"],
                        "direction": "in",
                        "ticket_id": ticket_id,
                        "comment_id": comment_of.get(i),
                        "address": (mail.get("from_address") or "").lower(),
                        "source": self.source,
                        "at": now,
                    }
                )
            if threaded:
                watcher_rows += self._watchers(mail, ticket_id, requester_of.get(ticket_id), now)
            if mail.get("requester_unknown"):
                pass  # nobody to tell: the address is a placeholder (an agent finds the requester)
            elif isinstance(item.disposition, MakeTicket) and item.created and self._acknowledges():
                acknowledgements.append((ticket_id, self._acknowledgement(mail)))
            elif isinstance(item.disposition, Refuse) and mail.get("oversize") and self._acknowledges():
                acknowledgements.append((None, self._acknowledgement(mail, "refused", reason=item.disposition.reason)))
        insert_ignoring_conflicts(conn, mail_messages, messages, ["direction", "message_id"])
        insert_ignoring_conflicts(conn, watchers, watcher_rows, ["ticket_id", "address"])
        enqueue(conn, EMAIL_TARGET, acknowledgements)
        return self._reopen_and_describe(conn, [(item.ticket_id, comment_of[i]) for i, item in comment_items])

    def _reopen_and_describe(self, conn: Connection, comments: list[tuple[int | None, int]]) -> list[Change]:
        """Reopen resolved tickets that got a reply; the changes (comments, reopenings) for propagation."""
        per_ticket: dict[int, list[int]] = {}
        for ticket_id, comment_id in comments:
            if ticket_id is not None:
                per_ticket.setdefault(ticket_id, []).append(comment_id)
        reopened = set(
            set_statuses(
                conn,
                dict.fromkeys(per_ticket, TicketStatus.IN_PROGRESS),
                f"source:{self.source}",
                source=self.source,
                only_from=frozenset({TicketStatus.RESOLVED.value}),
            )
        )
        return [
            Change(ticket_id, frozenset({"status"}) if ticket_id in reopened else frozenset(), tuple(ids), self.source)
            for ticket_id, ids in per_ticket.items()
        ]

    def _comment(self, item: Triaged) -> Comment:
        mail = item.decoded
        attachments = [Attachment.model_validate(a) for a in mail.get("attachments") or []]
        # The full original stays with the comment, whatever the reply parser cut away.
        attachments.append(Attachment(name="original.eml", content_type="message/rfc822", content=item.record.payload))
        body = (mail.get("reply_text") or mail.get("text") or "").strip() or "(empty reply)"
        author = mail.get("from_address")
        # the address must survive whole (SLA tells the desk from the requester by it); the name may be cut
        room = AUTHOR_LIMIT - len(author or "") - len(" <>")
        if mail.get("from_name") and author and room > 1:
            author = f"{clip(mail['from_name'], room)} <{author}>"
        return Comment(
            body=body,
            author=author,
            public=True,
            origin=self.source,
            created_at=item.record.received_at,
            attachments=attachments,
        )

    def _bounce_note(self, item: Triaged) -> Comment:
        reason = item.disposition.reason if isinstance(item.disposition, Ignore) else ""
        return Comment(
            body=f"The hub's mail to the requester bounced: {reason}. Check the requester's address.",
            author=item.decoded.get("from_address"),
            public=False,
            origin=self.source,
            created_at=item.record.received_at,
        )

    def _watchers(
        self, mail: dict[str, Any], ticket_id: int | None, requester: str | None, now: datetime
    ) -> list[dict[str, Any]]:
        """Who follows the ticket from this mail: the people CC'd, and its sender when it is not the requester
        (someone who writes on the thread wants to hear the outcome). Never the requester nor the hub itself."""
        sender = "" if mail.get("requester_unknown") else mail.get("from_address") or ""  # not a placeholder
        addresses = {a.lower() for a in [*(mail.get("cc") or []), sender] if a}
        addresses -= self.hub_addresses | {(requester or "").lower()}
        return [{"ticket_id": ticket_id, "address": a, "created_at": now} for a in sorted(addresses)]

    @staticmethod
    def _requesters(conn: Connection, ticket_ids: set[int]) -> dict[int, str | None]:
        if not ticket_ids:
            return {}
        query = select(tickets.c.id, tickets.c.requester).where(one_of(conn, tickets.c.id, ticket_ids))
        return {ticket_id: requester for ticket_id, requester in conn.execute(query)}

    def _acknowledges(self) -> bool:
        return self.config.acknowledge and self.config.smtp is not None

    def _acknowledgement(self, mail: dict[str, Any], kind: str = "created", **extra: Any) -> dict[str, Any]:
        to = (mail.get("reply_to") or [mail.get("from_address")])[0]
        thread = [*(mail.get("references") or []), *([mail["message_id"]] if mail.get("message_id") else [])]
        return mail_payload(
            kind, to, requester_name=mail.get("from_name"), thread=thread, subject=mail.get("subject") or "", **extra
        )
