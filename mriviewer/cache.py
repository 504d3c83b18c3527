"""Caches of decoded volumes: in memory (LRU) and on disk, keyed by the source files' identity.

Key
---
The key of a source is its path plus, for every file it reads, the name, size, modification time
(ns), inode number and status-change time (``st_ctime_ns``), plus :data:`CACHE_FORMAT` (bumped
whenever a reader or the entry layout changes). An edited, added or removed file changes the key.
An edit that keeps the size and puts the old mtime back (``touch -d``, ``os.utime``, some copy
tools) still changes ``st_ctime_ns``: the kernel sets it on every write and on every ``utime``
and user space cannot set it back; a file replaced by another (rename over it) has another inode.
On Windows, where ``st_ctime`` is the creation time, the key also holds a CRC-32 of the first and
last 64 KiB of each file (header and end of the pixel data). Stale entries are simply never hit
again and age out of the disk budget.

Disk layout and checks
----------------------
The disk cache keeps each volume as ``<sha1>.npy`` (voxels, as decoded) and ``<sha1>.json``
(the full key, shape, dtype, CRC-32 of the voxel bytes, affine, modality, sources and header
facts, plus a CRC-32 of that record) in ``$MRIVIEWER_CACHE_DIR`` (default
``~/.cache/mriviewer/volumes``); ``MRIVIEWER_DISK_CACHE=0`` turns it off. Every read checks the
key, the shape, the dtype, the voxel checksum and the record checksum (which covers the affine):
a corrupt, truncated, empty or incomplete entry is deleted with a warning in the log and the
volume is decoded again — never an exception, never wrong voxels or geometry. zlib's CRC-32 was
chosen for speed: on a 240×240×155 volume (float32, 35.7 MB) it takes about 8 ms against 38 ms
for BLAKE2b and 6 ms for ``np.load`` from the page cache (int16, 17.9 MB: 4 ms); it detects
damage, not tampering.

Identifying header values (:data:`IDENTIFYING_META`: PatientID, PatientName, PatientBirthDate,
…) are not written to the cache: a volume read back from disk lacks them; DICOM UIDs are stored
as a hash (equal UIDs still compare equal). File paths are kept, as they are needed to show
where a volume came from.

Reopening a case or starting another training run reads the ``.npy`` instead of parsing DICOM
again. :meth:`VolumeCache.prefetch` decodes many sources in parallel worker processes (pydicom
parsing is bound by the interpreter, so threads do not help; processes do), which write straight
into the disk cache.

:func:`cache_info` and :func:`clear_cache` describe and empty the disk caches (volumes, and the
training samples of :class:`mriviewer.ml.data.SampleStore` under :func:`default_samples_dir`);
``mriviewer cache --info`` / ``--clear`` call them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .datasets import ModalitySource
from .errors import MriViewerError
from .fileio import read_json_record
from .volume import Volume

log = logging.getLogger(__name__)

__all__ = ["VolumeCache", "size_text", "DiskCache", "source_key", "default_cache", "default_cache_dir", "default_samples_dir",
           "cache_info", "clear_cache", "format_cache_info", "format_cleared", "voxel_checksum", "CACHE_FORMAT",
           "IDENTIFYING_META", "DEFAULT_MAX_BYTES"]

#: Version of what the readers return and of the entry layout; part of every key.
CACHE_FORMAT = 5
#: Disk budget of the volume cache (bytes).
DEFAULT_MAX_BYTES = 20 << 30
#: Header keys never written to the disk cache (DICOM PS3.15 Annex E basic profile, the ones a
#: reader may put in ``Volume.meta``).
IDENTIFYING_META = frozenset({
    "PatientID", "PatientName", "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientAge",
    "PatientWeight", "PatientSize", "PatientAddress", "PatientTelephoneNumbers", "PatientComments",
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientMotherBirthName",
    "IssuerOfPatientID", "EthnicGroup", "MilitaryRank", "AccessionNumber", "StudyID", "StudyDate",
    "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime", "ContentDate",
    "ContentTime", "AcquisitionDateTime", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "OperatorsName", "RequestingPhysician", "StationName",
    "DeviceSerialNumber",
})
#: UIDs that are not about the patient (kept as they are).
_PUBLIC_UIDS = frozenset({"TransferSyntaxUID", "SOPClassUID", "MediaStorageSOPClassUID",
                          "ImplementationClassUID"})
_SAMPLE_BYTES = 64 << 10  # Windows key: CRC-32 of the first and last 64 KiB of each file


def _identity(path: Path, st: os.stat_result) -> tuple:
    """``(size, mtime_ns, inode, ctime_ns)`` of a file (plus a CRC-32 of its first and last
    64 KiB on Windows, where ``st_ctime`` is the creation time)."""
    ident = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    if os.name == "nt":
        with open(path, "rb") as fh:
            crc = zlib.crc32(fh.read(_SAMPLE_BYTES))
            if st.st_size > _SAMPLE_BYTES:
                fh.seek(max(_SAMPLE_BYTES, st.st_size - _SAMPLE_BYTES))
                crc = zlib.crc32(fh.read(_SAMPLE_BYTES), crc)
        ident += (crc,)
    return ident


def source_key(source: ModalitySource) -> tuple:
    """Identity of a source: ``(CACHE_FORMAT, path, kind, 4D volume index, ((name, size,
    mtime_ns, inode, ctime_ns), …))`` (see the module docstring for why ctime and inode).

    Raises:
        OSError: the source cannot be listed or stat-ed.
    """
    path = Path(source.path)
    if source.files:
        stats = []
        for f in source.files:
            f = Path(f)
            stats.append((str(f), *_identity(f, f.stat())))
    elif path.is_dir():
        # Every file of the folder (stat only, no open): adding, removing or editing any file
        # changes the key.
        with os.scandir(path) as it:
            stats = sorted((e.name, *_identity(Path(e.path), e.stat())) for e in it if e.is_file())
    else:
        stats = [(path.name, *_identity(path, path.stat()))]
    return (CACHE_FORMAT, str(path.resolve()), source.kind, source.volume_index, tuple(stats))


def default_cache_dir() -> Path:
    """``$MRIVIEWER_CACHE_DIR`` or ``~/.cache/mriviewer/volumes``: the disk cache of volumes."""
    env = os.environ.get("MRIVIEWER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "mriviewer" / "volumes"


def default_samples_dir() -> Path:
    """``samples`` next to :func:`default_cache_dir`: the training samples of
    :class:`mriviewer.ml.data.SampleStore` (one sub-folder per preprocessing setting)."""
    return default_cache_dir().parent / "samples"


def voxel_checksum(arr: np.ndarray) -> int:
    """CRC-32 (zlib) of the bytes of ``arr`` in its memory order (C or Fortran, as ``np.save``
    writes and ``np.load`` returns it); a non-contiguous array is hashed as its C-order copy.
    About 4 GB/s (8 ms for a 240×240×155 float32 volume)."""
    arr = np.asarray(arr)
    if arr.flags.c_contiguous:
        buf = arr
    elif arr.flags.f_contiguous:
        buf = arr.T
    else:
        buf = np.ascontiguousarray(arr)
    return zlib.crc32(buf.reshape(-1).view(np.uint8)) if buf.size else 0


def _record_checksum(record: dict) -> int:
    """CRC-32 of a JSON record without its ``record_crc32`` field (canonical: sorted keys)."""
    body = {k: v for k, v in record.items() if k != "record_crc32"}
    return zlib.crc32(json.dumps(body, sort_keys=True, allow_nan=False).encode("utf-8"))


def _private_meta(meta: dict) -> dict:
    """``meta`` as JSON values without :data:`IDENTIFYING_META` keys; UIDs (other than transfer
    syntax and SOP class) as ``"sha256:<16 hex>"``."""
    from .fileio import json_safe

    clean = _jsonable(json_safe(meta or {}))
    out = {}
    for k, v in (clean if isinstance(clean, dict) else {}).items():
        if k in IDENTIFYING_META:
            continue
        if k.endswith("UID") and k not in _PUBLIC_UIDS and isinstance(v, str) and v:
            v = "sha256:" + hashlib.sha256(v.encode("utf-8")).hexdigest()[:16]
        out[k] = v
    return out


class DiskCache:
    """Decoded volumes as ``.npy`` + ``.json`` files under ``root``, at most ``max_bytes``
    (oldest-used entries are deleted first). Every entry is checked when read (see the module
    docstring); a bad one is deleted, logged and reported as absent, so the caller decodes the
    source again.

    Args:
        root: the folder (created on first write).
        max_bytes: disk budget of the voxel files (default :data:`DEFAULT_MAX_BYTES`).
    """

    _ENTRY = re.compile(r"^[0-9a-f]{40}\.(npy|json)$")

    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._size: int | None = None  # bytes on disk, from one scan plus what we wrote since

    @staticmethod
    def digest(key: tuple) -> str:
        """The file stem of ``key``'s entry (SHA-1 of its ``repr``)."""
        return hashlib.sha1(repr(key).encode("utf-8")).hexdigest()

    def _paths(self, key: tuple) -> tuple[Path, Path]:
        h = self.digest(key)
        return self.root / f"{h}.npy", self.root / f"{h}.json"

    def _drop(self, npy: Path, meta_path: Path, reason: str) -> None:
        log.warning("disk cache: dropping entry %s (%s); the volume is decoded again", npy, reason)
        for p in (meta_path, npy):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass

    def load(self, key: tuple) -> Volume | None:
        """The cached volume for ``key``, or ``None`` when absent or bad.

        A present entry must have its key, shape, dtype, voxel CRC-32 and record CRC-32 (which
        covers the affine, modality, sources and header facts) right; otherwise (0-byte or
        truncated ``.npy``, unreadable or keyless ``.json``, flipped bits, edited affine) it is
        deleted with a warning and ``None`` is returned. Never raises.
        """
        npy, meta_path = self._paths(key)
        try:
            record = read_json_record(meta_path, "disk cache")
            if record is None:
                return None
            if record.get("key") != repr(key):
                raise ValueError("another key")
            if record.get("record_crc32") != _record_checksum(record):
                raise ValueError("record checksum mismatch")
            shape, dtype = tuple(record["shape"]), np.dtype(record["dtype"])
            affine = np.array(record["affine"], dtype=np.float64)
            if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
                raise ValueError("bad affine")
            modality, sources, meta = record["modality"], record["sources"], record["meta"]
            if not isinstance(sources, list) or not isinstance(meta, dict):
                raise ValueError("bad sources or meta")
            expected = int(record["crc32"])
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 — any damage means "rebuild"
            self._drop(npy, meta_path, f"{meta_path.name}: {type(exc).__name__}: {exc}")
            return None
        try:
            data = np.load(npy, allow_pickle=False)
        except FileNotFoundError:
            self._drop(npy, meta_path, "voxel file missing")
            return None
        except Exception as exc:  # noqa: BLE001 — EOFError (0 bytes), ValueError (truncated), …
            self._drop(npy, meta_path, f"{type(exc).__name__}: {exc}")
            return None
        if data.shape != shape or data.dtype != dtype:
            self._drop(npy, meta_path, f"voxels are {data.shape} {data.dtype}, expected {shape} {dtype}")
            return None
        if voxel_checksum(data) != expected:
            self._drop(npy, meta_path, "voxel checksum mismatch")
            return None
        try:
            vol = Volume(data, affine, modality, [Path(p) for p in sources], meta)
        except Exception as exc:  # noqa: BLE001 — VolumeError and the like
            self._drop(npy, meta_path, f"{type(exc).__name__}: {exc}")
            return None
        try:
            os.utime(meta_path)  # mark as recently used
        except OSError:
            pass
        return vol

    def save(self, key: tuple, vol: Volume, evict: bool = True) -> None:
        """Store ``vol`` (atomic: each file written under a temporary name, then renamed; the
        ``.json`` last, so a reader never sees a half entry). Identifying header values are left
        out (:data:`IDENTIFYING_META`). A failed write (full disk, read-only folder) is logged
        and leaves no file behind; it never raises. Worker processes pass ``evict=False`` and
        leave the budget to the main process."""
        from .fileio import temp_name

        npy, meta_path = self._paths(key)
        data = np.asarray(vol.data)
        if not (data.flags.c_contiguous or data.flags.f_contiguous):
            data = np.ascontiguousarray(data)
        tmp_npy = temp_name(npy, thread=True)
        tmp_meta = temp_name(meta_path, thread=True)
        try:
            record = {"format": CACHE_FORMAT, "key": repr(key), "shape": list(data.shape),
                      "dtype": data.dtype.str, "crc32": voxel_checksum(data),
                      "affine": np.asarray(vol.affine, dtype=np.float64).tolist(), "modality": vol.modality,
                      "sources": [str(p) for p in vol.sources], "meta": _private_meta(vol.meta)}
            record["record_crc32"] = _record_checksum(record)
            text = json.dumps(record, allow_nan=False)
            self.root.mkdir(parents=True, exist_ok=True)
            with open(tmp_npy, "wb") as fh:
                np.save(fh, data, allow_pickle=False)
            with open(tmp_meta, "w", encoding="utf-8") as fh:
                fh.write(text)
            tmp_npy.replace(npy)
            tmp_meta.replace(meta_path)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("disk cache: cannot write %s (%s)", npy, exc)
            return
        finally:
            for tmp in (tmp_npy, tmp_meta):
                try:
                    tmp.unlink(missing_ok=True)
                except OSError:
                    pass
        if self._size is not None:
            self._size += data.nbytes
        if evict and (self._size is None or self._size > self.max_bytes):
            self.evict()

    def evict(self) -> None:
        """Delete the least recently used entries until the cache fits ``max_bytes``, and the
        temporary files of writers that were killed (:func:`mriviewer.fileio.remove_stale_temps`).
        Scans the folder; :meth:`save` calls it only when the running size estimate is over
        budget."""
        from .fileio import remove_stale_temps

        remove_stale_temps(self.root)
        try:
            entries = [(p.stat().st_mtime, p) for p in self.root.glob("*.json") if self._ENTRY.match(p.name)]
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

    def info(self) -> dict:
        """``{"path", "entries", "bytes", "temporary", "limit_bytes"}`` of the folder (entries =
        complete ``.npy`` + ``.json`` pairs; bytes = every file of the cache, temporary ones
        included)."""
        entries, size, temps = _scan(self.root, self._ENTRY)
        return {"path": str(self.root), "entries": entries, "bytes": size, "temporary": temps,
                "limit_bytes": self.max_bytes}

    def clear(self) -> tuple[int, int]:
        """Delete every entry and temporary file of the cache (nothing else in the folder).
        Returns ``(entries removed, bytes freed)``."""
        n, freed = _remove(self.root, self._ENTRY)
        self._size = 0
        return n, freed


