"""The config of `kind: webhook`: tickets opened, updated and resolved by anything that can POST JSON.

```yaml
sources:
  - name: alertmanager
    kind: webhook
    auth: {scheme: bearer, token: ${ALERTMANAGER_TOKEN}}      # what Alertmanager and Grafana can send
    mapping: webhook_alertmanager
  - name: chatbot
    kind: webhook
    auth: {scheme: hmac, secret_file: /run/secrets/chatbot}   # the hub's own signature (connectors/webhook/auth.py)
    mapping: webhook_chatbot
  - name: glpi-events
    kind: webhook
    auth: {scheme: glpi, secret: ${GLPI_WEBHOOK_SECRET}}      # GLPI 10/11 outgoing webhooks
```

Each secret is given by reference: `${ENV}`, `${prefect:BLOCK}`, or a file (`secret_file` / `token_file`, read at
start, trailing newline dropped — Docker and Kubernetes secrets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from itsm_core.config import SourceBase, anchor

ONE_MIB = 1024 * 1024


class _Secret(BaseModel):
    """A shared secret, inline (through `${…}`) or in a file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def _read(self, value: SecretStr | None, file: Path | None, key: str) -> SecretStr:
        if value is not None:
            return value
        assert file is not None
        try:
            return SecretStr(file.read_text(encoding="utf-8").rstrip("\r\n"))
        except OSError as exc:
            raise ValueError(f"{key}_file: cannot read {file} ({exc.strerror})") from None


class BearerAuth(_Secret):
    """``Authorization: Bearer <token>``, compared in constant time."""

    scheme: Literal["bearer"]
    token: SecretStr | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _one_token(self) -> Self:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give exactly one of token (e.g. ${ALERTMANAGER_TOKEN}) or token_file")
        return self

    def key(self) -> SecretStr:
        return self._read(self.token, self.token_file, "token")


class SignedAuth(_Secret):
    """A body signed with a shared secret: the hub's `hmac` scheme or GLPI's."""

    scheme: Literal["hmac", "glpi"]
    secret: SecretStr | None = None
    secret_file: Path | None = None
    replay_window_seconds: int = Field(
        default=300, ge=1, description="a signature older (or further in the future) than this is refused"
    )

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret (e.g. ${CHATBOT_SECRET}) or secret_file")
        return self

    def key(self) -> SecretStr:
        return self._read(self.secret, self.secret_file, "secret")


WebhookAuth = Annotated[BearerAuth | SignedAuth, Field(discriminator="scheme")]


class WebhookSource(SourceBase):
    """Deliveries POSTed to ``/webhooks/<name>`` by `itsm webhooks serve`, landed before they are answered, then
    turned into ticket changes by the source's mapping (its ``events`` section says what each event does)."""

    kind: Literal["webhook"]
    auth: WebhookAuth
    max_body_bytes: int = Field(default=ONE_MIB, ge=1024, le=64 * ONE_MIB, description="larger bodies get 413")
    delivery_header: str | None = Field(
        default=None,
        description="a header carrying the sender's delivery id, stable across its retries (X-Itsm-Delivery is "
        "always read); without one, a delivery is known by its body's SHA-256",
    )

    def anchored(self, base_dir: Path) -> Self:
        auth = self.auth
        if isinstance(auth, BearerAuth) and auth.token_file is not None:
            auth = auth.model_copy(update={"token_file": anchor(auth.token_file, base_dir)})
        if isinstance(auth, SignedAuth) and auth.secret_file is not None:
            auth = auth.model_copy(update={"secret_file": anchor(auth.secret_file, base_dir)})
        return self.model_copy(update={"auth": auth})
