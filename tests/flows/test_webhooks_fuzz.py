"""schemathesis against the running receiver's own OpenAPI document: generated requests for every operation
(deliveries authenticated, so they reach the landing and the worker) never make it answer 5xx, and every answer
is one the document declares."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from itsm_core.store.tables import WebhookDeliveryRow
from tests.support.webhook_receiver import BEARER, Receiver


def test_no_generated_request_makes_the_receiver_fail(receiver: Receiver) -> None:
    schema = schemathesis.openapi.from_url(f"{receiver.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/webhooks/{source}", "/healthz"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case) -> None:
            if "source" in (case.path_parameters or {}):
                case.path_parameters = {"source": "alertmanager"}  # a real source: landed and applied
            response = case.call(base_url=receiver.url, headers={"Authorization": f"Bearer {BEARER}"})
            assert response.status_code < 500, response.text
            case.validate_response(response)

        call()
    # the generated deliveries got past the checks into the landing (JSON bodies with the right token)
    assert receiver.count(WebhookDeliveryRow) > 0
