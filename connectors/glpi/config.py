"""The config of `kind: glpi`: a GLPI instance, read and written through its legacy REST API."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, model_validator

from itsm_core.config import LOOPBACK_HOSTS, TwoWaySource, usable_cpus
from itsm_core.models import ZoneName

log = logging.getLogger("itsm.config")

#: GLPI itemtypes pulled as configuration items by default ("Software": software versions, and what each
#: computer has installed).
DEFAULT_GLPI_ASSETS = ["Computer", "NetworkEquipment", "Printer", "Monitor", "Software"]
#: `first_load_writers: auto` takes one writer per CPU up to this many (each holds ≈190 MB; a first load is
#: bound by PostgreSQL too, on the same machine or not, long before).
AUTO_WRITERS_MAX = 8
#: Every itemtype `assets` may name.
GLPI_ASSET_TYPES = ("Computer", "NetworkEquipment", "Printer", "Monitor", "Peripheral", "Phone", "Software")


def _writers(value: object) -> object:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ValueError(f"{value!r} is neither a number of processes nor auto; give 1 to 32, or auto")
    if not 1 <= int(value) <= 32:
        raise ValueError(f"{value} processes: give 1 to 32, or auto (one per CPU)")
    return int(value)


class GlpiSource(TwoWaySource):
    """A GLPI instance (9.5, 10 or 11) through its legacy REST API (`apirest.php`), both ways.

    Incremental contract: tickets whose `date_mod` ≥ (last committed watermark − `overlap_seconds`), in
    `date_mod` order; the overlap re-reads records sharing a second with the watermark, and the landing's
    content hash makes those re-reads create nothing. The itemtypes in `assets` are read the same way, as
    configuration items (mapping `ci_mapping`, default `glpi_assets`), before the tickets, so a ticket is linked
    to the assets it names in the same run. Use a dedicated GLPI account for the hub, with READALL on tickets,
    read rights on those asset types and "see private" on followups and tasks: GLPI hides what the account may
    not see, silently.
    """

    kind: Literal["glpi"]
    url: str = Field(description="the API's base URL, ending in apirest.php")
    app_token: SecretStr | None = Field(default=None, description="the API client's App-Token, if it has one")
    user_token: SecretStr | None = Field(default=None, description="the hub account's API token")
    login: str | None = Field(default=None, description="instead of user_token (GLPI must allow it)")
    password: SecretStr | None = None
    timezone: ZoneName = Field(default="UTC", description="GLPI's dates carry no zone: the zone they are in")
    verify_tls: bool = True
    ca_file: Path | None = Field(default=None, description="a private CA's certificate for TLS")
    timeout_seconds: float = Field(default=30, gt=0)
    max_concurrent_requests: int = Field(default=4, ge=1, le=64, description="in flight at once, per instance")
    retry_attempts: int = Field(default=5, ge=1, le=20, description="tries per request on 429, 5xx and timeouts")
    overlap_seconds: int = Field(default=120, ge=0, description="re-read window before the watermark")
    max_document_bytes: int = Field(
        default=20 * 1024 * 1024,  # as mail's max_attachment_bytes: a document is an attachment
        ge=1,
        description="a larger GLPI document is not downloaded; its ticket lands without it, with a line naming it",
    )
    assets: list[str] = Field(
        default_factory=lambda: list(DEFAULT_GLPI_ASSETS),
        description="itemtypes pulled as configuration items (CIs); [] for tickets only",
    )
    ci_mapping: str | None = Field(
        default=None, description="CI mapping in mappings/ (without .yaml) or a path; default glpi_assets"
    )
    first_load_writers: Annotated[int | Literal["auto"], BeforeValidator(_writers)] = Field(
        default=1,
        description="processes writing a first load's pages of tickets at once (PostgreSQL only); 1: the flow's own; "
        f"auto: one per CPU the worker may use, at most {AUTO_WRITERS_MAX} (1 on SQLite)",
    )
    allow_insecure: bool = Field(
        default=False, description="allow http:// to a host other than loopback (tokens in clear)"
    )

    @model_validator(mode="after")
    def _credentials_and_assets(self) -> GlpiSource:
        if (self.user_token is None) == (self.login is None):
            raise ValueError("give exactly one of user_token or login (with password)")
        if self.login is not None and self.password is None:
            raise ValueError("login needs a password")
        unknown = [itemtype for itemtype in self.assets if itemtype not in GLPI_ASSET_TYPES]
        if unknown:
            raise ValueError(f"assets: {', '.join(unknown)} not supported; choose among {', '.join(GLPI_ASSET_TYPES)}")
        if not self.url.rstrip("/").endswith("apirest.php"):
            raise ValueError(
                "url must be GLPI's REST API, ending in apirest.php (e.g. https://glpi.example/apirest.php)"
            )
        url = urlsplit(self.url)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise ValueError(f"url must start with https:// (not {url.scheme or 'no scheme'}://) and name a host")
        if url.scheme == "http" and url.hostname not in LOOPBACK_HOSTS and not self.allow_insecure:
            raise ValueError(
                "url: http:// sends the session and user tokens in clear; use https://, or set allow_insecure: true"
            )
        if not self.verify_tls and url.scheme == "https":
            log.warning("%s: verify_tls is false: the GLPI server's certificate is not checked", self.name)
        return self

    def first_load_processes(self, postgresql: bool = True) -> int:
        if self.first_load_writers != "auto":
            return self.first_load_writers
        return min(usable_cpus(), AUTO_WRITERS_MAX) if postgresql else 1

    def mapping_for(self, entity: str) -> str | None:
        return self.ci_mapping if entity == "cis" else super().mapping_for(entity)
