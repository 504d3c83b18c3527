"""What the caches hold and how to empty them (``mriviewer cache``, the GUI's cache dialog).
"""

from __future__ import annotations

import os
from pathlib import Path

from mriviewer.cache import memory
from mriviewer.cache.disk import (
    _SAMPLE_ENTRY,
    _SAMPLE_FOLDER,
    DiskCache,
    _remove,
    _scan,
    default_cache_dir,
    default_samples_dir,
)


def _sample_folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and _SAMPLE_FOLDER.match(p.name))
    except OSError:
        return []


def _default_disk() -> DiskCache:
    """The process-wide disk cache when it is in :func:`default_cache_dir`, else one there."""
    root = default_cache_dir()
    if memory._default is not None and memory._default.disk is not None and memory._default.disk.root == root:
        return memory._default.disk
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
    if memory._default is not None:
        memory._default.clear()
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
