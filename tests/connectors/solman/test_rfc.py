"""`RFC_READ_TABLE` over SOAP-RFC (`connectors/solman/_rfc.py`): the WHERE clause cut as SAP wants it, rows read by
their fields, and each way it fails named. respx."""

from __future__ import annotations

import httpx
import pytest
import respx

from connectors.solman._rfc import RFC_PATH, read_table, where_rows
from itsm_core.errors import UpstreamAuthError, UpstreamError, UpstreamForbidden, UpstreamRejected

ORIGIN = "https://solman.example.com"


def rfc_answer(*lines: str) -> httpx.Response:
    data = "".join(f"<item><WA>{line}</WA></item>" for line in lines)
    body = (
        '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>'
        f'<rfc:RFC_READ_TABLE.Response xmlns:rfc="urn:sap-com:document:sap:rfc:functions"><DATA>{data}</DATA>'
        "</rfc:RFC_READ_TABLE.Response></soap-env:Body></soap-env:Envelope>"
    )
    return httpx.Response(200, text=body, headers={"content-type": "text/xml"})


def read(http: httpx.Client) -> list[dict[str, str]]:
    return read_table(http, ORIGIN, system="sap", sap_client="100", table="TJ30T", fields=["STSMA", "ESTAT", "TXT30"],
                      where="STSMA = 'SMIN0001' OR STSMA = 'ZMIN0001'")  # fmt: skip


def test_a_where_clause_is_cut_into_rows_of_72_characters_between_tokens():
    clause = " OR ".join(f"STSMA = 'ZPROFILE{n:02d}'" for n in range(8))
    rows = where_rows(clause)
    assert all(len(row) <= 72 for row in rows) and " ".join(rows) == clause


def test_rows_come_back_by_field_with_the_client_and_the_where_clause_sent():
    with respx.mock() as router, httpx.Client() as http:
        route = router.post(f"{ORIGIN}{RFC_PATH}").mock(
            return_value=rfc_answer("SMIN0001|E0001|New", "SMIN0001|E0002|In Process")
        )
        assert read(http) == [
            {"STSMA": "SMIN0001", "ESTAT": "E0001", "TXT30": "New"},
            {"STSMA": "SMIN0001", "ESTAT": "E0002", "TXT30": "In Process"},
        ]
    sent = route.calls.last.request
    assert sent.url.params["sap-client"] == "100" and b"<TEXT>STSMA = 'SMIN0001' OR STSMA = 'ZMIN0001'</TEXT>" in (
        sent.content
    )
    assert b"<FIELDNAME>ESTAT</FIELDNAME>" in sent.content and b"<QUERY_TABLE>TJ30T</QUERY_TABLE>" in sent.content


@pytest.mark.parametrize(
    ("response", "kind", "said"),
    [
        (httpx.Response(500, text="<e:Envelope xmlns:e='x'><e:Body><e:Fault><faultstring>No RFC authorization "
                        "for function module RFC_READ_TABLE</faultstring></e:Fault></e:Body></e:Envelope>"),
         UpstreamRejected, "No RFC authorization"),
        (httpx.Response(401, text="Logon failed"), UpstreamAuthError, "user and password"),
        (httpx.Response(403, text="Forbidden"), UpstreamForbidden, "missing authorisation"),
        (httpx.Response(200, text="not xml", headers={"content-type": "text/xml"}), UpstreamError, "not XML"),
    ],
)  # fmt: skip
def test_each_failure_is_named(response, kind, said):
    with respx.mock() as router, httpx.Client() as http:
        router.post(f"{ORIGIN}{RFC_PATH}").mock(return_value=response)
        with pytest.raises(kind, match=said) as caught:
            read(http)
    assert "RFC_READ_TABLE on TJ30T" in str(caught.value) or said in str(caught.value)
