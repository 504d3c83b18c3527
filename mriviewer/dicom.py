"""Read a DICOM MR series into a :class:`~mriviewer.volume.Volume` with pydicom.

Geometry follows DICOM PS3.3 C.7.6.2 (Image Plane Module): ImageOrientationPatient (IOP) gives
the row and column direction cosines in LPS, ImagePositionPatient (IPP) the centre of the first
transmitted voxel, PixelSpacing ``[row spacing, column spacing]`` in mm. Slices are ordered by
IPP projected on the slice normal ``row × column`` — never by file name or InstanceNumber — and
the slice step of the affine is taken from the first and last positions, so gantry tilt and
reversed stacks come out right. The result is converted from LPS to RAS (x and y negated), the
same as dcm2niix and nibabel.

What real archives contain, and what the reader does with it (every repair is a warning in
``meta["warnings"]`` that names the file, and goes to the logger; nothing is repaired silently):

* A slice that cannot be placed — no, NaN or infinite ImagePositionPatient, Rows or Columns 0,
  undecodable pixels, a matrix size or PixelSpacing other than the series' majority — is
  dropped and the rest loads.
* Files with another orientation than the majority (a localizer or scout that shares the
  SeriesInstanceUID) are split off *before* gantry tilt is judged.
* Exact duplicates (same SOPInstanceUID, or same position and same pixels) are dropped.
  Several different images at one position are split into volumes by the first of
  TemporalPositionIdentifier, DiffusionBValue (with DiffusionGradientOrientation), EchoNumbers,
  ImageType, AcquisitionNumber that tells them apart (a 4D series: ``index4d`` picks the
  volume, as for 4D NIfTI); when no header does, one image per position is kept and the
  others are named.
* Geometry is validated: PixelSpacing must be finite and non-zero (a negative value is taken
  as its absolute value, with a warning: PS3.3 defines it as a physical distance, so the sign
  carries no meaning, and mirroring the image would be worse); when no slice has PixelSpacing,
  ImagerPixelSpacing is used, else 1 mm is assumed (both warned). IOP vectors are normalised
  when their length is off by more than 0.001 (warned) and refused when off by more than 0.1,
  zero, or not orthogonal (|row·column| > 0.001, about 0.06°).
* NaN, infinite, zero or overflowing (|value| > 1e25) RescaleSlope / RescaleIntercept are
  replaced by 1 / 0 with a warning, so no slice turns NaN silently.
* Siemens mosaics (EPI, DWI: ImageType MOSAIC or a CSA NumberOfImagesInMosaic) are cut into
  slices with nibabel's :mod:`nibabel.nicom` (CSA reader and ``MosaicWrapper``, which also
  corrects the mosaic's ImagePositionPatient); several mosaic files of one series are the
  volumes of a 4D series.
* Enhanced (multi-frame) MR: frames whose orientation or PixelSpacing differs from the
  majority are split off, frames without a usable position dropped, each with the file named.
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from .errors import LoadError, MriViewerError
from .volume import Volume

log = logging.getLogger(__name__)

__all__ = ["read_dicom_series", "is_dicom_file", "has_dicom_file", "scan_series",
           "SeriesInfo", "LPS_TO_RAS", "VOLUME_KEYS"]

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
    its own. Files at one ImagePositionPatient stay together when they are copies (same
    SOPInstanceUID) or the volumes of a 4D series (told apart by one of :data:`VOLUME_KEYS`),
    and when only some positions hold several files (:func:`read_dicom_series` then keeps one
    per position and names the others). Only a group whose files *all* sit at one position
    with nothing to tell them apart (the same image stored several times, e.g. in different
    transfer syntaxes) is split into one series per file.

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
            singles.append(SeriesInfo([path], uid, desc, rows, cols, multiframe=True,
                                      study=facts["study"]))
            continue
        iop = facts["iop"]
        iop_key = tuple(np.round(iop, 3)) if iop is not None and np.isfinite(iop).all() else None
        groups[(uid, iop_key, rows, cols)].append((path, facts))
    series = list(singles)
    for (uid, iop_key, rows, cols), members in groups.items():
        desc, study = members[0][1]["description"], members[0][1]["study"]
        if _same_image_several_times(members, iop_key):
            series.extend(SeriesInfo([p], uid, desc, rows, cols, study=study) for p, _ in members)
        else:
            series.append(SeriesInfo([p for p, _ in members], uid, desc, rows, cols, study=study))
    series.sort(key=lambda s: s.files[0].name)
    return series, problems


def _same_image_several_times(members: list[tuple[Path, dict]], iop_key) -> bool:
    """True when every file of a group sits at one position, they are not copies of one
    SOP instance, and no :data:`VOLUME_KEYS` attribute tells them apart."""
    if len(members) < 2 or iop_key is None:
        return False
    normal = np.cross(np.array(iop_key[:3]), np.array(iop_key[3:]))
    positions = []
    for _, f in members:
        ipp = f["ipp"]
        if ipp is None or not np.isfinite(ipp).all():
            return False
        positions.append(float(ipp @ normal))
    if np.ptp(positions) > _POS_TOL_MM:
        return False  # a stack: at most some positions doubled; read_dicom_series sorts it out
    sops = {f["sop"] for _, f in members}
    if len(sops) == 1 and "" not in sops:
        return False  # copies of one file
    return not any(len({f["keys"].get(k) for _, f in members}) > 1 for k in VOLUME_KEYS)


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


_UNCOMPRESSED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
_UNCOMPRESSED_LE = _UNCOMPRESSED[:2]


def _fast_pixels(ds: pydicom.Dataset) -> np.ndarray | None:
    """Single-frame, single-sample, uncompressed little-endian pixels straight from the byte
    buffer — the common MR case — or ``None`` to use pydicom's pixel handlers. Unsigned data
    keep only their BitsStored low bits; signed data with unused high bits (which need sign
    extension) go to pydicom."""
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
        px = np.frombuffer(buf, dtype=dtype, count=rows * cols).reshape(rows, cols)
        if stored < bits:  # bits above BitsStored are not pixel data (PS3.5 8.1.1; pydicom masks)
            mask = (1 << stored) - 1
            if px.max() > mask:
                px = px & np.array(mask, dtype=dtype)
        return px
    except _HEADER_ERRORS:
        return None


def _raw_pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """Stored pixel values (no rescale): :func:`_fast_pixels`, else pydicom's pixel handlers
    (compressed syntaxes through the pydicom plugins: gdcm, pylibjpeg, pyjpegls, Pillow).

    Raises:
        LoadError: no pixel data, more uncompressed bytes than the header describes
            (:func:`_excess_pixel_bytes`; the data would load as garbage), or undecodable.
    """
    if "PixelData" not in ds:
        raise LoadError(path, "DICOM file has no pixel data")
    excess = _excess_pixel_bytes(ds)
    if excess:
        raise LoadError(path, excess)
    fast = _fast_pixels(ds)
    if fast is not None:
        return fast
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ds.pixel_array
    except Exception as exc:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        hint = ""
        if str(ts) == "1.2.840.10008.1.2.4.51" and int(ds.get("BitsStored", 8) or 8) > 8:
            hint = ('; 12-bit JPEG Extended needs the GPL decoder: pip install "mriviewer[jpeg-gpl]"')
        raise LoadError(
            path, f"cannot decode pixel data (transfer syntax {ts}: {type(exc).__name__}: {exc}){hint}"
        ) from exc


def _excess_pixel_bytes(ds: pydicom.Dataset) -> str | None:
    """For uncompressed pixel data longer than Rows × Columns × frames × samples ×
    BitsAllocated / 8 (plus one byte of padding): why the header does not describe the data
    (e.g. a wrong BitsAllocated or Rows), which would otherwise load as garbage."""
    try:
        if str(ds.file_meta.TransferSyntaxUID) not in _UNCOMPRESSED:
            return None
        bits = int(ds.BitsAllocated)
        n = (int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
             * int(ds.get("SamplesPerPixel", 1) or 1))
        expected = (n * bits + 7) // 8
        actual = len(ds.PixelData)
    except (*_HEADER_ERRORS, KeyError):
        return None
    if actual > expected + 1:
        return (f"pixel data holds {actual} bytes but Rows, Columns and BitsAllocated describe "
                f"{expected}: the header does not describe the image")
    return None


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


# ----------------------------------------------------------------------------- validation
def _check_iop(iop: np.ndarray | None, path: Path) -> tuple[np.ndarray, str | None]:
    """Unit row and column cosines from ImageOrientationPatient (PS3.3 C.7.6.2.1.1).

    Returns ``(iop, note)``: the 6 values, normalised when a vector's length is off by more
    than 0.001 (``note`` says so). Raises LoadError when IOP is missing, not finite, a vector's
    length is off by more than 0.1 (or zero), or the vectors are not orthogonal to 0.001."""
    if iop is None:
        raise LoadError(path, "no ImageOrientationPatient: cannot place the image in space")
    if not np.isfinite(iop).all():
        raise LoadError(path, f"ImageOrientationPatient {_fmt(iop)} is not finite")
    row, col = iop[:3], iop[3:]
    lengths = np.array([np.linalg.norm(row), np.linalg.norm(col)])
    if np.any(np.abs(lengths - 1) > _IOP_MAX):
        raise LoadError(path, f"ImageOrientationPatient {_fmt(iop)} is not two unit vectors "
                              f"(lengths {lengths[0]:.3g} and {lengths[1]:.3g})")
    note = None
    if np.any(np.abs(lengths - 1) > _IOP_SILENT):
        note = (f"ImageOrientationPatient vectors have lengths {lengths[0]:.4f} and "
                f"{lengths[1]:.4f}; normalised to unit length")
        row, col = row / lengths[0], col / lengths[1]
        iop = np.concatenate([row, col])
    dot = float(row @ col)
    if abs(dot) > _ORTHO_TOL:
        angle = float(np.degrees(np.arccos(np.clip(dot, -1, 1))))
        raise LoadError(path, f"ImageOrientationPatient row and column directions are not "
                              f"orthogonal ({angle:.2f}° apart)")
    return iop, note


def _check_spacing(spacing: tuple[float, float] | None, path: Path,
                   keyword: str = "PixelSpacing") -> tuple[tuple[float, float] | None, str | None]:
    """``(spacing, note)`` in mm: ``None`` stays ``None``; a negative value is made positive
    (note); zero, NaN or infinity raise LoadError."""
    if spacing is None:
        return None, None
    s = np.array(spacing, dtype=float)
    if not np.isfinite(s).all() or np.any(s == 0):
        raise LoadError(path, f"{keyword} {_fmt(s)} is not a usable pixel size (zero or not finite)")
    if np.any(s < 0):
        return (abs(s[0]), abs(s[1])), (f"negative {keyword} {_fmt(s)}; using its absolute "
                                        "value (the sign has no meaning in DICOM)")
    return (float(s[0]), float(s[1])), None


def _check_ipp(ipp: np.ndarray | None, path: Path) -> np.ndarray:
    if ipp is None:
        raise LoadError(path, "no ImagePositionPatient: cannot place the slice")
    if not np.isfinite(ipp).all() or np.any(np.abs(ipp) > _MAX_POS_MM):
        raise LoadError(path, f"ImagePositionPatient {_fmt(ipp)} is not a usable position")
    return ipp


def _fmt(v) -> str:
    return "[" + ", ".join(f"{float(x):.6g}" for x in np.ravel(v)) + "]"


def _plane(normal: np.ndarray) -> str:
    """Name of the acquisition plane closest to a slice normal in LPS."""
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(normal)))]


def _names(paths: list[Path], limit: int = 5) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


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


def _majority(items: list, key) -> tuple[object, list, list]:
    """``(value, kept, others)``: the most common ``key(item)`` (ties: the first seen)."""
    counts: dict = {}
    for it in items:
        counts.setdefault(key(it), []).append(it)
    value = max(counts, key=lambda k: len(counts[k]))
    return value, counts[value], [it for it in items if key(it) != value]


def _orientation_groups(iops: list[np.ndarray]) -> list[int]:
    """Group index of each orientation (cosines equal to 1e-3)."""
    reps: list[np.ndarray] = []
    out = []
    for iop in iops:
        for g, rep in enumerate(reps):
            if np.allclose(iop, rep, atol=_SAME_IOP):
                out.append(g)
                break
        else:
            reps.append(iop)
            out.append(len(reps) - 1)
    return out


def _split_orientations(items: list, iop_of, where: Path, report: _Report, what: str = "file"):
    """Keep the items of the majority orientation; warn about the others (localizers, scouts)
    naming how many, which orientation and which files/frames."""
    groups = _orientation_groups([iop_of(it) for it in items])
    major, kept, _ = _majority(list(range(len(items))), lambda i: groups[i])
    if len(kept) == len(items):
        return items
    others: dict[int, list] = defaultdict(list)
    for i, g in enumerate(groups):
        if g != major:
            others[g].append(items[i])
    main_iop = iop_of(items[kept[0]])
    for members in others.values():
        iop = iop_of(members[0])
        plane = _plane(np.cross(iop[:3], iop[3:]))
        names = _names([m.path for m in members]) if what == "file" else \
            ", ".join(str(m.extra["frame"] + 1) for m in members[:8]) + ("…" if len(members) > 8 else "")
        report.warn(
            f"{where}: split off {len(members)} {what}{'s' if len(members) > 1 else ''} with another "
            f"orientation ({plane}, ImageOrientationPatient {_fmt(iop)}; a localizer or scout?) "
            f"than the {len(kept)} of this series ({_plane(np.cross(main_iop[:3], main_iop[3:]))}, "
            f"{_fmt(main_iop)}): {names}")
    return [items[i] for i in kept]


def _cluster_positions(positions: list[float]) -> list[int]:
    """Position cluster index (ascending) of each position: positions within 0.01 mm of the
    previous one along the normal belong to one cluster."""
    order = np.argsort(positions, kind="stable")
    out = [0] * len(positions)
    cluster, last = -1, None
    for i in order:
        if last is None or positions[i] - last > _POS_TOL_MM:
            cluster += 1
        out[i] = cluster
        last = positions[i]
    return out


def _sort_value(v) -> tuple:
    if v is None:
        return (2, "")
    first = v[0] if isinstance(v, tuple) else v
    if isinstance(first, tuple):
        first = first[0] if first else ""
    try:
        return (0, float(first), str(v))
    except (TypeError, ValueError):
        return (1, str(v))


def _split_volumes(items: list, cluster_of: dict, n_clusters: int, keys_of):
    """Several images at some positions: the first :data:`VOLUME_KEYS` attribute whose values
    split ``items`` into volumes, each with at most one image per position and covering at
    least half of the positions. Returns ``(keyword, [volume items, …], [values, …])``
    ordered by the attribute's value, or ``None`` when no attribute does."""
    for key in VOLUME_KEYS:
        groups: dict = defaultdict(list)
        for it in items:
            groups[keys_of(it).get(key)].append(it)
        if len(groups) < 2:
            continue
        if all(len({cluster_of[id(it)] for it in g}) == len(g) and 2 * len(g) >= n_clusters
               for g in groups.values()):
            values = sorted(groups, key=_sort_value)
            return key, [groups[v] for v in values], values
    return None


