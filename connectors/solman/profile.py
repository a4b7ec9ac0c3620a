"""A customer's Solution Manager as data: process types, status profiles, codes, texts, partners, zones, limits.

Nothing SAP-specific is hard-coded in the connector: every system differs in its status profile (``ZMIN0001`` or a
copy with extra codes), the meaning of its E-codes, its text types and partner functions. A profile is a YAML file
in `mappings/` (``solman_smin`` is SAP's standard SMIN incident profile, as the reference documents it) or a
path, validated when the config loads: a mistake names its key.

`problems_against` is the start-up self-check's judgement: given what the system says it has (the status codes of
each status profile, read from it), the codes the profile maps but the system lacks, each named — the connector
refuses to run on them rather than guess.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from itsm_core.errors import UpstreamRejected
from itsm_core.mapping import load_yaml_model
from itsm_core.models import TicketStatus, ZoneName

#: User status codes of a status profile: E0001…E9999.
E_CODE = r"^E\d{4}$"
Backend = Literal["ict", "odata"]


def is_status_code(way: str) -> bool:
    """A transition given as a user status code (E0002), not as an operation's name."""
    return re.match(E_CODE, way) is not None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextTypes(_Strict):
    """SAPscript text ids on the incident (``CRM_ORDERH``) for each kind of text the hub exchanges."""

    description: str = "SU99"
    reply: str = "SU01"
    internal_note: str = "SU04"
    solution: str = "SUSO"


class PartnerFunctions(_Strict):
    reporter: str = "SLFN0002"
    support_team: str = "SLFN0003"
    processor: str = "SLFN0004"


class Category(_Strict):
    """The categorisation schema the Create service needs (customer-specific ids)."""

    aspect_id: str | None = None
    catalog_type: str = "D"


class Timezones(_Strict):
    """The zone each kind of timestamp is written in. CRM's CREATED_AT/CHANGED_AT are UTC; ICT examples send the
    system's local time; DATS-only fields are midnight UTC and never converted."""

    crm_timestamps: ZoneName = "UTC"
    ict_timestamps: ZoneName = "UTC"


class DeltaFeed(_Strict):
    """A customer-built Gateway service that lists incidents by change date (SAP ships none): with it, the odata
    backend reads only what changed since its watermark. `entity_set` must take ``$filter=<changed_at> ge
    datetime'…'``; `guid` and `changed_at` name its properties (an ``Edm.Guid`` and an ``Edm.DateTime``)."""

    service: str = Field(description="the service's name under /sap/opu/odata/sap/, e.g. ZITSM_INCIDENT_DELTA_SRV")
    entity_set: str = "IncidentSet"
    guid: str = "Guid"
    changed_at: str = "ChangedAt"
    overlap_seconds: int = Field(default=120, ge=0, description="re-read window before the watermark")


class Limits(_Strict):
    page_size: int = Field(default=100, ge=1, le=1000, description="rows per OData page (services cap it)")
    max_connections: int = Field(default=4, ge=1, le=16, description="each request holds an ABAP work process")
    read_timeout_seconds: float = Field(default=90, gt=0)
    lock_retries: int = Field(default=4, ge=0, le=10, description="tries again on a locked document")
    lock_backoff_seconds: float = Field(default=2, gt=0)
    short_text: int = Field(default=40, ge=1, description="the short description's length; the rest goes to text")
    max_attachment_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, description="a larger file is left out of its ticket, with a line naming it"
    )


class SolmanProfile(_Strict):
    """How one customer's Solution Manager names things (see the module docstring)."""

    process_types: list[str] = Field(min_length=1, description="e.g. [SMIN] or [ZMIN, ZMRQ]")
    status_profiles: dict[str, str] = Field(description="process type → its user status profile, e.g. SMIN0001")
    status_map: dict[str, dict[str, TicketStatus]] = Field(description="process type → {E-code: canonical status}")
    transitions: dict[TicketStatus, dict[Backend, str]] = Field(
        default_factory=dict,
        description="canonical status → per backend, the operation or E-code that reaches it in Solman",
    )
    priority_map: dict[str, int] = Field(description="SAP priority code → the hub's priority (1 highest)")
    partner_functions: PartnerFunctions = PartnerFunctions()
    text_types: TextTypes = TextTypes()
    text_format: Literal["html", "plain"] = "plain"
    category: Category = Category()
    timezones: Timezones = Timezones()
    limits: Limits = Limits()
    delta: DeltaFeed | None = Field(default=None, description="odata: the customer's delta service, if any")

    @field_validator("status_map")
    @classmethod
    def _e_codes(cls, value: dict[str, dict[str, TicketStatus]]) -> dict[str, dict[str, TicketStatus]]:
        for process_type, codes in value.items():
            bad = [code for code in codes if not re.match(E_CODE, code)]
            if bad:
                raise ValueError(f"{process_type}: {', '.join(bad)} are not user status codes (E0001…E9999)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> SolmanProfile:
        for process_type in self.process_types:
            if process_type not in self.status_profiles:
                raise ValueError(f"status_profiles: no status profile for process type {process_type}")
            if not self.status_map.get(process_type):
                raise ValueError(f"status_map: no status codes for process type {process_type}")
        for status, ways in self.transitions.items():
            for backend, way in ways.items():
                mapped = any(self.status_map[p].get(way) == status for p in self.process_types)
                if is_status_code(way) and not mapped:
                    raise ValueError(f"transitions.{status}.{backend}: {way} is not mapped to {status} in status_map")
        return self

    def short_and_long(self, title: str, text: str) -> tuple[str, str]:
        """The short description (the title cut to `limits.short_text`, SAP's CHAR40) and the long text, which
        starts with the whole title when it was cut, so nothing is lost."""
        limit = self.limits.short_text
        if len(title) <= limit:
            return title, text
        return title[: limit - 1].rstrip() + "…", f"{title}\n\n{text}"

    def way_to(self, status: TicketStatus, backend: Backend, system: str) -> str:
        """The operation or E-code that reaches `status` through `backend` (`transitions`); a rejection naming
        the key to add when the profile gives none."""
        way = self.transitions.get(status, {}).get(backend)
        if way is None:
            raise UpstreamRejected(
                f"{system}: the profile gives no way to reach {status} through the {backend} backend: add one "
                f"under transitions.{status}.{backend} (an E-code, or one of the backend's operations)",
                system=system,
            )
        return way

    def status_of(self, process_type: str, code: str) -> TicketStatus | None:
        """The canonical status of a user status code; None when the profile does not map it."""
        return self.status_map.get(process_type, {}).get(code)

    def problems_against(self, system_codes: dict[str, set[str]]) -> list[str]:
        """What the profile maps that the system lacks, each named: a status profile it does not have, or a code
        missing from its profile (`system_codes`: status profile → the user status codes it holds)."""
        problems = []
        for process_type in self.process_types:
            profile = self.status_profiles[process_type]
            held = system_codes.get(profile)
            if held is None:
                problems.append(f"status profile {profile} (process type {process_type}) does not exist in the system")
                continue
            missing = sorted(set(self.status_map[process_type]) - held)
            problems += [
                f"status {code} ({self.status_map[process_type][code]}) is mapped for {process_type} but status "
                f"profile {profile} has no such code"
                for code in missing
            ]
        return problems


def load_profile(name_or_path: str) -> SolmanProfile:
    """A profile by name (``mappings/<name>.yaml``) or path; `ConfigError` (key ``profile``) naming the mistake."""
    return load_yaml_model(name_or_path, SolmanProfile, "profile")
