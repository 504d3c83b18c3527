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
    """Starts workers and keeps them alive until they finish.

    Args:
        owner: the widget whose methods the callbacks call; once it has been deleted (the window
            closed while a worker still runs), results are dropped instead of touching it.
    """

    def __init__(self, owner=None) -> None:
        self._running: set = set()
        self._owner = owner

    def _guard(self, callback):
        if callback is None or self._owner is None:
            return callback
        import shiboken6

        owner = self._owner

        def guarded(*args):
            if shiboken6.isValid(owner):
                callback(*args)

        return guarded

    def start(self, func: Callable, *args, on_yield=None, on_return=None, on_error=None,
              on_finish=None, **kwargs):
        """Run ``func(*args, **kwargs)`` (a function or generator function) off the GUI thread.

        Returns:
            the superqt worker (``FunctionWorker`` or ``GeneratorWorker``).
        """
        # superqt re-raises a worker's exception in the event loop unless told it is handled:
        # with ``on_error`` it is (a traceback on stderr as well would say the app crashed).
        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=on_error is not None, **kwargs)
        on_yield, on_return, on_error, on_finish = (
            self._guard(cb) for cb in (on_yield, on_return, on_error, on_finish))
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
