"""The hub's one configuration file: YAML, validated by pydantic, secrets only by reference.

Where it is found: the `--config` option, else the `ITSM_CONFIG` variable, else `./itsm.yaml`.

Secrets are never written into the file. A value may reference them:

- ``${NAME}`` — the environment variable NAME (the whole value or part of it, e.g. in a URL);
- ``${prefect:NAME}`` — the Prefect Secret block NAME (resolved by the caller's `secret_resolver`).

Resolved values are never echoed: errors name the key and the variable, not what it holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializeAsAny,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from itsm_core.alerts.spec import AlertsConfig
from itsm_core.automation.spec import AutomationConfig
from itsm_core.calendars import Calendar
from itsm_core.errors import ConfigError
from itsm_core.plugins import CONNECTOR_KINDS, load_plugins
from itsm_core.reports.spec import ReportsConfig
from itsm_core.rules.sla import ALWAYS
from itsm_core.rules.spec import RulesConfig

DEFAULT_CONFIG_PATH = Path("itsm.yaml")
CONFIG_ENV_VAR = "ITSM_CONFIG"
_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
#: Source names with another meaning: a CLI word, and the outbox targets of the hub's own mail and automation.
RESERVED_NAMES = frozenset({"status", "email", "automation"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceBase(_Strict):
    """What every source's config has; each connector kind extends it with its own keys (its folder's
    `config.py`) and a ``kind: Literal["..."]`` naming it. `HubConfig.sources` picks the model by `kind` among the
    registered kinds (`itsm_core/plugins.py`)."""

    kind: str
    name: str = Field(pattern=_NAME_PATTERN, description="unique, lower-case: letters, digits, - and _")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"'{name}' is reserved (`itsm sync {name}`, the outbox targets); choose another name")
        return name

    enabled: bool = True
    page_size: int = Field(default=200, ge=1, le=10_000, description="records per batch task")
    mapping: str | None = Field(
        default=None, description="mapping file in mappings/ (without .yaml) or a path; default per kind"
    )

    def mapping_for(self, entity: str) -> str | None:
        """The mapping this config names for `entity` (None: the kind's default). `mapping` is the tickets'; a
        kind that reads other entities names their mappings with keys of its own."""
        return self.mapping if entity == "tickets" else None

    def anchored(self, base_dir: Path) -> Self:
        """This config with its relative file paths made relative to the config file's folder `base_dir`."""
        return self

    def purge_policy(self) -> PurgePolicy | None:
        """How often to look for tickets purged upstream and what they become; None: never (read-only kinds)."""
        return None

    def first_load_processes(self, postgresql: bool = True) -> int:
        """How many processes write the pages of a first load of tickets (the connector's `reads_whole`) at once,
        on this machine, into PostgreSQL or (`postgresql` false) SQLite; 1: the flow's own, page after page. Only
        kinds whose tickets land independently of each other offer more (mail does not: a reply may thread onto a
        message of an earlier page)."""
        return 1


@dataclass(frozen=True)
class PurgePolicy:
    every_minutes: int
    tickets: Literal["cancel", "keep"]


class TwoWaySource(SourceBase):
    """A source the hub also writes to: its kind registers a writer (`connectors/registry.py`)."""

    push: bool = Field(default=True, description="send the hub's changes (status, assignment, comments) back")
    purge_check_minutes: int = Field(
        default=60, ge=0, description="how often to look for tickets purged upstream (an id walk); 0: never"
    )
    purged_tickets: Literal["cancel", "keep"] = Field(
        default="cancel", description="cancel: an open ticket purged upstream is cancelled; keep: left as it is"
    )

    def purge_policy(self) -> PurgePolicy | None:
        return PurgePolicy(self.purge_check_minutes, self.purged_tickets) if self.purge_check_minutes else None


#: Hosts to which a secret may travel in clear text (tests, a tunnel's local end).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's cpuset, `taskset`), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def anchor(path: Path, base_dir: Path) -> Path:
    """`path` as written in the config file, relative to that file's folder unless absolute."""
    return path if path.is_absolute() else (base_dir / path)


def _source_model(value: Any, handler: ValidatorFunctionWrapHandler) -> SourceBase:
    """A `sources:` entry validated by its kind's model (the registered kinds, by `kind`)."""
    if isinstance(value, SourceBase):
        return value
    kinds = load_plugins(CONNECTOR_KINDS)
    known = ", ".join(kinds)
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind is None:
        raise PydanticCustomError("missing_source_kind", "missing; every source needs one ({known})", {"known": known})
    if kind not in kinds:
        raise PydanticCustomError("unknown_source_kind", "unknown source kind; known kinds: {known}", {"known": known})
    return kinds[kind].config.model_validate(value)


class SmtpConfig(_Strict):
    """Where the hub's own mail (acknowledgements) goes out."""

    host: str
    port: int | None = Field(default=None, ge=1, le=65535, description="default: 465 for ssl, 587 starttls, 25 plain")
    security: Literal["ssl", "starttls", "plain"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    from_name: str = "IT Service Desk"
    timeout_seconds: float = Field(default=30, gt=0)

    @property
    def effective_port(self) -> int:
        return self.port or {"ssl": 465, "starttls": 587, "plain": 25}[self.security]


class EmailConfig(_Strict):
    """How the hub treats mail, whichever mailbox it arrives in."""

    hub_addresses: list[str] = Field(
        default_factory=list, description="the hub's own addresses: mail from them is ignored (loop guard)"
    )
    ticket_token: str = Field(default="[#{number}]", description="put in subjects; {number} is T-000123")
    external_number_patterns: dict[str, str] = Field(
        default_factory=dict, description="system name → regex with one group finding its ticket number in a subject"
    )
    flood_per_sender: int = Field(default=20, ge=1, description="more mails than this from one sender ...")
    flood_window_minutes: int = Field(default=10, ge=1, description="... within this window are quarantined")
    flood_per_ticket: int = Field(
        default=50, ge=1, description="more mails to one ticket (its first included) in the window are quarantined"
    )
    acknowledge: bool = Field(default=True, description="mail the requester on a new, resolved or closed ticket")
    smtp: SmtpConfig | None = None

    @field_validator("external_number_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: dict[str, str]) -> dict[str, str]:
        for system, pattern in patterns.items():
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{system}: not a valid regular expression ({exc})") from None
            if compiled.groups < 1:
                raise ValueError(f"{system}: the pattern needs one group (…) around the number, e.g. 'INC(\\d+)'")
        return patterns


class HubConfig(_Strict):
    database_url: SecretStr = SecretStr("sqlite:///itsm.db")
    sources: list[SerializeAsAny[Annotated[SourceBase, WrapValidator(_source_model)]]] = Field(
        default_factory=list, description="where tickets come from; `kind` picks the connector"
    )
    email: EmailConfig = Field(default_factory=EmailConfig)
    calendars: dict[str, Calendar] = Field(
        default_factory=dict, description="business hours by name: agents' working hours, SLA clocks"
    )
    rules: RulesConfig = Field(default_factory=RulesConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    automation: AutomationConfig = Field(default_factory=AutomationConfig)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: SecretStr) -> SecretStr:
        # the messages never repeat the URL: it may hold a password
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        hint = "use sqlite:///PATH or postgresql+psycopg://USER@HOST:5432/DATABASE"
        try:
            url = make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError(f"not a database URL; {hint}") from None
        try:
            url.get_dialect()
        except NoSuchModuleError:
            raise ValueError(f"unknown database kind '{url.drivername}'; {hint}") from None
        return value

    @model_validator(mode="after")
    def _calendars_exist(self) -> HubConfig:
        for name, key in self.rules.calendars_used().items():
            if name not in self.calendars and not (name == ALWAYS and key.startswith("rules.sla.")):
                known = ", ".join(sorted(self.calendars)) or "none defined"
                raise ValueError(f"{key}: no calendar '{name}' under calendars: (known: {known})")
        return self

    @model_validator(mode="after")
    def _alerts_can_be_sent(self) -> HubConfig:
        mail = [name for name, channel in self.alerts.channels.items() if channel.type == "email"]
        if mail and self.email.smtp is None:
            raise ValueError(f"alerts.channels.{mail[0]}: an email channel sends through email.smtp; configure it")
        for escalation in self.rules.sla.escalations:
            for action in escalation.actions:
                named = action.notify
                if named is None or "@" in named or self.alerts.rule(named) is not None:
                    continue
                known = ", ".join(rule.name for rule in self.alerts.rules) or "none"
                raise ValueError(
                    f"rules.sla.escalations.{escalation.name}: notify {named!r} is neither an alert rule "
                    f"(alerts.rules: {known}) nor an e-mail address"
                )
            if any(a.notify and "@" in a.notify for a in escalation.actions) and self.email.smtp is None:
                raise ValueError(f"rules.sla.escalations.{escalation.name}: notify an address needs email.smtp")
        return self

    @model_validator(mode="after")
    def _parallel_writers_need_postgresql(self) -> HubConfig:
        if self.database_url.get_secret_value().startswith("sqlite"):
            for index, source in enumerate(self.sources):
                if source.first_load_processes(postgresql=False) > 1:
                    raise ValueError(
                        f"sources[{index}].first_load_writers: {source.first_load_processes(postgresql=False)} "
                        "processes writing "
                        "at once need PostgreSQL (SQLite takes one writer at a time); set it to 1 or use PostgreSQL"
                    )
        return self

    @model_validator(mode="after")
    def _reports_can_be_mailed(self) -> HubConfig:
        for index, definition in enumerate(self.reports.definitions):
            if definition.mail_to and self.email.smtp is None:
                raise ValueError(
                    f"reports.definitions[{index}].mail_to: report {definition.name!r} mails its files through "
                    "email.smtp; configure it"
                )
        return self

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceBase]) -> list[SourceBase]:
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                raise ValueError(f"two sources are named '{source.name}'; names must be unique")
            seen.add(source.name)
        return sources

    def source(self, name: str) -> SourceBase:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"no source named '{name}' in the config (known: {known})", key="sources")


