"""One read of a folder's entries, shared by every layout that judges it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mriviewer.core.errors import DatasetError
from mriviewer.io.paths import IMAGE_SUFFIXES, is_nifti

log = logging.getLogger(__name__)


#: File suffixes that hold no image (notes, label tables, sidecars): never reported as unused.
_AUX_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".md", ".nfo", ".xml", ".html", ".pdf", ".log",
                 ".bval", ".bvec", ".yaml", ".yml", ".ini", ".py", ".sh", ".zip", ".tar", ".gz")


@dataclass
class FolderListing:
    """One folder's entries, read once with ``os.scandir`` (hidden names skipped).

    ``dirs`` and ``files`` (regular files, with ``sizes`` in bytes) are sorted by name;
    ``problems`` names entries that are neither (broken links, FIFOs, sockets, devices) or
    could not be stat-ed. :meth:`without` gives the entries a layout has not claimed.
    """

    path: Path
    dirs: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    sizes: dict[Path, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    depth: int = 0

    @classmethod
    def read(cls, folder: Path, depth: int = 0) -> FolderListing:
        """List ``folder`` (once per :func:`discovery_session`: the layouts judging a folder and
        its parent share one read; the session's progress callback hears of each folder).

        Raises:
            DatasetError: the folder cannot be listed (permission, I/O error); names it.
        """
        session = _SESSION.get()
        if session is None:
            return cls._scan(Path(folder), depth)
        key = Path(folder)
        got = session.listings.get(key)
        if got is None:
            if session.progress is not None:
                session.progress(len(session.listings) + 1, key)
            got = session.listings[key] = cls._scan(key, depth)
        return dataclasses.replace(got, dirs=list(got.dirs), files=list(got.files), sizes=dict(got.sizes),
                                   problems=list(got.problems), depth=depth)

    @classmethod
    def _scan(cls, folder: Path, depth: int) -> FolderListing:
        from mriviewer.io.paths import path_kind

        out = cls(Path(folder), depth=depth)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise DatasetError(f"{folder}: cannot read folder ({exc.strerror or exc})") from exc
        for e in entries:
            if e.name.startswith("."):
                continue
            p = Path(e.path)
            try:
                if e.is_dir():
                    out.dirs.append(p)
                    continue
                if e.is_file():
                    out.sizes[p] = e.stat().st_size
                    out.files.append(p)
                    continue
            except OSError as exc:
                kind = path_kind(p)
                if kind in ("file", "folder", "missing"):
                    kind = f"unreadable entry ({exc.strerror or exc})"
                out.problems.append(f"{p}: not a regular file or folder: a {kind}; skipped")
                continue
            kind = path_kind(p)
            hint = " (a git-annex/DataLad file not fetched?)" if kind == "broken symbolic link" else ""
            out.problems.append(f"{p}: not a regular file or folder: a {kind}{hint}; skipped")
        return out

    def without(self, used: set[Path]) -> FolderListing:
        """The entries not in ``used``."""
        return FolderListing(self.path, [d for d in self.dirs if d not in used],
                             [f for f in self.files if f not in used],
                             {f: s for f, s in self.sizes.items() if f not in used}, [], self.depth)

    def nifti_files(self) -> list[Path]:
        return [f for f in self.files if is_nifti(f)]

    def image_files(self) -> list[Path]:
        return [f for f in self.files if f.suffix.lower() in IMAGE_SUFFIXES]


@dataclass
class _Session:
    listings: dict[Path, FolderListing] = field(default_factory=dict)
    progress: Callable[[int, Path], None] | None = None


#: The discovery running in this thread (a context variable: threads do not share it).
_SESSION: contextvars.ContextVar[_Session | None] = contextvars.ContextVar("discovery_session", default=None)


@contextlib.contextmanager
def discovery_session(progress: Callable[[int, Path], None] | None = None) -> Iterator[None]:
    """Within the block, each folder is listed once (:meth:`FolderListing.read` memoised) and
    ``progress(folders_read, folder)`` is called as each is first read; the callback may raise
    :class:`~mriviewer.core.errors.Cancelled` to stop the discovery."""
    token = _SESSION.set(_Session(progress=progress))
    try:
        yield
    finally:
        _SESSION.reset(token)


def _isdir(p: Path) -> bool:
    return os.path.isdir(p)  # False (not an exception) for unreadable or looping paths


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in Path(folder).iterdir() if not p.name.startswith(".") and _isdir(p))
    except OSError:
        return []


def _is_class_dir(d: Path) -> bool:
    """A 2D image class folder: no sub-folders, at least one non-empty image, and images make
    at least half of its non-auxiliary files (a DICOM folder with a thumbnail is not one)."""
    try:
        listing = FolderListing.read(d)
    except DatasetError:
        return False
    if listing.dirs:
        return False
    images = [f for f in listing.image_files() if listing.sizes.get(f, 0) > 0]
    data = [f for f in listing.files if f.suffix.lower() not in _AUX_SUFFIXES or is_nifti(f)]
    return bool(images) and 2 * len(images) >= len(data)
