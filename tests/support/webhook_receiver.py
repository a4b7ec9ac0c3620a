"""A running `itsm webhooks serve` on loopback (uvicorn in a thread) over a fresh store, for tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select

from connectors.webhook.auth import signed_headers
from flows.webhooks import create_app
from itsm_core.store import Store
from itsm_core.store.tables import CommentRow, ExternalRefRow, TicketRow
from tests.support.net import free_port, wait_for_port

BEARER, SECRET = "am-token-7f3e", "chatbot-secret-c41d"


class Receiver:
    def __init__(self, url: str, store: Store, config: Path) -> None:
        self.url, self.store, self.config = url, store, config
        self.client = httpx.Client(base_url=url, timeout=10)

    def am(self, payload: Any, token: str = BEARER, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **kwargs.pop("headers", {})}
        return self.client.post("/webhooks/alertmanager", content=json.dumps(payload), headers=headers, **kwargs)

    def bot(self, payload: Any, delivery: str, secret: str = SECRET, now: float | None = None) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = signed_headers(secret, body, delivery, now=now)
        return self.client.post("/webhooks/chatbot", content=body, headers=headers)

    def count(self, row: Any) -> int:
        with self.store.connect() as conn:
            return conn.execute(select(func.count()).select_from(row.__table__)).scalar_one()

    def ticket(self, system: str, external_id: str, *, within: float = 10) -> dict[str, Any]:
        """The ticket the hub holds for (system, external id), waiting for the worker to apply it."""
        refs, tickets = ExternalRefRow.__table__, TicketRow.__table__
        deadline = time.monotonic() + within
        while True:
            with self.store.connect() as conn:
                row = conn.execute(
                    select(tickets)
                    .join(refs, refs.c.ticket_id == tickets.c.id)
                    .where(refs.c.system == system, refs.c.external_id == external_id)
                ).mappings().first()  # fmt: skip
            if row is not None or time.monotonic() > deadline:
                assert row is not None, f"no ticket for {system} {external_id} within {within} s"
                return dict(row)
            time.sleep(0.1)

    def comments(self, ticket_id: int) -> list[str]:
        comments = CommentRow.__table__
        with self.store.connect() as conn:
            return list(
                conn.execute(
                    select(comments.c.body).where(comments.c.ticket_id == ticket_id).order_by(comments.c.id)
                ).scalars()
            )


def wait_until(predicate: Any, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "the worker did not apply the delivery in time"
        time.sleep(0.1)


def run_receiver(tmp_path: Path, database_url: str, *, apply: bool = True) -> Iterator[Receiver]:
    """Sources `alertmanager` (bearer) and `chatbot` (hmac, 4 KiB bodies) on a fresh store; its config file is
    `Receiver.config`."""
    config = tmp_path / "itsm.yaml"
    config.write_text(
        f"database_url: {database_url}\n"
        "sources:\n"
        f"  - {{name: alertmanager, kind: webhook, auth: {{scheme: bearer, token: {BEARER}}},"
        " mapping: webhook_alertmanager}\n"
        f"  - {{name: chatbot, kind: webhook, auth: {{scheme: hmac, secret: {SECRET}}}, mapping: webhook_chatbot,"
        " max_body_bytes: 4096}\n"
    )  # fmt: skip
    store = Store(database_url)
    store.upgrade()
    port = free_port()
    app = create_app(str(config), apply=apply)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, "the webhook receiver's log")
    try:
        yield Receiver(f"http://127.0.0.1:{port}", store, config)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.dispose()
