"""Header-only geometry (``describe_source``, what ``mriviewer info`` prints) agrees with a full
read: on the hostile DICOM corpus, on generated NIfTI (int16, scaled, 4D, complex) and on the real
data; and NIfTI integers stay integers (half the memory and cache of float32)."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from mriviewer.core.errors import LoadError
from mriviewer.io.nifti import load_nifti
from mriviewer.io.readers import describe_source, load_volume
from tests.conftest import real_data
from tests.io.test_hostile_dicom import CASES, Fails, write_series

#: Faults only the pixels show: a header-only read cannot see them (``info --decode`` does).
PIXEL_ONLY = {"undecodable", "other-matrix"}


def _geometry(d: dict) -> dict:
    return {k: d.get(k) for k in ("shape", "spacing_mm", "affine", "axcodes", "acquisition_plane")}


@pytest.mark.parametrize(("name", "mutation", "expected"), CASES, ids=[c[0] for c in CASES])
def test_header_geometry_matches_full_read_on_hostile_series(tmp_path, name, mutation, expected):
    write_series(tmp_path / "pristine")
    folder = tmp_path / "series"
    shutil.copytree(tmp_path / "pristine", folder)
    mutation(sorted(folder.glob("*.dcm")), folder)
    index4d = expected.index4d if hasattr(expected, "index4d") else 0
    if isinstance(expected, Fails):
        with pytest.raises(LoadError):
            describe_source(folder, "T1w", index4d)
        return
    full = load_volume(folder, "T1w", index4d)
    head = describe_source(folder, "T1w", index4d)
    assert head["header_only"] is True
    assert head["dtype"] == str(full.data.dtype)
    if name in PIXEL_ONLY:  # the bad file stays in: one more slice than the full read keeps
        assert head["shape"][:2] == list(full.shape[:2])
        return
    assert _geometry(head) == _geometry(full.describe())
    assert head.get("warnings", []) == full.meta.get("warnings", [])


def _save(path, data, affine=None, **header):
    img = nib.Nifti1Image(data, np.diag([0.9, 1.1, 2.5, 1.0]) if affine is None else affine)
    for k, v in header.items():
        img.header[k] = v
    nib.save(img, str(path))
    return path


def test_nifti_integers_stay_integers_and_header_agrees(tmp_path):
    rng = np.random.default_rng(0)
    plain = _save(tmp_path / "int16.nii.gz", rng.integers(-100, 2000, (9, 8, 7)).astype(np.int16))
    scaled = _save(tmp_path / "scaled.nii.gz", rng.integers(0, 255, (9, 8, 7)).astype(np.uint8),
                   scl_slope=2.5, scl_inter=1.0)
    four = _save(tmp_path / "four.nii", rng.integers(0, 50, (9, 8, 7, 3)).astype(np.int16))
    cplx = _save(tmp_path / "complex.nii.gz", (rng.normal(size=(9, 8, 7)) + 1j).astype(np.complex64))
    vol = load_nifti(plain)
    assert vol.data.dtype == np.int16
    assert np.array_equal(vol.data, np.asarray(nib.load(str(plain)).dataobj))
    assert load_nifti(scaled).data.dtype == np.float32  # scl_slope applied: float32
    assert load_nifti(scaled).data.max() > 255
    assert load_nifti(four, index4d=2).data.dtype == np.int16
    assert load_nifti(cplx).data.dtype == np.float32
    for path, index in ((plain, 0), (scaled, 0), (four, 2), (cplx, 0)):
        full, head = load_nifti(path, index4d=index), describe_source(path, "T1w", index)
        assert head["header_only"] and head["dtype"] == str(full.data.dtype)
        assert _geometry(head) == _geometry(full.describe())
        assert head.get("warnings", []) == full.meta.get("warnings", [])
    with pytest.raises(LoadError, match="index 3 out of range"):
        describe_source(four, "T1w", 3)


def test_uncompressed_nifti_is_not_a_view_on_the_file(tmp_path):
    path = _save(tmp_path / "t1.nii", np.arange(9 * 8 * 7, dtype=np.int16).reshape(9, 8, 7))
    vol = load_nifti(path)
    assert not isinstance(vol.data, np.memmap) and not isinstance(vol.data.base, np.memmap)


def test_header_geometry_matches_full_read_on_real_series():
    from mriviewer.data.discover import discover

    checked = 0
    for sub in ("rsna-miccai", "brats2023-glioma", "dicom-mprage-sagittal", "ixi-t1-2mm", "brats-metastasis"):
        for case in discover(real_data(sub)).cases:
            for m, src in case.modalities.items():
                source = list(src.files) if src.files else src.path
                full = load_volume(source, m, src.volume_index)
                head = describe_source(source, m, src.volume_index)
                assert _geometry(head) == _geometry(full.describe()), (case.case_id, m)
                assert head["dtype"] == str(full.data.dtype)
                checked += 1
    assert checked >= 8
