"""Thin Qt workers around the engine, built on superqt's ``create_worker`` (the napari
``thread_worker`` pattern): a generator's ``yield`` becomes a ``yielded`` signal delivered on
the GUI thread, its return value ``returned``, an exception ``errored``. The window keeps a
reference to each running worker so that it is not garbage-collected mid-run.
"""

from __future__ import annotations

from collections.abc import Callable

from superqt.utils import create_worker

__all__ = ["WorkerPool"]


class WorkerPool:
    """Starts workers and keeps them alive until they finish."""

    def __init__(self) -> None:
        self._running: set = set()

    def start(self, func: Callable, *args, on_yield=None, on_return=None, on_error=None,
              on_finish=None, **kwargs):
        """Run ``func(*args, **kwargs)`` (a function or generator function) off the GUI thread.

        Returns:
            the superqt worker (``FunctionWorker`` or ``GeneratorWorker``).
        """
        worker = create_worker(func, *args, _start_thread=False, **kwargs)
        if on_yield is not None and hasattr(worker, "yielded"):
            worker.yielded.connect(on_yield)
        if on_return is not None:
            worker.returned.connect(on_return)
        if on_error is not None:
            worker.errored.connect(on_error)
        self._running.add(worker)

        def done(w=worker):
            self._running.discard(w)
            if on_finish is not None:
                on_finish()

        worker.finished.connect(done)
        worker.start()
        return worker

    @property
    def busy(self) -> bool:
        return bool(self._running)
