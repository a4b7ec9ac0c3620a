"""Serving a simulator's ASGI app on loopback from a background thread: what every simulator needs, once."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn


class LoopbackServer:
    """`app` on 127.0.0.1 (`port`, or a free one for 0), from a daemon thread; `start` returns once listening."""

    def __init__(
        self, app: Any, *, name: str, port: int = 0, date_header: bool = True, tls: dict[str, Any] | None = None
    ) -> None:
        self.app, self.name, self.port, self.date_header = app, name, port, date_header
        #: uvicorn's ssl_* settings (certfile, keyfile, ca_certs, cert_reqs) to serve https:// instead
        self.tls = tls or {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.origin: str | None = None  # http://127.0.0.1:PORT once started

    def start(self) -> str:
        # IPPROTO_TCP explicitly: asyncio disables Nagle only on sockets whose proto says TCP; with proto 0 every
        # response would wait ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(256)
        self._socket = sock
        scheme = "https" if self.tls else "http"
        self.origin = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            date_header=self.date_header,
            timeout_graceful_shutdown=2,
            **{f"ssl_{key}": value for key, value in self.tls.items()},
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=self.name
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} did not start")
            time.sleep(0.01)
        return self.origin

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.origin = None


def answer_commands(handle: Callable[[list[str]], dict[str, Any]], stop: threading.Event) -> None:
    """A simulator's ``--control`` mode: each line on stdin is a command, split into words and given to `handle`,
    whose answer goes to stdout as one JSON line (a ValueError as ``{"error": …}``); end of input sets `stop`, so a
    simulator never outlives the benchmark that drives it."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            reply = handle(words)
        except ValueError as error:
            reply = {"error": f"{line.strip()!r}: {error}"}
        print(json.dumps(reply), flush=True)
    stop.set()
