"""Read a DICOM MR series into a :class:`~mriviewer.volume.Volume` with pydicom.

Geometry follows DICOM PS3.3 C.7.6.2 (Image Plane Module): ImageOrientationPatient (IOP) gives
the row and column direction cosines in LPS, ImagePositionPatient (IPP) the centre of the first
transmitted voxel, PixelSpacing ``[row spacing, column spacing]`` in mm. Slices are ordered by
IPP projected on the slice normal ``row × column`` — never by file name or InstanceNumber — and
the slice step of the affine is taken from the first and last positions, so gantry tilt and
reversed stacks come out right. The result is converted from LPS to RAS (x and y negated), the
same as dcm2niix and nibabel.
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from .errors import LoadError
from .volume import Volume

log = logging.getLogger(__name__)

__all__ = ["read_dicom_series", "is_dicom_file", "list_dicom_files", "scan_series", "SeriesInfo", "LPS_TO_RAS"]

#: Flip between LPS (DICOM) and RAS (NIfTI) patient coordinates.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` starts with the DICOM preamble ``DICM`` at byte 128 (PS3.10 7.1).

    Files without a preamble (rare, old) are not recognised here; use
    :func:`read_dicom_series` with explicit file lists for those.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def list_dicom_files(folder: Path) -> list[Path]:
    """The DICOM files directly inside ``folder`` (not recursive), sorted by name.

    Non-DICOM files (``.nfo``, ``.txt``, thumbnails) are skipped by checking the preamble.
    """
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_dicom_file(p))


@dataclass
class SeriesInfo:
    """One image series found by :func:`scan_series` (headers only).

    Attributes:
        files: the series' files (one for a multi-frame image).
        uid: SeriesInstanceUID.
        description: SeriesDescription (may be empty).
        rows, columns: in-plane matrix.
        multiframe: an enhanced (multi-frame) image.
    """

    files: list[Path]
    uid: str
    description: str
    rows: int
    columns: int
    multiframe: bool = False


def scan_series(folder: Path) -> tuple[list[SeriesInfo], list[str]]:
    """Group the DICOM files directly in ``folder`` into series, reading headers only.

    Files are grouped by SeriesInstanceUID, then split where orientation
    (ImageOrientationPatient to 1e-3) or matrix size differ; a multi-frame file is a series of
    its own; a group in which several files sit at the same ImagePositionPatient (the same image
    stored several times, e.g. in different transfer syntaxes) is split into one series per file.

    Returns:
        ``(series, problems)``: series in file-name order of their first file, and messages
        naming files whose header could not be read.
    """
    groups: dict[tuple, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    problems: list[str] = []
    singles: list[SeriesInfo] = []
    for path in list_dicom_files(folder):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hdr = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:
            problems.append(f"{path}: cannot read DICOM header ({type(exc).__name__}: {exc})")
            continue
        uid = str(getattr(hdr, "SeriesInstanceUID", ""))
        desc = str(getattr(hdr, "SeriesDescription", "") or "")
        rows, cols = int(getattr(hdr, "Rows", 0) or 0), int(getattr(hdr, "Columns", 0) or 0)
        if int(getattr(hdr, "NumberOfFrames", 1) or 1) > 1:
            singles.append(SeriesInfo([path], uid, desc, rows, cols, multiframe=True))
            continue
        iop = _iop(hdr)
        key = (uid, tuple(np.round(iop, 3)) if iop is not None else None, rows, cols)
        groups[key].append((path, hdr))
    series = list(singles)
    for (uid, _, rows, cols), members in groups.items():
        positions = [tuple(np.round(_ipp(h), 3)) if _ipp(h) is not None else None for _, h in members]
        desc = str(getattr(members[0][1], "SeriesDescription", "") or "")
        if len(set(positions)) < len(positions):
            series.extend(SeriesInfo([p], uid, desc, rows, cols) for p, _ in members)
        else:
            series.append(SeriesInfo([p for p, _ in members], uid, desc, rows, cols))
    series.sort(key=lambda s: s.files[0].name)
    return series, problems


class NotDicomError(LoadError):
    """The file has no DICOM preamble (a stray ``.nfo``, ``.txt`` or thumbnail)."""


def _read(path: Path) -> pydicom.Dataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise NotDicomError(path, f"not a DICOM file ({exc})") from exc
    except Exception as exc:  # truncated, corrupt, permission denied
        raise LoadError(path, f"cannot read DICOM ({type(exc).__name__}: {exc})") from exc


def _raw_pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """Stored pixel values (no rescale), as decoded by pydicom's pixel handlers."""
    if "PixelData" not in ds:
        raise LoadError(path, "DICOM file has no pixel data")
    try:
        return ds.pixel_array
    except Exception as exc:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise LoadError(
            path, f"cannot decode pixel data (transfer syntax {ts}: {type(exc).__name__}: {exc})"
        ) from exc


def _rescale(ds: pydicom.Dataset) -> tuple[float, float]:
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return slope, intercept


