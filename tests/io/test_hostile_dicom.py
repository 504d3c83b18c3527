"""Hostile DICOM: what real archives contain, and the outcome a user should get (issue 8).

Every input is generated here from tiny pydicom-written series (8×10 pixels, five slices) in
``tmp_path``; nothing is committed. One table, one test body (MONAI style): each row is
``(name, mutation, expected)``. The mutation edits a pristine series in place (and may add
files); the expected outcome is either

* ``Loads(...)``: the volume's shape, the files it was built from, and warnings that name the
  offending file with a phrase saying what was wrong; its geometry is then cross-checked
  against SimpleITK on the *repaired* series (the pristine files minus those dropped): the
  eight corner voxels agree within 0.01 mm;
* ``Fails(...)``: a one-line LoadError naming the file (or folder) with the reason.

Further: Siemens mosaics (a CSA header crafted here, and the real mosaic of the shared data),
enhanced multi-frame geometry, ``scan_series`` on duplicates, and a Hypothesis fuzz over the
header values of a real series (only MriViewerError may escape; a loaded volume has a finite,
non-singular affine and no NaN).
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.io.dicom.scan import scan_series
from mriviewer.io.dicom.series import read_dicom_series
from tests.conftest import DATA, real_data

sitk = pytest.importorskip("SimpleITK")

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="mriviewer-hypothesis-"))

ROWS, COLS, N = 8, 10, 5
SPACING = (0.8, 0.9)  # (row spacing, column spacing) mm
STEP = 2.0  # mm between slices
TILT = np.radians(10)  # slightly oblique: rows along x, columns rotated about x
ROW_DIR = np.array([1.0, 0.0, 0.0])
COL_DIR = np.array([0.0, np.cos(TILT), -np.sin(TILT)])
NORMAL = np.cross(ROW_DIR, COL_DIR)
ORIGIN = np.array([-4.0, -3.5, 10.0])
IOP = [*ROW_DIR, *COL_DIR]
SAGITTAL_IOP = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]


# ---------------------------------------------------------------------------- writing DICOM
def _dataset(k: int, series_uid: str, pixels: np.ndarray, **extra) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientID = "hostile"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = "T2 hostile"
    ds.InstanceNumber = k + 1
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in IOP]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in ORIGIN + k * STEP * NORMAL]
    ds.PixelSpacing = [f"{v}" for v in SPACING]
    ds.SliceThickness = f"{STEP}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def _pixels(k: int, rows: int = ROWS, cols: int = COLS, offset: int = 0) -> np.ndarray:
    """Distinct values in every slice: no two slices are accidentally equal."""
    return (np.arange(rows * cols).reshape(rows, cols) + 100 * k + 1000 * offset).astype(np.uint16)


def _save(ds: Dataset, path: Path) -> Path:
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return path


def write_series(folder: Path, n: int = N, series_uid: str | None = None, offset: int = 0,
                 prefix: str = "IM", **extra) -> list[Path]:
    """A pristine tiny series: ``n`` axial-oblique slices of ROWS×COLS, one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    uid = series_uid or generate_uid()
    return [_save(_dataset(k, uid, _pixels(k, offset=offset), **extra), folder / f"{prefix}{k + 1:03d}.dcm")
            for k in range(n)]


def edit(path: Path, **attrs) -> None:
    """Set header attributes of a file (``None`` deletes; values are not validated)."""
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        for key, value in attrs.items():
            if value is None:
                if key in ds:
                    delattr(ds, key)
            else:
                setattr(ds, key, value)
        ds.save_as(path)


def edit_all(files: list[Path], **attrs) -> None:
    for f in files:
        edit(f, **attrs)


def copy_as(src: Path, dest: Path, **attrs) -> Path:
    shutil.copy(src, dest)
    if attrs:
        edit(dest, **attrs)
    return dest


# ---------------------------------------------------------------------------- the table
@dataclass
class Loads:
    """Expected: the series loads. ``sources``: names of the files it is built from (default:
    the pristine five); ``warn``: ``(file name, phrase)`` pairs that must appear on one warning
    line; ``xcheck``: cross-check the corners against SimpleITK on the pristine files of
    ``sources``; ``spacing``: expected in-plane spacing (i, j) when not the pristine one."""

    shape: tuple = (COLS, ROWS, N)
    sources: list[str] | None = None
    warn: list[tuple[str, str]] = field(default_factory=list)
    xcheck: bool = True
    spacing: tuple | None = None
    meta: dict = field(default_factory=dict)
    index4d: int = 0
    first_pixel: float | None = None  # data[0, 0, 0] expected (e.g. volume 2 of a 4D series)


@dataclass
class Fails:
    """Expected: a one-line LoadError naming ``where`` (a file name, or ``"folder"``)."""

    where: str
    phrase: str
    index4d: int = 0


LAST = f"IM{N:03d}.dcm"
FIVE = [f"IM{k + 1:03d}.dcm" for k in range(N)]
FOUR = FIVE[:-1]