_SAMPLE_ENTRY = re.compile(r"^[0-9a-f]{24}\.(npy|json)$")
_SAMPLE_FOLDER = re.compile(r"^[0-9a-f]{16}$")


def _scan(folder: Path, pattern: re.Pattern) -> tuple[int, int, int]:
    """``(entries, bytes, temporary files)`` of the cache files directly in ``folder``."""
    from .fileio import is_temp_name

    entries = size = temps = 0
    try:
        with os.scandir(folder) as it:
            for e in it:
                m = pattern.match(e.name)
                temp = not m and is_temp_name(e.name)
                if not (m or temp):
                    continue
                try:
                    size += e.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
                temps += temp
                entries += bool(m) and m.group(1) == "json"
    except OSError:
        pass
    return entries, size, temps


def _remove(folder: Path, pattern: re.Pattern) -> tuple[int, int]:
    """Delete the cache files (entries and temporary files) directly in ``folder``; returns
    ``(entries, bytes)``."""
    from .fileio import is_temp_name

    n = freed = 0
    try:
        with os.scandir(folder) as it:
            found = [e for e in it if pattern.match(e.name) or is_temp_name(e.name)]
    except OSError:
        return 0, 0
    for e in found:
        try:
            size = e.stat(follow_symlinks=False).st_size
            os.unlink(e.path)
        except OSError:
            continue
        freed += size
        n += e.name.endswith(".json") and bool(pattern.match(e.name))
    return n, freed


