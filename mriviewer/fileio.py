"""Small file helpers shared by every writer: strict JSON values and atomic writes.

Outputs are written to a temporary name in the destination folder and renamed on success
(``os.replace`` is atomic on POSIX and Windows), so a crash, a full disk or Ctrl-C never leaves a
half-written result under the final name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import MriViewerError

__all__ = ["json_safe", "atomic_path", "write_json", "write_text", "csv_text"]


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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, on any
    error it is removed.

    Raises:
        MriViewerError: the write or the rename failed (disk full, read-only folder, …); the
            message names ``path``.
    """
    import socket

    path = Path(path)
    # Host and process in the name: ranks on several machines may share one folder.
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MriViewerError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically. Raises MriViewerError on failure."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as strict, indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False))


def csv_text(value) -> str:
    """Text safe to open in a spreadsheet: a cell starting with ``= + - @`` (or a tab/CR) is
    prefixed with ``'`` so it is not run as a formula (OWASP "CSV injection")."""
    s = str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s
