"""The on-disk sample store and the torch dataset over it.

Store and dataset
-----------------
:class:`SampleStore` writes each case's network samples once (float16 ``.npy`` under the cache
folder, keyed by the files' identity and every preprocessing setting), so later epochs and later
runs read memory-mapped arrays: no DICOM is parsed after the first preparation and the dataset is
never held in RAM as a whole. :class:`SampleDataset` serves ``(sample, label)`` to a
``torch.utils.data.DataLoader``; augmentation comes from torchvision transforms v2 (slices) and
MONAI (volumes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mriviewer.core.errors import DatasetError
from mriviewer.core.files import read_json_record
from mriviewer.data.cases import Case
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.preprocess import normalise_channels

log = logging.getLogger(__name__)


#: Bumped whenever preprocessing output changes, so stale samples are never served.
STORE_FORMAT = 2


#: The settings that change a case's samples (the store key).
_PREPROCESS_KEYS = ("modalities", "modality_fallback", "image_size", "depth", "depth_mode", "spacing_mm",
                    "slices_per_case", "slice_range", "intensity", "color", "brain_extraction")


# ---------------------------------------------------------------------------- sample store
class SampleStore:
    """Preprocessed samples on disk, one float16 ``.npy`` (+ ``.json`` facts) per case.

    The key hashes :data:`STORE_FORMAT`, the preprocessing settings of the config and the
    identity (path, size, mtime, inode, ctime) of every file of the case's sources
    (:func:`mriviewer.cache.keys.source_key`): an edited file or a changed setting is a new entry.
    Writes are atomic (temporary name, then rename; the ``.json`` last), so parallel ranks and
    crashes are safe. The ``.json`` holds the shape, dtype and CRC-32 of the samples
    (:func:`mriviewer.cache.keys.voxel_checksum`); :meth:`get` checks them once per store object
    and file, so a truncated, empty or corrupt entry is deleted (warning in the log) and
    prepared again instead of being fed to training.

    Args:
        config: the run's configuration.
        root: folder (default :func:`mriviewer.cache.disk.default_samples_dir`, i.e.
            ``<volume cache folder>/../samples``).
    """

    def __init__(self, config: TrainConfig, root: str | Path | None = None) -> None:
        from mriviewer.cache.disk import default_samples_dir

        self.config = config
        settings = {k: getattr(config, k) for k in _PREPROCESS_KEYS}
        settings["is_3d"] = config.is_3d
        digest = hashlib.sha1(json.dumps([STORE_FORMAT, settings], sort_keys=True).encode()).hexdigest()[:16]
        self.root = Path(root) if root else default_samples_dir()
        self.folder = self.root / digest
        self._verified: dict[str, tuple] = {}  # key -> identity of the .npy checked (travels to workers)
        self._cleaned = False

    def key(self, case: Case) -> str:
        """Stable key of ``case``'s sources. Raises OSError when a source cannot be stat-ed."""
        from mriviewer.cache.keys import source_key

        parts = [(m, source_key(s)) for m, s in sorted(case.modalities.items())]
        return hashlib.sha1(repr(parts).encode()).hexdigest()[:24]

    def paths(self, key: str) -> tuple[Path, Path]:
        """``(samples .npy, facts .json)`` of ``key``."""
        return self.folder / f"{key}.npy", self.folder / f"{key}.json"

    def _drop(self, key: str, reason: str) -> None:
        npy, meta = self.paths(key)
        log.warning("sample store: dropping %s (%s); the case is prepared again", npy, reason)
        self._verified.pop(key, None)
        for p in (meta, npy):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass

    def get(self, key: str) -> tuple[np.ndarray, dict] | None:
        """``(samples (S, C, …) float16, memory-mapped; facts)``, or ``None`` when absent or bad.

        The first call per store object and file reads the whole ``.npy`` to check its CRC-32;
        an entry whose ``.json`` is unreadable or lacks its fields, or whose ``.npy`` is empty,
        truncated, of another shape or dtype, or fails the checksum, is deleted with a warning
        and ``None`` is returned (the caller prepares the case again). Never raises.
        """
        from mriviewer.cache.keys import voxel_checksum

        npy, meta = self.paths(key)
        try:
            facts = read_json_record(meta, "sample store")
            if facts is None:
                return None
            shape, dtype, crc = list(facts["shape"]), np.dtype(facts["dtype"]), int(facts["crc32"])
            arr = np.load(npy, mmap_mode="r", allow_pickle=False)
            st = os.stat(npy)
        except FileNotFoundError:
            self._drop(key, "samples file missing")
            return None
        except Exception as exc:  # noqa: BLE001 — EOFError (0 bytes), ValueError (truncated), KeyError, …
            self._drop(key, f"{type(exc).__name__}: {exc}")
            return None
        if list(arr.shape) != shape or arr.dtype != dtype:
            self._drop(key, f"samples are {list(arr.shape)} {arr.dtype}, expected {shape} {dtype}")
            return None
        ident = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        if self._verified.get(key) != ident:
            try:
                ok = voxel_checksum(arr) == crc
            except Exception as exc:  # noqa: BLE001 — an I/O error while reading the map
                self._drop(key, f"{type(exc).__name__}: {exc}")
                return None
            if not ok:
                self._drop(key, "checksum mismatch")
                return None
            self._verified[key] = ident
        return arr, facts

    def put(self, key: str, samples: np.ndarray, facts: dict) -> None:
        """Store ``samples`` ``(S, C, …)`` as float16 and ``facts`` (JSON, with the shape,
        dtype and CRC-32 of the stored array added).

        Raises:
            MriViewerError: the files cannot be written (disk full, …); nothing partial is left.
        """
        from mriviewer.cache.keys import voxel_checksum
        from mriviewer.core.files import atomic_path, remove_stale_temps, write_json

        self.folder.mkdir(parents=True, exist_ok=True)
        if not self._cleaned:  # temporary files of killed runs, once per store object
            remove_stale_temps(self.folder)
            self._cleaned = True
        npy, meta = self.paths(key)
        arr = np.ascontiguousarray(samples, dtype=np.float16)
        meta.unlink(missing_ok=True)  # an old entry must not pair with the new samples
        with atomic_path(npy, durable=False) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        write_json(meta, {**facts, "shape": list(arr.shape), "dtype": arr.dtype.str, "crc32": voxel_checksum(arr)},
                   durable=False)
        st = os.stat(npy)
        self._verified[key] = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