def _victim(files):
    return files[-1]


def m_no_ipp(files, folder):
    edit(_victim(files), ImagePositionPatient=None)


def m_nan_ipp(files, folder):
    edit(_victim(files), ImagePositionPatient=["NaN", "0", "0"])


def m_inf_ipp(files, folder):
    edit(_victim(files), ImagePositionPatient=["0", "inf", "0"])


def m_rows_zero(files, folder):
    edit(_victim(files), Rows=0)


def m_cols_zero(files, folder):
    edit(_victim(files), Columns=0)


def m_undecodable(files, folder):
    edit(_victim(files), PixelData=b"\0" * 10)


def m_other_matrix(files, folder):
    edit(_victim(files), Rows=6, Columns=6, PixelData=_pixels(9, 6, 6).tobytes())


def m_other_spacing(files, folder):
    edit(_victim(files), PixelSpacing=["0.5", "0.5"])


def m_displaced_in_plane(files, folder):
    """The last slice moved 5 mm along its rows: same UID, orientation and matrix."""
    ipp = ORIGIN + (N - 1) * STEP * NORMAL + 5.0 * np.asarray(IOP[:3])
    edit(_victim(files), ImagePositionPatient=[f"{v:.6f}" for v in ipp])


def m_zero_spacing_one(files, folder):
    edit(_victim(files), PixelSpacing=["0", "0.9"])


def m_zero_iop_one(files, folder):
    edit(_victim(files), ImageOrientationPatient=["0"] * 6)


def m_nonortho_iop_one(files, folder):
    edit(_victim(files), ImageOrientationPatient=["1", "0", "0", "0.1", "0.995", "0"])


def m_copied_file(files, folder):
    copy_as(files[2], folder / "copy_of_3.dcm")


def m_same_pixels_new_uid(files, folder):
    copy_as(files[2], folder / "reexport_3.dcm", SOPInstanceUID=generate_uid())


def m_conflicting_duplicate(files, folder):
    copy_as(files[2], folder / "zz_conflict.dcm", SOPInstanceUID=generate_uid(), InstanceNumber=99,
            PixelData=_pixels(7, offset=3).tobytes())


def m_same_uid_other_pixels(files, folder):
    """Same SOPInstanceUID as slice 3, pixels changed by up to 4096: not a duplicate."""
    copy_as(files[2], folder / "zz_same_uid.dcm", InstanceNumber=99,
            PixelData=(_pixels(2) + np.uint16(4096)).tobytes())


def _second_volume(files, folder, **per_volume):
    """A second set of five slices at the same positions with other pixels; ``per_volume``
    maps an attribute to its values in volume 1 and volume 2."""
    for key, (first, _) in per_volume.items():
        edit_all(files, **{key: first})
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    write_series(folder, series_uid=uid, offset=5, prefix="V2_",
                 **{key: second for key, (_, second) in per_volume.items()})


def m_4d_temporal(files, folder):
    _second_volume(files, folder, TemporalPositionIdentifier=(1, 2))


def m_4d_echo(files, folder):
    _second_volume(files, folder, EchoNumbers=("1", "2"))


def m_4d_bvalue(files, folder):
    _second_volume(files, folder, DiffusionBValue=(0.0, 1000.0))


def m_4d_acquisition(files, folder):
    _second_volume(files, folder, AcquisitionNumber=(1, 2))


def m_localizer(files, folder):
    uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    for k in range(3):
        ds = _dataset(k, uid, _pixels(k, offset=8), ImageOrientationPatient=SAGITTAL_IOP,
                      ImagePositionPatient=[f"{-10 + 10 * k}", "-50", "50"])
        _save(ds, folder / f"scout{k + 1}.dcm")


def m_negative_spacing(files, folder):
    edit_all(files, PixelSpacing=[f"-{SPACING[0]}", f"{SPACING[1]}"])


def m_no_spacing(files, folder):
    edit_all(files, PixelSpacing=None)


def m_imager_spacing(files, folder):
    edit_all(files, PixelSpacing=None, ImagerPixelSpacing=[f"{v}" for v in SPACING])


def m_iop_not_unit(files, folder):
    edit_all(files, ImageOrientationPatient=[f"{0.95 * v:.8f}" for v in IOP])


def m_iop_far_from_unit(files, folder):
    edit_all(files, ImageOrientationPatient=[f"{0.5 * v:.8f}" for v in IOP])


def m_iop_zero(files, folder):
    edit_all(files, ImageOrientationPatient=["0"] * 6)


def m_iop_not_orthogonal(files, folder):
    edit_all(files, ImageOrientationPatient=["1", "0", "0", "0.2", "0.98", "0"])


def m_spacing_zero(files, folder):
    edit_all(files, PixelSpacing=["0", "0"])


def m_nan_slope(files, folder):
    edit(_victim(files), RescaleSlope="NaN", RescaleIntercept="0")


def m_inf_intercept(files, folder):
    edit(files[0], RescaleSlope="1", RescaleIntercept="-inf")


