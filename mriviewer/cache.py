"""Caches of decoded volumes: in memory (LRU) and on disk, keyed by the source files' identity.

The key of a source is its path plus the name, size and modification time (ns) of every file it
reads, plus :data:`CACHE_FORMAT` (bumped whenever a reader changes what it returns). An edited,
added or removed file changes the key, so the cache never serves stale data; stale entries are
simply never hit again and age out of the disk budget.

The disk cache keeps each volume as ``<sha1>.npy`` (voxels, as decoded) and
``<sha1>.json`` (affine, modality, sources, header facts and the full key, checked on read) in
``$MRIVIEWER_CACHE_DIR`` (default ``~/.cache/mriviewer/volumes``). Reopening a case or starting
another training run reads the ``.npy`` instead of parsing DICOM again.

:meth:`VolumeCache.prefetch` decodes many sources in parallel worker processes (pydicom parsing
is bound by the interpreter, so threads do not help; processes do), which write straight into the
disk cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .datasets import ModalitySource
from .errors import MriViewerError
from .volume import Volume

log = logging.getLogger(__name__)

__all__ = ["VolumeCache", "DiskCache", "source_key", "default_cache", "default_cache_dir", "CACHE_FORMAT"]

#: Version of what the readers return; part of every key.
CACHE_FORMAT = 4


def source_key(source: ModalitySource) -> tuple:
    """Identity of a source: ``(format, path, kind, 4D volume index, ((name, size, mtime_ns), …))``.

    Raises:
        OSError: the source cannot be listed or stat-ed.
    """
    path = Path(source.path)
    if source.files:
        stats = []
        for f in source.files:
            st = Path(f).stat()
            stats.append((str(f), st.st_size, st.st_mtime_ns))
    elif path.is_dir():
        # Every file of the folder (stat only, no open): adding, removing or editing any file
        # changes the key.
        with os.scandir(path) as it:
            stats = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in it if e.is_file())
    else:
        st = path.stat()
        stats = [(path.name, st.st_size, st.st_mtime_ns)]
    return (CACHE_FORMAT, str(path.resolve()), source.kind, source.volume_index, tuple(stats))


def default_cache_dir() -> Path:
    """``$MRIVIEWER_CACHE_DIR`` or ``~/.cache/mriviewer/volumes``."""
    env = os.environ.get("MRIVIEWER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "mriviewer" / "volumes"


class DiskCache:
    """Decoded volumes as ``.npy`` + ``.json`` files under ``root``, at most ``max_bytes``
    (oldest-used entries are deleted first)."""

    def __init__(self, root: str | Path, max_bytes: int = 20 << 30) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._size: int | None = None  # bytes on disk, from one scan plus what we wrote since

    @staticmethod
    def digest(key: tuple) -> str:
        return hashlib.sha1(repr(key).encode("utf-8")).hexdigest()

    def _paths(self, key: tuple) -> tuple[Path, Path]:
        h = self.digest(key)
        return self.root / f"{h}.npy", self.root / f"{h}.json"

    def load(self, key: tuple) -> Volume | None:
        """The cached volume for ``key``, or ``None`` (absent, unreadable or another key)."""
        npy, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("key") != repr(key):
                return None
            data = np.load(npy, allow_pickle=False)
            os.utime(meta_path)  # mark as recently used
        except (OSError, ValueError):
            return None
        return Volume(data, np.array(meta["affine"]), meta["modality"],
                      [Path(p) for p in meta["sources"]], meta.get("meta", {}))

    def save(self, key: tuple, vol: Volume, evict: bool = True) -> None:
        """Store ``vol`` (atomic: written under a temporary name, then renamed). Worker
        processes pass ``evict=False`` and leave the budget to the main process."""
        npy, meta_path = self._paths(key)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = npy.with_name(npy.stem + f".{os.getpid()}.{threading.get_ident()}.tmp.npy")
            np.save(tmp, np.asarray(vol.data), allow_pickle=False)
            tmp.replace(npy)
            meta = {"key": repr(key), "affine": vol.affine.tolist(), "modality": vol.modality,
                    "sources": [str(p) for p in vol.sources], "meta": _jsonable(vol.meta)}
            tmp_meta = meta_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp_meta.write_text(json.dumps(meta), encoding="utf-8")
            tmp_meta.replace(meta_path)
        except OSError as exc:
            log.warning("disk cache: cannot write %s (%s)", npy, exc)
            return
        if self._size is not None:
            self._size += vol.data.nbytes
        if evict and (self._size is None or self._size > self.max_bytes):
            self.evict()

    def evict(self) -> None:
        """Delete the least recently used entries until the cache fits ``max_bytes``. Scans
        the folder; :meth:`save` calls it only when the running size estimate is over budget."""
        try:
            entries = [(p.stat().st_mtime, p) for p in self.root.glob("*.json")]
            sizes = {p: p.with_suffix(".npy").stat().st_size for _, p in entries if p.with_suffix(".npy").exists()}
        except OSError:
            return
        total = sum(sizes.values())
        self._size = total
        for _, meta in sorted(entries):
            if total <= self.max_bytes:
                break
            total -= sizes.get(meta, 0)
            for p in (meta, meta.with_suffix(".npy")):
                p.unlink(missing_ok=True)
        self._size = total


def _jsonable(obj):
    try:
        return json.loads(json.dumps(obj, default=str))
    except (TypeError, ValueError):
        return {}


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
            LoadError: the source cannot be read (see :func:`mriviewer.io.load_volume`).
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
        processes (:func:`mriviewer.parallel.decode_many`). Returns volumes or errors, in order."""
        from .parallel import decode_many

        keys = [self._key(src) for src in sources]
        out: list = [self._cached(key) for key in keys]
        todo = [n for n, vol in enumerate(out) if vol is None]
        decoded = decode_many([sources[n] for n in todo], processes)
        for n, vol in zip(todo, decoded, strict=True):
            out[n] = vol
            if isinstance(vol, Volume):
                self._store(keys[n], vol)
        return out

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
        todo = []
        for src in sources:
            try:
                key = source_key(src)
            except OSError:
                continue
            npy, meta = self.disk._paths(key)
            if key not in self._items and not (npy.exists() and meta.exists()):
                todo.append((src, key))
        from .parallel import decode_pool, default_processes

        processes = min(processes or default_processes(), len(todo))
        if processes < 2:
            return

        pool = decode_pool(processes)
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