# ----------------------------------------------------------------------------- reading
def read_dicom_series(source: str | Path | list[Path], modality: str = "", regularize: bool = True,
                      *, index4d: int = 0) -> Volume:
    """Read one DICOM series (a folder of single-frame files, a list of files, one multi-frame
    file or Siemens mosaics) as a Volume.

    The repairs and refusals for what real archives contain (dropped slices, split-off
    localizers, duplicates, 4D series, geometry checks, rescale checks, mosaics) are listed in
    the module docstring; every repair is a warning in ``meta["warnings"]`` naming the file.

    Args:
        source: a folder (its DICOM files, non-recursive; other files skipped) or a list of
            DICOM file paths of one series.
        modality: the modality name to store on the volume (``"FLAIR"``, …).
        regularize: when slices are unevenly spaced (a missing slice, a gap), resample them
            onto an even grid at the median spacing so that every voxel sits where the affine
            says; off keeps the slices as stored (the affine's step is then the mean spacing).
            Either way the gaps are reported in ``meta["warnings"]`` with their positions.
        index4d: which volume (0-based) of a series that holds several (time points, b-values,
            echoes, mosaic files); ignored when the series has one volume, like
            :func:`mriviewer.io.load_nifti`. ``meta["n_volumes"]``, ``meta["volume_index"]``
            and ``meta["volume_key"]`` (the header attribute that tells them apart) say which.

    Returns:
        Volume with ``data`` shape ``(I, J, K)`` = (columns, rows, slices) — float32 with
        RescaleSlope/Intercept applied, or the stored integer type when the rescale is the
        identity — and ``affine`` voxel → RAS mm.

    Raises:
        LoadError: no DICOM files, no slice that can be placed and decoded, geometry that
            cannot be trusted (zero or non-finite PixelSpacing, ImageOrientationPatient that
            is not two orthogonal unit vectors, a Siemens mosaic without a readable CSA
            header), or ``index4d`` out of range. The message names the file or folder and
            what is wrong.
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
    report = _Report()
    entries: list[_Slice] = []
    suspects: list[str] = []  # no DICOM preamble but a DICOM-like name; reported if the series loads

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
            report.skip(str(exc))
            continue
        if "PixelData" not in ds:
            if single_file:
                raise LoadError(path, "DICOM file has no pixel data")
            report.skip(f"{path}: no pixel data (truncated or not an image)")
            continue
        entries.append(_Slice(path, ds, facts))
    if not entries and not report.skipped:
        raise LoadError(folder, "folder contains no DICOM files")
    for msg in suspects:
        report.skip(msg)
    if not entries:
        reason = "no readable DICOM file with pixel data"
        raise LoadError(folder, reason + (f" ({report.skipped[0]})" if report.skipped else ""))

    # One series per call: keep the largest SeriesInstanceUID group.
    groups: dict[str, list[_Slice]] = defaultdict(list)
    for e in entries:
        groups[e.facts["uid"]].append(e)
    if len(groups) > 1:
        uid, members = max(groups.items(), key=lambda kv: len(kv[1]))
        report.warn(f"{folder}: {len(groups)} series found, reading the largest ({uid}, "
                    f"{len(members)} of {len(entries)} files)")
        entries = members

    first = entries[0]
    if first.facts["frames"] > 1 and len(entries) == 1:
        try:
            return _read_multiframe(first.path, first.ds, modality, report)
        except _HEADER_ERRORS as exc:
            raise LoadError(first.path, f"invalid multi-frame header ({type(exc).__name__}: {exc})") from exc

    mosaic = [e for e in entries if _flagged_mosaic(e.ds)]
    if mosaic or _csa_mosaic_count(first.ds) is not None:
        return _read_mosaic_series(entries, folder, modality, index4d, report)

    try:
        return _read_slices(entries, folder, modality, regularize, index4d, report)
    except MriViewerError:
        raise
    except _HEADER_ERRORS as exc:
        raise LoadError(folder, f"invalid DICOM header ({type(exc).__name__}: {exc})") from exc


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


def _validate_entries(entries: list[_Slice], report: _Report) -> list[_Slice]:
    """Per-file placement checks: matrix size, orientation, position, pixel spacing, rescale.
    A file that fails is dropped (reported); repairs are noted."""
    good = []
    for e in entries:
        f = e.facts
        try:
            if f["rows"] <= 0 or f["cols"] <= 0:
                raise LoadError(e.path, f"image has {f['rows']} rows and {f['cols']} columns")
            e.iop, note = _check_iop(f["iop"], e.path)
            if note:
                report.note(e.path, note)
            e.spacing, note = _check_spacing(f["spacing"], e.path)
            if note:
                report.note(e.path, note)
            e.rescale, note = _checked_rescale(*f["rescale"])
            if note:
                report.note(e.path, note)
        except LoadError as exc:
            _drop(report, e, exc)
            continue
        good.append(e)
    return good


def _series_spacing(entries: list[_Slice], report: _Report) -> tuple[float, float]:
    """The series' (row, column) spacing: the majority PixelSpacing (files with another are
    dropped, files without one are noted), else ImagerPixelSpacing, else 1 mm (warned)."""
    have = [e for e in entries if e.spacing is not None]
    if have:
        value, _, others = _majority(have, lambda e: tuple(np.round(e.spacing, 4)))
        for e in others:
            _drop(report, e, f"PixelSpacing {_fmt(e.spacing)} differs from the series' {_fmt(value)}")
            entries.remove(e)
        for e in entries:
            if e.spacing is None:
                report.note(e.path, f"no PixelSpacing; using the series' {_fmt(value)} mm")
        return value  # type: ignore[return-value]
    imager = []
    for e in entries:
        try:
            s, _ = _check_spacing(_spacing(e.ds, "ImagerPixelSpacing"), e.path, "ImagerPixelSpacing")
        except (LoadError, *_HEADER_ERRORS):
            s = None
        if s is not None:
            imager.append(tuple(np.round(s, 4)))
    if imager:
        value = _majority(imager, lambda s: s)[0]
        report.warn(f"{entries[0].path} (and every file of the series): no PixelSpacing; using "
                    f"ImagerPixelSpacing {_fmt(value)} mm (spacing at the detector, not in the "
                    "patient)")
        return value
    report.warn(f"{entries[0].path} (and every file of the series): no PixelSpacing; assumed 1 mm "
                "(distances and sizes in this volume are not in mm)")
    return 1.0, 1.0


def _decode_each(entries: list[_Slice], folder: Path, report: _Report, n_files: int, expected,
                 note: str = "", before=None) -> list[_Slice]:
    """Position and pixels of each slice; one that cannot be placed or decoded, or whose pixel
    array is not ``expected(e)`` ``(rows, cols)``, is dropped with a warning naming its file (a
    one-file series raises instead). ``before(e)`` runs first and may raise LoadError.

    Raises:
        LoadError: nothing is left, or the only file is unusable.
    """
    kept = []
    for e in entries:
        try:
            e.ipp = _check_ipp(e.facts["ipp"], e.path)
            if before is not None:
                before(e)
            e.px = _raw_pixels(e.ds, e.path)
            want = expected(e)
            if e.px.shape != want:
                raise LoadError(e.path, f"pixel array shape {e.px.shape} is not {want[0]}x{want[1]}{note}")
        except LoadError as exc:
            if n_files == 1:
                raise
            _drop(report, e, exc)
            continue
        kept.append(e)
    if not kept:
        raise _nothing_left(folder, report, n_files)
    return kept


def _read_slices(entries: list[_Slice], folder: Path, modality: str, regularize: bool,
                 index4d: int, report: _Report) -> Volume:
    n_files = len(entries)
    entries = _validate_entries(entries, report)
    if not entries:
        raise _nothing_left(folder, report, n_files)
    entries = _split_orientations(entries, lambda e: e.iop, folder, report)
    # Pixels and positions; a slice that cannot be decoded or placed is dropped. Decoding
    # first lets the matrix-size majority count only slices whose header fits their data.
    decoded = _decode_each(entries, folder, report, n_files,
                           lambda e: (e.facts["rows"], e.facts["cols"]), " (colour or multi-frame?)")
    (rows, cols), placed, others = _majority(decoded, lambda e: (e.facts["rows"], e.facts["cols"]))
    for e in others:
        _drop(report, e, f"slice size {e.facts['rows']}x{e.facts['cols']} differs from the "
                         f"series' {rows}x{cols}")
    iop = placed[0].iop
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    row_spacing, col_spacing = _series_spacing(placed, report)
    for e in placed:
        e.pos = float(e.ipp @ normal)

    volumes, key, values = _resolve_positions(placed, report)
    meta_4d: dict = {}
    if len(volumes) > 1:
        if not 0 <= index4d < len(volumes):
            raise LoadError(folder, f"series has {len(volumes)} volumes (by {key}); index "
                                    f"{index4d} out of range")
        meta_4d = {"n_volumes": len(volumes), "volume_index": int(index4d), "volume_key": key,
                   "volume_values": [_plain(v) for v in values]}
        report.warn(f"{folder}: series with {len(volumes)} volumes at the same positions (by {key}); "
                    f"showing volume {index4d + 1} ({key} {_plain(values[index4d])})")
        slices = volumes[index4d]
    else:
        slices = volumes[0]
    slices.sort(key=lambda s: s.pos)
    positions = np.array([s.pos for s in slices])

    # Fill (K, rows, cols) slice by slice (contiguous writes), rescale once, and hand out the
    # (cols, rows, K) = (I, J, K) view: Fortran order, as nibabel gives NIfTI data.
    raw = np.empty((len(slices), rows, cols), dtype=slices[0].px.dtype)
    scale = np.ones((len(slices), 2))
    for k, s in enumerate(slices):
        raw[k] = s.px
        scale[k] = s.rescale
    if np.any(scale[:, 0] != 1.0) or np.any(scale[:, 1] != 0.0):
        stack = raw.astype(np.float32)
        stack *= scale[:, 0, None, None].astype(np.float32)
        stack += scale[:, 1, None, None].astype(np.float32)
    else:
        stack = raw  # identity rescale: keep the stored integers (half the memory of float32)
    data = stack.transpose(2, 1, 0)

    ipp0 = slices[0].ipp
    if len(slices) > 1:
        step = (slices[-1].ipp - ipp0) / (len(slices) - 1)
    else:
        step = normal * _single_slice_thickness(slices[0], report)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing
    lps[:3, 1] = col_dir * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = ipp0
    affine = LPS_TO_RAS @ lps

    meta = _series_meta(slices[0].ds)
    meta.update(meta_4d)
    report.into(meta)
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
        return Volume(data, affine, modality, [s.path for s in slices], meta)
    except MriViewerError as exc:
        raise LoadError(folder, f"{exc} (PixelSpacing {_fmt([row_spacing, col_spacing])} mm, "
                                f"slice step {np.linalg.norm(step):.6g} mm)") from exc


def _plain(v):
    """A JSON-friendly form of a volume key value."""
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _single_slice_thickness(s: _Slice, report: _Report) -> float:
    """Slice step for a one-slice volume: SpacingBetweenSlices, else SliceThickness, else 1 mm
    (noted); a non-positive or non-finite value is noted and replaced by 1 mm."""
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        value = "(unreadable)"
        try:
            value = s.ds.get(key, None)
            if value in (None, ""):
                continue
            thick = float(value)
        except _HEADER_ERRORS:
            thick = float("nan")
        if np.isfinite(thick) and thick > 0:
            return thick
        report.note(s.path, f"{key} {value} is not a slice thickness; assumed 1 mm")
        return 1.0
    report.note(s.path, "one slice without SpacingBetweenSlices or SliceThickness; its thickness is "
                        "assumed 1 mm")
    return 1.0


def _same_pixels(a: _Slice, b: _Slice) -> bool:
    return (a.px.shape == b.px.shape and a.rescale == b.rescale
            and a.facts["keys"] == b.facts["keys"] and np.array_equal(a.px, b.px))


def _resolve_positions(placed: list[_Slice], report: _Report):
    """Drop exact duplicates; split several images per position into volumes by a
    :data:`VOLUME_KEYS` attribute, or keep one per position (reporting the others).

    Returns ``(volumes, key, values)``: a list of slice lists (one per volume), the attribute
    that told them apart (``None`` for one volume) and its values."""
    clusters = _cluster_positions([s.pos for s in placed])
    by_cluster: dict[int, list[_Slice]] = defaultdict(list)
    for s, c in zip(placed, clusters, strict=True):
        by_cluster[c].append(s)
    kept: list[_Slice] = []
    doubled = False
    for members in by_cluster.values():
        members.sort(key=lambda s: s.order)
        unique: list[_Slice] = []
        for s in members:
            twin = next((u for u in unique if (s.facts["sop"] and s.facts["sop"] == u.facts["sop"])
                         or _same_pixels(s, u)), None)
            if twin is None:
                unique.append(s)
                continue
            why = "same SOPInstanceUID" if s.facts["sop"] and s.facts["sop"] == twin.facts["sop"] \
                else "same position and same pixels"
            _drop(report, s, f"exact duplicate of {twin.path.name} ({why})")
        doubled |= len(unique) > 1
        kept.extend(unique)
    if not doubled:
        return [kept], None, [None]
    cluster_of = {id(s): c for s, c in zip(placed, clusters, strict=True)}
    split = _split_volumes(kept, cluster_of, len(by_cluster), lambda s: s.facts["keys"])
    if split is not None:
        key, volumes, values = split
        return volumes, key, values
    one_each: dict[int, _Slice] = {}
    for s in sorted(kept, key=lambda s: s.order):
        c = cluster_of[id(s)]
        if c not in one_each:
            one_each[c] = s
            continue
        _drop(report, s, f"another image at the position of {one_each[c].path.name} ({s.pos:.2f} mm "
                         f"along the normal) with different pixels, and no "
                         f"{'/'.join(VOLUME_KEYS)} tells them apart; kept {one_each[c].path.name}")
    return [list(one_each.values())], None, [None]


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


# ----------------------------------------------------------------------------- Siemens mosaic
def _flagged_mosaic(ds: pydicom.Dataset) -> bool:
    """ImageType contains ``MOSAIC`` (Siemens EPI/DWI stored as tiles of one 2D image)."""
    image_type = _optional(ds, "ImageType") or ()
    if isinstance(image_type, str):
        image_type = (image_type,)
    return any(str(v).strip().upper() == "MOSAIC" for v in image_type)


def _csa_header(ds: pydicom.Dataset):
    """The Siemens CSA image header (nibabel.nicom.csareader), ``None`` when there is none;
    raises whatever the reader raises on a corrupt one. Parsed once per dataset (the mosaic
    check and the mosaic reader both ask), the result or the error kept on the dataset."""
    cached = ds.__dict__.get("_mriviewer_csa")
    if cached is None:
        try:
            cached = (True, _nicom()[0].get_csa_header(ds, "image"))
        except Exception as exc:  # re-raised below, on every call, as the reader raised it
            cached = (False, exc)
        ds.__dict__["_mriviewer_csa"] = cached
    ok, value = cached
    if not ok:
        raise value
    return value


def _nicom():
    """``(csareader, dicomwrappers)`` from nibabel.nicom, imported quietly (the package warns
    on import that its DICOM readers are experimental)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader, dicomwrappers
    return csareader, dicomwrappers


