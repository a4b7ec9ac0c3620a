"""What every SAP channel shares, OData or SOAP: how an HTTP answer becomes the hub's error. Private.

One place for the statuses (401 credentials, 403 an authorisation, 404, 429 and 5xx transient, the rest a
refusal), for the HTML login page that an expired single sign-on answers with a 200, and for a request that got
no answer at all. Messages name the source and the operation, never a URL (it may carry ids) or a secret.
"""

from __future__ import annotations

from typing import Any

import httpx

from itsm_core.errors import (
    UpstreamAuthError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)


def is_html(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").split(";")[0].strip().lower() == "text/html"


def check(response: httpx.Response, *, system: str, what: str, code: str | None = None, detail: str | None = None):
    """Raise the hub's error for a failed answer to `what` (e.g. ``POST IncidentSet``); `code`/`detail` are SAP's
    own, when the body gave them. A success that is an HTML page is a login page: an authentication failure."""
    status = response.status_code
    if status < 400:
        if is_html(response):
            raise UpstreamAuthError(
                f"{system}: SAP answered {what} with an HTML page (a login page: the session or single sign-on "
                "expired, or the URL is not the service's): check the source's credentials and url",
                system=system,
                status=status,
            )
        return
    said = f" ({code}: {detail})" if code or detail else ""
    message = f"{system}: SAP refused {what} with {status}{said}"
    kwargs: dict[str, Any] = {"system": system, "code": code, "status": status, "detail": detail}
    if status == 401:
        raise UpstreamAuthError(f"{message}: check the source's user and password", **kwargs)
    if status == 403:
        raise UpstreamForbidden(f"{message}: give the hub's SAP user the missing authorisation", **kwargs)
    if status == 404:
        raise UpstreamNotFound(message, **kwargs)
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(f"{message}; the next cycle tries again", **kwargs)
    raise UpstreamRejected(message, **kwargs)


def unanswered(exc: httpx.TransportError, *, system: str, what: str, write: bool) -> UpstreamUnavailable:
    """No answer: a write may have been applied unless the connection was never made."""
    return UpstreamUnavailable(
        f"{system}: SAP did not answer {what} ({type(exc).__name__}); the next cycle tries again",
        system=system,
        maybe_applied=write and not isinstance(exc, httpx.ConnectError),
    )