SecretResolver = Callable[[str], str]
_REFERENCE = re.compile(r"\$\{([^}]*)\}")


def config_path(explicit: str | Path | None = None) -> Path:
    """The config file to use: `explicit`, else $ITSM_CONFIG, else ./itsm.yaml."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


#: Shorter secrets are not scrubbed from text: replacing every "pw" would garble messages, not protect anything.
MIN_SCRUBBED_LENGTH = 6


def secret_values(config: BaseModel) -> set[str]:
    """Every secret of the config (SecretStr fields, and the database URL's password) long enough to scrub."""
    from sqlalchemy.engine import make_url

    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(config)
    if isinstance(config, HubConfig):
        found.add(make_url(config.database_url.get_secret_value()).password or "")
    return {secret for secret in found if len(secret) >= MIN_SCRUBBED_LENGTH}


def load_config(path: str | Path | None = None, *, secret_resolver: SecretResolver | None = None) -> HubConfig:
    """Read, resolve and validate the config file. Raises `ConfigError` naming the offending key."""
    path = config_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; create it (see README) or point --config / ${CONFIG_ENV_VAR} at one",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
    return parse_config(text, origin=str(path), base_dir=path.parent, secret_resolver=secret_resolver)


def parse_config(
    text: str,
    *,
    origin: str = "<config>",
    base_dir: Path | None = None,
    secret_resolver: SecretResolver | None = None,
) -> HubConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{origin}: not valid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of keys (database_url, sources, ...)")
    data = _resolve_references(data, secret_resolver, origin, path="")
    try:
        config = HubConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, data, origin) from None
    return _anchor_paths(config, base_dir) if base_dir else config