def m_single_rows_zero(files, folder):
    for f in files[1:]:
        f.unlink()
    edit(files[0], Rows=0)


CASES = [
    # 1. per-file resilience: the slice is dropped, named, the rest loads
    ("no-IPP", m_no_ipp, Loads((COLS, ROWS, 4), FOUR, [(LAST, "no ImagePositionPatient")])),
    ("NaN-IPP", m_nan_ipp, Loads((COLS, ROWS, 4), FOUR, [(LAST, "not a usable position")])),
    ("inf-IPP", m_inf_ipp, Loads((COLS, ROWS, 4), FOUR, [(LAST, "not a usable position")])),
    ("Rows-0", m_rows_zero, Loads((COLS, ROWS, 4), FOUR, [(LAST, "0 rows")])),
    ("Columns-0", m_cols_zero, Loads((COLS, ROWS, 4), FOUR, [(LAST, "0 columns")])),
    ("undecodable", m_undecodable, Loads((COLS, ROWS, 4), FOUR, [(LAST, "cannot decode pixel data")])),
    ("other-matrix", m_other_matrix, Loads((COLS, ROWS, 4), FOUR, [(LAST, "slice size 6x6 differs")])),
    ("other-spacing", m_other_spacing, Loads((COLS, ROWS, 4), FOUR, [(LAST, "PixelSpacing [0.5, 0.5] differs")])),
    ("displaced-in-plane", m_displaced_in_plane,
     Loads((COLS, ROWS, 4), FOUR, [(LAST, "displaced in-plane by 5.00 mm")])),
    ("zero-spacing-one-file", m_zero_spacing_one, Loads((COLS, ROWS, 4), FOUR, [(LAST, "not a usable pixel size")])),
    ("zero-IOP-one-file", m_zero_iop_one, Loads((COLS, ROWS, 4), FOUR, [(LAST, "not two unit vectors")])),
    ("non-orthogonal-IOP-one-file", m_nonortho_iop_one,
     Loads((COLS, ROWS, 4), FOUR, [(LAST, "not orthogonal")])),
    # duplicates
    ("copied-file", m_copied_file, Loads(warn=[("copy_of_3.dcm", "exact duplicate of IM003.dcm (same SOPInstanceUID)")])),
    ("same-pixels-new-UID", m_same_pixels_new_uid,
     Loads(warn=[("reexport_3.dcm", "exact duplicate of IM003.dcm (same position and same pixels)")])),
    ("same-UID-other-pixels", m_same_uid_other_pixels,
     Loads(warn=[("zz_same_uid.dcm", "shares its SOPInstanceUID with IM003.dcm but its pixels differ by up to 4096"),
                 ("zz_same_uid.dcm", "kept IM003.dcm")])),
    ("conflicting-duplicate", m_conflicting_duplicate,
     Loads(warn=[("zz_conflict.dcm", "another image at the position of IM003.dcm"),
                 ("zz_conflict.dcm", "kept IM003.dcm")])),
    # 6. multi-volume series
    ("4D-TemporalPositionIdentifier", m_4d_temporal,
     Loads(warn=[("folder", "2 volumes at the same positions (by TemporalPositionIdentifier)")],
           meta={"n_volumes": 2, "volume_key": "TemporalPositionIdentifier"})),
    ("4D-volume-2", m_4d_temporal,
     Loads(sources=[f"V2_{k + 1:03d}.dcm" for k in range(N)], index4d=1, first_pixel=5000,
           warn=[("folder", "showing volume 2")], meta={"n_volumes": 2, "volume_index": 1})),
    ("4D-EchoNumbers", m_4d_echo, Loads(meta={"n_volumes": 2, "volume_key": "EchoNumbers"})),
    ("4D-DiffusionBValue", m_4d_bvalue, Loads(meta={"n_volumes": 2, "volume_key": "DiffusionBValue"})),
    ("4D-AcquisitionNumber", m_4d_acquisition, Loads(meta={"n_volumes": 2, "volume_key": "AcquisitionNumber"})),
    ("4D-index-out-of-range", m_4d_temporal, Fails("folder", "2 volumes", index4d=2)),
    # 2. localizer sharing the SeriesInstanceUID
    ("localizer", m_localizer, Loads(warn=[("folder", "split off 3 files with another orientation (sagittal"),
                                           ("folder", "scout1.dcm, scout2.dcm, scout3.dcm")])),
    # 3. geometry
    ("negative-PixelSpacing", m_negative_spacing, Loads(warn=[("IM001.dcm", "negative PixelSpacing")])),
    ("no-PixelSpacing", m_no_spacing,
     Loads(warn=[("IM001.dcm", "assumed 1 mm")], xcheck=False, spacing=(1.0, 1.0))),
    ("ImagerPixelSpacing", m_imager_spacing, Loads(warn=[("IM001.dcm", "using ImagerPixelSpacing")])),
    ("IOP-not-unit", m_iop_not_unit, Loads(warn=[("IM001.dcm", "normalised to unit length")])),
    ("IOP-far-from-unit", m_iop_far_from_unit, Fails("folder", "all 5 files have ImageOrientationPatient")),
    ("IOP-zero", m_iop_zero, Fails("folder", "not two unit vectors")),
    ("IOP-not-orthogonal", m_iop_not_orthogonal, Fails("folder", "not orthogonal")),
    ("PixelSpacing-zero", m_spacing_zero, Fails("folder", "not a usable pixel size")),
    # 4. rescale
    ("NaN-RescaleSlope", m_nan_slope, Loads(warn=[(LAST, "unusable RescaleSlope nan")])),
    ("inf-RescaleIntercept", m_inf_intercept, Loads(warn=[("IM001.dcm", "unusable RescaleIntercept -inf")])),
    ("single-file-Rows-0", m_single_rows_zero, Fails("IM001.dcm", "0 rows")),
]


