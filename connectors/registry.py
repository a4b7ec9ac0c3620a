"""Which connector serves which `kind:` of source, and which writer pushes to a two-way source."""

from __future__ import annotations

from connectors.base import SourceConnector
from connectors.glpi.push import GlpiWriter
from connectors.glpi.source import GlpiConnector
from connectors.mail.imap import ImapConnector
from connectors.mail.maildir import MaildirConnector
from itsm_core.config import GlpiSource, HubConfig, ImapSource, MaildirSource, SourceConfig
from itsm_core.sync.linked import LinkedWriter


def build_connector(source: SourceConfig) -> SourceConnector:
    if isinstance(source, MaildirSource):
        return MaildirConnector(
            source.path,
            pattern=source.pattern,
            page_size=source.page_size,
            move_to=source.move_to if source.after_import == "move" else None,
            max_message_bytes=source.max_message_bytes,
            max_text_chars=source.max_text_chars,
            max_attachment_bytes=source.max_attachment_bytes,
            max_page_bytes=source.max_page_bytes,
        )
    if isinstance(source, ImapSource):
        return ImapConnector(source)
    if isinstance(source, GlpiSource):
        return GlpiConnector(source)
    raise NotImplementedError(f"no connector for source kind {source.kind!r}")  # config validation prevents this


def linked_targets(config: HubConfig) -> list[SourceConfig]:
    """The enabled two-way sources the hub pushes its changes to."""
    return [s for s in config.sources if isinstance(s, GlpiSource) and s.push and s.enabled]


def build_writer(source: SourceConfig) -> LinkedWriter:
    if isinstance(source, GlpiSource):
        return GlpiWriter(source)
    raise NotImplementedError(f"source kind {source.kind!r} takes no pushes")
