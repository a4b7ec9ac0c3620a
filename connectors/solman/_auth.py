"""How the hub proves who it is to SAP, beyond a password: an OAuth 2.0 bearer from a token endpoint. Private.

`BearerToken` is an httpx `Auth`: it asks the token endpoint for a token (client credentials, RFC 6749 §4.4, the
client authenticated with HTTP basic), sends it as ``Authorization: Bearer``, takes a new one shortly before it
expires, and once again when SAP answers 401 (revoked, or the server restarted). Tokens and the client secret
never reach a message: a refusal names the token endpoint's answer only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator

import httpx

from itsm_core.errors import UpstreamAuthError

#: Take a new token this long before the old one expires, so no request is sent with one expiring on the way.
EARLY_SECONDS = 30


class BearerToken(httpx.Auth):
    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None,
        system: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url, self.client_id, self._secret, self.scope = token_url, client_id, client_secret, scope
        self.system, self._clock = system, clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            token = self._token if self._clock() < self._expires_at else None
        if token is None:
            token = self._keep((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:  # revoked or forgotten: one new token, one more try
            request.headers["Authorization"] = f"Bearer {self._keep((yield self._token_request()))}"
            yield request

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        request = httpx.Request("POST", self.token_url, data=form, headers={"Accept": "application/json"})
        return next(httpx.BasicAuth(self.client_id, self._secret).auth_flow(request))

    def _keep(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in") or 300)
        except (ValueError, KeyError, TypeError):
            said = response.text[:200] if response.status_code >= 400 else "no access_token in its answer"
            raise UpstreamAuthError(
                f"{self.system}: the OAuth token endpoint refused the hub ({response.status_code}: {said}); check "
                "the source's oauth client_id, client_secret and scope",
                system=self.system,
                status=response.status_code,
            ) from None
        with self._lock:
            self._token, self._expires_at = token, self._clock() + max(0.0, lifetime - EARLY_SECONDS)
        return token