def _warning_lines(vol) -> list[str]:
    return vol.meta.get("warnings", [])


def _corners(shape):
    return [np.array(c) for c in itertools.product(*[(0, s - 1) for s in shape])]


def sitk_corner_distance(files: list[Path], vol) -> float:
    """Largest distance (mm) between our corner voxels and SimpleITK's on ``files`` (given in
    slice order), matching our last slice with SimpleITK's last."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = reader.Execute()
    size = img.GetSize()
    dist = 0.0
    for c in _corners(vol.shape):
        theirs = [int(c[0]), int(c[1]), int(c[2]) * (size[2] - 1) // max(vol.shape[2] - 1, 1)]
        lps = np.array(img.TransformIndexToPhysicalPoint(theirs))
        dist = max(dist, float(np.linalg.norm(lps * [-1, -1, 1] - vol.voxel_to_world(c))))
    return dist


@pytest.mark.parametrize(("name", "mutation", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_series(tmp_path, name, mutation, expected):
    pristine = write_series(tmp_path / "pristine")
    folder = tmp_path / "series"
    shutil.copytree(tmp_path / "pristine", folder)
    files = sorted(folder.glob("*.dcm"))
    mutation(files, folder)

    def where(token: str) -> str:
        return str(folder) if token == "folder" else str(folder / token)

    if isinstance(expected, Fails):
        with pytest.raises(LoadError) as err:
            read_dicom_series(folder, index4d=expected.index4d)
        msg = str(err.value)
        assert "\n" not in msg
        assert msg.startswith(where(expected.where)), msg
        assert expected.phrase in msg, msg
        return

    vol = read_dicom_series(folder, index4d=expected.index4d)
    assert vol.shape == expected.shape
    sources = expected.sources or FIVE
    assert [p.name for p in vol.sources] == sources
    lines = _warning_lines(vol)
    for token, phrase in expected.warn:
        assert any(where(token) in line and phrase in line for line in lines), (token, phrase, lines)
    for key, value in expected.meta.items():
        assert vol.meta[key] == value, (key, vol.meta)
    assert "gantry_tilt_deg" not in vol.meta
    data = np.asarray(vol.data, dtype=np.float64)
    assert np.isfinite(data).all()
    if expected.first_pixel is not None:
        assert data[0, 0, 0] == expected.first_pixel
    if expected.spacing is not None:
        np.testing.assert_allclose(vol.spacing[:2], expected.spacing, atol=1e-6)
    if expected.xcheck:
        repaired = [tmp_path / "pristine" / s for s in sources]
        if all(p.exists() for p in repaired):
            assert sitk_corner_distance(repaired, vol) < 0.01
        else:  # files that exist only in the mutated folder (a second volume): read them there
            assert sitk_corner_distance([folder / s for s in sources], vol) < 0.01
    # Pixels of the kept slices are the stored values (every mutation keeps identity rescale
    # or replaces a bad one by it).
    for k, src in enumerate(vol.sources):
        if (tmp_path / "pristine" / src.name).exists() and src.name in FIVE:
            ref = pydicom.dcmread(pristine[FIVE.index(src.name)]).pixel_array.T
            np.testing.assert_array_equal(data[:, :, k], ref)


# ---------------------------------------------------------------------------- scan_series
def test_scan_series_keeps_a_series_with_duplicates_whole(tmp_path):
    """A copied slice or a conflicting one does not shatter the series into one-slice series
    (dataset discovery would offer five cases); a 4D series stays one series; the same image
    stored several times (every file at one position, nothing to tell them apart) is still
    one series per file."""
    files = write_series(tmp_path / "dup")
    m_copied_file(files, tmp_path / "dup")
    m_conflicting_duplicate(files, tmp_path / "dup")
    found, problems = scan_series(tmp_path / "dup")
    assert problems == [] and [len(s.files) for s in found] == [N + 2]

    files = write_series(tmp_path / "4d")
    m_4d_temporal(files, tmp_path / "4d")
    found, _ = scan_series(tmp_path / "4d")
    assert [len(s.files) for s in found] == [2 * N]

    one = write_series(tmp_path / "same", n=1)[0]
    for k in range(3):
        copy_as(one, tmp_path / "same" / f"again{k}.dcm", SOPInstanceUID=generate_uid())
    found, _ = scan_series(tmp_path / "same")
    assert [len(s.files) for s in found] == [1, 1, 1, 1]


# ---------------------------------------------------------------------------- Siemens mosaic
def csa2(tags: dict[str, tuple[str, list[str]]]) -> bytes:
    """A Siemens CSA2 ("SV10") header: ``{name: (VR, [values])}``. The layout (tag name 64
    bytes, VM, VR, SyngoDT, item count, then per item four int32 and the value padded to 4
    bytes) is the one nibabel.nicom.csareader reads."""
    out = b"SV10" + b"\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77)
    for name, (vr, values) in tags.items():
        out += struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0, len(values), 77)
        for v in values:
            data = v.encode() + b"\0"
            out += struct.pack("<4i", len(data), len(data), 77, len(data))
            out += data + b"\0" * (-len(data) % 4)
    return out


TILE, N_TILES, GRID = 8, 7, 3  # seven 8×8 slices in a 3×3 grid: a 24×24 mosaic


def write_mosaic(path: Path, *, csa: bytes | None = None, offset: int = 0, series_uid: str = "",
                 **extra) -> tuple[np.ndarray, np.ndarray]:
    """A Siemens mosaic of N_TILES slices (geometry of the tiny series, in-plane spacing
    SPACING, slices STEP apart). Returns the slices ``(K, rows, cols)`` and the true
    ImagePositionPatient of slice 1. The stored ImagePositionPatient is that of the whole
    mosaic as one image centred on slice 1 (Siemens' convention, see nibabel's
    ``dicom_mosaic`` notes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    slices = np.stack([_pixels(k, TILE, TILE, offset) for k in range(N_TILES)])
    mosaic = np.zeros((GRID * TILE, GRID * TILE), np.uint16)
    for k in range(N_TILES):
        r, c = divmod(k, GRID)
        mosaic[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = slices[k]
    true_ipp = ORIGIN
    shift = (GRID * TILE - TILE) / 2
    mosaic_ipp = true_ipp - shift * (COL_DIR * SPACING[0] + ROW_DIR * SPACING[1])
    ds = _dataset(0, series_uid or generate_uid(), mosaic, ImagePositionPatient=[f"{v:.6f}" for v in mosaic_ipp],
                  ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"], Manufacturer="SIEMENS",
                  SpacingBetweenSlices=f"{STEP}", **extra)
    if csa is None:
        csa = csa2({"NumberOfImagesInMosaic": ("US", [str(N_TILES)]),
                    "AcquisitionMatrixText": ("SH", [f"{TILE}*{TILE}"]),
                    "SliceNormalVector": ("FD", [f"{v:.8f}" for v in NORMAL])})
    if csa:
        ds.add_new((0x0029, 0x0010), "LO", "SIEMENS CSA HEADER")
        ds.add_new((0x0029, 0x1010), "OB", csa)
    _save(ds, path)
    return slices, true_ipp


def test_siemens_mosaic_is_cut_into_slices(tmp_path):
    slices, _ = write_mosaic(tmp_path / "mosaic" / "epi.dcm")
    vol = read_dicom_series(tmp_path / "mosaic" / "epi.dcm")
    assert vol.shape == (TILE, TILE, N_TILES)
    assert vol.meta["mosaic_tiles"] == N_TILES
    np.testing.assert_array_equal(vol.data, slices.transpose(2, 1, 0))
    np.testing.assert_allclose(vol.spacing, (SPACING[1], SPACING[0], STEP), atol=1e-6)
    # The same slices written as an ordinary series with the true positions: SimpleITK's
    # corners on that series are ours on the mosaic.
    ref = tmp_path / "as-series"
    ref.mkdir()
    uid = generate_uid()
    paths = [_save(_dataset(k, uid, slices[k]), ref / f"s{k}.dcm") for k in range(N_TILES)]
    assert sitk_corner_distance(paths, vol) < 0.01


def test_siemens_mosaic_volumes_are_4d(tmp_path):
    folder = tmp_path / "fmri"
    folder.mkdir()
    uid = generate_uid()
    first, _ = write_mosaic(folder / "t1.dcm", series_uid=uid, AcquisitionNumber=1)
    second, _ = write_mosaic(folder / "t2.dcm", series_uid=uid, offset=1, AcquisitionNumber=2)
    vol = read_dicom_series(folder, index4d=1)
    assert vol.meta["n_volumes"] == 2 and vol.meta["volume_index"] == 1
    np.testing.assert_array_equal(vol.data, second.transpose(2, 1, 0))
    assert any("2 mosaic volumes" in w and str(folder) in w for w in vol.meta["warnings"])
    assert [len(s.files) for s in scan_series(folder)[0]] == [2]


BAD_CSA = [
    ("no-CSA", b"", "without a CSA image header"),
    ("garbage-CSA", b"SV10" + b"\xff" * 40, "unreadable CSA header"),
    ("CSA-without-count", csa2({"SliceNormalVector": ("FD", ["0", "0", "1"])}), "NumberOfImagesInMosaic"),
    ("tiles-do-not-fit", csa2({"NumberOfImagesInMosaic": ("US", ["20"])}), "cannot hold 20 tiles"),
    ("zero-tiles", csa2({"NumberOfImagesInMosaic": ("US", ["0"])}), "NumberOfImagesInMosaic"),
]


@pytest.mark.parametrize(("name", "csa", "phrase"), BAD_CSA, ids=[c[0] for c in BAD_CSA])
def test_siemens_mosaic_without_usable_csa_is_refused(tmp_path, name, csa, phrase):
    path = tmp_path / "m" / "epi.dcm"
    write_mosaic(path, csa=csa)
    with pytest.raises(LoadError) as err:
        read_dicom_series(path)
    assert str(err.value).startswith(str(path)) and phrase in str(err.value)


def test_real_siemens_mosaic_against_simpleitk():
    """The shared EPI mosaic (384×384, 35 tiles of 64×64): every tile is SimpleITK's tile, and
    the centre of slice 1 is the centre of the mosaic as SimpleITK places it (the Siemens
    mosaic convention that nibabel's MosaicWrapper undoes)."""
    path = real_data("dicom-transfer-syntaxes/1.dcm")
    vol = read_dicom_series(path)
    assert vol.shape == (64, 64, 35)
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)[0]  # (rows, cols)
    grid = int(np.ceil(np.sqrt(vol.shape[2])))
    for k in range(vol.shape[2]):
        r, c = divmod(k, grid)
        np.testing.assert_array_equal(arr[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64].T, vol.data[:, :, k])
    centre = np.array(img.TransformContinuousIndexToPhysicalPoint([(arr.shape[1] - 1) / 2, (arr.shape[0] - 1) / 2, 0]))
    ours = vol.voxel_to_world(np.array([(vol.shape[0] - 1) / 2, (vol.shape[1] - 1) / 2, 0]))
    assert np.linalg.norm(centre * [-1, -1, 1] - ours) < 0.01
    direction = np.array(img.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(vol.affine[:3, :2] / vol.spacing[:2] * [[-1], [-1], [1]], direction[:, :2], atol=1e-6)


# ---------------------------------------------------------------------------- enhanced multi-frame
def write_enhanced(path: Path, frame_iop=None, frame_spacing=None, frame_ipp=None) -> np.ndarray:
    """A tiny Enhanced MR image (PS3.3 C.7.6.16): N frames of ROWS×COLS with per-frame
    position, orientation and pixel measures; the ``frame_*`` dicts override single frames."""
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        return _write_enhanced(path, frame_iop, frame_spacing, frame_ipp)


def _write_enhanced(path, frame_iop, frame_spacing, frame_ipp):
    frames = np.stack([_pixels(k) for k in range(N)])
    ds = _dataset(0, generate_uid(), frames.reshape(N * ROWS, COLS))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    for key in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        delattr(ds, key)
    ds.Rows, ds.Columns, ds.NumberOfFrames = ROWS, COLS, N
    groups = []
    for k in range(N):
        fg = Dataset()
        pos, ori, meas = Dataset(), Dataset(), Dataset()
        pos.ImagePositionPatient = (frame_ipp or {}).get(k, [f"{v:.6f}" for v in ORIGIN + k * STEP * NORMAL])
        ori.ImageOrientationPatient = (frame_iop or {}).get(k, [f"{v:.8f}" for v in IOP])
        meas.PixelSpacing = (frame_spacing or {}).get(k, [f"{v}" for v in SPACING])
        meas.SliceThickness = f"{STEP}"
        fg.PlanePositionSequence = Sequence([pos])
        fg.PlaneOrientationSequence = Sequence([ori])
        fg.PixelMeasuresSequence = Sequence([meas])
        groups.append(fg)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.SharedFunctionalGroupsSequence = Sequence([Dataset()])
    _save(ds, path)
    return frames


MULTIFRAME_CASES = [
    ("pristine", {}, N, None),
    ("one-frame-other-orientation", {"frame_iop": {4: SAGITTAL_IOP}}, 4, "split off 1 frame with another orientation (sagittal"),
    ("one-frame-other-spacing", {"frame_spacing": {4: ["0.5", "0.5"]}}, 4, "split off 1 frames whose PixelSpacing differs"),
    ("one-frame-NaN-position", {"frame_ipp": {4: ["NaN", "0", "0"]}}, 4, "frame 5 dropped"),
    ("IOP-not-orthogonal", {"frame_iop": {k: ["1", "0", "0", "0.2", "0.98", "0"] for k in range(N)}}, 0, "not orthogonal"),
]


@pytest.mark.parametrize(("name", "kwargs", "n_slices", "phrase"), MULTIFRAME_CASES, ids=[c[0] for c in MULTIFRAME_CASES])
def test_enhanced_multiframe_geometry(tmp_path, name, kwargs, n_slices, phrase):
    path = tmp_path / "enh.dcm"
    frames = write_enhanced(path, **kwargs)
    if n_slices == 0:
        with pytest.raises(LoadError) as err:
            read_dicom_series(path)
        assert str(err.value).startswith(str(path)) and phrase in str(err.value)
        return
    vol = read_dicom_series(path)
    assert vol.shape == (COLS, ROWS, n_slices)
    np.testing.assert_array_equal(vol.data, frames[:n_slices].transpose(2, 1, 0))
    if phrase:
        assert any(str(path) in w and phrase in w for w in vol.meta["warnings"]), vol.meta["warnings"]
    # The same frames as an ordinary series: SimpleITK agrees on the corners.
    uid = generate_uid()
    ref = tmp_path / "ref"
    ref.mkdir()
    paths = [_save(_dataset(k, uid, frames[k]), ref / f"s{k}.dcm") for k in range(n_slices)]
    assert sitk_corner_distance(paths, vol) < 0.01


# ---------------------------------------------------------------------------- fuzz on a real series
FUZZ_SERIES = "dicom-mprage-sagittal/t1_MPRAGEcr_noGRAPPA_19"
FUZZ_FILES = 4

_finite = st.floats(-500, 500, allow_nan=False)
_any_float = st.one_of(_finite, st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.0, -0.0, 1e-12, 1e30, -1e30]))


