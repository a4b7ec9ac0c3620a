"""Inbound webhooks: `kind: webhook`. Anything that can POST JSON — Prometheus Alertmanager, Grafana, a chatbot, a
web form, GLPI's outgoing webhooks — opens, updates, comments and resolves tickets through the hub.

- `config`: `WebhookSource` (auth: bearer | hmac | glpi, body limit, delivery header);
- `auth`: the checks made on the raw body before anything is stored, and the hub's `hmac` signature;
- `receiver`: the FastAPI app `itsm webhooks serve` runs (land, then 202; process promptly);
- `source`: `WebhookConnector`, which reads the landed deliveries (its docstring states the contract);
- `intake`: what each event does (the mapping's ``events``), e.g. `mappings/webhook_alertmanager.yaml`.
"""

from __future__ import annotations

from connectors.registry import ConnectorKind
from connectors.webhook.config import WebhookSource
from connectors.webhook.intake import WebhookIntake
from connectors.webhook.source import WebhookConnector

WEBHOOK = ConnectorKind(
    name="webhook",
    config=WebhookSource,
    connector=WebhookConnector,
    mappings={"tickets": "webhook_alertmanager"},
    intake=WebhookIntake.for_source,
    description="tickets opened, updated and resolved by signed HTTP deliveries (`itsm webhooks serve`)",
)