def _pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """Pixel values with RescaleSlope/Intercept applied, float32."""
    arr = _raw_pixels(ds, path).astype(np.float32)
    slope, intercept = _rescale(ds)
    if slope != 1.0 or intercept != 0.0:
        arr = arr * np.float32(slope) + np.float32(intercept)
    return arr


def _iop(ds: pydicom.Dataset) -> np.ndarray | None:
    iop = getattr(ds, "ImageOrientationPatient", None)
    if iop is None or len(iop) != 6:
        return None
    v = np.array([float(x) for x in iop])
    return v


def _ipp(ds: pydicom.Dataset) -> np.ndarray | None:
    ipp = getattr(ds, "ImagePositionPatient", None)
    if ipp is None or len(ipp) != 3:
        return None
    return np.array([float(x) for x in ipp])


def _spacing(ds: pydicom.Dataset) -> tuple[float, float]:
    ps = getattr(ds, "PixelSpacing", None)
    if ps is None or len(ps) != 2:
        return 1.0, 1.0
    return float(ps[0]), float(ps[1])


def read_dicom_series(source: str | Path | list[Path], modality: str = "") -> Volume:
    """Read one DICOM series (a folder of single-frame files, or a list of files) as a Volume.

    Args:
        source: a folder (its DICOM files, non-recursive; other files skipped) or a list of
            DICOM file paths of one series.
        modality: the modality name to store on the volume (``"FLAIR"``, …).

    Returns:
        Volume with ``data`` shape ``(I, J, K)`` = (columns, rows, slices) — float32 with
        RescaleSlope/Intercept applied, or the stored integer type when the rescale is the
        identity — and ``affine`` voxel → RAS mm.

    Raises:
        LoadError: no DICOM files, unreadable pixel data, slices of different sizes or
            orientations, or slices at the same position. The message names the file or
            folder.
    """
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.exists():
            raise LoadError(folder, "no such file or folder")
        # Every file is tried; those without the DICOM preamble are skipped silently (one
        # open per file instead of a separate preamble check).
        files = [folder] if folder.is_file() else sorted(p for p in folder.iterdir() if p.is_file())
        if not files:
            raise LoadError(folder, "folder contains no DICOM files")
    else:
        files = [Path(p) for p in source]
        if not files:
            raise LoadError(Path("."), "empty list of DICOM files")
        folder = files[0].parent

    single_file = len(files) == 1 and (not isinstance(source, (str, Path)) or Path(source).is_file())
    datasets = []
    skipped: list[str] = []
    for path in files:
        try:
            ds = _read(path)
        except NotDicomError:
            if single_file:
                raise
            continue
        except LoadError as exc:
            if len(files) == 1:
                raise
            skipped.append(str(exc))
            log.warning("%s", exc)
            continue
        if "PixelData" not in ds:
            skipped.append(f"{path}: no pixel data (truncated or not an image)")
            log.warning("%s: skipped, no pixel data", path)
            continue
        datasets.append((path, ds))
    if not datasets and not skipped:
        raise LoadError(folder, "folder contains no DICOM files")
    if not datasets:
        reason = "no readable DICOM file with pixel data"
        raise LoadError(folder, reason + (f" ({skipped[0]})" if skipped else ""))

    # One series per call: keep the largest SeriesInstanceUID group.
    groups: dict[str, list] = defaultdict(list)
    for path, ds in datasets:
        groups[str(getattr(ds, "SeriesInstanceUID", ""))].append((path, ds))
    if len(groups) > 1:
        uid, members = max(groups.items(), key=lambda kv: len(kv[1]))
        log.warning("%s: %d series found, reading the largest (%s)", folder, len(groups), uid)
        datasets = members

    first_path, first = datasets[0]
    if int(getattr(first, "NumberOfFrames", 1) or 1) > 1 and len(datasets) == 1:
        return _read_multiframe(first_path, first, modality)

    iop = _iop(first)
    if iop is None:
        raise LoadError(first_path, "no ImageOrientationPatient: cannot place the image in space")
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)

    slices = []
    for path, ds in datasets:
        this_iop = _iop(ds)
        if this_iop is None or not np.allclose(this_iop, iop, atol=1e-3):
            raise LoadError(path, "slice orientation differs from the rest of the series")
        ipp = _ipp(ds)
        if ipp is None:
            raise LoadError(path, "no ImagePositionPatient: cannot order the slices")
        slices.append((float(ipp @ normal), ipp, path, ds))
    slices.sort(key=lambda s: s[0])
    positions = np.array([s[0] for s in slices])
    if len(slices) > 1 and np.any(np.diff(positions) < 1e-4):
        dup = slices[int(np.argmin(np.diff(positions))) + 1][2]
        raise LoadError(dup, "two slices at the same position (duplicate or mixed series)")

    rows, cols = int(first.Rows), int(first.Columns)
    row_spacing, col_spacing = _spacing(first)
    # Fill (K, rows, cols) slice by slice (contiguous writes), rescale once, and hand out the
    # (cols, rows, K) = (I, J, K) view: Fortran order, as nibabel gives NIfTI data.
    raw = None
    scale = np.ones((len(slices), 2))
    scale[:, 1] = 0.0
    for k, (_, _, path, ds) in enumerate(slices):
        if int(ds.Rows) != rows or int(ds.Columns) != cols:
            raise LoadError(path, f"slice size {ds.Rows}x{ds.Columns} differs from {rows}x{cols}")
        px = _raw_pixels(ds, path)
        if px.shape != (rows, cols):
            raise LoadError(path, f"pixel array shape {px.shape} is not {rows}x{cols} (colour or multi-frame?)")
        if raw is None:
            raw = np.empty((len(slices), rows, cols), dtype=px.dtype)
        raw[k] = px
        scale[k] = _rescale(ds)
    if np.any(scale[:, 0] != 1.0) or np.any(scale[:, 1] != 0.0):
        stack = raw.astype(np.float32)
        stack *= scale[:, 0, None, None].astype(np.float32)
        stack += scale[:, 1, None, None].astype(np.float32)
    else:
        stack = raw  # identity rescale: keep the stored integers (half the memory of float32)
    data = stack.transpose(2, 1, 0)

    ipp0 = slices[0][1]
    if len(slices) > 1:
        step = (slices[-1][1] - ipp0) / (len(slices) - 1)
    else:
        thick = float(getattr(first, "SpacingBetweenSlices", 0) or getattr(first, "SliceThickness", 0) or 1.0)
        step = normal * thick
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing
    lps[:3, 1] = col_dir * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = ipp0
    affine = LPS_TO_RAS @ lps

    meta = _series_meta(first)
    if skipped:
        meta["skipped_files"] = skipped
        meta.setdefault("warnings", []).extend(f"skipped {m}" for m in skipped)
    if len(slices) > 2:
        gaps = np.diff(positions)
        med = float(np.median(gaps))
        irregular = np.abs(gaps - med) > max(0.01 * med, 1e-3)
        if np.any(irregular):
            meta["uneven_spacing_mm"] = [float(g) for g in gaps[irregular]]
            where = [float(positions[i]) for i in np.flatnonzero(irregular)]
            meta.setdefault("warnings", []).append(
                f"{folder}: uneven slice spacing (median {med:.3f} mm; gaps after slices at "
                f"{', '.join(f'{w:.1f}' for w in where[:5])} mm along the normal)"
            )
            log.warning("%s", meta["warnings"][-1])
    return Volume(data, affine, modality, [s[2] for s in slices], meta)


