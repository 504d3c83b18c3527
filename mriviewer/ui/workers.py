"""Thin Qt workers around the engine, built on superqt's ``create_worker`` (the napari
``thread_worker`` pattern): a generator's ``yield`` becomes a ``yielded`` signal delivered on
the GUI thread, its return value ``returned``, an exception ``errored``. The window keeps a
reference to each running worker so that it is not garbage-collected mid-run.

:meth:`WorkerPool.start` is the runner :class:`mriviewer.app.session.Session` is given, so
every callback of the session runs on the GUI thread. :meth:`WorkerPool.close` is how the
window quits: it asks every running job to stop, drops every result still to come, and waits
(bounded) for the threads, so none of them is still running when Qt deletes the objects their
signals come from.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

from PySide6 import QtCore
from superqt.utils import create_worker

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)


class WorkerPool:
    """Starts workers and keeps them alive until they finish.

    Args:
        owner: the widget whose methods the callbacks call; once it has been deleted (the window
            closed while a worker still runs), results are dropped instead of touching it.
    """

    def __init__(self, owner=None) -> None:
        self._running: set = set()
        self._cancels: dict = {}
        self._owner = owner
        self.closed = False

    def _guard(self, callback):
        if callback is None:
            return None
        import shiboken6

        owner = self._owner

        def guarded(*args):
            if self.closed or (owner is not None and not shiboken6.isValid(owner)):
                return
            callback(*args)

        return guarded

    def _skip_when_closed(self, func: Callable) -> Callable:
        """``func`` that does nothing when it only gets to run after :meth:`close` (queued
        behind other workers, or started by a timer); generator functions stay generators."""
        if inspect.isgeneratorfunction(func):
            def gen_job(*args, **kwargs):
                if self.closed:
                    return None
                return (yield from func(*args, **kwargs))
            return gen_job

        def job(*args, **kwargs):
            if self.closed:
                return None
            return func(*args, **kwargs)
        return job

    def start(self, func: Callable, *args, on_yield=None, on_return=None, on_error=None,
              on_finish=None, cancel: Callable[[], None] | None = None, **kwargs):
        """Run ``func(*args, **kwargs)`` (a function or generator function) off the GUI thread.
        ``cancel`` is how :meth:`close` asks it to stop (default: a generator worker's
        ``quit``, which stops it at its next ``yield``; a plain function runs to its end).

        Returns:
            the superqt worker (``FunctionWorker`` or ``GeneratorWorker``), or ``None`` after
            :meth:`close`.
        """
        if self.closed:
            return None
        # superqt re-raises a worker's exception in the event loop unless told it is handled:
        # with ``on_error`` it is (a traceback on stderr as well would say the app crashed).
        worker = create_worker(self._skip_when_closed(func), *args, _start_thread=False,
                               _ignore_errors=on_error is not None, **kwargs)
        on_yield, on_return, on_error, on_finish = (
            self._guard(cb) for cb in (on_yield, on_return, on_error, on_finish))
        if on_yield is not None and hasattr(worker, "yielded"):
            worker.yielded.connect(on_yield)
        if on_return is not None:
            worker.returned.connect(on_return)
        if on_error is not None:
            worker.errored.connect(on_error)
        self._running.add(worker)
        self._cancels[worker] = cancel or (worker.quit if hasattr(worker, "yielded") else None)

        def done(w=worker):
            self._running.discard(w)
            self._cancels.pop(w, None)
            if on_finish is not None:
                on_finish()

        worker.finished.connect(done)
        worker.start()
        return worker

    @property
    def busy(self) -> bool:
        """Whether a worker started here has not finished yet."""
        return bool(self._running)

    def close(self, timeout_s: float = 2.0) -> bool:
        """Stop: ask every running worker to stop (its ``cancel``), drop the results still to
        come, and wait up to ``timeout_s`` for the threads. Returns whether they all ended."""
        self.closed = True
        for worker in list(self._running):
            cancel = self._cancels.get(worker)
            if cancel is not None:
                try:
                    cancel()
                except RuntimeError:  # its Qt side is gone already
                    pass
        pool = QtCore.QThreadPool.globalInstance()
        done = pool.waitForDone(max(0, int(timeout_s * 1000)))
        if not done:
            log.warning("%d worker(s) still running %.1f s after quitting", pool.activeThreadCount(), timeout_s)
        return done
