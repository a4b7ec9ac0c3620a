"""Who may deliver: checked on the raw body before anything is stored.

- ``hmac``, the hub's own scheme (also what its outbound alert webhooks send): headers ``X-Itsm-Timestamp`` (Unix
  seconds), ``X-Itsm-Delivery`` (an id the sender keeps across retries) and
  ``X-Itsm-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``;
- ``glpi``, GLPI's outgoing webhooks (``src/Webhook.php``): ``X-GLPI-signature: <hex HMAC-SHA256(secret, <raw body>
  <timestamp>)>`` and ``X-GLPI-timestamp``;
- ``bearer``: ``Authorization: Bearer <token>``.

Signatures and tokens are compared in constant time; a signed delivery outside the replay window is refused (a
captured request cannot be played again later: within the window, the delivery id makes it a no-op).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from connectors.webhook.config import BearerAuth, SignedAuth

TIMESTAMP, DELIVERY, SIGNATURE = "x-itsm-timestamp", "x-itsm-delivery", "x-itsm-signature"
GLPI_TIMESTAMP, GLPI_SIGNATURE = "x-glpi-timestamp", "x-glpi-signature"


class Unauthorized(Exception):
    """The delivery is not from whom the source trusts; the message says which check failed, never a secret."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Itsm-Signature`` value of `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, body: bytes, delivery: str, now: float | None = None) -> dict[str, str]:
    """The headers of a delivery in the hub's `hmac` scheme (its alert webhooks; tests; the README's curl)."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "X-Itsm-Timestamp": str(timestamp),
        "X-Itsm-Delivery": delivery,
        "X-Itsm-Signature": sign(secret, timestamp, body),
    }


def glpi_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), body + str(timestamp).encode(), hashlib.sha256).hexdigest()


def check(
    auth: BearerAuth | SignedAuth,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    key: str | None = None,
) -> None:
    """Raise `Unauthorized` unless `headers` prove the delivery comes from a holder of the source's secret (`key`,
    read once by the caller; else read from `auth`). `headers` has lower-case names."""
    key = key if key is not None else auth.key().get_secret_value()
    if isinstance(auth, BearerAuth):
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token (send Authorization: Bearer <token>)")
        if not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise Unauthorized("wrong bearer token")
        return
    glpi = auth.scheme == "glpi"
    stamp_header, signature_header = (GLPI_TIMESTAMP, GLPI_SIGNATURE) if glpi else (TIMESTAMP, SIGNATURE)
    stamp, given = headers.get(stamp_header), headers.get(signature_header)
    if not stamp or not given:
        raise Unauthorized(f"unsigned: send {stamp_header} and {signature_header}")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise Unauthorized(f"{stamp_header} is not Unix seconds") from None
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > auth.replay_window_seconds:
        raise Unauthorized(
            f"stale signature: {stamp_header} is {abs(age):.0f} s {'old' if age > 0 else 'ahead'} "
            f"(allowed: {auth.replay_window_seconds} s); check the sender's clock"
        )
    expected = glpi_signature(key, timestamp, body) if glpi else sign(key, timestamp, body)
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        raise Unauthorized("bad signature")
