"""Loopback plumbing shared by the test servers: a free port, waiting for a listener, a throwaway certificate."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound and released: tests may also use it as 'closed')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, what: str, *, seconds: float = 15) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`; else RuntimeError naming `what` to look at."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {seconds:g} s; see {what}")


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate (and key) for 127.0.0.1 and localhost, valid one day; needs the openssl CLI.

    Clients trust it with `ssl.create_default_context(cafile=cert)` or by pointing SSL_CERT_FILE at it.
    """
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
