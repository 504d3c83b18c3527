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

from .errors import LoadError, MriViewerError
from .volume import Volume

log = logging.getLogger(__name__)

__all__ = ["read_dicom_series", "is_dicom_file", "has_dicom_file", "scan_series",
           "SeriesInfo", "LPS_TO_RAS"]

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


def has_dicom_file(folder: Path) -> bool:
    """True when ``folder`` holds at least one DICOM file (stops at the first one found)."""
    return any(p.is_file() and is_dicom_file(p) for p in Path(folder).iterdir())


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
    study: str = ""


def scan_series(folder: Path) -> tuple[list[SeriesInfo], list[str]]:
    """Group the DICOM files directly in ``folder`` into series, reading headers only.

    Files are grouped by SeriesInstanceUID, then split where orientation
    (ImageOrientationPatient to 1e-3) or matrix size differ; a multi-frame file is a series of
    its own; a group in which several files sit at the same ImagePositionPatient (the same image
    stored several times, e.g. in different transfer syntaxes) is split into one series per file.

    Returns:
        ``(series, problems)``: series in file-name order of their first file, and messages
        naming DICOM files whose header could not be read (so when ``problems`` is empty the
        series hold every DICOM file of the folder).
    """
    groups: dict[tuple, list[tuple[Path, dict]]] = defaultdict(list)
    problems: list[str] = []
    singles: list[SeriesInfo] = []
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        try:  # one open per file: a file without the DICOM preamble is skipped silently
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hdr = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue
        except Exception as exc:
            problems.append(f"{path}: cannot read DICOM header ({type(exc).__name__}: {exc})")
            continue
        try:
            facts = _facts(hdr, path)
        except LoadError as exc:
            problems.append(str(exc))
            continue
        uid, desc, rows, cols = facts["uid"], facts["description"], facts["rows"], facts["cols"]
        if facts["frames"] > 1:
            singles.append(SeriesInfo([path], uid, desc, rows, cols, multiframe=True, study=facts["study"]))
            continue
        iop = facts["iop"]
        key = (uid, tuple(np.round(iop, 3)) if iop is not None else None, rows, cols)
        groups[key].append((path, facts))
    series = list(singles)
    for (uid, _, rows, cols), members in groups.items():
        positions = [tuple(np.round(f["ipp"], 3)) if f["ipp"] is not None else None for _, f in members]
        desc, study = members[0][1]["description"], members[0][1]["study"]
        if len(set(positions)) < len(positions):
            series.extend(SeriesInfo([p], uid, desc, rows, cols, study=study) for p, _ in members)
        else:
            series.append(SeriesInfo([p for p, _ in members], uid, desc, rows, cols, study=study))
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


_UNCOMPRESSED_LE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")


def _fast_pixels(ds: pydicom.Dataset) -> np.ndarray | None:
    """Single-frame, single-sample, uncompressed little-endian pixels straight from the byte
    buffer — the common MR case — or ``None`` to use pydicom's pixel handlers. Signed data with
    unused high bits (which need sign extension) go to pydicom."""
    try:
        if str(ds.file_meta.TransferSyntaxUID) not in _UNCOMPRESSED_LE:
            return None
        bits, stored = int(ds.BitsAllocated), int(ds.BitsStored)
        signed = int(ds.PixelRepresentation) == 1
        if int(ds.get("SamplesPerPixel", 1)) != 1 or int(ds.get("NumberOfFrames", 1) or 1) != 1:
            return None
        if bits not in (8, 16) or (signed and stored != bits):
            return None
        rows, cols = int(ds.Rows), int(ds.Columns)
        buf = ds.PixelData
        dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
        if len(buf) < rows * cols * dtype.itemsize:
            return None  # truncated: let pydicom say so
        return np.frombuffer(buf, dtype=dtype, count=rows * cols).reshape(rows, cols)
    except _HEADER_ERRORS:
        return None


def _raw_pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """Stored pixel values (no rescale): :func:`_fast_pixels`, else pydicom's pixel handlers
    (compressed syntaxes through pylibjpeg)."""
    if "PixelData" not in ds:
        raise LoadError(path, "DICOM file has no pixel data")
    fast = _fast_pixels(ds)
    if fast is not None:
        return fast
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


_HEADER_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError, NotImplementedError, OverflowError)


def _facts(ds: pydicom.Dataset, path: Path) -> dict:
    """The header values a slice needs, read once; a malformed value becomes a LoadError that
    names the file (pydicom converts values lazily, so bad ones surface only here)."""
    try:
        return {
            "uid": str(ds.get("SeriesInstanceUID", "") or ""),
            "frames": int(ds.get("NumberOfFrames", 1) or 1),
            "iop": _iop(ds),
            "ipp": _ipp(ds),
            "rows": int(ds.get("Rows", 0) or 0),
            "cols": int(ds.get("Columns", 0) or 0),
            "spacing": _spacing(ds),
            "rescale": _rescale(ds),
            "description": str(ds.get("SeriesDescription", "") or ""),
            "study": f"{ds.get('PatientID', '') or ''}|{ds.get('StudyInstanceUID', '') or ''}",
        }
    except _HEADER_ERRORS as exc:
        raise LoadError(path, f"invalid DICOM header ({type(exc).__name__}: {exc})") from exc


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


