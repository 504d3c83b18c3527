"""Geometry and discovery on real scans from ../shared/data (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from mriviewer.core.planes import plane_slice
from mriviewer.data.discover import discover
from mriviewer.io.readers import load_volume
from tests.conftest import real_data

pytestmark = pytest.mark.realdata


def test_rsna_00046_flair_geometry_from_headers():
    """The coronal RSNA FLAIR: shape, spacing, affine and plane as its DICOM headers say."""
    vol = load_volume(real_data("rsna-miccai/train/00046/FLAIR"), "FLAIR")
    assert vol.shape == (512, 512, 143)
    np.testing.assert_allclose(vol.spacing, (0.5, 0.5, 1.2), atol=1e-3)
    assert vol.acquisition_plane == "coronal"
    assert "".join(vol.axcodes) == "LIP"
    # Row direction ~ patient left (+x LPS -> -x RAS); column direction = inferior; slices go posterior.
    assert vol.affine[0, 0] < -0.49 and vol.affine[2, 1] == pytest.approx(-0.5, abs=1e-3)
    assert vol.affine[1, 2] < -1.19
    # First voxel position is IPP of the most anterior slice, converted LPS -> RAS.
    import pydicom

    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in vol.sources]
    ipp = np.array([[float(v) for v in h.ImagePositionPatient] for h in headers])
    np.testing.assert_allclose(vol.affine[:3, 3], ipp[0] * [-1, -1, 1], atol=1e-3)
    # Slices are ordered along the normal, not by file name or InstanceNumber.
    iop = np.array([float(v) for v in headers[0].ImageOrientationPatient])
    proj = ipp @ np.cross(iop[:3], iop[3:])
    assert np.all(np.diff(proj) > 0)
    # The last voxel lands where the last slice's IPP says.
    last = vol.voxel_to_world([0, 0, vol.shape[2] - 1])
    np.testing.assert_allclose(last, ipp[-1] * [-1, -1, 1], atol=1e-3)


def test_rsna_discovery_and_labels():
    for root in ("rsna-miccai", "rsna-miccai/train"):
        ds = discover(real_data(root))
        assert ds.layout == "rsna-miccai"
        assert ds.task == "binary"
        assert [c.case_id for c in ds.cases] == ["00046"]
        case = ds.cases[0]
        assert case.label == 1  # train_labels: BraTS21ID 46 -> MGMT_value 1
        assert list(case.modalities) == ["FLAIR"]  # T1w, T1wCE, T2w missing


def _axial_brain_extent(vol):
    can = vol.canonical()
    mask = can.data > np.percentile(can.data, 60)
    ext = [np.ptp(np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))) for ax in range(3)]
    return can, ext


def test_brats_lps_and_ras_land_in_same_display_orientation():
    lps = load_volume(real_data("brats2023-glioma/BraTS-GLI-00001-000/BraTS-GLI-00001-000-t1n.nii.gz"))
    ras = load_volume(real_data("brats-metastasis/AURORA-sample/t1.nii.gz"))
    assert "".join(lps.axcodes) == "LPS" and "".join(ras.axcodes) == "RAS"
    for vol in (lps, ras):
        can, ext = _axial_brain_extent(vol)
        assert "".join(can.axcodes) == "RAS"
        assert np.all(np.diag(can.affine)[:3] > 0)
        # A brain is longer front-to-back than side-to-side: on the axial view rows span A-P.
        axial = plane_slice(can.data, "axial", can.shape[2] // 2)
        rows = np.flatnonzero((axial > np.percentile(axial, 60)).any(axis=1))
        cols = np.flatnonzero((axial > np.percentile(axial, 60)).any(axis=0))
        assert np.ptp(rows) > np.ptp(cols)
    # Same grid in world space: flipping the LPS file gives the RAS file's affine up to translation.
    np.testing.assert_allclose(lps.canonical().affine[:3, :3], ras.canonical().affine[:3, :3])


def test_brats_lps_canonical_matches_flipped_array():
    lps = load_volume(real_data("brats2023-glioma/BraTS-GLI-00001-000/BraTS-GLI-00001-000-t2f.nii.gz"))
    can = lps.canonical()
    np.testing.assert_array_equal(can.data, lps.data[::-1, ::-1, :])
    # Same world position for the same voxel value.
    ijk = np.array([100, 60, 70])
    np.testing.assert_allclose(can.voxel_to_world(ijk), lps.voxel_to_world([239 - 100, 239 - 60, 70]))


def test_brats2018_discovery():
    ds = discover(real_data("brats2018-flair-t1"))
    assert ds.layout == "brats-nifti"
    assert [c.case_id for c in ds.cases] == [f"case_{i}" for i in range(10)]
    for c in ds.cases:
        assert set(c.modalities) == {"FLAIR", "T1w"}
        assert c.segmentation is not None and c.segmentation.name == "GT_W.nii.gz"
        assert c.label is None
    assert ds.task == "none"


def test_brats2019_and_2023_naming():
    ds19 = discover(real_data("brats2019-tiny"))
    ds23 = discover(real_data("brats2023-glioma"))
    for ds in (ds19, ds23):
        assert set(ds.cases[0].modalities) == {"FLAIR", "T1w", "T1wCE", "T2w"}
        assert ds.cases[0].segmentation is None or "seg" in ds.cases[0].segmentation.name
    assert ds19.cases[0].modalities["T1wCE"].path.name.endswith("_t1post.nii.gz")
    assert ds23.cases[0].modalities["FLAIR"].path.name.endswith("-t2f.nii.gz")


def test_kaggle_44class_discovery():
    ds = discover(real_data("kaggle-44class"))
    assert ds.layout == "image-folder"
    assert ds.task == "multiclass"
    assert len(ds.class_names) == 44
    assert "Astrocitoma T1C+" in ds.class_names and "_NORMAL T1" in ds.class_names
    assert len(ds.cases) == 440
    assert not ds.patient_ids
    case = ds.case(next(c.case_id for c in ds.cases if c.case_id.startswith("Astrocitoma T1C+/")))
    assert ds.class_names[case.label] == "Astrocitoma T1C+"
    # RGB and greyscale JPEGs both load as one greyscale slice.
    for c in ds.cases[:15]:
        vol = load_volume(c.modalities["image"].path)
        assert vol.is_2d and vol.data.ndim == 3


def test_sagittal_mprage_skips_nfo_and_is_sagittal():
    folder = real_data("dicom-mprage-sagittal/t1_MPRAGEcr_noGRAPPA_19")
    vol = load_volume(folder)
    assert vol.shape == (256, 256, 176)
    assert vol.acquisition_plane == "sagittal"
    can = vol.canonical()
    assert "".join(can.axcodes) == "RAS"
    assert all(p.suffix == ".dcm" for p in vol.sources)


def test_ixi_psr_storage_order_and_scaling():
    import nibabel as nib

    f = sorted(real_data("ixi-t1-2mm/t1").glob("*.nii.gz"))[0]
    vol = load_volume(f)
    assert "".join(vol.axcodes) == "PSR"
    img = nib.load(str(f))
    np.testing.assert_allclose(vol.data, img.get_fdata(dtype=np.float32))
    assert "".join(vol.canonical().axcodes) == "RAS"


def test_whole_shared_data_folder_lists_every_dataset():
    """`mriviewer info ../shared/data` sees every dataset there, without a traceback."""
    from mriviewer.cli.info import dataset_info

    root = real_data(".")
    info = dataset_info(root, read_headers=False)
    assert info["layout"] == "collection"
    tops = {c["case_id"].split("/")[0] for c in info["cases"]}
    expected = {p.name for p in root.iterdir() if p.is_dir()}
    assert tops == expected
    by_id = {c["case_id"]: c for c in info["cases"]}
    assert by_id["rsna-miccai/train/00046"]["label_name"] == "MGMT methylated"
    assert sum(k.startswith("dicom-transfer-syntaxes/") for k in by_id) == 9  # same image 9 times: 9 series
    assert sum(k.startswith("ixi-t1-2mm/") for k in by_id) == 2  # two subjects, one T1w each
    assert sum(k.startswith("kaggle-44class/") for k in by_id) == 440
    assert by_id["dicom-mprage-sagittal/t1_MPRAGEcr_noGRAPPA_19"]["modalities"]["T1w"] is not None
    assert not any(c["errors"] for c in info["cases"])
