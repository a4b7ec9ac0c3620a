"""`ContextPool`: tasks see the submitter's context variables (Prefect's flow run, for their log lines)."""

from __future__ import annotations

import contextvars
import threading

from itsm_core.threads import ContextPool

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
