"""Read a DICOM MR series into a :class:`~mriviewer.core.volume.Volume` with pydicom.

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

from collections import defaultdict
from pathlib import Path

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.io.dicom.classic import _read_slices
from mriviewer.io.dicom.headers import _HEADER_ERRORS, NotDicomError, _facts, _read
from mriviewer.io.dicom.mosaic import _csa_mosaic_count, _flagged_mosaic, _read_mosaic_series
from mriviewer.io.dicom.multiframe import _read_multiframe
from mriviewer.io.dicom.problems import _Report, _Slice


# ----------------------------------------------------------------------------- reading
def read_dicom_series(source: str | Path | list[Path], modality: str = "", regularize: bool = True,
                      *, index4d: int = 0, header_only: bool = False) -> Volume:
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
            :func:`mriviewer.io.nifti.load_nifti`. ``meta["n_volumes"]``, ``meta["volume_index"]``
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
    files, folder = _list_files(source)
    single_file = len(files) == 1 and (not isinstance(source, (str, Path)) or Path(source).is_file())
    report = _Report()
    entries = _largest_series(_read_headers(files, folder, single_file, report, header_only), folder, report)

    first = entries[0]
    if first.facts["frames"] > 1 and len(entries) == 1:
        try:
            return _read_multiframe(first.path, first.ds, modality, report, index4d)
        except _HEADER_ERRORS as exc:
            raise LoadError(first.path, f"invalid multi-frame header ({type(exc).__name__}: {exc})") from exc

    mosaic = [e for e in entries if _flagged_mosaic(e.ds)]
    if mosaic or _csa_mosaic_count(first.ds) is not None:
        return _read_mosaic_series(entries, folder, modality, index4d, report)

    try:
        return _read_slices(entries, folder, modality, regularize, index4d, report, header_only)
    except MriViewerError:
        raise
    except _HEADER_ERRORS as exc:
        raise LoadError(folder, f"invalid DICOM header ({type(exc).__name__}: {exc})") from exc


def _list_files(source: str | Path | list[Path]) -> tuple[list[Path], Path]:
    """``(files, folder)``: the files to try (a folder's regular files, sorted, or the list as
    given) and the folder that names the series in messages.

    Raises:
        LoadError: no such path, an empty folder or an empty list.
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
        return files, folder
    files = [Path(p) for p in source]
    if not files:
        raise LoadError(Path("."), "empty list of DICOM files")
    return files, files[0].parent


def _read_headers(files: list[Path], folder: Path, single_file: bool, report: _Report,
                  defer_pixels: bool = False) -> list[_Slice]:
    """One :class:`_Slice` per DICOM file with pixel data; the other files are skipped
    (reported; files without the DICOM preamble only when named like DICOM files).

    Raises:
        LoadError: no usable file, or the one file given is not a DICOM image.
    """
    entries: list[_Slice] = []
    suspects: list[str] = []  # no DICOM preamble but a DICOM-like name; reported if the series loads
    for path in files:
        try:
            ds = _read(path, defer_pixels)
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
    return entries


def _largest_series(entries: list[_Slice], folder: Path, report: _Report) -> list[_Slice]:
    """One series per call: the largest SeriesInstanceUID group (warned when there are several)."""
    groups: dict[str, list[_Slice]] = defaultdict(list)
    for e in entries:
        groups[e.facts["uid"]].append(e)
    if len(groups) > 1:
        uid, members = max(groups.items(), key=lambda kv: len(kv[1]))
        report.warn(f"{folder}: {len(groups)} series found, reading the largest ({uid}, "
                    f"{len(members)} of {len(entries)} files)")
        entries = members
    return entries