def _csa_mosaic_count(ds: pydicom.Dataset) -> int | None:
    """NumberOfImagesInMosaic from the CSA header of a file not flagged MOSAIC in ImageType,
    or ``None`` (no CSA header, unreadable, or not a mosaic)."""
    if (0x0029, 0x0010) not in ds:
        return None
    try:
        csareader = _nicom()[0]
        csa = _csa_header(ds)
        if csa is None or not csareader.is_mosaic(csa):
            return None
        return int(csareader.get_n_mosaic(csa))
    except Exception:
        return None


def _mosaic_wrapper(e: _Slice):
    """nibabel's MosaicWrapper for one mosaic file, or LoadError naming the file when its CSA
    header is missing or unreadable (the tiles cannot be placed without it)."""
    csareader, dicomwrappers = _nicom()
    try:
        csa = _csa_header(e.ds)
    except Exception as exc:
        raise LoadError(e.path, f"Siemens mosaic with an unreadable CSA header ({type(exc).__name__}: "
                                f"{exc}): cannot cut it into slices") from exc
    n = None
    if csa is not None:
        try:
            n = csareader.get_n_mosaic(csa)
        except Exception:
            n = None
    if csa is None or not n:
        raise LoadError(e.path, "Siemens mosaic (ImageType MOSAIC) without a CSA image header giving "
                                "NumberOfImagesInMosaic: cannot cut it into slices")
    try:
        n = int(n)
        wrapper = dicomwrappers.MosaicWrapper(e.ds, csa, n)
    except Exception as exc:
        raise LoadError(e.path, f"Siemens mosaic: unusable NumberOfImagesInMosaic {n!r} "
                                f"({type(exc).__name__}: {exc})") from exc
    if n < 1 or e.facts["rows"] % wrapper.mosaic_size or e.facts["cols"] % wrapper.mosaic_size:
        raise LoadError(e.path, f"Siemens mosaic of {e.facts['rows']}x{e.facts['cols']} pixels cannot hold "
                                f"{n} tiles ({wrapper.mosaic_size}x{wrapper.mosaic_size} grid)")
    return wrapper


