"""The in-memory LRU cache of decoded volumes in front of the disk cache, and the process-wide
instance shared by the viewer and the engine (:func:`default_cache`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable

from mriviewer.cache.disk import DiskCache, default_cache_dir
from mriviewer.cache.keys import source_key
from mriviewer.core.errors import MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.data.cases import ModalitySource


def _decode_to_disk(source: ModalitySource, key: tuple, disk_root: str) -> str | None:
    """Worker-process job: decode ``source`` into the disk cache. Returns an error message or
    ``None``."""
    try:
        vol = source.load()
    except MriViewerError as exc:
        return str(exc)
    DiskCache(disk_root).save(key, vol, evict=False)
    return None


class VolumeCache:
    """Memory LRU (``max_bytes`` of voxels) in front of an optional :class:`DiskCache`.

    Args:
        max_bytes: memory budget for cached voxel arrays (default 2 GiB).
        disk: the disk cache, or ``None`` for memory only.
    """

    def __init__(self, max_bytes: int = 2 << 30, disk: DiskCache | None = None) -> None:
        self.max_bytes = max_bytes
        self.disk = disk
        self._items: OrderedDict[tuple, Volume] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = 0
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0

    def _key(self, source: ModalitySource) -> tuple | None:
        try:
            return source_key(source)
        except OSError:  # cannot stat: decode uncached, and let the reader say what is wrong
            return None

    def _cached(self, key: tuple | None) -> Volume | None:
        """The volume for ``key`` from memory, else from disk (then kept in memory)."""
        if key is None:
            return None
        with self._lock:
            vol = self._items.get(key)
            if vol is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return vol
        if self.disk is not None:
            vol = self.disk.load(key)
            if vol is not None:
                self.disk_hits += 1
                self._remember(key, vol)
                return vol
        return None

    def _store(self, key: tuple | None, vol: Volume) -> None:
        """A freshly decoded volume: count the miss, write it to disk, keep it in memory."""
        self.misses += 1
        if key is not None:
            if self.disk is not None:
                self.disk.save(key, vol)
            self._remember(key, vol)

    def get(self, source: ModalitySource) -> Volume:
        """The decoded volume of ``source`` (memory, then disk, then decoded).

        Raises:
            LoadError: the source cannot be read (see :func:`mriviewer.io.readers.load_volume`).
        """
        key = self._key(source)
        vol = self._cached(key)
        if vol is None:
            vol = source.load()
            self._store(key, vol)
        return vol

    def _remember(self, key: tuple, vol: Volume) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.data.nbytes
            self._items[key] = vol
            self._bytes += vol.data.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.data.nbytes

    def get_many(self, sources: list[ModalitySource], processes: int | None = None) -> list[Volume | MriViewerError]:
        """Like :meth:`get` for several sources, decoding the uncached ones in parallel worker
        processes (:func:`mriviewer.cache.pool.decode_many`). Returns volumes or errors, in order."""
        from mriviewer.cache.pool import decode_many

        keys = [self._key(src) for src in sources]
        out: list = [self._cached(key) for key in keys]
        todo = [n for n, vol in enumerate(out) if vol is None]
        decoded = decode_many([sources[n] for n in todo], processes)
        for n, vol in zip(todo, decoded, strict=True):
            out[n] = vol
            if isinstance(vol, Volume):
                self._store(keys[n], vol)
        return out

    def uncached(self, sources: Iterable[ModalitySource]) -> list[tuple[ModalitySource, tuple]]:
        """``[(source, key)]`` of the sources neither in memory nor in the disk cache (what a
        prefetch decodes); a source that cannot be stat-ed is left to :meth:`get`, which says
        what is wrong. Needs a disk cache."""
        todo = []
        for src in sources:
            try:
                key = source_key(src)
            except OSError:
                continue
            npy, meta = self.disk._paths(key)
            if key not in self._items and not (npy.exists() and meta.exists()):
                todo.append((src, key))
        return todo

    def prefetch(self, sources: Iterable[ModalitySource], processes: int | None = None) -> list[str]:
        """Run :meth:`prefetch_iter` to the end; returns the error messages."""
        return [err for _, _, err in self.prefetch_iter(sources, processes) if err]

    def prefetch_iter(self, sources: Iterable[ModalitySource], processes: int | None = None):
        """Decode the sources not yet cached in ``processes`` worker processes (default: the
        CPU count, at most 8), which write them to the disk cache. A generator: yields
        ``(done, total, error or None)`` after each source, so callers can show progress and
        stop early (closing the generator cancels the sources not yet started). Without a disk
        cache, or when fewer than two processes would be used, it yields nothing and
        :meth:`get` decodes on demand.

        Errors are messages naming the file; :meth:`get` retries such sources in-process.
        """
        if self.disk is None:
            return
        todo = self.uncached(sources)
        from mriviewer.cache.pool import decode_pool, default_processes

        processes = processes or default_processes()
        if min(processes, len(todo)) < 2:
            return

        pool = decode_pool(processes)  # the shared pool at its size: a smaller job must not rebuild it
        futures = [pool.submit(_decode_to_disk, src, key, str(self.disk.root)) for src, key in todo]
        try:
            for n, fut in enumerate(futures, start=1):
                try:
                    err = fut.result()
                except Exception as exc:  # a worker died; get() will retry in-process
                    err = f"{todo[n - 1][0].path}: {type(exc).__name__}: {exc}"
                yield n, len(futures), err
        finally:
            for fut in futures:
                fut.cancel()  # the ones not started yet
            self.disk.evict()  # the workers wrote without checking the budget

    def clear(self) -> None:
        """Empty the memory cache (the disk cache is kept; see :func:`clear_cache`)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)


_default: VolumeCache | None = None


def default_cache() -> VolumeCache:
    """The process-wide cache shared by the viewer and the engine, with the disk cache in
    :func:`default_cache_dir` (set ``MRIVIEWER_DISK_CACHE=0`` to keep it in memory only)."""
    global _default
    if _default is None:
        use_disk = os.environ.get("MRIVIEWER_DISK_CACHE", "1") != "0"
        _default = VolumeCache(disk=DiskCache(default_cache_dir()) if use_disk else None)
    return _default
