"""A real HTTP server on loopback that keeps every request it gets and answers from a script, for tests of what
the hub sends (alert webhooks, SMS and chat APIs)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class HttpSink:
    """``with HttpSink(statuses=[503, 503]) as sink: … sink.url … sink.requests``: the first requests get the
    scripted statuses, the rest 200 (or `default`)."""

    def __init__(self, statuses: list[int] | None = None, default: int = 200) -> None:
        self.statuses, self.default = list(statuses or []), default
        self.requests: list[Request] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                sink.requests.append(Request("POST", self.path, headers, body))
                status = sink.statuses.pop(0) if sink.statuses else sink.default
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status < 400 else b'{"error": "scripted failure"}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