def _read_mosaic_series(entries: list[_Slice], folder: Path, modality: str, index4d: int,
                        report: _Report) -> Volume:
    """Siemens mosaics: each file a 3D volume cut into slices by nibabel's MosaicWrapper
    (affine with the mosaic position correction and the slice direction of the CSA
    SliceNormalVector; see nibabel's ``dicom_mosaic`` notes); several files of one series are
    the volumes of a 4D series in AcquisitionNumber order."""
    n_files = len(entries)
    kept = []
    for e in entries:
        if not (_flagged_mosaic(e.ds) or _csa_mosaic_count(e.ds)):
            _drop(report, e, "not a mosaic in a series of Siemens mosaics")
            continue
        kept.append(e)
    entries = _validate_entries(kept, report)
    if not entries:
        raise _nothing_left(folder, report, n_files)
    entries = _split_orientations(entries, lambda e: e.iop, folder, report)
    (rows, cols), _, others = _majority(entries, lambda e: (e.facts["rows"], e.facts["cols"]))
    for e in others:
        _drop(report, e, f"mosaic size {e.facts['rows']}x{e.facts['cols']} differs from the "
                         f"series' {rows}x{cols}")
        entries.remove(e)
    spacing = _series_spacing(entries, report)
    def read_csa(e: _Slice) -> None:
        e.extra["wrapper"] = _mosaic_wrapper(e)

    usable = _decode_each(entries, folder, report, n_files, lambda e: (rows, cols), before=read_csa)
    usable.sort(key=lambda e: (_number(_optional(e.ds, "AcquisitionNumber")), e.order))
    volumes: list[_Slice] = []
    for e in usable:
        twin = next((v for v in volumes if (e.facts["sop"] and e.facts["sop"] == v.facts["sop"])
                     or (np.array_equal(e.px, v.px) and e.rescale == v.rescale)), None)
        if twin is not None:
            _drop(report, e, f"exact duplicate of {twin.path.name} (same mosaic image)")
            continue
        volumes.append(e)
    meta_4d: dict = {}
    if len(volumes) > 1:
        if not 0 <= index4d < len(volumes):
            raise LoadError(folder, f"series has {len(volumes)} mosaic volumes; index {index4d} out of range")
        meta_4d = {"n_volumes": len(volumes), "volume_index": int(index4d),
                   "volume_key": "AcquisitionNumber"}
        report.warn(f"{folder}: series of {len(volumes)} mosaic volumes (time points or diffusion "
                    f"directions); showing volume {index4d + 1} ({volumes[index4d].path.name})")
        chosen = volumes[index4d]
    else:
        chosen = volumes[0]
    data, lps = _demosaic(chosen, spacing, report)
    (slope, intercept) = chosen.rescale
    if slope != 1.0 or intercept != 0.0:
        data = data.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    meta = _series_meta(chosen.ds)
    meta.update(meta_4d)
    meta["mosaic_tiles"] = int(data.shape[2])
    report.into(meta)
    try:
        return Volume(data, LPS_TO_RAS @ lps, modality, [chosen.path], meta)
    except MriViewerError as exc:
        raise LoadError(chosen.path, str(exc)) from exc


