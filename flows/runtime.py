"""Everything one source's run needs, built once per run: config, store, connector, compiled pipeline."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from connectors.base import CIS, TICKETS, SourceConnector
from connectors.registry import build_connector, default_mapping, kind_of, push_targets
from itsm_core.alerts.plan import AlertPlanner
from itsm_core.automation.plan import AutomationPlanner
from itsm_core.calendars import BusinessCalendar
from itsm_core.config import HubConfig, SourceBase, load_config, secret_values
from itsm_core.email.notify import EmailNotifier
from itsm_core.errors import NotFound
from itsm_core.mapping import load_ci_mapping, load_mapping
from itsm_core.rules import Rules
from itsm_core.rules.conditions import RequesterGroups
from itsm_core.rules.sla import SlaRules
from itsm_core.store import Store
from itsm_core.store.tickets import format_ticket_id, ticket_exists
from itsm_core.sync.decide import apply_rules
from itsm_core.sync.ingest import SourcePipeline
from itsm_core.sync.ingest_cis import CIPipeline
from itsm_core.sync.intake import Intake
from itsm_core.sync.linked import LinkedSystemTarget
from itsm_core.sync.propagate import HUB, Announcer, Change, Propagator, PushTarget

# Our own modules log under "itsm"; Prefect ships them to the UI (PREFECT_LOGGING_EXTRA_LOGGERS) at INFO.
logging.getLogger("itsm").setLevel(logging.INFO)


def prefect_secret(block_name: str) -> str:
    """Resolve `${prefect:NAME}` in the config from a Prefect Secret block."""
    from prefect.blocks.system import Secret

    return str(Secret.load(block_name).get())


class _ScrubSecrets(logging.Filter):
    """Replaces the config's secrets by *** in every line of the `itsm` loggers, which Prefect ships to its API
    and UI: a message that quotes an upstream's answer or an exception must not carry a token on."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.msg, record.args = text, ()
        return True


_SCRUB = _ScrubSecrets()


def load_hub_config(config_path: str | None) -> HubConfig:
    """The config, its secrets resolved (env, Prefect Secret blocks) and registered for scrubbing from the hub's
    log lines: on the handlers of the `itsm` logger (Prefect's API handler among them, through
    PREFECT_LOGGING_EXTRA_LOGGERS), since a logger's own filters do not see its children's records."""
    config = load_config(config_path, secret_resolver=prefect_secret)
    scrub_secrets_of(config)
    return config


def scrub_secrets_of(config: HubConfig) -> None:
    """Register `config`'s secrets for scrubbing from this process's `itsm` log lines (`load_hub_config` does;
    a process given a config already loaded, such as a page writer, calls this itself)."""
    _SCRUB.secrets |= secret_values(config)
    for handler in logging.getLogger("itsm").handlers:
        if _SCRUB not in handler.filters:
            handler.addFilter(_SCRUB)


@dataclass(frozen=True)
class SourceRuntime:
    name: str
    store: Store
    connector: SourceConnector
    pipeline: SourcePipeline
    source: SourceBase


def build_propagator(config: HubConfig) -> Propagator:
    """Every system that hears of ticket changes: the requester's mailbox, and each two-way source."""
    targets: list[PushTarget] = [EmailNotifier(config.email)]
    for source in push_targets(config):
        writer = kind_of(source).writer
        assert writer is not None  # a push target's kind has one
        targets.append(LinkedSystemTarget(source.name, writer.pushed_fields))
    announcers: list[Announcer] = []
    if config.alerts.rules:
        announcers.append(AlertPlanner(config.alerts))
    if config.automation.rules:
        announcers.append(AutomationPlanner(config.automation))
    return Propagator(tuple(targets), tuple(announcers))


#: A change to one ticket, made inside the caller's transaction: (fields changed, comments added).
HubEdit = Callable[[Connection, int], tuple[frozenset[str], tuple[int, ...]]]


def change_ticket(
    config: HubConfig, store: Store, ticket_id: int, edit: HubEdit, *, told: frozenset[str] = frozenset()
) -> tuple[Change, dict[str, int]]:
    """A change made in the hub (a person at the CLI, the demo) and its news for every push target, in one
    transaction; returns the change and how many outbox items each target got."""
    rules = build_rules(config)
    with store.transaction() as conn:
        if not ticket_exists(conn, ticket_id):
            raise NotFound(f"no ticket {format_ticket_id(ticket_id)}; `itsm tickets list` shows the numbers")
        fields, comment_ids = edit(conn, ticket_id)
        # What the person changed may call for the rules (a derived priority follows a new urgency).
        decided, _ = apply_rules(conn, rules, {ticket_id: fields}) if fields else ([], None)
        fields |= {name for change in decided for name in change.fields}
        change = Change(ticket_id, fields, comment_ids, origin=HUB, told=told)
        queued = build_propagator(config).propagate(conn, [change])
    return change, queued


def build_rules(config: HubConfig) -> Rules:
    """The `rules:` section compiled (conditions, models, agents' calendars): once per run."""
    return Rules.compile(config.rules, build_calendars(config))


def build_sla(config: HubConfig) -> SlaRules:
    """The `rules.sla` section compiled with its calendars."""
    return SlaRules(config.rules.sla, build_calendars(config), RequesterGroups(config.rules.requester_groups))


def build_calendars(config: HubConfig) -> dict[str, BusinessCalendar]:
    return {name: calendar.compile() for name, calendar in config.calendars.items()}


def build_intake(config: HubConfig, source: SourceBase) -> Intake | None:
    """The channel's rules before mapping, as its kind says: mail's (noise, threads, floods), a ticket system's
    timeline, or none."""
    intake = kind_of(source).intake
    return intake(config, source) if intake is not None else None


def build_ci_pipeline(source: SourceBase, connector: SourceConnector) -> CIPipeline | None:
    """The CI path of a source whose connector reads configuration items (None for the others)."""
    if CIS not in connector.entities:
        return None
    return CIPipeline(
        source=source.name,
        decode=functools.partial(connector.decode, entity=CIS),
        mapping=load_ci_mapping(default_mapping(source, CIS)),
        owns=lambda external_id: connector.entity_of(external_id) == CIS,
    )


def build_runtime(config: HubConfig, source: SourceBase, store: Store | None = None) -> SourceRuntime:
    connector = build_connector(source)
    pipeline = SourcePipeline(
        source=source.name,
        decode=functools.partial(connector.decode, entity=TICKETS),
        mapping=load_mapping(default_mapping(source, TICKETS)),
        rules=build_rules(config),
        intake=build_intake(config, source),
        propagator=build_propagator(config),
        cis=build_ci_pipeline(source, connector),
    )
    store = store or Store(config.database_url.get_secret_value())
    connector.use_store(store)
    return SourceRuntime(source.name, store, connector, pipeline, source)
