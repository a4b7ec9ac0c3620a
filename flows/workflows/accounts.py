"""`reset-password` and `unlock-account`: the bundled auto-resolution workflows, against an LDAP directory.

Each finds the person by the requester's address (`automation.directories.<directory>`), acts on the account,
and tells the requester by mail in the ticket's thread, at once (`mail_requester_now`). A one-time password
exists only in that mail: never in a parameter, comment, log line, result, artifact or the outbox. The run ends
Completed with a message (no secret) that the hub puts in the ticket's solution; any error fails the run, and
the hub hands the ticket to an agent with the reason.

Started by the hub through the deployments of prefect.yaml (`reset-password/ldap-reset`,
`unlock-account/ldap-unlock`); parameters: `ticket` (T-000123), `requester` (an address), `directory` (a name).
The worker reads the hub's config like every flow (ITSM_CONFIG, else ./itsm.yaml).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from connectors.ldap import Directory
from flows.automation import WORKFLOW_MAIL
from flows.outbound import mail_requester_now
from flows.runtime import load_hub_config
from itsm_core.config import HubConfig
from itsm_core.email.notify import requester_mails
from itsm_core.errors import ConfigError, HubError
from itsm_core.store import Store
from itsm_core.store.tickets import format_ticket_id, parse_ticket_id

RESET_TEXT = """\
The password of your account ({account}) was reset. Your one-time password:

    {password}

Sign in with it and choose a new password at once: it works for the first sign-in only."""
UNLOCK_TEXT = """\
Your account ({account}) was locked after too many failed sign-ins; it is unlocked now.
If you no longer know your password, reply to this mail and ask for a reset."""


@flow(name="reset-password")
def reset_password(ticket: str, requester: str, directory: str, config_path: str | None = None) -> State:
    """Give the requester's directory account a one-time password (lifting any lockout) and mail it to them."""
    config, store, ticket_id = _open(ticket, directory, config_path)
    try:
        with Directory(config.automation.directories[directory], directory) as ldap:
            dn = ldap.find_by_mail(requester)
            password = ldap.reset_password(dn)
        mail_requester_now(store, config.email, ticket_id, "credentials", RESET_TEXT.format(account=requester,
                           password=password), WORKFLOW_MAIL)  # fmt: skip
        del password
    finally:
        store.dispose()
    get_run_logger().info("%s: the password of %s was reset; the requester was mailed", ticket, dn)
    return Completed(message=f"The password of {requester} was reset; a one-time password was mailed to the "
                     "requester, to be changed at the first sign-in.")  # fmt: skip


@flow(name="unlock-account")
def unlock_account(ticket: str, requester: str, directory: str, config_path: str | None = None) -> State:
    """Lift the lockout of the requester's directory account and tell them by mail."""
    config, store, ticket_id = _open(ticket, directory, config_path)
    try:
        with Directory(config.automation.directories[directory], directory) as ldap:
            dn = ldap.find_by_mail(requester)
            was_locked = ldap.unlock(dn)
        if was_locked:
            mail_requester_now(store, config.email, ticket_id, "credentials", UNLOCK_TEXT.format(account=requester),
                               WORKFLOW_MAIL)  # fmt: skip
    finally:
        store.dispose()
    if not was_locked:
        raise HubError(f"the account of {requester} ({dn}) is not locked: the sign-in fails for another reason")
    get_run_logger().info("%s: %s unlocked; the requester was mailed", ticket, dn)
    return Completed(message=f"The account of {requester} was unlocked.")


def _open(ticket: str, directory: str, config_path: str | None) -> tuple[HubConfig, Store, int]:
    """The config, the store and the ticket's id, checked before anything changes in the directory: the
    directory is configured, and the requester can be mailed (the ticket came by mail)."""
    config = load_hub_config(config_path)
    if directory not in config.automation.directories:
        known = ", ".join(sorted(config.automation.directories)) or "none"
        raise ConfigError(f"automation.directories.{directory} is not in the hub's config (configured: {known})")
    if config.email.smtp is None:
        raise ConfigError("email.smtp is not set: the workflow cannot tell the requester; configure the SMTP relay")
    ticket_id = parse_ticket_id(ticket)
    store = Store(config.database_url.get_secret_value())
    with store.connect() as conn:
        reachable = requester_mails(conn, [ticket_id], lambda _: "credentials")
    if not reachable:
        store.dispose()
        raise HubError(
            f"{format_ticket_id(ticket_id)} did not come by mail (or is gone): the workflow has no thread to tell the "
            "requester in, so it changes nothing"
        )
    return config, store, ticket_id