def _demosaic(e: _Slice, spacing: tuple[float, float], report: _Report) -> tuple[np.ndarray, np.ndarray]:
    """``(data (I, J, K), LPS affine)`` of one mosaic through nibabel's MosaicWrapper: its
    ``get_unscaled_data`` reshape (rows, columns, slices) and ``affine`` (row index, column
    index, slice → LPS), re-indexed to mriviewer's (column, row, slice)."""
    wrapper = e.extra["wrapper"]
    # The wrapper reads geometry from the dataset: give it the validated values (unit IOP,
    # positive spacing) and the decoded pixels.
    e.ds.ImageOrientationPatient = [float(v) for v in e.iop]
    e.ds.PixelSpacing = [float(v) for v in spacing]
    try:
        thick = e.ds.get("SpacingBetweenSlices", None)
        if thick in (None, ""):
            thick = e.ds.get("SliceThickness", None)
        thick = None if thick in (None, "") else float(thick)
    except _HEADER_ERRORS:
        thick = float("nan")
    if thick is None:
        report.note(e.path, "mosaic without SpacingBetweenSlices or SliceThickness; slice step "
                            "assumed 1 mm")
    elif not np.isfinite(thick) or thick <= 0:
        raise LoadError(e.path, f"mosaic slice spacing {thick} mm (SpacingBetweenSlices / "
                                "SliceThickness) is not positive")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapper.get_pixel_array = lambda: e.px  # decoded once, by _raw_pixels
            data = np.asarray(wrapper.get_unscaled_data())
            affine = np.asarray(wrapper.affine, dtype=float)
    except AssertionError as exc:  # SiemensWrapper.slice_normal checks the CSA normal so
        raise LoadError(e.path, "Siemens mosaic: the CSA SliceNormalVector is not the normal of "
                                "ImageOrientationPatient") from exc
    except Exception as exc:
        raise LoadError(e.path, f"Siemens mosaic cannot be cut into slices "
                                f"({type(exc).__name__}: {exc})") from exc
    if thick is None:
        affine[:3, 2] /= max(np.linalg.norm(affine[:3, 2]), 1e-12)
    data = data.transpose(1, 0, 2)  # (rows, cols, K) -> (cols, rows, K) = (I, J, K)
    lps = affine[:, [1, 0, 2, 3]]
    return data, lps


