"""Threads that keep the caller's context: Prefect keeps the running flow in context variables, and a log line
emitted on a thread without it reaches the worker's terminal but not the run's logs in the UI."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class ContextPool(ThreadPoolExecutor):
    """A `ThreadPoolExecutor` whose tasks run in a copy of the submitter's context (one copy per task: a context
    cannot be entered by two threads at once). `map` goes through `submit`, so it does too."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


def context_thread(target: Callable[[], object], *, name: str) -> threading.Thread:
    """A daemon thread (not started) that runs `target` in a copy of the creator's context."""
    return threading.Thread(target=contextvars.copy_context().run, args=(target,), name=name, daemon=True)
