"""Patients across studies, sessions and time points: a patient's cases share one patient id."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from mriviewer.cli import main
from mriviewer.data.discover import discover
from mriviewer.data.patients import patient_count


def _nifti(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).random((6, 6, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))


def test_brats_2023_time_points_are_one_patient(tmp_path):
    for case in ("BraTS-GLI-00001-000", "BraTS-GLI-00001-001", "BraTS-GLI-00002-000"):
        for suffix in ("t2f", "t1n", "t1c", "t2w"):
            _nifti(tmp_path / case / f"{case}-{suffix}.nii.gz")
    ds = discover(tmp_path)
    assert {c.case_id: c.patient_id for c in ds.cases} == {
        "BraTS-GLI-00001-000": "BraTS-GLI-00001", "BraTS-GLI-00001-001": "BraTS-GLI-00001",
        "BraTS-GLI-00002-000": "BraTS-GLI-00002"}
    assert patient_count(ds) == 2


def test_bids_subjects_are_patients_and_sessions_their_studies(tmp_path, capsys):
    for sub, ses in (("01", "01"), ("01", "02"), ("02", "01")):
        _nifti(tmp_path / f"sub-{sub}" / f"ses-{ses}" / "anat" / f"sub-{sub}_ses-{ses}_T1w.nii.gz")
        _nifti(tmp_path / f"sub-{sub}" / f"ses-{ses}" / "anat" / f"sub-{sub}_ses-{ses}_FLAIR.nii.gz", 1)
    ds = discover(tmp_path)
    assert sorted(c.patient_id for c in ds.cases) == ["sub-01", "sub-01", "sub-02"]
    assert main(["info", str(tmp_path), "--json", "--no-headers"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["patients"] == 2 and len(info["cases"]) == 3


def test_rsna_case_is_the_patient_and_info_says_patients(demo_dir, capsys):
    ds = discover(demo_dir)
    assert all(c.patient_id == c.case_id for c in ds.cases)
    assert main(["info", str(demo_dir), "--no-headers"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert f"{len(ds.cases)} case(s) of {len(ds.cases)} patient(s)" in first and "label=label" not in first


def test_dicom_series_carry_their_patient_id(demo_dir):
    from mriviewer.data.layouts.dicom import _dicom_series_case

    case_dir = next((demo_dir / "train").iterdir())
    import pydicom

    expected = pydicom.dcmread(next((case_dir / "FLAIR").iterdir()), stop_before_pixels=True).PatientID
    ds = _dicom_series_case(case_dir / "FLAIR")
    assert [c.patient_id for c in ds.cases] == [str(expected)]


def test_2d_image_sets_have_no_patients(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(2):
            Image.fromarray(np.full((8, 8), 40 * k, np.uint8)).save(tmp_path / cls / f"sub-0{k}_x.png")
    ds = discover(tmp_path)
    assert ds.patient_ids is False and all(c.patient_id is None for c in ds.cases)
