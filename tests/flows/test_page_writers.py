"""`written_in_order`: pages handed to writers a bounded number at once, reported in plan order; a page sharing an
identity with a page in flight waits for it; a failure waits for the pages in flight and stops the rest. A writer
process keeps what it set up out of the garbage collector's passes."""

from __future__ import annotations

import gc
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from flows.page_writers import start_writer, written_in_order
from itsm_core.config import parse_config
from itsm_core.models import RawRecord, utcnow
from itsm_core.sync.batch import BatchReport


def page(*identities: str) -> list[RawRecord]:
    return [RawRecord(external_id=i, payload=b"{}", payload_format="json", received_at=utcnow()) for i in identities]


class Writers:
    """Writers on threads that note when each page starts and ends, and how many run at once."""

    def __init__(self, width: int, seconds: dict[str, float] | None = None, fail: str | None = None) -> None:
        self.pool = ThreadPoolExecutor(width)
        self.seconds, self.fail = seconds or {}, fail
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.spans: dict[str, tuple[float, float]] = {}

    def submit(self, records: list[RawRecord]):
        return self.pool.submit(self.write, records)

    def write(self, records: list[RawRecord]) -> BatchReport:
        first = records[0].external_id
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        started = time.perf_counter()
        time.sleep(self.seconds.get(first, 0.01))
        with self.lock:
            self.running -= 1
            self.spans[first] = (started, time.perf_counter())
        if first == self.fail:
            raise RuntimeError(f"page {first} refused")
        return BatchReport(fetched=len(records))


def test_pages_are_reported_in_plan_order_with_at_most_width_in_flight():
    writers = Writers(4, seconds={"p0": 0.15, "p1": 0.01, "p2": 0.08})
    pages = [(n, page(f"p{n}", f"q{n}")) for n in range(8)]
    seen = [(n, report.fetched) for n, _, report in written_in_order(pages, writers.submit, width=2)]
    assert seen == [(n, 2) for n in range(8)]  # plan order, though p1 was written long before p0
    assert writers.most == 2  # two at once, never more, though the pool has four threads
    assert writers.spans["p1"][1] < writers.spans["p0"][1]


def test_a_page_holding_an_identity_in_flight_waits_for_that_page():
    writers = Writers(3, seconds={"a": 0.2})
    pages = [(0, page("a", "b")), (1, page("c")), (2, page("d", "a"))]  # "a" again: modified during the walk
    list(written_in_order(pages, writers.submit, width=3))
    assert writers.spans["d"][0] >= writers.spans["a"][1]  # its newer version is written after the older one
    assert writers.spans["c"][0] < writers.spans["a"][1]  # an unrelated page did not wait


def test_a_page_without_records_is_written_by_nobody_and_reported_in_its_turn():
    writers = Writers(2)
    pages = [(0, page("a")), (1, []), (2, page("b"))]
    seen = [(n, report.fetched) for n, _, report in written_in_order(pages, writers.submit, width=2)]
    assert seen == [(0, 1), (1, 0), (2, 1)]
    assert set(writers.spans) == {"a", "b"}


def test_a_failed_page_stops_the_rest_after_the_pages_in_flight_are_over():
    writers = Writers(3, seconds={"p2": 0.3}, fail="p1")
    pages = [(n, page(f"p{n}")) for n in range(6)]
    reported = []
    with pytest.raises(RuntimeError, match="page p1 refused"):
        for n, _, _ in written_in_order(pages, writers.submit, width=3):
            reported.append(n)
    assert reported == [0]  # nothing after the failed page is reported: its watermark is never committed
    assert "p2" in writers.spans  # the page in flight finished before the failure was raised
    assert not {"p4", "p5"} & set(writers.spans)  # and no page was handed over after it


def frozen_objects() -> int:
    return gc.get_freeze_count()


def test_a_writer_process_keeps_what_it_set_up_out_of_the_collectors_passes(tmp_path):
    config = parse_config(
        f"database_url: sqlite:///{tmp_path / 'store.db'}\n"
        "sources: [{name: glpi, kind: glpi, url: 'http://127.0.0.1:9/apirest.php', user_token: t}]\n"
    )
    context = multiprocessing.get_context("spawn")  # as Prefect's ProcessPoolTaskRunner starts them
    with ProcessPoolExecutor(1, context, initializer=start_writer, initargs=(config, "glpi")) as pool:
        assert pool.submit(frozen_objects).result() > 10_000  # the libraries and the runtime: frozen once
