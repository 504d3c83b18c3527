"""The session's work and how it runs: the :data:`Runner` protocol and the synchronous
:func:`run_now`, cancellable :class:`Job` s, the :func:`snapshot` of a case a worker may touch,
and :func:`load_on_grid`, the worker that loads a case on its common grid. Qt-free: the UI's
runner (:meth:`mriviewer.ui.workers.WorkerPool.start`) puts the same functions on superqt
workers.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mriviewer.core.errors import MriViewerError

__all__ = ["Runner", "run_now", "Job", "until_cancelled", "snapshot", "LoadedCase", "load_on_grid"]

#: ``run(func, *args, on_yield=None, on_return=None, on_error=None, cancel=None, **kwargs)``.
Runner = Callable[..., Any]


def run_now(func: Callable, *args, on_yield=None, on_return=None, on_error=None, cancel=None, **kwargs) -> None:
    """The synchronous :data:`Runner`: ``func(*args, **kwargs)`` now (a generator is driven to
    its end, each item to ``on_yield``), then ``on_return(result)``. An exception of ``func``
    goes to ``on_error`` (raised without one); ``cancel`` is not needed here."""

    def fail(exc: Exception) -> None:
        if on_error is None:
            raise exc
        on_error(exc)

    try:
        result = func(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - handed to on_error, as a worker does
        fail(exc)
        return
    if inspect.isgenerator(result):
        gen = result
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            except Exception as exc:  # noqa: BLE001
                fail(exc)
                return
            if on_yield is not None:
                on_yield(item)
    if on_return is not None:
        on_return(result)


def snapshot(case):
    """A copy of ``case`` that a worker thread may read and write (its own modalities, sources
    and errors list) while the GUI thread goes on with the case itself (e.g. renames a
    modality)."""
    return dataclasses.replace(case, modalities={m: dataclasses.replace(src) if dataclasses.is_dataclass(src) else src
                                                 for m, src in case.modalities.items()},
                               errors=list(case.errors))


@dataclass
class LoadedCase:
    """What :func:`load_on_grid` returns: the modalities on the common grid, the grid's
    modality (``None``: native grids), the segmentation on it, each file's own grid
    ``{modality: (affine, shape)}`` and the errors the load found (for the case's list)."""

    volumes: dict
    reference: str | None
    segmentation: object | None
    native: dict
    errors: list[str] = field(default_factory=list)


def load_on_grid(case, modality: str, grid: str, cache) -> LoadedCase:
    """Worker: every modality of ``case`` (a :func:`snapshot`) decoded and put on the common
    ``grid`` (:func:`mriviewer.cache.grid.case_on_grid`), with each file's own grid for the
    readout. The messages ``case_on_grid`` adds to the snapshot's errors are returned, not
    applied.

    Raises:
        MriViewerError: ``modality`` cannot be loaded (the message names the file).
    """
    from mriviewer.cache.grid import case_on_grid

    before = len(case.errors)
    vols, reference, seg = case_on_grid(case, cache, None, grid)
    if modality not in vols:
        cache.get(case.modalities[modality])  # raises the load error, naming the file
    native = {}
    for m in vols:
        try:
            src = cache.get(case.modalities[m])
            native[m] = (src.affine, src.shape)
        except MriViewerError:
            pass
    return LoadedCase(vols, reference, seg, native, list(case.errors[before:]))


class Job:
    """One piece of work started by the session; :meth:`cancel` makes it stop (a generator
    before its next item) and drops its results."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop; what it still returns is dropped (thread-safe)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()


def until_cancelled(gen_func: Callable, job: Job) -> Callable:
    """``gen_func`` as a generator function that ends before its next item once ``job`` is
    cancelled, closing the inner generator in the worker's own thread."""

    def run(*args, **kwargs):
        gen = gen_func(*args, **kwargs)
        try:
            while not job.cancelled:
                try:
                    item = next(gen)
                except StopIteration as stop:
                    return stop.value
                yield item
            return None
        finally:
            gen.close()

    return run