def _sample_folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and _SAMPLE_FOLDER.match(p.name))
    except OSError:
        return []


def _default_disk() -> DiskCache:
    """The process-wide disk cache when it is in :func:`default_cache_dir`, else one there."""
    root = default_cache_dir()
    if _default is not None and _default.disk is not None and _default.disk.root == root:
        return _default.disk
    return DiskCache(root)


def cache_info() -> dict:
    """What the disk caches hold, for ``mriviewer cache --info`` and the GUI.

    Returns:
        ``{"volumes": {"path", "enabled", "entries", "bytes", "temporary", "limit_bytes"},
        "samples": {"path", "entries", "bytes", "temporary", "settings", "limit_bytes"},
        "total_bytes", "env": {"MRIVIEWER_CACHE_DIR", "MRIVIEWER_DISK_CACHE"}}``. ``enabled`` is
        ``False`` under ``MRIVIEWER_DISK_CACHE=0``; ``settings`` counts the preprocessing settings
        that have samples; the samples have no budget (``limit_bytes`` ``None``). Sizes are bytes.
        Never raises: a missing folder counts as empty.
    """
    volumes = _default_disk().info()
    volumes["enabled"] = os.environ.get("MRIVIEWER_DISK_CACHE", "1") != "0"
    root = default_samples_dir()
    entries = size = temps = 0
    folders = _sample_folders(root)
    for folder in folders:
        e, b, t = _scan(folder, _SAMPLE_ENTRY)
        entries, size, temps = entries + e, size + b, temps + t
    samples = {"path": str(root), "entries": entries, "bytes": size, "temporary": temps,
               "settings": len(folders), "limit_bytes": None}
    return {"volumes": volumes, "samples": samples, "total_bytes": volumes["bytes"] + size,
            "env": {k: os.environ.get(k) for k in ("MRIVIEWER_CACHE_DIR", "MRIVIEWER_DISK_CACHE")}}


