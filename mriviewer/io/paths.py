"""What kind of file a path is, before any reader opens it.

Anything that is not a regular file or folder (``/dev/null``, a FIFO, a socket, a broken symbolic
link) is refused before it is opened (:func:`check_source_path`), so a FIFO never blocks a reader.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from mriviewer.core.errors import LoadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def is_nifti(path: Path) -> bool:
    name = Path(path).name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def path_kind(path: str | Path) -> str:
    """What ``path`` is, from ``os.stat`` (follows symbolic links; opens nothing).

    Returns:
        ``"file"`` (regular file), ``"folder"``, ``"missing"``, ``"broken symbolic link"``,
        ``"symbolic link loop"``, ``"FIFO (named pipe)"``, ``"socket"``, ``"character device"``,
        ``"block device"``, ``"unreadable (<reason>)"`` or ``"special file"``.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symbolic link" if os.path.lexists(path) else "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    for test, name in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def check_source_path(path: str | Path, want: str = "any") -> Path:
    """``path`` as a :class:`~pathlib.Path` when it is a regular file or a folder (``want``:
    ``"any"``, ``"file"`` or ``"folder"``); checked with ``stat`` before anything is opened, so
    a FIFO or device is never read.

    Raises:
        LoadError: missing, or not what is wanted (``/dev/null``, a FIFO, a socket, a broken
            link, a folder where a file is expected); the message names the path and what it is.
    """
    path = Path(path)
    kind = path_kind(path)
    if kind == "missing":
        raise LoadError(path, "no such file or folder")
    if kind not in ("file", "folder"):
        raise LoadError(path, f"not a regular file or folder: a {kind}; nothing was read")
    if want == "file" and kind != "file":
        raise LoadError(path, "is a folder; a file was expected")
    if want == "folder" and kind != "folder":
        raise LoadError(path, "is a file; a folder was expected")
    return path
