"""`itsm_core.jsondoc`: orjson's speed, the standard library's answers."""

from __future__ import annotations

import json
import math
import tracemalloc
from datetime import UTC, datetime

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


def standard(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=1000, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),  # NaN, ±inf, big ints, surrogates
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text() | st.integers(-5, 5), children, max_size=4)
        ),  # int keys: json writes them
        max_leaves=20,
    )
)
def test_dumps_writes_what_json_dumps_writes_or_raises_as_it_raises(value):
    try:
        expected: bytes | type[BaseException] = standard(value)
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        expected = type(exc)
    if isinstance(expected, bytes):
        assert jsondoc.dumps(value) == expected
    else:
        with pytest.raises(expected):
            jsondoc.dumps(value)


def test_dumps_leaves_to_the_standard_library_what_orjson_writes_otherwise():
    assert jsondoc.dumps({"b": [math.nan, math.inf], "a": 2.5e-05}) == b'{"a":2.5e-05,"b":[NaN,Infinity]}'
    assert jsondoc.dumps({"big": 2**70}) == b'{"big":1180591620717411303424}'
    assert jsondoc.dumps({3: "int key"}) == b'{"3":"int key"}'
    assert jsondoc.dumps({"é": "\u2028\x1f"}) == '{"é":"\u2028\\u001f"}'.encode()
    with pytest.raises(TypeError):
        jsondoc.dumps({"when": datetime(2026, 12, 7, tzinfo=UTC)})  # orjson would write it; JSON has no date


def test_dumps_holds_no_more_memory_than_its_bytes():
    # orjson's own result keeps the buffer it wrote into (some 32 KB for a 3.6 KB document); a page of payloads
    # kept so would hold ten times its size
    document = {"content": "word " * 700, "ids": list(range(50))}
    tracemalloc.start()
    try:
        kept = [jsondoc.dumps(document) for _ in range(200)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1.5 * sum(map(len, kept))