def _series_meta(ds: pydicom.Dataset) -> dict:
    meta = {}
    for key in ("SeriesDescription", "SeriesInstanceUID", "PatientID", "Manufacturer"):
        if key in ds:
            meta[key] = str(ds.get(key))
    fm = getattr(ds, "file_meta", None)
    if fm is not None and "TransferSyntaxUID" in fm:
        meta["TransferSyntaxUID"] = str(fm.TransferSyntaxUID)
    return meta


def _read_multiframe(path: Path, ds: pydicom.Dataset, modality: str) -> Volume:
    """Enhanced (multi-frame) MR image: per-frame geometry from the functional groups
    (PS3.3 C.7.6.16: PlanePositionSequence, PlaneOrientationSequence, PixelMeasuresSequence)."""
    frames = _pixels(ds, path)  # (frames, rows, cols)
    if frames.ndim == 2:
        frames = frames[None]
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])

    def group_attr(fg, seq, attr):
        for src in (fg, shared):
            if src is not None and seq in src and attr in src[seq][0]:
                return src[seq][0][attr].value
        return None

    if not per_frame:
        raise LoadError(path, "multi-frame DICOM without per-frame functional groups")
    iop = group_attr(per_frame[0], "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = group_attr(per_frame[0], "PixelMeasuresSequence", "PixelSpacing")
    if iop is None or spacing is None:
        raise LoadError(path, "multi-frame DICOM without plane orientation or pixel spacing")
    iop = np.array([float(v) for v in iop])
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    entries = []
    for f, fg in enumerate(per_frame):
        ipp = group_attr(fg, "PlanePositionSequence", "ImagePositionPatient")
        if ipp is None:
            raise LoadError(path, f"frame {f + 1} has no ImagePositionPatient")
        ipp = np.array([float(v) for v in ipp])
        entries.append((float(ipp @ normal), ipp, f))
    # Several frames at one position (echoes, phases): keep the first stack.
    entries.sort(key=lambda e: (e[0], e[2]))
    unique = []
    for e in entries:
        if not unique or abs(e[0] - unique[-1][0]) > 1e-4:
            unique.append(e)
    if len(unique) < len(entries):
        log.warning("%s: %d frames share positions; using one frame per position", path, len(entries) - len(unique))
    data = np.stack([frames[e[2]].T for e in unique], axis=-1).astype(np.float32)
    ipp0 = unique[0][1]
    if len(unique) > 1:
        step = (unique[-1][1] - ipp0) / (len(unique) - 1)
    else:
        step = normal * float(group_attr(per_frame[0], "PixelMeasuresSequence", "SliceThickness") or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * float(spacing[1])
    lps[:3, 1] = col_dir * float(spacing[0])
    lps[:3, 2] = step
    lps[:3, 3] = ipp0
    return Volume(data, LPS_TO_RAS @ lps, modality, [path], _series_meta(ds))