def _ds_value(x: float) -> str:
    return "NaN" if x != x else ("inf" if x == np.inf else ("-inf" if x == -np.inf else f"{x:.10g}"))


_header_edit = st.one_of(
    st.tuples(st.just("ImagePositionPatient"), st.lists(_any_float, min_size=0, max_size=4)),
    st.tuples(st.just("ImageOrientationPatient"),
              st.one_of(st.lists(_any_float, min_size=0, max_size=7),
                        st.lists(st.floats(-1.2, 1.2), min_size=6, max_size=6))),
    st.tuples(st.just("PixelSpacing"), st.lists(_any_float, min_size=0, max_size=3)),
    st.tuples(st.just("SliceThickness"), st.lists(_any_float, min_size=1, max_size=1)),
    st.tuples(st.just("RescaleSlope"), st.lists(_any_float, min_size=1, max_size=1)),
    st.tuples(st.just("RescaleIntercept"), st.lists(_any_float, min_size=1, max_size=1)),
    st.tuples(st.just("Rows"), st.integers(0, 65535)),
    st.tuples(st.just("Columns"), st.integers(0, 65535)),
    st.tuples(st.just("BitsAllocated"), st.sampled_from([0, 1, 8, 12, 16, 32, 64])),
)


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, FUZZ_FILES - 1), _header_edit), min_size=1, max_size=6))
def test_fuzz_header_values_of_a_real_series(edits):
    """Only MriViewerError escapes read_dicom_series; a volume that loads has a finite,
    non-singular affine and no NaN (the real series has integer pixels)."""
    src = DATA / FUZZ_SERIES
    if not src.exists():
        pytest.skip(f"real data not found: {src} (set MRIVIEWER_TEST_DATA to the shared data folder)")
    with tempfile.TemporaryDirectory() as d:
        files = []
        for k, f in enumerate(sorted(src.glob("*.dcm"))[:FUZZ_FILES]):
            files.append(Path(d) / f"{k:02d}.dcm")
            shutil.copy(f, files[-1])
        for k, (key, value) in edits:
            if isinstance(value, list):
                value = [_ds_value(v) for v in value] if value else None
                if key in ("SliceThickness", "RescaleSlope", "RescaleIntercept") and value:
                    value = value[0]
            edit(files[k], **{key: value})
        try:
            vol = read_dicom_series(Path(d))
        except MriViewerError:
            return
        assert np.isfinite(vol.affine).all()
        assert abs(np.linalg.det(vol.affine[:3, :3])) > 1e-9
        assert not np.isnan(np.asarray(vol.data, dtype=np.float64)).any()
        assert all(Path(d) in Path(s).parents for s in vol.sources)


