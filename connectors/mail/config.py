"""The config of the mail kinds: a drop folder (`kind: maildir`) and an IMAP mailbox (`kind: imap`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from itsm_core.config import LOOPBACK_HOSTS, SourceBase, anchor


class MailSourceBase(SourceBase):
    """What every mail source caps: one hostile message must not exhaust memory or fill the store."""

    max_message_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1024, description="a larger message keeps only its headers and is refused"
    )
    max_text_chars: int = Field(
        default=200_000, ge=1000, description="a longer text is cut (with a line saying so) in the ticket"
    )
    max_attachment_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="a larger attachment is left out, with a line naming it"
    )
    max_page_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1024 * 1024, description="a page holds fewer messages rather than more bytes"
    )


class MaildirSource(MailSourceBase):
    """A drop folder of RFC 5322 messages: a Maildir (new/ and cur/) or a plain folder of message files (any name:
    `.eml`, `.box`, none; `pattern` narrows it, hidden files are skipped).

    Each message is landed once per content hash; a message seen before creates nothing. With
    ``after_import: move`` a file is moved to `move_to` only after its ticket is committed.
    """

    kind: Literal["maildir"]
    path: Path
    pattern: str = Field(default="*", description="which files of a plain folder are read (glob); default: all")
    after_import: Literal["keep", "move"] = "keep"
    move_to: Path | None = Field(default=None, description="folder for imported files (after_import: move)")

    @model_validator(mode="after")
    def _move_needs_target(self) -> MaildirSource:
        if self.after_import == "move" and self.move_to is None:
            raise ValueError("after_import: move needs move_to, the folder that receives imported files")
        return self

    def anchored(self, base_dir: Path) -> Self:
        moved = anchor(self.move_to, base_dir) if self.move_to is not None else None
        return self.model_copy(update={"path": anchor(self.path, base_dir), "move_to": moved})


class ImapSource(MailSourceBase):
    """An IMAP mailbox, one or several folders, read exactly once per message.

    Incremental contract: per folder, messages with UID > the last committed UID under the same UIDVALIDITY;
    a changed UIDVALIDITY re-reads the folder, and the store's landing key (Message-ID + content hash) keeps
    that from creating duplicates. A message is flagged / moved (`after_import`) only after its page commits.
    """

    kind: Literal["imap"]
    host: str
    port: int | None = Field(default=None, ge=1, le=65535, description="default: 993 for ssl, else 143")
    security: Literal["ssl", "starttls", "plain"] = "ssl"
    username: str
    password: SecretStr | None = None
    oauth2_token: SecretStr | None = Field(default=None, description="XOAUTH2 bearer token instead of a password")
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    after_import: Literal["seen", "move", "leave"] = "seen"
    move_to: str | None = Field(default=None, description="IMAP folder for imported mail (after_import: move)")
    timeout_seconds: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _credentials_and_target(self) -> ImapSource:
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError("give exactly one of password or oauth2_token")
        if self.after_import == "move" and not self.move_to:
            raise ValueError("after_import: move needs move_to, the IMAP folder that receives imported mail")
        if self.security == "plain" and self.host not in LOOPBACK_HOSTS:
            raise ValueError("security: plain sends the password in clear; it is allowed on loopback only")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)