class SampleDataset:
    """``torch.utils.data.Dataset`` of ``(sample, label)``.

    Args:
        store: where the samples are.
        items: ``(key, sample index, label)`` per network sample.
        augment: callable on a float32 tensor ``(C, H, W)`` / ``(C, D, H, W)``, or ``None``.
        normalise: :func:`normalise_channels` mode applied after augmentation.
    """

    def __init__(self, store: SampleStore, items: Sequence[tuple[str, int, int]], augment=None,
                 normalise: str = "fixed") -> None:
        self.store = store
        self.items = list(items)
        self.augment = augment
        self.normalise = normalise
        self._open: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _array(self, key: str) -> np.ndarray:
        arr = self._open.get(key)
        if arr is None:
            got = self.store.get(key)
            if got is None:
                raise DatasetError(f"preprocessed samples {key} missing from {self.store.folder}")
            arr = self._open[key] = got[0]
            if len(self._open) > 256:  # bound open memory maps
                self._open.pop(next(iter(self._open)))
        return arr

    def __getitem__(self, i: int):
        import torch

        key, s, label = self.items[i]
        x = torch.from_numpy(np.asarray(self._array(key)[s], dtype=np.float32))
        if self.augment is not None:
            x = self.augment(x)
            x = torch.as_tensor(x, dtype=torch.float32)
        x = normalise_channels(x[None], self.normalise)[0]
        return x, int(label)

    def __getstate__(self):  # DataLoader workers: memory maps are reopened per process
        d = dict(self.__dict__)
        d["_open"] = {}
        return d


def worker_count(config: TrainConfig) -> int:
    """DataLoader workers: the config's, capped by the CPUs available."""
    return min(config.num_workers, os.cpu_count() or 1)