# ---------------------------------------------------------------------------- found in review
def test_unsigned_pixels_keep_only_their_bits_stored(tmp_path):
    """12 bits stored in 16: a set high bit (an old overlay plane) is not pixel data."""
    files = write_series(tmp_path / "s", n=2)
    high = _pixels(0) | np.uint16(0xF000)
    edit(files[0], BitsStored=12, HighBit=11, PixelData=high.astype("<u2").tobytes())
    edit(files[1], BitsStored=12, HighBit=11)
    vol = read_dicom_series(tmp_path / "s")
    np.testing.assert_array_equal(vol.data[:, :, 0], (high & 0x0FFF).T.astype(vol.data.dtype))
    assert np.array_equal(pydicom.dcmread(files[0]).pixel_array, high & 0x0FFF)  # as pydicom


def test_multiframe_with_more_pixel_bytes_than_its_header_is_refused(tmp_path):
    path = tmp_path / "enhanced.dcm"
    write_enhanced(path)
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData + b"\0" * 20
    _save(ds, path)
    with pytest.raises(LoadError, match="enhanced.dcm"):
        read_dicom_series(path)


def test_one_slice_without_any_thickness_is_noted(tmp_path):
    (f,) = write_series(tmp_path / "s", n=1)
    edit(f, SliceThickness=None)
    vol = read_dicom_series(tmp_path / "s")
    assert vol.spacing[2] == pytest.approx(1.0)
    assert any(str(f) in w and "assumed 1 mm" in w for w in vol.meta["warnings"])


