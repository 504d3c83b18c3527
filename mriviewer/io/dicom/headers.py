"""DICOM header access for the series reader: reading a file (pixels deferred), typed attribute
access with the standard's multiplicity, the per-file facts a series is assembled from, and the
reader's tolerances (documented in :mod:`mriviewer.io.dicom.series`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from mriviewer.core.errors import LoadError

#: Flip between LPS (DICOM) and RAS (NIfTI) patient coordinates.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


#: Header attributes that may tell apart several images at one slice position (the volumes of
#: a 4D series), in the order they are tried. ``DiffusionBValue`` stands for the pair
#: (DiffusionBValue, DiffusionGradientOrientation), PS3.3 C.8.13.5.9.
VOLUME_KEYS = ("TemporalPositionIdentifier", "DiffusionBValue", "EchoNumbers", "ImageType",
               "AcquisitionNumber")


# Tolerances (documented in the module docstring).
_POS_TOL_MM = 0.01  # two slices closer than this along the normal are at one position


_IOP_SILENT = 1e-3  # |length - 1| of an IOP vector accepted as rounding


_IOP_MAX = 0.1  # beyond this the vector is refused rather than normalised


_ORTHO_TOL = 1e-3  # |row . column| of the unit vectors


_SAME_IOP = 1e-3  # two orientations are the same when every cosine agrees to this


_MAX_POS_MM = 1e6  # a position farther than 1 km from the isocentre is not a position


_MAX_RESCALE = 1e25  # larger slopes/intercepts overflow float32 with 32-bit stored values


class NotDicomError(LoadError):
    """The file has no DICOM preamble (a stray ``.nfo``, ``.txt`` or thumbnail)."""


def _read(path: Path, defer_pixels: bool = False) -> pydicom.Dataset:
    """The file's data set; with ``defer_pixels`` values over 4 KiB (the pixel data) are left on
    disk until used (pydicom's ``defer_size``), so a header pass reads a few KiB per file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, defer_size="4 KB" if defer_pixels else None)
    except InvalidDicomError as exc:
        raise NotDicomError(path, f"not a DICOM file ({exc})") from exc
    except Exception as exc:  # truncated, corrupt, permission denied
        raise LoadError(path, f"cannot read DICOM ({type(exc).__name__}: {exc})") from exc


_UNCOMPRESSED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")


_UNCOMPRESSED_LE = _UNCOMPRESSED[:2]


def _rescale(ds: pydicom.Dataset) -> tuple[float, float]:
    """RescaleSlope and RescaleIntercept as stored (1 and 0 when absent or empty)."""
    slope = ds.get("RescaleSlope", None)
    intercept = ds.get("RescaleIntercept", None)
    slope = 1.0 if slope in (None, "") else float(slope)
    intercept = 0.0 if intercept in (None, "") else float(intercept)
    return slope, intercept


def _checked_rescale(slope: float, intercept: float) -> tuple[tuple[float, float], str | None]:
    """``((slope, intercept), note)``: unusable values (NaN, infinite, a zero slope, beyond
    ±1e25 where float32 overflows) become 1 / 0 and the note says what was replaced."""
    bad = []
    if not np.isfinite(slope) or slope == 0 or abs(slope) > _MAX_RESCALE:
        bad.append(f"RescaleSlope {slope:g}")
        slope = 1.0
    if not np.isfinite(intercept) or abs(intercept) > _MAX_RESCALE:
        bad.append(f"RescaleIntercept {intercept:g}")
        intercept = 0.0
    if bad:
        return (slope, intercept), f"unusable {' and '.join(bad)}; using slope {slope:g}, intercept {intercept:g}"
    return (slope, intercept), None


_HEADER_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError, NotImplementedError,
                  OverflowError)


def _optional(ds: pydicom.Dataset, keyword: str):
    """A hashable, comparable form of an optional attribute, or ``None`` (absent or
    malformed: these only help to tell images apart, they never fail a file)."""
    try:
        value = ds.get(keyword, None)
        if value is None or value == "":
            return None
        if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
            return tuple(str(v) for v in value)
        return str(value)
    except Exception:
        return None


