"""The session's work and how it runs: the :data:`Runner` protocol and the synchronous
:func:`run_now`, cancellable :class:`Job` s, the :func:`snapshot` of a case a worker may touch,
:func:`load_on_grid`, the worker that loads a case on its common grid, the generator workers
:func:`load_steps` and :func:`prefetch_steps` that decode a case into the cache a pool's worth
of files at a time (so a load or prefetch no longer wanted stops between two), the
:class:`DecodeLane` that keeps quick selections from piling up decodes, and
:func:`open_checkpoint`. Qt-free: the UI's runner
(:meth:`mriviewer.ui.workers.WorkerPool.start`) puts the same functions on superqt workers.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mriviewer.core.errors import MriViewerError

__all__ = ["Runner", "run_now", "Job", "until_cancelled", "unless_cancelled", "as_job", "snapshot", "LoadedCase",
           "load_on_grid", "case_sources", "decode_steps", "load_steps", "prefetch_steps", "DecodeLane",
           "neighbour", "open_checkpoint", "load_warnings"]

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


def load_warnings(case, snap, result: LoadedCase) -> list[tuple[str, str, list[str]]]:
    """``(file, title, messages)``: the loaders' warnings of a load of ``case`` (from its
    ``snap``): its segmentation's, and each modality file's."""
    out = []
    if snap.segmentation is not None:
        src = str(snap.segmentation)
        seg = result.segmentation
        msgs = (seg.meta.get("warnings") or []) if seg is not None else [e for e in case.errors if src in e]
        out.append((src, f"Case {case.case_id} segmentation:", msgs))
    for m, vol in result.volumes.items():
        out.append((str(snap.modalities[m].path), f"Case {case.case_id} {m} loaded with warnings:",
                    vol.meta.get("warnings") or []))
    return out


def case_sources(case) -> list:
    """What loading ``case`` decodes: its modalities' sources and its segmentation's."""
    from mriviewer.data.cases import ModalitySource

    sources = list(case.modalities.values())
    if case.segmentation is not None:
        sources.append(ModalitySource("SEG", case.segmentation, "nifti"))
    return sources


def _chunks(sources: list) -> list[list]:
    """``sources`` in groups the decoding pool takes at once (its size,
    :func:`~mriviewer.cache.pool.default_processes`); no group of one when the pool is several
    processes (a single file is decoded in this process)."""
    from mriviewer.cache.pool import default_processes

    n = default_processes()
    size = n if n >= 2 else 1
    chunks = [sources[i:i + size] for i in range(0, len(sources), size)]
    if size > 1 and len(chunks) > 1 and len(chunks[-1]) == 1:
        last = chunks.pop()
        chunks[-1] += last
    return chunks


def decode_steps(sources: list, cache):
    """Generator: decode ``sources`` into ``cache``
    (:meth:`~mriviewer.cache.memory.VolumeCache.get_many`: in parallel worker processes) a pool's
    worth at a time, yielding ``(done, total)`` after each group, so a job no longer wanted stops
    after the files it is decoding and submits no more. Errors are left to the load, which
    names the file."""
    done = 0
    for chunk in _chunks(list(sources)):
        cache.get_many(chunk)
        done += len(chunk)
        yield done, len(sources)


def load_steps(case, modality: str, grid: str, cache):
    """Generator worker: :func:`load_on_grid`, its files decoded by :func:`decode_steps` first
    (yields ``(done, total)``; returns the :class:`LoadedCase`)."""
    yield from decode_steps(case_sources(case), cache)
    return load_on_grid(case, modality, grid, cache)


def prefetch_steps(case, cache, grid: str = "auto"):
    """Generator worker: ``case`` (a :func:`snapshot`) into ``cache`` and nothing else, so that
    showing it next is quick: its files decoded (:func:`decode_steps`), then, with a disk cache,
    each modality put on the common ``grid`` and stored there
    (:func:`~mriviewer.cache.grid.case_on_grid`; resampling takes longer than decoding), one
    modality per step. Yields ``(done, total)`` of each phase."""
    yield from decode_steps(case_sources(case), cache)
    if getattr(cache, "disk", None) is None or grid == "native":
        return
    from mriviewer.cache.grid import case_on_grid

    bare = dataclasses.replace(case, segmentation=None, errors=[])  # the load resamples the mask
    for n, m in enumerate(case.modalities, start=1):
        try:
            case_on_grid(bare, cache, [m], grid)
        except MriViewerError:
            pass  # the load says what is wrong
        yield n, len(case.modalities)


class DecodeLane:
    """The session's decoding jobs (loads and prefetches), so that quick selections do not pile
    up decodes: at most ``slots`` run at once (a superseded one ends after the files it is
    decoding); a load that must wait is kept until one ends (only the latest, the others are
    dropped); a load of the case being prefetched waits for that prefetch instead of decoding
    the same files again.

    Attributes:
        running: decoding jobs started and not ended.
        prefetching: ``(case id, Job)`` of the latest prefetch, or ``None``.
    """

    def __init__(self, slots: int = 2) -> None:
        self.slots = slots
        self.running = 0
        self.prefetching: tuple[str, Job] | None = None
        self._pending: tuple[str, Callable[[], Any]] | None = None
        self._shown: str | None = None

    def after(self, order: list[str], case_id: str) -> str | None:
        """The case to prefetch once ``case_id`` is shown: :func:`neighbour` in ``order``, going
        the way the user went from the case shown before."""
        previous, self._shown = self._shown, case_id
        return neighbour(order, case_id, previous)

    def prefetch_started(self, case_id: str, job: Job | None) -> None:
        """``job`` prefetches ``case_id`` (``None``: it did not start)."""
        self.prefetching = (case_id, job) if job is not None else None

    def prefetches(self, case_id: str) -> bool:
        """Whether a prefetch of ``case_id`` is under way."""
        p = self.prefetching
        return p is not None and p[0] == case_id and not p[1].cancelled and not p[1].finished

    @property
    def free(self) -> bool:
        """Whether a job may start now."""
        return self.running < self.slots

    def request(self, case_id: str, start: Callable[[], Any]):
        """Run ``start()`` (the load of ``case_id``) now when it may, else once its turn comes,
        instead of any load still waiting. Returns what ``start`` returns, or ``None``."""
        self._pending = (case_id, start)
        return self._next()

    def drop(self) -> None:
        """Forget the load waiting and the case shown (another dataset)."""
        self._pending = self._shown = None

    def started(self) -> None:
        """A decoding job starts (call it before the runner may end it)."""
        self.running += 1

    def ended(self, job: Job) -> None:
        """A decoding job ended, finished or cancelled: the load waiting may start."""
        self.running = max(0, self.running - 1)
        if self.prefetching is not None and self.prefetching[1] is job:
            self.prefetching = None
        self._next()

    def _next(self):
        if self._pending is None or not self.free or self.prefetches(self._pending[0]):
            return None
        _, start = self._pending
        self._pending = None
        return start()


def neighbour(order: list[str], case_id: str, previous: str | None) -> str | None:
    """The case after ``case_id`` in ``order`` (the one before when ``previous``, the case shown
    before it, comes after it: the user is going backwards), or ``None``."""
    if case_id not in order:
        return None
    i = order.index(case_id)
    back = previous in order and order.index(previous) > i
    j = i - 1 if back else i + 1
    return order[j] if 0 <= j < len(order) else None


def open_checkpoint(open_predictor: Callable, path, modalities: list[str] | None, cases: list, dataset=None):
    """Worker: ``open_predictor(path, "auto", modalities)``, then each of ``cases`` (snapshots
    of ``dataset``'s) placed in the checkpoint's split here
    (:meth:`~mriviewer.ml.predict.Predictor.role_of` reads each case's files for its content
    fingerprint, seconds on a large dataset, and keeps it), so the browser's Split column is
    read on the GUI thread without touching a file."""
    predictor = open_predictor(path, "auto", modalities)
    for case in cases:
        try:
            predictor.role_of(case, dataset)
        except Exception:  # noqa: BLE001 - AppModel.split_of shows "?" for it
            pass
    return predictor


class Job:
    """One piece of work started by the session; :meth:`cancel` makes it stop (a generator
    before its next item) and drops its results."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._cancelled = threading.Event()
        self.finished = False  # its runner called back (set on the callbacks' thread)

    def cancel(self) -> None:
        """Ask the job to stop; what it still returns is dropped (thread-safe)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()


def until_cancelled(gen_func: Callable, job: Job) -> Callable:
    """``gen_func`` as a generator function that ends before its next item once ``job`` is
    cancelled (before its first when it was cancelled while queued), closing the inner
    generator in the worker's own thread."""

    @functools.wraps(gen_func)
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


def unless_cancelled(func: Callable, job: Job) -> Callable:
    """``func`` that does nothing (returns ``None``) when ``job`` was cancelled while it waited
    for a thread."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        return None if job.cancelled else func(*args, **kwargs)

    return run


def as_job(func: Callable, job: Job, stoppable: bool = True) -> Callable:
    """``func`` run as ``job``: a plain function does not start once cancelled
    (:func:`unless_cancelled`); a generator function stops at its next item
    (:func:`until_cancelled`) unless not ``stoppable``."""
    if not inspect.isgeneratorfunction(func):
        return unless_cancelled(func, job)
    return until_cancelled(func, job) if stoppable else func
