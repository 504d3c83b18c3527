"""Bookkeeping of a series read: the slices still in play and the warnings that name each
dropped or repaired file (nothing is repaired silently).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from mriviewer.core.errors import LoadError

log = logging.getLogger(__name__)


class _Report:
    """Warnings of one read: dropped files (``meta["skipped_files"]``), notes aggregated over
    files (one line naming the first file and the count), and series-level warnings."""

    def __init__(self) -> None:
        self.skipped: list[str] = []
        self.errors: list[LoadError] = []
        self.notes: dict[str, list[Path]] = defaultdict(list)
        self.warnings: list[str] = []

    def skip(self, msg: str) -> None:
        self.skipped.append(msg)
        log.warning("%s", msg)

    def drop(self, exc: LoadError) -> None:
        self.errors.append(exc)
        self.skip(str(exc))

    def note(self, path: Path, text: str) -> None:
        self.notes[text].append(path)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        log.warning("%s", msg)

    def into(self, meta: dict) -> dict:
        out = meta.setdefault("warnings", [])
        if self.skipped:
            meta["skipped_files"] = list(self.skipped)
            out.extend(f"skipped {m}" for m in self.skipped)
        for text, paths in self.notes.items():
            more = f" (and {len(paths) - 1} more files)" if len(paths) > 1 else ""
            msg = f"{paths[0]}{more}: {text}"
            log.warning("%s", msg)
            out.append(msg)
        out.extend(self.warnings)
        if not out:
            del meta["warnings"]
        return meta


@dataclass(eq=False)
class _Slice:
    """One single-frame image on its way into the volume."""

    path: Path
    ds: pydicom.Dataset
    facts: dict
    iop: np.ndarray | None = None
    spacing: tuple[float, float] | None = None
    rescale: tuple[float, float] = (1.0, 0.0)
    ipp: np.ndarray | None = None
    pos: float = 0.0
    px: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def order(self) -> tuple:
        return (self.facts["instance"], self.path.name)


def _drop(report: _Report, entry: _Slice, exc: LoadError | str) -> None:
    """Drop one file from the series: the reason goes to ``meta["skipped_files"]``."""
    report.drop(exc if isinstance(exc, LoadError) else LoadError(entry.path, exc))


def _nothing_left(folder: Path, report: _Report, n_files: int) -> LoadError:
    """The error when no file of the series is left: the one file's own error, or a summary
    naming the folder and the first dropped file."""
    if n_files == 1 and len(report.errors) == 1:
        return report.errors[0]
    reasons = {e.reason for e in report.errors}
    if len(reasons) == 1 and len(report.errors) == len(report.skipped):
        return LoadError(folder, f"no slice can be used: all {len(report.errors)} files have "
                                 f"{reasons.pop()} (first: {report.errors[0].path.name})")
    first = report.skipped[0] if report.skipped else "none"
    return LoadError(folder, f"no slice can be used ({len(report.skipped)} files dropped; first: {first})")