def _volume_keys(ds: pydicom.Dataset) -> dict:
    keys = {k: _optional(ds, k) for k in VOLUME_KEYS}
    if keys["DiffusionBValue"] is not None:
        keys["DiffusionBValue"] = (keys["DiffusionBValue"],
                                   _optional(ds, "DiffusionGradientOrientation"))
    return keys


def _facts(ds: pydicom.Dataset, path: Path) -> dict:
    """The header values a slice needs, read once; a malformed value becomes a LoadError that
    names the file (pydicom converts values lazily, so bad ones surface only here)."""
    try:
        return {
            "uid": str(ds.get("SeriesInstanceUID", "") or ""),
            "sop": str(ds.get("SOPInstanceUID", "") or ""),
            "frames": int(ds.get("NumberOfFrames", 1) or 1),
            "iop": _iop(ds),
            "ipp": _ipp(ds),
            "rows": int(ds.get("Rows", 0) or 0),
            "cols": int(ds.get("Columns", 0) or 0),
            "spacing": _spacing(ds),
            "rescale": _rescale(ds),
            "description": str(ds.get("SeriesDescription", "") or ""),
            "study": f"{ds.get('PatientID', '') or ''}|{ds.get('StudyInstanceUID', '') or ''}",
            "keys": _volume_keys(ds),
            "instance": _number(_optional(ds, "InstanceNumber")),
        }
    except _HEADER_ERRORS as exc:
        raise LoadError(path, f"invalid DICOM header ({type(exc).__name__}: {exc})") from exc


def _number(text) -> float:
    try:
        v = float(text)
        return v if np.isfinite(v) else np.inf
    except (TypeError, ValueError):
        return np.inf


def _multi(ds: pydicom.Dataset, keyword: str, n: int) -> np.ndarray | None:
    """A multi-valued decimal attribute as ``n`` floats, or ``None`` when absent or holding
    another number of values (a single value arrives from pydicom as a scalar)."""
    value = getattr(ds, keyword, None)
    if value is None or value == "":
        return None
    if not isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = [value]
    if len(value) != n:
        return None
    return np.array([float(x) for x in value])


def _iop(ds: pydicom.Dataset) -> np.ndarray | None:
    return _multi(ds, "ImageOrientationPatient", 6)


def _ipp(ds: pydicom.Dataset) -> np.ndarray | None:
    return _multi(ds, "ImagePositionPatient", 3)


def _spacing(ds: pydicom.Dataset, keyword: str = "PixelSpacing") -> tuple[float, float] | None:
    """``(row spacing, column spacing)`` as stored, or ``None`` when absent or not two values."""
    ps = _multi(ds, keyword, 2)
    return None if ps is None else (float(ps[0]), float(ps[1]))


def _fmt(v) -> str:
    return "[" + ", ".join(f"{float(x):.6g}" for x in np.ravel(v)) + "]"


def _plane(normal: np.ndarray) -> str:
    """Name of the acquisition plane closest to a slice normal in LPS."""
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(normal)))]


def _names(paths: list[Path], limit: int = 5) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _majority(items: list, key) -> tuple[object, list, list]:
    """``(value, kept, others)``: the most common ``key(item)`` (ties: the first seen)."""
    counts: dict = {}
    for it in items:
        counts.setdefault(key(it), []).append(it)
    value = max(counts, key=lambda k: len(counts[k]))
    return value, counts[value], [it for it in items if key(it) != value]


def _series_meta(ds: pydicom.Dataset) -> dict:
    meta = {}
    for key in ("SeriesDescription", "SeriesInstanceUID", "PatientID", "Manufacturer"):
        try:
            if key in ds:
                meta[key] = str(ds.get(key))
        except _HEADER_ERRORS:
            continue
    fm = getattr(ds, "file_meta", None)
    if fm is not None and "TransferSyntaxUID" in fm:
        meta["TransferSyntaxUID"] = str(fm.TransferSyntaxUID)
    return meta
