"""Our DICOM geometry against an independent reader (SimpleITK/ITK-GDCM) on every DICOM series
in ../shared/data: the world coordinates of the eight corner voxels agree within 0.5 mm, and the
pixel values agree exactly.

Where the readers differ on purpose: a Siemens mosaic is one image to SimpleITK and a volume of
64×64 tiles to mriviewer, so each tile, the centre of the first slice and the directions are
compared instead of corners. The Philips field map holds two frames per position
(magnitude and phase of the B0 map). SimpleITK stacks all 64 frames as 64 slices 4 mm apart,
which puts half of them outside the patient; mriviewer keeps one frame per position (32 slices)
and warns. The first 32 of SimpleITK's slices are compared.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mriviewer.io.readers import load_volume
from tests.conftest import DATA, real_data

sitk = pytest.importorskip("SimpleITK")
pytestmark = pytest.mark.realdata

SERIES_FOLDERS = ["rsna-miccai/train/00046/FLAIR", "dicom-mprage-sagittal/t1_MPRAGEcr_noGRAPPA_19"]
SINGLE_FILES = (
    ["dicom-enhanced-mr/Philips/IM_0027_fMAP.dcm"]
    + [f"dicom-enhanced-mr/Siemens/XA10/6_{n}.dcm" for n in range(1, 5)]
)
# Siemens EPI mosaics (one 384×384 image of 35 tiles of 64×64) in nine transfer syntaxes:
# SimpleITK reads the mosaic as one image; mriviewer de-mosaics it (nibabel's MosaicWrapper).
MOSAIC_FILES = [f"dicom-transfer-syntaxes/{n}.dcm" for n in range(1, 10)]


def _corners(shape):
    return [np.array(c) for c in itertools.product(*[(0, s - 1) for s in shape])]


def _compare(img, vol):
    """Max corner distance (mm) and whether pixel values agree on our grid."""
    dist = 0.0
    for c in _corners(vol.shape):
        theirs_lps = np.array(img.TransformIndexToPhysicalPoint([int(v) for v in c]))
        dist = max(dist, float(np.linalg.norm(theirs_lps * [-1, -1, 1] - vol.voxel_to_world(c))))
    arr = sitk.GetArrayFromImage(img).transpose(2, 1, 0)[:, :, : vol.shape[2]]  # (x, y, z) = (i, j, k)
    return dist, np.array_equal(arr.astype(np.float32), vol.data)


@pytest.mark.parametrize("rel", SERIES_FOLDERS)
def test_series_corners_match_simpleitk(rel):
    folder = real_data(rel)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    dist, same = _compare(reader.Execute(), load_volume(folder))
    assert dist < 0.5, f"{rel}: corners differ by {dist:.3f} mm"
    assert same


@pytest.mark.parametrize("rel", SINGLE_FILES)
def test_single_file_corners_match_simpleitk(rel):
    path = real_data(rel)
    vol = load_volume(path)
    dist, same = _compare(sitk.ReadImage(str(path)), vol)
    assert dist < 0.5, f"{rel}: corners differ by {dist:.3f} mm"
    if "fMAP" not in rel:  # see module docstring
        assert same


@pytest.mark.parametrize("rel", MOSAIC_FILES)
def test_mosaic_tiles_centre_and_directions_match_simpleitk(rel):
    path = real_data(rel)
    vol = load_volume(path)
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)[0]  # (rows, cols) of the whole mosaic
    n_i, n_j, n_k = vol.shape
    grid = int(np.ceil(np.sqrt(n_k)))
    assert arr.shape == (grid * n_j, grid * n_i)
    for k in range(n_k):
        r, c = divmod(k, grid)
        np.testing.assert_array_equal(arr[r * n_j:(r + 1) * n_j, c * n_i:(c + 1) * n_i].T, vol.data[:, :, k])
    centre = np.array(img.TransformContinuousIndexToPhysicalPoint([(arr.shape[1] - 1) / 2, (arr.shape[0] - 1) / 2, 0]))
    ours = vol.voxel_to_world(np.array([(n_i - 1) / 2, (n_j - 1) / 2, 0]))
    assert np.linalg.norm(centre * [-1, -1, 1] - ours) < 0.01
    direction = np.array(img.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(vol.affine[:3, :2] / vol.spacing[:2] * [[-1], [-1], [1]], direction[:, :2], atol=1e-6)


def test_every_dicom_series_in_shared_data_is_covered():
    """Keeps the lists above complete when shared/data grows."""
    if not DATA.exists():
        pytest.skip(f"real data not found: {DATA}")
    from mriviewer.io.dicom.scan import is_dicom_file

    folders = {p.parent.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file() and is_dicom_file(p)}
    covered = set(SERIES_FOLDERS) | {r.rsplit("/", 1)[0] for r in SINGLE_FILES + MOSAIC_FILES}
    assert folders <= covered, f"DICOM folders not cross-checked: {sorted(folders - covered)}"


def test_nine_transfer_syntaxes_decode_identically():
    import pydicom

    arrays, syntaxes = [], set()
    for n in range(1, 10):
        path = real_data(f"dicom-transfer-syntaxes/{n}.dcm")
        syntaxes.add(str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID))
        arrays.append(load_volume(path).data)
    assert len(syntaxes) >= 7  # explicit/implicit/big endian, RLE, JPEG lossless, JPEG-LS, JPEG 2000
    for a in arrays[1:]:
        np.testing.assert_array_equal(a, arrays[0])
    assert arrays[0].std() > 0


def test_enhanced_mr_applies_per_frame_rescale():
    """The Philips field map stores RescaleSlope/Intercept per frame in
    PixelValueTransformationSequence (1.28/0 for the first frames): the voxels are the stored
    values times that slope plus intercept."""
    import pydicom

    path = real_data("dicom-enhanced-mr/Philips/IM_0027_fMAP.dcm")
    ds = pydicom.dcmread(path)
    vol = load_volume(path)
    pvt = ds.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    slope, inter = float(pvt.RescaleSlope), float(pvt.RescaleIntercept)
    assert slope != 1.0
    first = ds.pixel_array[0].T.astype(np.float32) * slope + inter  # frame 1 is at the first position
    np.testing.assert_allclose(vol.data[:, :, 0], first, rtol=1e-6)