def _regularize(data: np.ndarray, positions: np.ndarray, affine: np.ndarray, step_mm: float):
    """Resample slices at uneven ``positions`` (mm along the normal, ascending) onto an even
    grid every ``step_mm`` (linear between the two neighbouring slices; a missing slice is
    interpolated from its neighbours). Returns ``(data, affine)``."""
    n = int(round((positions[-1] - positions[0]) / step_mm)) + 1
    target = positions[0] + step_mm * np.arange(n)
    hi = np.clip(np.searchsorted(positions, target), 1, len(positions) - 1)
    lo = hi - 1
    w = ((target - positions[lo]) / np.maximum(positions[hi] - positions[lo], 1e-9)).astype(np.float32)
    w = np.clip(w, 0, 1)
    src = np.asarray(data, dtype=np.float32)
    out = src[:, :, lo] * (1 - w) + src[:, :, hi] * w
    new = affine.copy()
    new[:3, 2] = affine[:3, 2] * ((positions[-1] - positions[0]) / (len(positions) - 1)) ** -1 * step_mm
    return out, new


def read_dicom_series(source: str | Path | list[Path], modality: str = "", regularize: bool = True) -> Volume:
    """Read one DICOM series (a folder of single-frame files, or a list of files) as a Volume.

    Args:
        source: a folder (its DICOM files, non-recursive; other files skipped) or a list of
            DICOM file paths of one series.
        modality: the modality name to store on the volume (``"FLAIR"``, …).
        regularize: when slices are unevenly spaced (a missing slice, a gap), resample them
            onto an even grid at the median spacing so that every voxel sits where the affine
            says; off keeps the slices as stored (the affine's step is then the mean spacing).
            Either way the gaps are reported in ``meta["warnings"]`` with their positions.

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
    entries = []  # (facts, path, dataset)
    skipped: list[str] = []
    suspects: list[str] = []  # no DICOM preamble but a DICOM-like name; reported if the series loads

    def skip(msg: str) -> None:
        skipped.append(msg)
        log.warning("%s", msg)

    for path in files:
        try:
            ds = _read(path)
            facts = _facts(ds, path)
        except NotDicomError as exc:
            if single_file:
                raise
            if path.suffix.lower() in (".dcm", ".dicom", ".ima", ""):
                suspects.append(f"{exc} (named like a DICOM file: truncated?)")
            continue
        except LoadError as exc:
            if single_file:
                raise
            skip(str(exc))
            continue
        if "PixelData" not in ds:
            if single_file:
                raise LoadError(path, "DICOM file has no pixel data")
            skip(f"{path}: no pixel data (truncated or not an image)")
            continue
        entries.append((facts, path, ds))
    if not entries and not skipped:
        raise LoadError(folder, "folder contains no DICOM files")
    for msg in suspects:
        skip(msg)
    if not entries:
        reason = "no readable DICOM file with pixel data"
        raise LoadError(folder, reason + (f" ({skipped[0]})" if skipped else ""))

    # One series per call: keep the largest SeriesInstanceUID group.
    groups: dict[str, list] = defaultdict(list)
    for e in entries:
        groups[e[0]["uid"]].append(e)
    if len(groups) > 1:
        uid, members = max(groups.items(), key=lambda kv: len(kv[1]))
        log.warning("%s: %d series found, reading the largest (%s)", folder, len(groups), uid)
        entries = members

    first_facts, first_path, first = entries[0]
    if first_facts["frames"] > 1 and len(entries) == 1:
        try:
            return _read_multiframe(first_path, first, modality)
        except _HEADER_ERRORS as exc:
            raise LoadError(first_path, f"invalid multi-frame header ({type(exc).__name__}: {exc})") from exc

    iop = first_facts["iop"]
    if iop is None:
        raise LoadError(first_path, "no ImageOrientationPatient: cannot place the image in space")
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    if not np.isfinite(normal).all() or np.linalg.norm(normal) < 0.5:
        raise LoadError(first_path, f"ImageOrientationPatient {list(iop)} is not two orthogonal unit vectors")
    rows, cols = first_facts["rows"], first_facts["cols"]

    # Decode each slice; a slice that cannot be used is skipped and reported, the rest load.
    slices = []
    for facts, path, ds in entries:
        if facts["iop"] is None or not np.allclose(facts["iop"], iop, atol=1e-3):
            raise LoadError(path, "slice orientation differs from the rest of the series")
        if facts["ipp"] is None:
            raise LoadError(path, "no ImagePositionPatient: cannot order the slices")
        if facts["rows"] != rows or facts["cols"] != cols:
            raise LoadError(path, f"slice size {facts['rows']}x{facts['cols']} differs from {rows}x{cols}")
        try:
            px = _raw_pixels(ds, path)
            if px.shape != (rows, cols):
                raise LoadError(path, f"pixel array shape {px.shape} is not {rows}x{cols} (colour or multi-frame?)")
        except LoadError as exc:
            if len(entries) == 1:
                raise
            skip(str(exc))
            continue
        slices.append((float(facts["ipp"] @ normal), facts["ipp"], path, facts, px))
    if not slices:
        raise LoadError(folder, f"no slice could be decoded ({skipped[0]})")
    slices.sort(key=lambda s: s[0])
    positions = np.array([s[0] for s in slices])
    if len(slices) > 1 and np.any(np.diff(positions) < 1e-4):
        dup = slices[int(np.argmin(np.diff(positions))) + 1][2]
        raise LoadError(dup, "two slices at the same position (duplicate or mixed series)")

    row_spacing, col_spacing = first_facts["spacing"]
    # Fill (K, rows, cols) slice by slice (contiguous writes), rescale once, and hand out the
    # (cols, rows, K) = (I, J, K) view: Fortran order, as nibabel gives NIfTI data.
    raw = np.empty((len(slices), rows, cols), dtype=slices[0][4].dtype)
    scale = np.ones((len(slices), 2))
    for k, (_, _, _, facts, px) in enumerate(slices):
        raw[k] = px
        scale[k] = facts["rescale"]
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
        try:
            thick = float(first.get("SpacingBetweenSlices", 0) or first.get("SliceThickness", 0) or 1.0)
        except _HEADER_ERRORS:
            thick = 1.0
        step = normal * (thick if np.isfinite(thick) and thick > 0 else 1.0)
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
    if len(slices) > 1:
        tilt = float(np.degrees(np.arccos(np.clip(abs(step @ normal) / max(np.linalg.norm(step), 1e-9), -1, 1))))
        if tilt > 0.5:
            meta["gantry_tilt_deg"] = tilt
            meta.setdefault("warnings", []).append(
                f"{folder}: slices are sheared by {tilt:.1f}° (gantry tilt); the affine keeps the shear")
    if len(slices) > 2:
        gaps = np.diff(positions)
        med = float(np.median(gaps))
        irregular = np.abs(gaps - med) > max(0.01 * med, 1e-3)
        if np.any(irregular):
            meta["uneven_spacing_mm"] = [float(g) for g in gaps[irregular]]
            where = [float(positions[i]) for i in np.flatnonzero(irregular)]
            text = (f"{folder}: uneven slice spacing (median {med:.3f} mm; gaps of "
                    f"{', '.join(f'{g:.2f}' for g in gaps[irregular][:5])} mm after the slices at "
                    f"{', '.join(f'{w:.1f}' for w in where[:5])} mm along the normal)")
            if regularize:
                data, affine = _regularize(data, positions, affine, med)
                text += f"; resampled to {data.shape[2]} slices every {med:.3f} mm (linear)"
            meta.setdefault("warnings", []).append(text)
            log.warning("%s", text)
    try:
        return Volume(data, affine, modality, [s[2] for s in slices], meta)
    except MriViewerError as exc:
        raise LoadError(folder, str(exc)) from exc


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


def _read_multiframe(path: Path, ds: pydicom.Dataset, modality: str) -> Volume:
    """Enhanced (multi-frame) MR image: per-frame geometry and rescale from the functional
    groups (PS3.3 C.7.6.16: PlanePositionSequence, PlaneOrientationSequence,
    PixelMeasuresSequence, PixelValueTransformationSequence), per frame before shared."""
    frames = _raw_pixels(ds, path)  # (frames, rows, cols)
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
    meta = _series_meta(ds)
    if len(unique) < len(entries):
        msg = (f"{path}: {len(entries)} frames at {len(unique)} positions (several images per position, "
               "e.g. magnitude and phase); showing the first frame at each position")
        meta["warnings"] = [msg]
        log.warning("%s", msg)
    top_slope, top_inter = _rescale(ds)

    def rescaled(f: int) -> np.ndarray:
        fg = per_frame[f]
        slope = group_attr(fg, "PixelValueTransformationSequence", "RescaleSlope")
        inter = group_attr(fg, "PixelValueTransformationSequence", "RescaleIntercept")
        slope = top_slope if slope in (None, "") else float(slope)
        inter = top_inter if inter in (None, "") else float(inter)
        return frames[f].astype(np.float32) * np.float32(slope) + np.float32(inter)

    data = np.stack([rescaled(e[2]).T for e in unique], axis=-1)
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
    return Volume(data, LPS_TO_RAS @ lps, modality, [path], meta)
