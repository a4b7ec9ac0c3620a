"""`itsm_core.jsondoc`: orjson's speed, the standard library's answers."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itsm_core import jsondoc

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(values, st.booleans())
def test_loads_reads_what_json_loads_reads(value, ascii_only):
    written = json.dumps(value, ensure_ascii=ascii_only)
    assert repr(jsondoc.loads(written.encode())) == repr(json.loads(written))  # repr: NaN and -0.0 compared too


def test_what_only_the_standard_library_takes_falls_back_to_it():
    assert jsondoc.loads(b'["\\ud800"]') == ["\ud800"]  # a lone surrogate escape
    assert math.isnan(jsondoc.loads(b"NaN"))
    assert jsondoc.loads(b"\xef\xbb\xbf[1]") == [1]  # a byte-order mark
    assert jsondoc.loads(b"[1e400]") == [math.inf]


def test_what_neither_parser_reads_raises_value_error():
    with pytest.raises(ValueError):
        jsondoc.loads(b"<html>")
