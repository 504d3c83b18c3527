"""Decode a cohort case by case into the disk cache, a few cases ahead of the consumer, within the
cache's budget while it decodes (not only after).

The training engine prepares samples from each case right after its series are decoded; the
worker processes decode the next cases meanwhile. Memory and disk stay bounded by the window
(``ahead`` cases), however large the cohort: after each case the disk cache is brought back to
its budget, least recently used first, so the entries of cases already prepared go before those
still to come (they are the newest).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from mriviewer.data.cases import ModalitySource

log = logging.getLogger(__name__)


@dataclass
class StreamStep:
    """One case of :func:`decode_stream`: its index in the groups, the error messages of its
    sources (each naming the file), and whether the disk cache had to evict entries this command
    decoded but had not used yet (the budget is smaller than the window: it will decode again)."""

    index: int
    errors: list[str] = field(default_factory=list)
    evicted_ahead: bool = False
    #: On the last case only: what the stream says about the cohort (it did not fit the cache).
    note: str = ""


def decode_stream(cache, groups: Sequence[Sequence[ModalitySource]], ahead: int | None = None,
                  processes: int | None = None) -> Iterator[StreamStep]:
    """Decode each group (a case's sources) in worker processes into ``cache``'s disk cache and
    yield a :class:`StreamStep` per group, in order, once all its sources are on disk.

    At most ``ahead`` groups (default: twice the processes) are in flight; after each group the
    disk cache is evicted down to its budget (:meth:`~mriviewer.cache.disk.DiskCache.evict`). Closing
    the generator cancels what has not started. Without a disk cache or with fewer than two
    processes, it yields each group at once (the caller's :meth:`VolumeCache.get` decodes on
    demand). Sources already cached are not decoded again.

    Args:
        cache: a :class:`~mriviewer.cache.memory.VolumeCache`.
        groups: per case, its sources.
        ahead: groups decoded ahead of the one being consumed.
        processes: worker processes (default :func:`~mriviewer.cache.pool.default_processes`).
    """
    from mriviewer.cache.pool import decode_pool, default_processes

    processes = processes or default_processes()
    if cache.disk is None or processes < 2:
        yield from (StreamStep(i) for i in range(len(groups)))
        return
    ahead = max(1, ahead or 2 * processes)
    pool = decode_pool(processes)
    pending: deque = deque()
    budget = _Budget(cache.disk)
    try:
        for i in range(min(ahead, len(groups))):
            pending.append((i, _submit(pool, cache, groups[i])))
        nxt = len(pending)
        while pending:
            i, jobs = pending.popleft()
            step = StreamStep(i, [e for e in (_result(f, src) for src, key, f in jobs) if e])
            written = [k for _, js in pending for _, k, f in js if f.done()]  # decoded ahead, not yet used
            step.evicted_ahead = budget.add([key for _, key, _ in jobs], written)
            if nxt < len(groups):
                pending.append((nxt, _submit(pool, cache, groups[nxt])))
                nxt += 1
            if not pending:
                step.note = budget.note(len(groups))
            yield step
    finally:
        for _, jobs in pending:
            for _, _, fut in jobs:
                fut.cancel()
        cache.disk.evict()


def _submit(pool, cache, sources: Sequence[ModalitySource]) -> list:
    """Start decoding the sources not yet in memory or on disk: ``[(source, key, future)]``."""
    from mriviewer.cache.memory import _decode_to_disk

    root = str(cache.disk.root)
    return [(src, key, pool.submit(_decode_to_disk, src, key, root)) for src, key in cache.uncached(sources)]


def _result(fut, src: ModalitySource) -> str | None:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 — a worker died; get() retries in-process
        return f"{src.path}: {type(exc).__name__}: {exc}"


class _Budget:
    """The disk cache's size as the stream writes, evicting when it passes the budget."""

    def __init__(self, disk) -> None:
        self.disk = disk
        disk.evict()  # the true size to start from
        self.size = disk._size or 0
        self.written = 0  # bytes this stream decoded
        self.evictions = 0

    def note(self, n_cases: int) -> str:
        """A sentence for the log when the cohort did not fit the budget, else ``""``."""
        if not self.evictions:
            return ""
        return (f"The {n_cases} cases decode to {self.written / 1e9:.1f} GB, more than the disk cache's "
                f"{self.disk.max_bytes / 2**30:.1f} GiB: each case was prepared right after decoding and its "
                f"volumes then made room for the next; the prepared samples are kept, so a rerun with these "
                f"settings decodes nothing (the viewer decodes a case again when it is shown).")

    def add(self, keys: list[tuple], upcoming: list[tuple]) -> bool:
        """Count the entries just written; evict when over budget. Returns whether an entry of
        ``upcoming`` (decoded for a later case, not yet used) was evicted."""
        for key in keys:
            npy, _ = self.disk._paths(key)
            try:
                self.size += (n := npy.stat().st_size)
                self.written += n
            except OSError:
                pass
        if self.size <= self.disk.max_bytes:
            return False
        self.evictions += 1
        for key in keys + upcoming:  # newest: evicted last (reading a case marks it recently used)
            with contextlib.suppress(OSError):
                os.utime(self.disk._paths(key)[1])
        self.disk.evict()
        self.size = self.disk._size or 0
        gone = [k for k in upcoming if not self.disk._paths(k)[0].exists()]
        if gone:
            log.warning("disk cache: %d series decoded ahead were evicted (the cache's %.1f GiB budget is "
                        "smaller than the decoding window); they are decoded again", len(gone),
                        self.disk.max_bytes / 2**30)
        return bool(gone)
