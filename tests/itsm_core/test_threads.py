"""`ContextPool`: tasks see the submitter's context variables (Prefect's flow run, for their log lines);
`short_gil_slices`: overlapping blocks share the short slice and the last to end restores the one before."""

from __future__ import annotations

import contextvars
import sys
import threading

from itsm_core.threads import ContextPool, short_gil_slices

RUN = contextvars.ContextVar("RUN", default=None)


def test_tasks_run_in_the_submitters_context_on_the_pools_threads():
    def seen(_: int) -> tuple[str | None, str]:
        return RUN.get(), threading.current_thread().name

    token = RUN.set("flow-run-7")
    try:
        with ContextPool(max_workers=3, thread_name_prefix="pool") as pool:
            results = list(pool.map(seen, range(12)))
    finally:
        RUN.reset(token)
    assert {run for run, _ in results} == {"flow-run-7"}
    assert all(name.startswith("pool") for _, name in results)
    with ContextPool(max_workers=1) as pool:
        assert pool.submit(RUN.get).result() is None  # a later submitter's context, not the first one's


def test_overlapping_short_slices_end_with_the_interval_that_was_there_before():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)  # not CPython's default: the one in force is what comes back
    try:
        first, second = short_gil_slices(0.001), short_gil_slices(0.001)
        first.__enter__()
        second.__enter__()
        assert sys.getswitchinterval() == 0.001
        first.__exit__(None, None, None)
        assert sys.getswitchinterval() == 0.001  # the second block still runs
        second.__exit__(None, None, None)
        assert sys.getswitchinterval() == 0.004
    finally:
        sys.setswitchinterval(before)
