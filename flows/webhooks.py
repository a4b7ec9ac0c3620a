"""`itsm webhooks serve`: the receiver of every `kind: webhook` source, and the worker that applies what it landed.

``POST /webhooks/{source}``: refused without a word stored when the source is unknown (404), the body too large
(413), not JSON (415), not from who the source trusts (401) or not valid JSON (400); otherwise committed to
`webhook_deliveries` and only then answered ``202 {"delivery", "status": "accepted"}``. A delivery seen before
(the same delivery id, or the same body where the sender gives none) is answered ``200`` with ``"status":
"duplicate"`` and changes nothing.

A worker thread applies landed deliveries within a second or so (the same page ingest as `sync-source`, watermark
and all), and at start whatever an earlier server left; `itsm run` applies them too when no server runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from connectors.base import TICKETS
from connectors.webhook.auth import DELIVERY, GLPI_TIMESTAMP, TIMESTAMP, Unauthorized, check
from connectors.webhook.config import WebhookSource
from connectors.webhook.source import webhook_events
from flows.runtime import SourceRuntime, build_runtime, load_hub_config
from flows.sync import ingest_page
from itsm_core.errors import ConfigError, failure_text
from itsm_core.models import utcnow
from itsm_core.store import Store
from itsm_core.store.deliveries import land_delivery
from itsm_core.store.sync_state import get_state, record_run

log = logging.getLogger("itsm.webhooks")

#: Request headers kept with a delivery (never credentials): what helps to read it later.
KEPT_HEADERS = ("content-type", "user-agent", DELIVERY, TIMESTAMP, GLPI_TIMESTAMP)
#: How long the worker sleeps when nothing wakes it (a delivery landed by another process is seen this late).
IDLE_SECONDS = 5.0
#: How long it lets deliveries gather once woken: a burst is applied in pages, not one delivery at a time.
GATHER_SECONDS = 0.25


class Accepted(BaseModel):
    delivery: str
    status: str  # "accepted" (202) or "duplicate" (200)
    received_at: str


class Problem(BaseModel):
    error: str


def create_app(config_path: str | None = None, *, apply: bool = True) -> FastAPI:
    """The receiver for the webhook sources of the config at `config_path`, with its worker unless `apply` is
    False (receivers only, e.g. several behind a load balancer; `itsm run` or one applying server applies)."""
    config = load_hub_config(config_path)
    sources = {s.name: s for s in config.sources if isinstance(s, WebhookSource) and s.enabled}
    keys: dict[str, str] = {}
    for name, source in sources.items():  # a bad mapping or an unreadable secret stops the server at start
        webhook_events(source)
        try:
            keys[name] = source.auth.key().get_secret_value()
        except ValueError as exc:
            raise ConfigError(f"sources.{name}.auth: {exc}", key=f"sources.{name}.auth") from None
    store = Store(config.database_url.get_secret_value())
    worker = DeliveryWorker(config_path, list(sources), store)
    app = FastAPI(
        title="itsm-hub webhooks",
        summary="Deliveries that open, update, comment and resolve tickets, one endpoint per webhook source.",
        on_startup=[store.ensure_current, *([worker.start] if apply else [])],
        on_shutdown=[worker.stop, store.dispose],
    )

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "sources": sorted(sources)}

    @app.post(
        "/webhooks/{source}",
        status_code=202,
        response_model=Accepted,
        responses={
            200: {"model": Accepted, "description": "a delivery seen before: nothing changed"},
            **{code: {"model": Problem} for code in (400, 401, 404, 413, 415)},
        },
        # the body is read raw (signatures are over its bytes); any JSON the source's mapping understands
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
    )
    async def deliver(source: str, request: Request) -> Any:
        config = sources.get(source)
        if config is None:
            return _problem(404, f"no webhook source named {source!r} (configured: {', '.join(sorted(sources))})")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > config.max_body_bytes:
            return _problem(413, f"body over {config.max_body_bytes} bytes (max_body_bytes of {source})")
        received = bytearray()
        async for chunk in request.stream():
            received += chunk
            if len(received) > config.max_body_bytes:
                return _problem(413, f"body over {config.max_body_bytes} bytes (max_body_bytes of {source})")
        body = bytes(received)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            return _problem(415, f"send Content-Type: application/json (got {media or 'none'})")
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            check(config.auth, headers, body, key=keys[source])
        except Unauthorized as exc:
            log.warning("%s: delivery refused from %s: %s", source, request.client.host if request.client else "?", exc)
            return _problem(401, str(exc))
        try:
            json.loads(body)
        except ValueError as exc:
            return _problem(400, f"the body is not valid JSON ({exc})")
        key = _delivery_key(config, headers, body)
        if key is None:
            return _problem(400, "the delivery id header is over 200 characters")
        named = (config.delivery_header or "").lower()  # headers are read by lower-case name
        kept = {name: headers[name] for name in (*KEPT_HEADERS, named) if name in headers}
        delivery, new = await run_in_threadpool(_land, store, source, key, kept, body)
        if new:
            worker.wake()
        answer = Accepted(
            delivery=key, status="accepted" if new else "duplicate", received_at=delivery.received_at.isoformat()
        )
        return JSONResponse(answer.model_dump(), status_code=202 if new else 200)

    return app


def _problem(status: int, error: str) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


def _delivery_key(config: WebhookSource, headers: dict[str, str], body: bytes) -> str | None:
    given = headers.get(config.delivery_header.lower()) if config.delivery_header else None
    given = given or headers.get(DELIVERY)
    if given:
        return given.strip() if len(given.strip()) <= 200 else None
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _land(store: Store, source: str, key: str, headers: dict[str, str], body: bytes) -> Any:
    # One statement, committed on its own (autocommit): one round trip instead of BEGIN, INSERT, COMMIT.
    with store.connect() as conn:
        return land_delivery(conn.execution_options(isolation_level="AUTOCOMMIT"), source, key, utcnow(), headers, body)


class DeliveryWorker:
    """Applies landed deliveries in a thread of the server: at start, then whenever a delivery lands (or every
    `IDLE_SECONDS`, for deliveries landed by another server)."""

    def __init__(self, config_path: str | None, sources: list[str], store: Store) -> None:
        self.config_path, self.sources, self.store = config_path, sources, store
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        config = load_hub_config(self.config_path)
        runtimes = {name: build_runtime(config, config.source(name), store=self.store) for name in self.sources}
        while not self._stopping.is_set():
            self._wake.clear()
            for runtime in runtimes.values():
                try:
                    apply_deliveries(runtime)
                except Exception as exc:  # keep serving: the deliveries stay landed for the next pass
                    log.error("%s: applying deliveries failed: %s", runtime.name, failure_text(exc))
                    with self.store.transaction() as conn:
                        record_run(conn, runtime.name, TICKETS, success=False, error=failure_text(exc))
            self._wake.wait(IDLE_SECONDS)
            self._stopping.wait(GATHER_SECONDS)  # let a burst gather into pages: one transaction for many


def apply_deliveries(runtime: SourceRuntime) -> int:
    """Apply the deliveries landed after the source's watermark, page by page; the number applied."""
    with runtime.store.connect() as conn:
        watermark = (get_state(conn, runtime.name, TICKETS) or {}).get("watermark")
    applied = 0
    for page in runtime.connector.plan_pages(watermark, TICKETS):
        report, watermark = ingest_page.fn(runtime, TICKETS, page, watermark)
        applied += report.fetched
        counts = ", ".join(f"{k} {v}" for k, v in report.counts().items() if v)
        log.info("%s: %d deliveries applied (%s)", runtime.name, report.fetched, counts)
    if applied:
        with runtime.store.transaction() as conn:
            record_run(conn, runtime.name, TICKETS, success=True)
    return applied
