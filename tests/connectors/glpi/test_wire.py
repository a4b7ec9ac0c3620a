"""The GLPI client's wire helpers (`connectors/glpi/_http.py`): query encoding and body decoding."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.glpi._http import decode_json, encode_query, php_query

text = st.text(st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(text, text), max_size=12))
def test_encode_query_writes_what_urlencode_writes_brackets_aside(pairs):
    encoded = encode_query(pairs)
    assert encoded == urlencode(pairs, safe="[]")
    assert parse_qsl(encoded, keep_blank_values=True) == pairs


def test_a_get_multiple_items_query_keeps_its_brackets_as_glpis_documentation_writes_them():
    pairs = php_query("items", [{"itemtype": "ITILFollowup", "items_id": i} for i in (7, 12, 40_001)])
    encoded = encode_query([*pairs, ("searchText[name]", "R&D é")])
    assert encoded.startswith("items[0][itemtype]=ITILFollowup&items[0][items_id]=7&items[1]")
    assert encoded.endswith("&searchText[name]=R%26D+%C3%A9")
    url = httpx.URL(f"https://glpi.example.org/glpi/apirest.php/getMultipleItems?{encoded}")
    assert url.query == encoded.encode()  # sent as written: httpx leaves it alone


def test_decode_json_reads_what_the_standard_parser_reads():
    bodies = [
        b'[{"id": 1, "content": "caf\\u00e9 \\ud83d\\ude00", "ratio": 0.25, "none": null}]',
        b'["\\ud800 a lone surrogate"]',  # the fast parser refuses it; the standard one reads it
        b"\xef\xbb\xbf[1]",  # a byte-order mark, as some PHP setups send
        b'{"a": 1, "a": 2}',
    ]
    for body in bodies:
        decoded, is_json = decode_json(httpx.Response(200, content=body))
        assert is_json
        assert decoded == json.loads(body)


def test_decode_json_tells_html_from_json():
    _, is_json = decode_json(httpx.Response(200, content=b"<html>login</html>"))
    assert not is_json
    assert decode_json(httpx.Response(200, content=b"  \n")) == (None, True)
