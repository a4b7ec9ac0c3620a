"""The config of `kind: solman`: an SAP Solution Manager 7.2, read and written through ICT (SOAP) or OData."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.solman.profile import SolmanProfile, load_profile
from itsm_core.config import LOOPBACK_HOSTS, TwoWaySource, anchor
from itsm_core.errors import ConfigError

log = logging.getLogger("itsm.config")

#: SOAMANAGER's endpoint path of ICT_SERVICE_DESK_API for a client (the service and binding names are the
#: customer's, chosen when the endpoint was created: `ict_path` overrides it).
ICT_PATH = "/sap/bc/srt/rfc/sap/ict_service_desk_api/{client}/ict_service_desk_api/ict_service_desk_api_binding"
ODATA_ROOT = "/sap/opu/odata/sap"


class OAuthClient(BaseModel):
    """An OAuth 2.0 client of a token endpoint (client credentials). AS ABAP's own server documents the SAML bearer
    and authorization-code grants only; client credentials is what a token endpoint in front of it (a cloud
    proxy) offers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_url: str = Field(description="e.g. https://solman.example.com:44300/sap/bc/sec/oauth2/token?sap-client=100")
    client_id: str
    client_secret: SecretStr
    scope: str | None = Field(default=None, description="e.g. AI_CRM_GW_MYMESSAGE_SRV_0001")


class SolmanSource(TwoWaySource):
    """An SAP Solution Manager 7.2 (ITSM incidents), both ways.

    `backend: ict` (the default) talks to SAP's external service-desk interface: register the hub in Solman as an
    external service desk whose system GUID is `system_guid` (default: derived from the source's name, shown by
    `itsm sync check`), and Solman hands it the incidents forwarded to it. `backend: odata` uses the Fiori
    services ``AI_CRM_GW_CREATE_INCIDENT_SRV`` and ``AI_CRM_GW_MYMESSAGE_SRV``. The customer's status profile,
    codes, texts and limits are the `profile` (a file in mappings/, default ``solman_smin``, or a path).

    Incremental contract: none on SAP's side (neither channel has a "changed since" query); every run reads the
    incidents the channel lists — ICT: the open ones exchanged with the hub, plus those the hub still holds open
    (to see their closure) — and the landing's content hash makes an unchanged one a no-op. With a customer's
    delta service in the profile (`delta`, odata only): the incidents changed at or after the watermark (the
    latest change date read) less the delta's `overlap_seconds`, closed bound, oldest first.
    """

    kind: Literal["solman"]
    url: str = Field(description="the system's HTTPS origin, e.g. https://solman.example.com:44300")
    backend: Literal["ict", "odata"] = Field(default="ict", description="ict (SOAP, two-way) or odata (Fiori)")
    sap_client: str = Field(default="100", pattern=r"^\d{3}$", description="the SAP client (Mandant), 3 digits")
    language: str = Field(default="EN", pattern=r"^[A-Z]{2}$", description="logon language, 2 letters")
    user: str | None = Field(default=None, description="the hub's SAP user, for basic authentication")
    password: SecretStr | None = None
    client_cert: Path | None = Field(default=None, description="X.509: the hub's client certificate (PEM)")
    client_key: Path | None = Field(default=None, description="X.509: its private key (PEM), if not in client_cert")
    oauth: OAuthClient | None = Field(default=None, description="an OAuth 2.0 bearer from a token endpoint")
    profile: str = Field(default="solman_smin", description="the customer's profile in mappings/ or a path")
    system_guid: str | None = Field(
        default=None, pattern=r"^[0-9A-F]{32}$", description="ICT: the hub's system GUID in Solman (32 hex)"
    )
    ict_path: str | None = Field(default=None, description="ICT: the endpoint's path, if not SOAMANAGER's default")
    ict_wsdl: str | None = Field(default=None, description="ICT: the WSDL's URL or file, if not <endpoint>?wsdl")
    verify_tls: bool = True
    ca_file: Path | None = Field(default=None, description="a private CA's certificate for TLS")
    allow_insecure: bool = Field(default=False, description="allow http:// to a host other than loopback")

    @model_validator(mode="after")
    def _checked(self) -> SolmanSource:
        given = {"user and password": self.user or self.password, "client_cert": self.client_cert,
                 "oauth": self.oauth}  # fmt: skip
        ways = [name for name, value in given.items() if value]
        if len(ways) != 1:
            raise ValueError(
                "give exactly one way to authenticate: user and password, client_cert (X.509), or oauth"
                + (f" (given: {', '.join(ways)})" if ways else "")
            )
        if (self.user is None) != (self.password is None):
            raise ValueError("basic authentication needs both user and password")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        url = urlsplit(self.url)
        if url.scheme not in ("https", "http") or not url.hostname or url.path.strip("/"):
            raise ValueError("url must be the system's origin only, e.g. https://solman.example.com:44300")
        if url.scheme == "http" and url.hostname not in LOOPBACK_HOSTS and not self.allow_insecure:
            raise ValueError("url: http:// sends the password in clear; use https://, or set allow_insecure: true")
        if not self.verify_tls and url.scheme == "https":
            log.warning("%s: verify_tls is false: the SAP server's certificate is not checked", self.name)
        return self

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, value: str) -> str:
        try:
            load_profile(value)  # a mistake in the profile is named when the config loads, not at the first run
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    def anchored(self, base_dir: Path) -> Self:
        files = {name: anchor(getattr(self, name), base_dir) for name in ("client_cert", "client_key", "ca_file")
                 if getattr(self, name) is not None}  # fmt: skip
        return self.model_copy(update=files) if files else self

    def loaded_profile(self) -> SolmanProfile:
        return load_profile(self.profile)

    def ict_endpoint(self) -> str:
        return self.url.rstrip("/") + (self.ict_path or ICT_PATH.format(client=self.sap_client))

    def odata_service(self, name: str) -> str:
        return f"{self.url.rstrip('/')}{ODATA_ROOT}/{name}"