def load_rules_file(path: str | Path, config: HubConfig) -> HubConfig:
    """`config` with its `rules:` section replaced by the one in `path` (a file with a `rules:` key, or the
    section alone), for dry runs of rules not yet in force. Errors name the key, as for the config file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML") from None
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected the rules section (classification, routing, ...) as a mapping")
    wrapped = {"rules": data}
    try:
        rules = HubConfig.model_validate(wrapped).rules
    except ValidationError as exc:
        raise _config_error(exc, wrapped, str(path)) from None
    models = [m.model_copy(update={"path": anchor(m.path, path.parent)}) for m in rules.models]
    return config.model_copy(update={"rules": rules.model_copy(update={"models": models})})


def _resolve_references(value: Any, resolver: SecretResolver | None, origin: str, path: str) -> Any:
    if isinstance(value, dict):
        return {k: _resolve_references(v, resolver, origin, _join(path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_references(v, resolver, origin, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _REFERENCE.sub(lambda m: _lookup(m.group(1).strip(), resolver, origin, path), value)
    return value


def _lookup(reference: str, resolver: SecretResolver | None, origin: str, key: str) -> str:
    if reference.startswith("prefect:"):
        block = reference.removeprefix("prefect:")
        if resolver is None:
            raise ConfigError(f"{origin}: {key}: Prefect Secret blocks cannot be resolved here", key=key)
        try:
            return resolver(block)
        except Exception as exc:  # the resolver's own message may not be safe to show; name the block only
            raise ConfigError(
                f"{origin}: {key}: cannot load Prefect Secret block '{block}' ({type(exc).__name__}); "
                "create it with `prefect block create secret` or check PREFECT_API_URL",
                key=key,
            ) from None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", reference):
        raise ConfigError(f"{origin}: {key}: '${{{reference}}}' is not a valid variable reference", key=key)
    if reference not in os.environ:
        raise ConfigError(
            f"{origin}: {key}: environment variable {reference} is not set; export it before running",
            key=key,
        )
    return os.environ[reference]


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _config_error(exc: ValidationError, data: dict[str, Any], origin: str) -> ConfigError:
    # A misspelt key also makes the real key "missing": name the misspelling, it is the cause.
    errors = sorted(exc.errors(include_input=False, include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    key = _format_loc(first["loc"], data)
    if first["type"] == "extra_forbidden":
        message = f"{origin}: {key}: unknown key"
    elif first["type"] in ("unknown_source_kind", "missing_source_kind"):
        message = f"{origin}: {key}.kind: {first['msg']}"
        key = f"{key}.kind"
    else:
        text = first["msg"].removeprefix("Value error, ")
        if not first["loc"] and re.match(r"^[\w.\[\]-]+: ", text):
            key, _, text = text.partition(": ")  # a check across sections names its key first (see HubConfig)
        message = f"{origin}: {key}: {text}"
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(message, key=key)


def _format_loc(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`('sources', 0, 'pathh')` → ``sources[0].pathh``."""
    parts: list[str] = []
    node: Any = data
    for step in loc:
        if isinstance(step, int):
            parts[-1] += f"[{step}]"
            node = node[step] if isinstance(node, list) and step < len(node) else None
            continue
        parts.append(str(step))
        node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _anchor_paths(config: HubConfig, base_dir: Path) -> HubConfig:
    """Relative folder paths in the file mean relative to the file, not to wherever the command runs."""
    anchored = [source.anchored(base_dir) for source in config.sources]
    models = [model.model_copy(update={"path": anchor(model.path, base_dir)}) for model in config.rules.models]
    rules = config.rules.model_copy(update={"models": models})
    url = config.database_url.get_secret_value()
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        url = "sqlite:///" + str(anchor(Path(url.removeprefix("sqlite:///")), base_dir))
    reports = config.reports.model_copy(
        update={"definitions": [d.anchored(base_dir) for d in config.reports.definitions]}
    )
    return config.model_copy(
        update={"sources": anchored, "database_url": SecretStr(url), "rules": rules, "reports": reports}
    )