def clear_cache() -> int:
    """Delete every entry of the disk caches (decoded volumes and training samples, with their
    temporary files) and empty the process's memory cache. Only cache files are removed: other
    files in those folders are left alone. Safe while another process uses the cache (it decodes
    again what it misses).

    Returns:
        The bytes freed on disk.
    """
    _, freed = _default_disk().clear()
    for folder in _sample_folders(default_samples_dir()):
        freed += _remove(folder, _SAMPLE_ENTRY)[1]
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass
    if _default is not None:
        _default.clear()
    return freed


def size_text(n: int | None, none: str = "none") -> str:
    """Bytes in binary units (``1.5 GiB``; the budget is 20 GiB); ``none`` for ``None``."""
    if n is None:
        return none
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} TiB"


def format_cache_info(info: dict) -> str:
    """:func:`cache_info`'s result as a few lines of text."""
    v, s = info["volumes"], info["samples"]
    state = "" if v["enabled"] else " (disabled: MRIVIEWER_DISK_CACHE=0)"
    lines = [
        f"volumes: {v['path']}{state}",
        f"  {v['entries']} entries, {size_text(v['bytes'])} of {size_text(v['limit_bytes'])}"
        + (f", {v['temporary']} temporary file(s)" if v["temporary"] else ""),
        f"samples: {s['path']}",
        f"  {s['entries']} entries in {s['settings']} preprocessing setting(s), {size_text(s['bytes'])} (no limit)"
        + (f", {s['temporary']} temporary file(s)" if s["temporary"] else ""),
        f"total: {size_text(info['total_bytes'])}",
    ]
    return "\n".join(lines)


def format_cleared(info: dict, freed: int) -> str:
    """One line saying what :func:`clear_cache` removed: ``info`` is :func:`cache_info` taken
    just before, ``freed`` its result."""
    v, s = info["volumes"], info["samples"]
    temps = v["temporary"] + s["temporary"]
    return (f"removed {v['entries']} volume entries from {v['path']} and {s['entries']} sample entries from "
            f"{s['path']}" + (f" ({temps} temporary file(s))" if temps else "") + f"; {size_text(freed)} freed")


def _jsonable(obj):
    try:
        return json.loads(json.dumps(obj, default=str))
    except (TypeError, ValueError) as exc:
        log.warning("disk cache: header facts not storable (%s); cached without them", exc)
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
