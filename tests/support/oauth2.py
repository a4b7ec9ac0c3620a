"""A token-introspection endpoint (RFC 7662) on loopback, for Dovecot's `oauth2` passdb to ask about bearer tokens.

    with IntrospectionServer({"good-token": "helpdesk"}) as idp:
        server = start_dovecot(base, users, oauth2_introspection_url=idp.url)
        ...
    idp.seen  # every token Dovecot asked about, in order

A POST of ``token=<token>`` (form-encoded) is answered ``{"active": true, "username": <user>}`` for a known
token and ``{"active": false}`` for any other. Runs in a thread (stdlib http.server); nothing is logged.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.support.net import free_port

#: The path Dovecot posts to; any other path is answered 404.
PATH = "/introspect"


class IntrospectionServer:
    """`tokens` maps each valid bearer token to the username it stands for."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = dict(tokens)
        self.seen: list[str] = []
        self.port = free_port()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="introspection", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def answer(self, token: str) -> dict[str, object]:
        self.seen.append(token)
        user = self.tokens.get(token)
        return {"active": True, "username": user} if user is not None else {"active": False}

    def __enter__(self) -> IntrospectionServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def _handler(server: IntrospectionServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != PATH:
                self.send_error(404)
                return
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
            body = json.dumps(server.answer(form.get("token", [""])[0])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # keep tokens out of the test output
            pass

    return Handler