# ----------------------------------------------------------------------------- multi-frame
def _read_multiframe(path: Path, ds: pydicom.Dataset, modality: str,
                     report: _Report | None = None) -> Volume:
    """Enhanced (multi-frame) MR image: per-frame geometry and rescale from the functional
    groups (PS3.3 C.7.6.16: PlanePositionSequence, PlaneOrientationSequence,
    PixelMeasuresSequence, PixelValueTransformationSequence), per frame before shared.

    Frames whose orientation or PixelSpacing differs from the majority are split off, frames
    without a usable position dropped (warnings name the file and the frame numbers); where
    several frames share a position the first at each position is kept (warned)."""
    report = report or _Report()
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
    if len(per_frame) != frames.shape[0] or frames.ndim != 3:
        raise LoadError(path, f"{len(per_frame)} per-frame functional groups for pixel data of shape "
                              f"{frames.shape}")
    top_slope, top_inter = _rescale(ds)
    items = []
    for f, fg in enumerate(per_frame):
        item = _Slice(path, ds, {}, extra={"frame": f})
        where = f"frame {f + 1}"
        iop = group_attr(fg, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = group_attr(fg, "PixelMeasuresSequence", "PixelSpacing")
        if iop is None or spacing is None:
            raise LoadError(path, f"multi-frame DICOM without plane orientation or pixel spacing ({where})")
        try:
            item.iop, note = _check_iop(np.array([float(v) for v in iop]) if len(iop) == 6 else None, path)
            if note:
                report.note(path, f"{where}: {note}")
            if len(spacing) != 2:
                raise LoadError(path, f"PixelSpacing {list(spacing)} is not two values")
            item.spacing, note = _check_spacing((float(spacing[0]), float(spacing[1])), path)
            if note:
                report.note(path, note)
        except LoadError as exc:
            raise LoadError(path, f"{where}: {exc.reason}") from exc
        ipp = group_attr(fg, "PlanePositionSequence", "ImagePositionPatient")
        try:
            item.ipp = _check_ipp(None if ipp is None or len(ipp) != 3 else
                                  np.array([float(v) for v in ipp]), path)
        except LoadError as exc:
            report.skip(f"{path}: {where} dropped: {exc.reason}")
            continue
        slope = group_attr(fg, "PixelValueTransformationSequence", "RescaleSlope")
        inter = group_attr(fg, "PixelValueTransformationSequence", "RescaleIntercept")
        slope = top_slope if slope in (None, "") else float(slope)
        inter = top_inter if inter in (None, "") else float(inter)
        item.rescale, note = _checked_rescale(slope, inter)
        if note:
            report.note(path, note)
        items.append(item)
    if not items:
        raise LoadError(path, f"no frame can be placed ({report.skipped[0]})")
    items = _split_orientations(items, lambda it: it.iop, path, report, what="frame")
    spacing, _, others = _majority(items, lambda it: tuple(np.round(it.spacing, 4)))
    if others:
        report.warn(f"{path}: split off {len(others)} frames whose PixelSpacing differs from the "
                    f"{_fmt(spacing)} mm of the other {len(items) - len(others)}: frames "
                    f"{', '.join(str(it.extra['frame'] + 1) for it in others[:8])}")
        items = [it for it in items if it not in others]
    iop = items[0].iop
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    for it in items:
        it.pos = float(it.ipp @ normal)
    # Several frames at one position (echoes, phases): keep the first stack.
    items.sort(key=lambda it: (it.pos, it.extra["frame"]))
    unique: list[_Slice] = []
    for it in items:
        if not unique or abs(it.pos - unique[-1].pos) > 1e-4:
            unique.append(it)
    meta = _series_meta(ds)
    if len(unique) < len(items):
        report.warn(f"{path}: {len(items)} frames at {len(unique)} positions (several images per "
                    "position, e.g. magnitude and phase); showing the first frame at each position")

    def rescaled(it: _Slice) -> np.ndarray:
        slope, inter = it.rescale
        return frames[it.extra["frame"]].astype(np.float32) * np.float32(slope) + np.float32(inter)

    data = np.stack([rescaled(it).T for it in unique], axis=-1)
    ipp0 = unique[0].ipp
    if len(unique) > 1:
        step = (unique[-1].ipp - ipp0) / (len(unique) - 1)
    else:
        try:
            value = group_attr(per_frame[0], "PixelMeasuresSequence", "SliceThickness")
            thick = float(value) if value not in (None, "") else None
        except _HEADER_ERRORS:
            thick = float("nan")
        if thick is None:
            report.note(path, "one frame without SliceThickness; its thickness is assumed 1 mm")
            thick = 1.0
        elif not np.isfinite(thick) or thick <= 0:
            report.note(path, f"SliceThickness {thick} is not a slice thickness; assumed 1 mm")
            thick = 1.0
        step = normal * thick
    lps = np.eye(4)
    lps[:3, 0] = row_dir * float(spacing[1])
    lps[:3, 1] = col_dir * float(spacing[0])
    lps[:3, 2] = step
    lps[:3, 3] = ipp0
    report.into(meta)
    try:
        return Volume(data, LPS_TO_RAS @ lps, modality, [path], meta)
    except MriViewerError as exc:
        raise LoadError(path, str(exc)) from exc
