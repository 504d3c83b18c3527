"""An in-memory LRU cache of decoded volumes, keyed by the source files' identity.

The key of a source is its path plus the size and modification time (ns) of every file it
reads, so an edited or replaced file is a cache miss: the cache never serves stale data. Used
by the viewer and the training engine alike, so that browsing a case and then training on it
decodes its DICOM once. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from .datasets import ModalitySource
from .dicom import list_dicom_files
from .io import load_volume
from .volume import Volume

__all__ = ["VolumeCache", "source_key", "default_cache"]


def source_key(source: ModalitySource) -> tuple:
    """Identity of a source: ``(path, ((name, size, mtime_ns), …))``.

    Raises:
        OSError: the source cannot be listed or stat-ed.
    """
    path = Path(source.path)
    files = list(source.files) or (list_dicom_files(path) if path.is_dir() else [path])
    stats = []
    for f in files:
        st = f.stat()
        stats.append((f.name, st.st_size, st.st_mtime_ns))
    return (str(path.resolve()), source.kind, tuple(stats))


class VolumeCache:
    """LRU cache ``ModalitySource → Volume`` holding at most ``max_bytes`` of voxel data.

    Args:
        max_bytes: memory budget for cached voxel arrays (default 2 GiB).
    """

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Volume] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, source: ModalitySource) -> Volume:
        """The decoded volume of ``source`` (loaded on a miss).

        Raises:
            LoadError: the source cannot be read (see :func:`mriviewer.io.load_volume`).
        """
        try:
            key = source_key(source)
        except OSError:
            key = None
        if key is not None:
            with self._lock:
                vol = self._items.get(key)
                if vol is not None:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return vol
        vol = load_volume(list(source.files) if source.files else source.path, source.modality)
        with self._lock:
            self.misses += 1
            if key is not None:
                self._items[key] = vol
                self._evict()
        return vol

    def _evict(self) -> None:
        total = sum(v.data.nbytes for v in self._items.values())
        while total > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            total -= old.data.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_default: VolumeCache | None = None


def default_cache() -> VolumeCache:
    """The process-wide cache shared by the viewer and the engine."""
    global _default
    if _default is None:
        _default = VolumeCache()
    return _default
