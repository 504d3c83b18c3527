"""Small file helpers shared by every writer: strict JSON values and atomic writes.

Outputs are written to a temporary name in the destination folder and renamed on success
(``os.replace`` is atomic on POSIX and Windows), so a crash, a full disk or Ctrl-C never leaves a
half-written result under the final name.

Temporary names are ``.<name>.<host>.<pid>.tmp`` (hidden; host and process so that ranks on
several machines may share one folder). An error or Ctrl-C removes the temporary file; a process
killed outright (SIGKILL, power loss) cannot, so :func:`remove_stale_temps` deletes the ones whose
writer is gone, and writers that may be killed (checkpoints, caches) call it on their folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mriviewer.core.errors import MriViewerError

__all__ = ["json_safe", "atomic_path", "write_json", "write_text", "write_bytes", "csv_text",
           "temp_name", "is_temp_name", "remove_stale_temps"]

#: A temporary file older than this is stale whatever its writer (seconds).
STALE_TEMP_AGE_S = 24 * 3600


def json_safe(obj):
    """``obj`` with NaN/inf floats as ``None``, numpy values as Python ones and paths as text
    (strict JSON: ``json.dumps(..., allow_nan=False)`` accepts the result)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def temp_name(path: str | Path, keep_suffix: bool = False, thread: bool = False) -> Path:
    """The temporary name this process writes ``path`` under: ``.<name>.<host>.<pid>.tmp`` in
    the same folder. With ``keep_suffix``, ``path``'s suffixes are repeated at the end (e.g.
    ``.a.nii.gz.<host>.<pid>.tmp.nii.gz``) for writers that choose the format by extension; with
    ``thread``, the thread id follows the pid (``<pid>-<tid>``) for writers that several threads
    of one process may run on the same file."""
    path = Path(path)
    ext = "".join(path.suffixes) if keep_suffix else ""
    tid = f"-{threading.get_ident()}" if thread else ""
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}{tid}.tmp{ext}")


_LEGACY_TEMP = re.compile(r"^\.[^.]+\.pt\.(\d+)\.tmp$")  # ``.best.pt.<pid>.tmp`` (older checkpoints)


def _temp_owner(name: str) -> tuple[bool, int | None] | None:
    """``(written on this host, pid)`` for a temporary name of :func:`temp_name`'s form, or
    ``None`` when ``name`` is not one."""
    if not name.startswith(".") or ".tmp" not in name:
        return None
    host = socket.gethostname()
    mark = f".{host}."
    if mark in name:
        m = re.match(r"(\d+)(?:-\d+)?\.tmp(\.[^.]+)*$", name.rsplit(mark, 1)[1])
        if m:
            return True, int(m.group(1))
    if m := _LEGACY_TEMP.match(name):
        return True, int(m.group(1))
    if re.search(r"\.\d+(?:-\d+)?\.tmp(\.[^.]+)*$", name):
        return False, None  # another host's
    return None


def is_temp_name(name: str) -> bool:
    """Whether the file name ``name`` is a temporary file of :func:`temp_name`'s form."""
    return _temp_owner(name) is not None


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (POSIX). Windows: always ``True`` (there
    ``os.kill`` would terminate it), so only the age rule applies there."""
    if os.name == "nt":
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temps(folder: str | Path, max_age_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Delete the temporary files of :func:`temp_name`'s form in ``folder`` (not recursive)
    whose writer is gone: written on this host by a process that no longer runs, or older than
    ``max_age_s`` seconds whoever wrote them. Errors are ignored (another process may remove
    the same file).

    Returns:
        The paths removed.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        owner = _temp_owner(e.name)
        if owner is None:
            continue
        local, pid = owner
        try:
            old = now - e.stat(follow_symlinks=False).st_mtime > max_age_s
            if old or (local and pid is not None and not _pid_alive(pid)):
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, durable: bool = True, keep_suffix: bool = False,
                error: type[MriViewerError] = MriViewerError) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (:func:`temp_name`); on success it is flushed to
    the disk (``durable``) and renamed to ``path``; on any error, Ctrl-C included, it is removed
    and ``path`` is left as it was.

    Args:
        path: the final file.
        durable: ``fsync`` the file before the rename, so that a power loss cannot leave an empty
            file under the final name (off for caches, which checksum their entries instead).
        keep_suffix: the temporary name ends with ``path``'s suffixes (nibabel, for instance,
            picks the format and compression from the extension).
        error: the :class:`MriViewerError` subclass raised on failure.

    Raises:
        MriViewerError (or ``error``): the write or the rename failed (disk full, read-only
            folder, …); the message names ``path``.
    """
    path = Path(path)
    tmp = temp_name(path, keep_suffix)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise error(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically. Raises MriViewerError (naming ``path``) on failure."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str, durable: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically. Raises MriViewerError (naming ``path``)
    on failure."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj, durable: bool = True) -> Path:
    """Write ``obj`` as strict, indented JSON to ``path`` atomically (:func:`json_safe` first).
    Raises MriViewerError (naming ``path``) on failure."""
    return write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False), durable)


def read_json_record(path: Path, what: str) -> dict | None:
    """The JSON object in ``path`` (a cache entry's record), ``None`` when the file is absent
    (or being written: records are renamed last) or unreadable (logged with ``what``).

    Raises:
        ValueError: the file is not a UTF-8 JSON object (the caller drops the entry).
    """
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        import logging

        logging.getLogger(__name__).warning("%s: cannot read %s (%s)", what, path, exc)
        return None
    record = json.loads(text.decode("utf-8"))
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    return record


def csv_text(value) -> str:
    """Text safe to open in a spreadsheet: a cell starting with ``= + - @`` (or a tab/CR) is
    prefixed with ``'`` so it is not run as a formula (OWASP "CSV injection")."""
    s = str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s
