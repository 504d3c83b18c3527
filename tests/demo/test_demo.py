"""Tests of the synthetic demo data set (mriviewer.demo)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mriviewer.core.volume import MODALITIES
from mriviewer.data.discover import discover
from mriviewer.demo.dataset import make_demo_dataset
from mriviewer.demo.dicom_writer import IMAGE_COMMENTS
from mriviewer.demo.phantom import MARKER_RADIUS_MM, MARKER_RAS_MM, phantom_ras, random_case_params
from mriviewer.demo.plan import FOV_MM, MISSING_MODALITY, PLANE_IOP, SLICE_COVERAGE_MM, plan_dataset
from mriviewer.io.dicom.scan import is_dicom_file
from mriviewer.io.dicom.series import read_dicom_series

N_CASES, MATRIX, N_SLICES, SEED = 6, 48, 24, 3
SMALL = {"n_cases": N_CASES, "matrix": MATRIX, "n_slices": N_SLICES, "seed": SEED}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    calls = []
    out = make_demo_dataset(tmp_path_factory.mktemp("demo"), progress=lambda d, n: calls.append((d, n)), **SMALL)
    assert calls == [(i, N_CASES) for i in range(1, N_CASES + 1)]
    return out


def _series_dir(root: Path, case_id: int, modality: str) -> Path:
    return root / "train" / f"{case_id:05d}" / modality


def _marker_centroid(vol) -> np.ndarray:
    """Intensity-weighted RAS centroid of the brightest voxels within 15 mm of the marker."""
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in vol.shape), indexing="ij"), axis=-1)
    world = vol.voxel_to_world(ijk)
    near = np.linalg.norm(world - np.array(MARKER_RAS_MM), axis=-1) < 2.5 * MARKER_RADIUS_MM
    values = np.where(near, vol.data, 0.0)
    bright = values > 0.6 * values.max()
    weights = values[bright]
    return (world[bright] * weights[:, None]).sum(axis=0) / weights.sum()


# ---------------------------------------------------------------------------- layout and labels
def test_layout_labels_and_missing_modality(demo):
    ds = discover(demo)
    assert ds.layout == "rsna-miccai"
    assert ds.task == "binary"
    assert len(ds.cases) == N_CASES
    assert [c.case_id for c in ds.cases] == [f"{i:05d}" for i in range(N_CASES)]

    with open(demo / "train_labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["BraTS21ID", "MGMT_value"]
    csv_labels = {int(r[0]): int(r[1]) for r in rows[1:]}
    assert all(r[0] == str(int(r[0])) for r in rows[1:])  # unpadded ids
    assert sorted(csv_labels) == list(range(N_CASES))
    assert sorted(csv_labels.values()) == [0] * (N_CASES // 2) + [1] * (N_CASES // 2)
    assert {int(c.case_id): c.label for c in ds.cases} == csv_labels
    assert all(not c.errors for c in ds.cases)

    last = ds.cases[-1]
    assert MISSING_MODALITY not in last.modalities
    assert not _series_dir(demo, N_CASES - 1, MISSING_MODALITY).exists()
    assert sorted(last.modalities) == sorted(set(MODALITIES) - {MISSING_MODALITY})
    for case in ds.cases[:-1]:
        assert sorted(case.modalities) == sorted(MODALITIES)


def test_files_and_headers(demo, tmp_path):
    folder = _series_dir(demo, 0, "FLAIR")
    files = sorted(folder.iterdir())
    assert len(files) == N_SLICES
    assert {f.name for f in files} == {f"Image-{n}.dcm" for n in range(1, N_SLICES + 1)}
    assert all(is_dicom_file(f) for f in files)
    ds = pydicom.dcmread(folder / "Image-1.dcm")
    assert ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.MRImageStorage
    assert ds.file_meta.TransferSyntaxUID in (
        pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian)
    assert ds.Modality == "MR"
    assert ds.PatientID == "00000"
    assert str(ds.PatientName) == "Demo^Phantom"
    assert ds.SeriesDescription == "FLAIR"
    assert ds.ImageComments == IMAGE_COMMENTS
    assert (ds.Rows, ds.Columns) == (MATRIX, MATRIX)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([FOV_MM / MATRIX] * 2, abs=1e-4)
    assert float(ds.SpacingBetweenSlices) == pytest.approx(
        SLICE_COVERAGE_MM[plan_dataset(N_CASES, SEED)[0].series[0].plane] / N_SLICES, abs=1e-4)
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 16, 15, 0)
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, 0.0)
    assert ds.pixel_array.dtype == np.uint16
    assert ds.pixel_array.shape == (MATRIX, MATRIX)

    # The files are what pydicom itself writes for the same content.
    copy = tmp_path / "copy.dcm"
    ds.save_as(copy, enforce_file_format=True)
    assert copy.read_bytes() == (folder / "Image-1.dcm").read_bytes()

    # UIDs: one study per case, one series per modality, one SOP instance per file.
    others = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert len({o.SOPInstanceUID for o in others}) == N_SLICES
    assert len({o.SeriesInstanceUID for o in others}) == 1
    t1 = pydicom.dcmread(next(_series_dir(demo, 0, "T1w").iterdir()), stop_before_pixels=True)
    assert t1.StudyInstanceUID == ds.StudyInstanceUID
    assert t1.SeriesInstanceUID != ds.SeriesInstanceUID
    case1 = pydicom.dcmread(next(_series_dir(demo, 1, "T1w").iterdir()), stop_before_pixels=True)
    assert case1.StudyInstanceUID != ds.StudyInstanceUID


def test_file_numbering_does_not_follow_space(demo):
    # Case 0 FLAIR is numbered in reverse spatial order: the reader (sorting by IPP along
    # the normal) must return the files in descending InstanceNumber.
    vol = read_dicom_series(_series_dir(demo, 0, "FLAIR"))
    numbers = [int(p.stem.split("-")[1]) for p in vol.sources]
    assert numbers == list(range(N_SLICES, 0, -1))
    for p in vol.sources[:3]:
        assert int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) == int(p.stem.split("-")[1])
    # Case 1 T1w is numbered in random order.
    vol = read_dicom_series(_series_dir(demo, 1, "T1w"))
    numbers = [int(p.stem.split("-")[1]) for p in vol.sources]
    assert numbers not in (list(range(1, N_SLICES + 1)), list(range(N_SLICES, 0, -1)))


# ---------------------------------------------------------------------------- geometry
@pytest.mark.parametrize(("modality", "plane"), [("FLAIR", "coronal"), ("T1w", "sagittal"), ("T2w", "axial")])
def test_marker_lands_at_its_world_position(demo, modality, plane):
    folder = _series_dir(demo, 1, modality)
    plan = {s.modality: s.plane for s in plan_dataset(N_CASES, SEED)[1].series}
    assert plan[modality] == plane
    hdr = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
    assert [float(v) for v in hdr.ImageOrientationPatient] == list(PLANE_IOP[plane])

    vol = read_dicom_series(folder, modality)
    assert vol.acquisition_plane == plane
    assert vol.shape == (MATRIX, MATRIX, N_SLICES)
    found = _marker_centroid(vol)
    assert np.linalg.norm(found - np.array(MARKER_RAS_MM)) < min(vol.spacing)

    # Canonical (RAS) re-indexing puts the marker in the Right, Anterior, Superior halves.
    can = vol.canonical()
    assert can.axcodes == ("R", "A", "S")
    ijk = np.unravel_index(int(np.argmax(can.data)), can.shape)
    assert np.linalg.norm(can.voxel_to_world(np.array(ijk)) - np.array(MARKER_RAS_MM)) < max(can.spacing)
    for axis in range(3):
        assert ijk[axis] > can.shape[axis] / 2


def test_every_series_is_zero_outside_head_and_marker_is_consistent(demo):
    planes_seen = set()
    for case in plan_dataset(N_CASES, SEED):
        for s in case.series:
            vol = read_dicom_series(_series_dir(demo, case.case_id, s.modality), s.modality)
            planes_seen.add(vol.acquisition_plane)
            assert vol.acquisition_plane == s.plane
            corners = vol.data[[0, -1]][:, [0, -1]][:, :, [0, -1]]
            assert np.all(corners == 0)
            assert np.linalg.norm(_marker_centroid(vol) - np.array(MARKER_RAS_MM)) < min(vol.spacing)
    assert planes_seen == {"axial", "coronal", "sagittal"}


# ---------------------------------------------------------------------------- phantom content
def _head_grid(step: float = 2.0) -> np.ndarray:
    axes = [np.arange(-80.0, 80.0 + step, step), np.arange(-100.0, 100.0 + step, step),
            np.arange(-75.0, 75.0 + step, step)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def test_lesion_appearance_depends_on_label():
    xyz = _head_grid()
    in_brain = np.linalg.norm(xyz / np.array([55.0, 75.0, 50.0]), axis=-1) < 1.0
    for seed in range(4):
        small = random_case_params(np.random.default_rng(seed), 0)
        large = random_case_params(np.random.default_rng(seed), 1)
        flair0 = phantom_ras(xyz, "FLAIR", small)
        flair1 = phantom_ras(xyz, "FLAIR", large)
        bright0 = np.count_nonzero((flair0 > 750) & in_brain)
        bright1 = np.count_nonzero((flair1 > 750) & in_brain)
        assert bright0 > 50 and bright1 > 50  # both lesions are clearly visible on FLAIR
        # Label 1 has a FLAIR-dark necrotic core at its centre; label 0 is bright throughout.
        assert phantom_ras(np.array(large.lesion_centre_mm), "FLAIR", large) < 500
        assert phantom_ras(np.array(small.lesion_centre_mm), "FLAIR", small) > 1000
        # Ring enhancement only for label 1.
        enh0 = (phantom_ras(xyz, "T1wCE", small) - phantom_ras(xyz, "T1w", small))[in_brain]
        enh1 = (phantom_ras(xyz, "T1wCE", large) - phantom_ras(xyz, "T1w", large))[in_brain]
        assert np.abs(enh0).max() < 30
        assert np.count_nonzero(enh1 > 500) > 100
        # The lesion stays in one hemisphere.
        lesion_x = xyz[..., 0][(flair1 > 1000) & in_brain]
        assert np.all(np.sign(lesion_x) == np.sign(large.lesion_centre_mm[0]))


def test_contrasts_and_landmarks():
    params = random_case_params(np.random.default_rng(0), 0)
    wm = np.array([[25.0, -30.0, 30.0], [-25.0, -30.0, 30.0]])  # deep white matter, both sides
    ventricle = np.array([[9.0, 2.0, 12.0], [-9.0, 2.0, 12.0]])
    lesion = np.asarray(params.lesion_centre_mm)
    wm = wm[np.linalg.norm(wm - lesion, axis=1) > 20]
    t1 = phantom_ras(np.vstack([wm, ventricle]), "T1w", params)
    t2 = phantom_ras(np.vstack([wm, ventricle]), "T2w", params)
    flair = phantom_ras(np.vstack([wm, ventricle]), "FLAIR", params)
    n = len(wm)
    assert t1[:n].min() > 2 * t1[n:].max()  # T1w: WM bright, CSF dark
    assert t2[n:].min() > 1.5 * t2[:n].max()  # T2w: CSF bright
    assert flair[n:].max() < 0.5 * flair[:n].min()  # FLAIR: CSF dark
    # Nose at the anterior only; nothing outside the head.
    nose, back = phantom_ras(np.array([[0.0, 93.0, -22.0], [0.0, -93.0, -22.0]]), "T1w", params)
    assert nose > 300 and back == 0
    assert phantom_ras(np.array([80.0, 0.0, 0.0]), "FLAIR", params) == 0
    # The marker is the brightest thing and sits on the right, not the left.
    marker, mirrored = phantom_ras(np.array([MARKER_RAS_MM, (-MARKER_RAS_MM[0], *MARKER_RAS_MM[1:])]), "T2w", params)
    assert marker > 3000 and mirrored < 2000


# ---------------------------------------------------------------------------- determinism, errors
def test_same_seed_same_output_different_seed_different(demo, tmp_path):
    again = make_demo_dataset(tmp_path / "again", **SMALL)
    other = make_demo_dataset(tmp_path / "other", **{**SMALL, "seed": SEED + 1})
    for modality in ("FLAIR", "T2w"):
        a = read_dicom_series(_series_dir(demo, 2, modality))
        b = read_dicom_series(_series_dir(again, 2, modality))
        assert np.array_equal(a.data, b.data)
        assert np.array_equal(a.affine, b.affine)
        assert a.meta["SeriesInstanceUID"] == b.meta["SeriesInstanceUID"]
    for f in sorted(_series_dir(demo, 0, "FLAIR").iterdir())[:3]:
        assert f.read_bytes() == (_series_dir(again, 0, "FLAIR") / f.name).read_bytes()
    assert (demo / "train_labels.csv").read_text() == (again / "train_labels.csv").read_text()
    a = read_dicom_series(_series_dir(demo, 0, "FLAIR"))
    c = read_dicom_series(_series_dir(other, 0, "FLAIR"))
    assert a.meta["SeriesInstanceUID"] != c.meta["SeriesInstanceUID"]
    assert a.shape != c.shape or not np.array_equal(a.data, c.data)


def test_refuses_existing_output_and_bad_sizes(demo, tmp_path):
    with pytest.raises(FileExistsError):
        make_demo_dataset(demo, **SMALL)
    for bad in ({"n_cases": 0}, {"matrix": 4}, {"n_slices": 1}):
        with pytest.raises(ValueError):
            make_demo_dataset(tmp_path / "bad", **{**SMALL, **bad})
    with pytest.raises(ValueError):
        phantom_ras(np.zeros((4, 2)), "FLAIR", random_case_params(np.random.default_rng(0), 1))
    with pytest.raises(ValueError):
        phantom_ras(np.zeros((4, 3)), "DWI", random_case_params(np.random.default_rng(0), 1))


def test_plane_mix_of_default_plan():
    plans = plan_dataset(24, seed=0)
    planes = [s.plane for p in plans for s in p.series]
    assert len(planes) == 24 * 4 - 1
    for plane, share in (("axial", 0.6), ("coronal", 0.2), ("sagittal", 0.2)):
        assert abs(planes.count(plane) / len(planes) - share) < 0.15
    small = plan_dataset(3, seed=5)
    assert {s.plane for p in small for s in p.series} >= {"coronal", "sagittal"}
    assert sum(p.label for p in plans) == 12