# ---------------------------------------------------------------------------- colour (RGB) images
def _rgb(frames: np.ndarray) -> np.ndarray:
    """``(..., rows, cols)`` greyscale → ``(..., rows, cols, 3)`` uint8 colours whose luminance is
    known: R = v, G = v // 2, B = 255 - v."""
    v = (frames % 200).astype(np.uint8)
    return np.stack([v, v // 2, 255 - v], axis=-1)


def _make_rgb(ds: Dataset, rgb: np.ndarray) -> Dataset:
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.ascontiguousarray(rgb).tobytes()
    return ds


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def test_rgb_series_reads_as_luminance_with_one_warning_for_the_series(tmp_path):
    """A colour series (secondary capture, colour FA) is read, as its luminance, and said once."""
    uid = generate_uid()
    rgbs = []
    for k in range(N):
        rgb = _rgb(_pixels(k))
        rgbs.append(rgb)
        _save(_make_rgb(_dataset(k, uid, _pixels(k)), rgb), tmp_path / f"IM{k + 1:03d}.dcm")
    vol = read_dicom_series(tmp_path)
    assert vol.shape == (COLS, ROWS, N)
    np.testing.assert_allclose(vol.data, np.stack([_luma(r) for r in rgbs]).transpose(2, 1, 0), atol=1e-3)
    notes = [w for w in vol.meta["warnings"] if "colour image (RGB" in w]
    assert len(notes) == 1 and "luminance" in notes[0]


def test_rgb_enhanced_multiframe_is_read_not_refused(tmp_path):
    """The colour FA map case: a multi-frame RGB file was refused with '39 per-frame functional
    groups for pixel data of shape (39, 72, 72, 3)'."""
    path = tmp_path / "fa.dcm"
    frames = write_enhanced(path)
    rgb = _rgb(frames)
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        _save(_make_rgb(ds, rgb), path)
    vol = read_dicom_series(path)
    assert vol.shape == (COLS, ROWS, N)
    np.testing.assert_allclose(vol.data, _luma(rgb).transpose(2, 1, 0), atol=1e-3)
    assert any(str(path) in w and "colour image (RGB" in w for w in vol.meta["warnings"])


def test_enhanced_multiframe_volumes_are_chosen_by_index_and_out_of_range_is_an_error(tmp_path):
    """Two frames at each position (a 4D enhanced file: time points): --volume picks one, and a
    volume that does not exist is an error (any N read volume 1 before)."""
    import copy

    path = tmp_path / "enh4d.dcm"
    frames = write_enhanced(path)
    second = frames + np.uint16(500)
    with warnings.catch_warnings(), pydicom.config.disable_value_validation():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        groups = list(ds.PerFrameFunctionalGroupsSequence)
        ds.PerFrameFunctionalGroupsSequence = Sequence(groups + [copy.deepcopy(g) for g in groups])
        ds.NumberOfFrames = 2 * N
        ds.PixelData = np.concatenate([frames, second]).tobytes()
        _save(ds, path)
    first, other = read_dicom_series(path), read_dicom_series(path, index4d=1)
    np.testing.assert_array_equal(first.data, frames.transpose(2, 1, 0))
    np.testing.assert_array_equal(other.data, second.transpose(2, 1, 0))
    assert other.meta["n_volumes"] == 2 and other.meta["volume_index"] == 1
    assert any("2 volumes" in w and "showing volume 2" in w for w in other.meta["warnings"])
    with pytest.raises(LoadError, match="volume 99 out of range"):
        read_dicom_series(path, index4d=98)
    # The 3D file ignores the index, as 3D NIfTI does.
    flat = tmp_path / "enh3d.dcm"
    write_enhanced(flat)
    assert read_dicom_series(flat, index4d=5).shape == (COLS, ROWS, N)


def test_a_file_without_an_image_is_a_warning_on_its_series_not_a_case(tmp_path):
    """Rows = 0 in one file of a series: discovery lists one case and names the file (it listed
    the file as a case of its own)."""
    from mriviewer.data.discover import discover

    files = write_series(tmp_path / "s")
    edit(files[-1], Rows=0)
    ds = discover(tmp_path / "s")
    assert len(ds.cases) == 1
    assert any(files[-1].name in w and "Rows 0" in w for w in ds.warnings), ds.warnings
