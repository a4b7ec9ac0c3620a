"""`fetched_pages`: a source's pages planned and fetched on their own thread, a bounded number ahead of the writer,
in plan order; a failure there surfaces at its page; a writer that stops early stops the fetching."""

from __future__ import annotations

import contextvars
import gc
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import TICKETS, SourceConnector
from flows.sync import fetched_pages
from itsm_core.models import RawRecord, utcnow

RUN = contextvars.ContextVar("RUN", default=None)


class Pages(SourceConnector):
    """Pages 0..count-1 of one record each; fetching page `fail_at` raises."""

    payload_format = "json"

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.fetched: list[int] = []
        self.threads: set[str] = set()
        self.contexts: set[str | None] = set()

    def plan_pages(self, watermark: str | None, entity: str = TICKETS) -> Iterator[int]:
        yield from range(self.count)

    def page_watermark(self, page: Any, watermark: str | None) -> str | None:
        return str(page)

    def fetch_page(self, page: int) -> list[RawRecord]:
        self.threads.add(threading.current_thread().name)
        self.contexts.add(RUN.get())
        if page == self.fail_at:
            raise RuntimeError(f"upstream refused page {page}")
        self.fetched.append(page)
        return [RawRecord(external_id=str(page), payload=b"{}", payload_format="json", received_at=utcnow())]

    def decode(self, payload: bytes, entity: str = TICKETS) -> dict[str, Any]:
        return {}


def test_pages_come_in_plan_order_fetched_on_another_thread_a_bounded_number_ahead():
    connector = Pages(10)
    seen = []
    for page, records in fetched_pages(connector, None, TICKETS, ahead=2):
        time.sleep(0.02)  # the writer is slower: the fetcher waits for room instead of running away
        assert len(connector.fetched) <= page + 1 + 2 + 1  # this page, two queued, one in hand
        seen.append((page, [r.external_id for r in records]))
    assert seen == [(n, [str(n)]) for n in range(10)]
    assert connector.threads == {"fetch-tickets"}


def test_a_failure_while_fetching_surfaces_after_the_pages_before_it():
    connector = Pages(10, fail_at=4)
    seen = []
    with pytest.raises(RuntimeError, match="refused page 4"):
        for page, _ in fetched_pages(connector, None, TICKETS):
            seen.append(page)
    assert seen == [0, 1, 2, 3]


def test_a_writer_that_stops_early_stops_the_fetching():
    connector = Pages(1000)
    pages = fetched_pages(connector, None, TICKETS, ahead=1)
    assert next(pages)[0] == 0
    pages.close()  # the writer failed on page 0
    assert not [t for t in threading.enumerate() if t.name == "fetch-tickets"]
    assert len(connector.fetched) <= 3


def test_pages_are_fetched_in_the_callers_context():
    """Prefect keeps the flow run in context variables: the connector's log lines belong to the run only if the
    fetching thread runs in the caller's context."""
    connector = Pages(3)
    token = RUN.set("flow-run-7")
    try:
        list(fetched_pages(connector, None, TICKETS))
    finally:
        RUN.reset(token)
    assert connector.contexts == {"flow-run-7"}


def test_what_lives_across_the_pages_is_kept_out_of_the_collectors_passes_until_the_walk_ends():
    assert gc.get_freeze_count() == 0
    for _ in fetched_pages(Pages(3), None, TICKETS):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError):
        for _ in fetched_pages(Pages(3, fail_at=1), None, TICKETS):
            assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0  # a failed walk unfreezes as well


def test_the_writer_gets_the_gil_back_sooner_while_pages_are_fetched_ahead():
    default = sys.getswitchinterval()
    for _ in fetched_pages(Pages(3), None, TICKETS):
        assert sys.getswitchinterval() < default
    assert sys.getswitchinterval() == default
    with pytest.raises(RuntimeError):
        for _ in fetched_pages(Pages(3, fail_at=1), None, TICKETS):
            assert sys.getswitchinterval() < default
    assert sys.getswitchinterval() == default
