"""`kind: webhook`: the hub's own receiver over real HTTP on loopback (receiving only: the suite applies), with a
chatbot signing its hand-offs in the `hmac` scheme."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from connectors.webhook.auth import signed_headers
from flows.webhooks import create_app
from tests.connectors.conformance.testbed import SOURCE, Testbed
from tests.support.net import free_port, wait_for_port

SECRET = "conformance-secret-9b1f"


class WebhookTestbed(Testbed):
    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.database_url = f"sqlite:///{base.parent / 'hub.db'}"  # the suite's hub store (conftest._hub)
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.added = 0

    def source(self, page_size: int) -> dict[str, Any]:
        return {"name": SOURCE, "kind": "webhook", "auth": {"scheme": "hmac", "secret": SECRET},
                "mapping": "webhook_chatbot", "page_size": page_size}  # fmt: skip

    def _url(self) -> str:
        """The receiver, started at the first delivery (the hub's store is migrated by then)."""
        if self.server is None:
            config = self.base / "itsm.yaml"
            config.write_text(yaml.safe_dump({"database_url": self.database_url, "sources": [self.source(4)]}))
            self.port = free_port()
            app = create_app(str(config), apply=False)
            self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
            self.thread = threading.Thread(target=self.server.run, daemon=True)
            self.thread.start()
            wait_for_port(self.port, "the webhook receiver")
        return f"http://127.0.0.1:{self.port}/webhooks/{SOURCE}"

    def _deliver(self, payload: dict[str, Any], delivery: str) -> None:
        body = json.dumps(payload).encode()
        answer = httpx.post(self._url(), content=body, headers=signed_headers(SECRET, body, delivery), timeout=10)
        assert answer.status_code == 202, answer.text

    def add_tickets(self, count: int) -> None:
        for number in range(self.added, self.added + count):
            self._deliver(
                {
                    "event": "handoff", "conversation_id": f"c-{number}", "summary": f"Printer {number} is jammed",
                    "user": {"email": f"user{number}@example.org", "name": f"User {number}"},
                    "transcript": [{"from": "user", "at": "2026-11-02T09:00:00Z", "text": f"Printer {number} jams"}],
                },
                delivery=f"d-{number}",
            )  # fmt: skip
        self.added += count

    def add_unreadable(self) -> None:
        """A delivery with no conversation id: nothing says which ticket it is about."""
        self._deliver({"event": "handoff", "summary": "Which conversation?"}, delivery="d-orphan")

    def close(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)


TESTBED = WebhookTestbed
