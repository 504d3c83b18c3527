"""Decoding several series at once in worker processes.

pydicom parsing is bound by the Python interpreter, so threads do not speed it up; processes do.
A persistent pool of ``spawn``-ed workers (safe next to Qt and torch threads) decodes each
source and hands the voxels back through shared memory (``multiprocessing.shared_memory``), so a
512×512×150 series crosses between processes as one memcpy instead of a pickle through a pipe.
The pool starts on first use (about a second) and lives until the program ends.

As with any ``spawn``-based multiprocessing, a script that drives mriviewer must keep its
top-level code under ``if __name__ == "__main__":`` (the ``mriviewer`` command does), because each
worker imports the main module. ``MRIVIEWER_PROCESSES=1`` decodes in-process instead.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context, shared_memory
from pathlib import Path

import numpy as np

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.data.cases import ModalitySource

__all__ = ["decode_pool", "decode_many", "default_processes", "warm_up"]

_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def default_processes() -> int:
    """Worker count: ``$MRIVIEWER_PROCESSES`` or the CPU count, at most 8."""
    env = os.environ.get("MRIVIEWER_PROCESSES")
    if env and env.isdigit():
        return max(1, int(env))
    return max(1, min(os.cpu_count() or 1, 8))


def _init_worker() -> None:
    """Worker set-up: leave Ctrl-C to the main process (no KeyboardInterrupt traceback per
    worker), and end when the main process ends, however it ends (SIGTERM, SIGKILL, a crash):
    ``ProcessPoolExecutor`` workers would otherwise wait for work forever, holding the resource
    tracker open, so it could not unlink their shared memory."""
    import signal
    from multiprocessing import connection, parent_process

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = parent_process()
    if parent is None:
        return

    def watch() -> None:
        connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="mriviewer-parent-watch", daemon=True).start()


def decode_pool(processes: int | None = None) -> ProcessPoolExecutor:
    """The shared worker pool (created on first call)."""
    global _pool, _pool_size
    n = processes or default_processes()
    with _lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(n, mp_context=get_context("spawn"), initializer=_init_worker)
            _pool_size = n
        return _pool


def warm_up(processes: int | None = None) -> None:
    """Start the pool's worker processes now (returns at once): they take about a second to
    spawn and import, which the first case shown would otherwise wait for. Does nothing when
    decoding runs in-process (one process)."""
    n = processes or default_processes()
    if n >= 2:
        decode_pool(n).submit(_ready)


def _ready() -> bool:
    return True


@atexit.register
def _shutdown() -> None:
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)


def _decode_shared(source: ModalitySource) -> dict:
    """Worker job: decode ``source``; voxels go into a new shared-memory block.

    The block stays registered with the resource tracker, which a ``spawn``-ed worker shares with
    the main process (multiprocessing passes its descriptor on): the main process unregisters it
    when it unlinks the block (:func:`_receive`), and if the main process dies first (Ctrl-C,
    SIGTERM, a crash) the tracker unlinks it, so nothing is left in ``/dev/shm``.
    """
    try:
        vol = source.load()
    except MriViewerError as exc:
        return {"error": str(exc)}
    data = vol.data
    order = "F" if data.flags.f_contiguous and not data.flags.c_contiguous else "C"
    shm = shared_memory.SharedMemory(create=True, size=max(data.nbytes, 1))
    np.ndarray(data.shape, data.dtype, buffer=shm.buf, order=order)[...] = data
    name = shm.name
    shm.close()
    return {"shm": name, "shape": data.shape, "dtype": data.dtype.str, "order": order,
            "affine": vol.affine, "modality": vol.modality, "sources": [str(p) for p in vol.sources],
            "meta": vol.meta}


def _receive(result: dict, source: ModalitySource) -> Volume:
    if "error" in result:  # already "path: reason"
        err = LoadError(source.path, "")
        err.args = (result["error"],)
        raise err
    shm = shared_memory.SharedMemory(name=result["shm"])
    try:
        view = np.ndarray(result["shape"], np.dtype(result["dtype"]), buffer=shm.buf, order=result["order"])
        data = view.copy(order="K")
    finally:
        shm.close()
        shm.unlink()
    return Volume(data, result["affine"], result["modality"], [Path(p) for p in result["sources"]], result["meta"])


def decode_many(sources: Sequence[ModalitySource], processes: int | None = None) -> list[Volume | MriViewerError]:
    """Decode ``sources`` in parallel; returns a Volume or the error, in order.

    Falls back to decoding in this process when only one process is asked for.
    """
    n = processes or default_processes()
    if n < 2 or len(sources) < 2:
        out: list[Volume | MriViewerError] = []
        for s in sources:
            try:
                out.append(s.load())
            except MriViewerError as exc:
                out.append(exc)
        return out
    pool = decode_pool(n)
    futures: list[Future] = [pool.submit(_decode_shared, s) for s in sources]
    results: list[Volume | MriViewerError] = []
    for s, fut in zip(sources, futures, strict=True):
        try:
            results.append(_receive(fut.result(), s))
        except MriViewerError as exc:
            results.append(exc)
        except Exception as exc:  # a worker died
            results.append(LoadError(s.path, f"worker process failed ({type(exc).__name__}: {exc})"))
    return results
