"""Mail: the drop folder (`kind: maildir`) and the IMAP mailbox (`kind: imap`), read only; the hub answers by SMTP.

- `config`: the two kinds' config models; `maildir`, `imap`: their connectors;
- `record`: a message's identity, caps and decoded form; `parse`: RFC 5322 parsing; `noise`: auto-replies, bounces;
- `outbound`, `reply`, `templates/`: the hub's own mail (acknowledgements, notifications) over SMTP.
"""

from __future__ import annotations

from typing import Any

from connectors.mail.config import ImapSource, MaildirSource
from connectors.mail.imap import ImapConnector
from connectors.mail.maildir import MaildirConnector
from connectors.registry import ConnectorKind
from itsm_core.config import HubConfig
from itsm_core.email.intake import EmailIntake


def _mail_intake(config: HubConfig, source: Any) -> EmailIntake:
    """Mail's rules before mapping: noise, duplicates, floods, threads (`itsm_core/email/intake.py`)."""
    return EmailIntake(config.email, source.name)


MAILDIR = ConnectorKind(
    name="maildir",
    config=MaildirSource,
    connector=MaildirConnector.configured,
    mappings={"tickets": "email"},
    intake=_mail_intake,
    description="a drop folder of RFC 5322 messages (Maildir, or files of any name)",
)
IMAP = ConnectorKind(
    name="imap",
    config=ImapSource,
    connector=ImapConnector,
    mappings={"tickets": "email"},
    intake=_mail_intake,
    description="an IMAP mailbox, one or several folders",
)
