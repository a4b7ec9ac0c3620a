"""Which connector serves which `kind:` of source."""

from __future__ import annotations

from connectors.base import SourceConnector
from connectors.mail.imap import ImapConnector
from connectors.mail.maildir import MaildirConnector
from itsm_core.config import ImapSource, MaildirSource, SourceConfig


def build_connector(source: SourceConfig) -> SourceConnector:
    if isinstance(source, MaildirSource):
        return MaildirConnector(
            source.path,
            pattern=source.pattern,
            page_size=source.page_size,
            move_to=source.move_to if source.after_import == "move" else None,
        )
    if isinstance(source, ImapSource):
        return ImapConnector(source)
    raise NotImplementedError(f"no connector for source kind {source.kind!r}")  # config validation prevents this
