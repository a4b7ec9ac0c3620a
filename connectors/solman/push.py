"""`SolmanWriter`: the hub's changes (outbox operations of `itsm_core/sync/linked.py`) as Solution Manager writes.

- ``update`` → the incident's status, reached as the profile's `transitions` say for the source's backend (an
  E-code through ICT's ``AddInfo``, or an operation: ``VerifyIncidentSolution``, ``confirmIncident``…); a status
  the incident already has is left alone, so a resend changes nothing. A status the profile gives the backend no
  way to reach stays in the hub (said once per run in the log; `itsm sync check` lists them): the Fiori services,
  for one, can only confirm or withdraw. Only the status is pushed: assignment and priority belong to Solman's
  own dispatching (partner functions, priority derivation) in the setups this was written for;
- ``comment`` → a reply text (the profile's ``reply`` text type) headed by its author, as HTML paragraphs when
  the profile's `text_format` is ``html``; a text already on the incident is not written again (a resend after a
  lost answer).

Every write is read back by the backend before it counts (SAP's silent successes); the note as read back gives
the comment's identity for the hub's echo suppression.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from connectors._html import text_to_html
from connectors.base import SourceWriter
from connectors.solman.backend import same_text
from connectors.solman.config import SolmanSource
from connectors.solman.source import SolmanConnector
from itsm_core.models import TicketStatus
from itsm_core.sync.linked import Sent

log = logging.getLogger("itsm.connectors.solman")


class SolmanWriter(SourceWriter):
    pushed_fields: ClassVar[frozenset[str]] = frozenset({"status"})

    def __init__(self, source: SolmanSource, connector: SolmanConnector | None = None) -> None:
        self.system = source.name
        self.connector = connector or SolmanConnector(source)
        self._unreachable: set[TicketStatus] = set()

    def send(self, operation: dict[str, Any]) -> Sent:
        guid = operation["external_id"]
        if operation["op"] == "update":
            return self._update(guid, operation["fields"])
        if operation["op"] == "comment":
            return self._comment(guid, operation)
        raise ValueError(f"unknown outbox operation {operation['op']!r}")

    def close(self) -> None:
        self.connector.close()

    def _update(self, guid: str, fields: dict[str, Any]) -> Sent:
        status = fields.get("status")
        if status is None:
            return Sent()
        wanted = TicketStatus(status)
        backend = self.connector.backend
        if backend.name not in self.connector.profile.transitions.get(wanted, {}):
            if wanted not in self._unreachable:
                self._unreachable.add(wanted)
                log.info("%s: status %s is not pushed: the profile gives the %s backend no transition to it "
                         "(transitions.%s.%s)", self.system, wanted, backend.name, wanted, backend.name)  # fmt: skip
            # What Solman holds is reported as such, so its next report of that status is no news to the hub.
            held = backend.read(guid).canonical
            return Sent(fields={"status": str(held)} if held else {})
        if backend.read(guid).canonical != wanted:
            backend.transition(guid, wanted)
        return Sent(fields={"status": str(wanted)})

    def _comment(self, guid: str, operation: dict[str, Any]) -> Sent:
        author, body = operation.get("author"), operation["body"]
        if self.connector.profile.text_format == "html":
            text = text_to_html(body, author)
        else:
            text = f"{author} wrote:\n\n{body}" if author else body
        backend = self.connector.backend
        for note in backend.read(guid).notes:
            if same_text(note.text) == same_text(text):
                return Sent(comment_ref=note.ref)  # written before; its outbox row was not marked sent
        return Sent(comment_ref=backend.add_note(guid, text).ref)
