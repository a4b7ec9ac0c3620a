"""``RFC_READ_TABLE`` over SAP's SOAP-RFC endpoint (``/sap/bc/soap/rfc``): how the self-check reads the system's
status profiles (table ``TJ30T``) without an RFC SDK. Private to `connectors/solman/`.

The call is the function module's own RFC-SOAP shape (namespace ``urn:sap-com:document:sap:rfc:functions``):
``QUERY_TABLE``, ``DELIMITER``, ``OPTIONS`` (the WHERE clause in rows of at most 72 characters, split between
tokens), ``FIELDS`` (always given: a row may not exceed 512 bytes) → ``DATA`` rows (``WA``, fields joined by the
delimiter). The user needs ``S_RFC`` for function group ``SDTX``; a refusal is reported as the missing
authorisation, and the self-check then says it could not verify the codes rather than guessing.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import httpx
from lxml import etree

from connectors.solman._sap import check, unanswered
from itsm_core.errors import UpstreamError, UpstreamRejected

RFC_PATH = "/sap/bc/soap/rfc"
NS = "urn:sap-com:document:sap:rfc:functions"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OPTION_WIDTH = 72
DELIMITER = "|"


def where_rows(clause: str) -> list[str]:
    """A WHERE clause as ``OPTIONS`` rows of at most 72 characters, cut between tokens."""
    rows, line = [], ""
    for token in clause.split(" "):
        if line and len(line) + 1 + len(token) > OPTION_WIDTH:
            rows.append(line)
            line = token
        else:
            line = f"{line} {token}" if line else token
    return [*rows, line] if line else rows


def read_table(
    http: httpx.Client, origin: str, *, system: str, sap_client: str, table: str, fields: list[str], where: str = ""
) -> list[dict[str, str]]:
    """Rows of `table` (only `fields`) matching `where`, as dicts."""
    options = "".join(f"<item><TEXT>{escape(row)}</TEXT></item>" for row in where_rows(where))
    wanted = "".join(f"<item><FIELDNAME>{escape(name)}</FIELDNAME></item>" for name in fields)
    body = (
        f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV}"><soap-env:Body><rfc:RFC_READ_TABLE xmlns:rfc="{NS}">'
        f"<QUERY_TABLE>{escape(table)}</QUERY_TABLE><DELIMITER>{DELIMITER}</DELIMITER>"
        f"<OPTIONS>{options}</OPTIONS><FIELDS>{wanted}</FIELDS><DATA/>"
        "</rfc:RFC_READ_TABLE></soap-env:Body></soap-env:Envelope>"
    )
    what = f"RFC_READ_TABLE on {table}"
    try:
        response = http.post(
            origin.rstrip("/") + RFC_PATH,
            params={"sap-client": sap_client},
            content=body.encode(),
            headers={"content-type": "text/xml; charset=utf-8", "SOAPAction": f"{NS}:RFC_READ_TABLE"},
        )
    except httpx.TransportError as exc:
        raise unanswered(exc, system=system, what=what, write=False) from None
    if response.status_code == 500 and b"Fault" in response.content:
        raise UpstreamRejected(f"{system}: SAP refused {what}: {_fault(response.content)}", system=system)
    check(response, system=system, what=what)
    try:
        root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        raise UpstreamError(f"{system}: SAP's answer to {what} is not XML", system=system) from None
    lines = [element.text or "" for element in root.iter("WA")]
    return [dict(zip(fields, (value.strip() for value in line.split(DELIMITER)), strict=False)) for line in lines]


def _fault(content: bytes) -> Any:
    try:
        root = etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return "a SOAP fault"
    found = [element.text for element in root.iter("faultstring", "message") if element.text]
    return "; ".join(found) or "a SOAP fault"
