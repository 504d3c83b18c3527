"""BIDS datasets: subjects and sessions as cases, suffixes as modalities, derivatives as
segmentations, participants.tsv as the label table (layout ``bids``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mriviewer.cli import main
from mriviewer.data.discover import discover
from mriviewer.data.label_table import LabelSpec, apply_labels
from mriviewer.data.patients import patient_count
from mriviewer.ml.splits import make_splits

GROUPS = {"sub-01": "patient", "sub-02": "control", "sub-03": "patient", "sub-04": "control"}
IMAGES = ("T1w", "ce-gd_T1w", "T2w", "FLAIR")


def _nii(path: Path, seed: int = 0) -> None:
    """An 8×8×4 int16 volume (axes i, j, k) at 1 mm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 1000, (8, 8, 4)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))


def _participants(root: Path, subjects, extra_rows: str = "") -> Path:
    rows = "".join(f"{s}\t{30 + k}\t{'MF'[k % 2]}\t{GROUPS.get(s, 'patient' if k % 2 else 'control')}\n"
                   for k, s in enumerate(subjects))
    path = root / "participants.tsv"
    path.write_text("participant_id\tage\tsex\tgroup\n" + rows + extra_rows)
    return path


def make_bids(root: Path, n_subjects: int = 4, sessions=("ses-01", "ses-02")) -> Path:
    """A BIDS tree: ``dataset_description.json``, ``n_subjects`` subjects × ``sessions`` (none:
    no session level) with T1w, ce-gd T1w, T2w and FLAIR, and ``participants.tsv``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "test", "BIDSVersion": "1.9.0"}))
    subjects = [f"sub-{k:02d}" for k in range(1, n_subjects + 1)]
    for k, sub in enumerate(subjects):
        for ses in sessions or (None,):
            anat = root / sub / ses / "anat" if ses else root / sub / "anat"
            prefix = f"{sub}_{ses}" if ses else sub
            for j, name in enumerate(IMAGES):
                _nii(anat / f"{prefix}_{name}.nii.gz", seed=10 * k + j)
            (anat / f"{prefix}_T1w.json").write_text("{}")
    _participants(root, subjects)
    return root


@pytest.fixture()
def bids_tree(tmp_path) -> Path:
    """4 subjects × 2 sessions, plus: a derivative tumour mask (sub-01 ses-01), run-1/run-2 T1w
    (sub-02 ses-01), a T2star, a stray text file, a name that is not BIDS, an MNI-space mask,
    a preprocessed derivative, a func-only subject and a sourcedata folder."""
    root = make_bids(tmp_path / "ds")
    anat = root / "sub-02" / "ses-01" / "anat"
    (anat / "sub-02_ses-01_T1w.nii.gz").rename(anat / "sub-02_ses-01_run-1_T1w.nii.gz")
    _nii(anat / "sub-02_ses-01_run-2_T1w.nii.gz", 99)
    _nii(root / "sub-03" / "ses-02" / "anat" / "sub-03_ses-02_T2star.nii.gz", 5)
    (root / "sub-03" / "ses-01" / "anat" / "notes.txt").write_text("stray")
    _nii(root / "sub-04" / "ses-01" / "anat" / "sub-04_ses-01_T1w_copy.nii.gz")
    tumor = root / "derivatives" / "tumor" / "sub-01" / "ses-01" / "anat"
    _nii(tumor / "sub-01_ses-01_label-tumor_mask.nii.gz")
    _nii(tumor / "sub-01_ses-01_space-MNI152NLin2009cAsym_label-tumor_mask.nii.gz")
    _nii(root / "derivatives" / "prep" / "sub-02" / "ses-01" / "anat" / "sub-02_ses-01_desc-preproc_T1w.nii.gz")
    (root / "sub-05" / "func").mkdir(parents=True)
    _nii(root / "sub-05" / "func" / "sub-05_task-rest_bold.nii.gz")
    (root / "sourcedata" / "sub-01").mkdir(parents=True)
    return root


def _warning(ds, *parts: str) -> str:
    found = [w for w in ds.warnings if all(p in w for p in parts)]
    assert found, f"no warning with {parts}: {ds.warnings}"
    return found[0]


def test_subjects_and_sessions_are_cases_with_bids_modalities(bids_tree):
    ds = discover(bids_tree)
    assert ds.layout == "bids" and ds.task == "none"
    ids = [f"sub-0{s}_ses-0{k}" for s in range(1, 5) for k in (1, 2)]
    assert [c.case_id for c in ds.cases] == ids
    assert [c.patient_id for c in ds.cases] == [i.split("_")[0] for i in ids]
    assert patient_count(ds) == 4
    case = ds.case("sub-01_ses-02")
    assert list(case.modalities) == ["FLAIR", "T1w", "T1wCE", "T2w"]
    assert case.modalities["T1wCE"].path.name == "sub-01_ses-02_ce-gd_T1w.nii.gz"
    assert case.modalities["T1wCE"].reason == "BIDS suffix T1w with ce-gd (pybids entities)"
    assert case.modalities["FLAIR"].reason == "BIDS suffix FLAIR (pybids entities)"
    assert all(s.kind == "nifti" for s in case.modalities.values()) and not case.errors
    other = ds.case("sub-03_ses-02").modalities["T2star"]
    assert other.path.name == "sub-03_ses-02_T2star.nii.gz" and "kept as modality 'T2star'" in other.reason
    assert ds.modalities == ["FLAIR", "T1w", "T1wCE", "T2w", "T2star"]


def test_run_duplicates_and_bad_files_are_warned(bids_tree):
    ds = discover(bids_tree)
    t1 = ds.case("sub-02_ses-01").modalities["T1w"]
    assert t1.path.name == "sub-02_ses-01_run-1_T1w.nii.gz" and "(run-1)" in t1.reason
    _warning(ds, "2 T1w files", "using sub-02_ses-01_run-1_T1w.nii.gz", "not used: sub-02_ses-01_run-2_T1w.nii.gz")
    _warning(ds, "notes.txt", "not a NIfTI file")
    _warning(ds, "sub-04_ses-01_T1w_copy.nii.gz", "not a BIDS file name")
    _warning(ds, str(bids_tree / "sub-05"), "no anat/ folder", "func")
    _warning(ds, "derivatives", "1 derivative file(s) not used", "desc-preproc_T1w")
    _warning(ds, "space-MNI152NLin2009cAsym", "not on the subject's own grid")
    _warning(ds, "sourcedata/", "not opened")
    assert ds.case("sub-04_ses-01").modalities["T1w"].path.name == "sub-04_ses-01_T1w.nii.gz"


def test_derivative_mask_is_the_segmentation(bids_tree):
    ds = discover(bids_tree)
    seg = ds.case("sub-01_ses-01").segmentation
    assert seg == bids_tree / "derivatives/tumor/sub-01/ses-01/anat/sub-01_ses-01_label-tumor_mask.nii.gz"
    assert [c.case_id for c in ds.cases if c.segmentation is not None] == ["sub-01_ses-01"]
    _warning(ds, "segmentation of 1 case(s) (sub-01_ses-01)", "BIDS suffix mask (label-tumor)",
             "derivatives/tumor")


def test_participants_columns_are_offered_not_applied(bids_tree):
    ds = discover(bids_tree)
    w = _warning(ds, "participants.tsv: columns age, sex, group", "--label-column")
    assert "File ▸ Load labels…" in w
    assert all(c.label is None for c in ds.cases)


def test_labels_from_participants_label_every_session_of_the_subject(bids_tree):
    ds = discover(bids_tree)
    m = apply_labels(ds, LabelSpec(bids_tree / "participants.tsv", label_column="group"))
    assert (m.id_column, m.keyed_by) == ("participant_id", "patient")
    assert ds.class_names == ["control", "patient"] and ds.task == "binary"
    assert {c.case_id: ds.label_name(c) for c in ds.cases} == {
        c.case_id: GROUPS[c.patient_id] for c in ds.cases}
    assert not m.cases_without_row


def test_info_with_participants_labels(bids_tree, capsys):
    tsv = str(bids_tree / "participants.tsv")
    assert main(["info", str(bids_tree), "--labels", tsv, "--label-column", "group", "--json", "--no-headers"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "bids" and info["patients"] == 4 and info["task"] == "binary"
    assert {c["case_id"]: c["label_name"] for c in info["cases"]}["sub-03_ses-02"] == "patient"
    assert info["cases"][0]["modalities"]["T1wCE"]["reason"] == "BIDS suffix T1w with ce-gd (pybids entities)"


def test_holdout_split_keeps_each_subjects_sessions_in_one_role(tmp_path):
    root = make_bids(tmp_path / "ds", n_subjects=12)
    ds = discover(root)
    apply_labels(ds, LabelSpec(root / "participants.tsv", label_column="group"))
    cases = ds.labelled()
    assert len(cases) == 24
    groups = [c.patient_id or c.case_id for c in cases]  # as the engine groups them
    (split,) = make_splits([c.label for c in cases], groups, seed=0, class_names=ds.class_names)
    role_of: dict[str, set[str]] = {}
    for role, idx in split.roles().items():
        assert idx
        for i in idx:
            role_of.setdefault(cases[i].patient_id, set()).add(role)
    assert len(role_of) == 12 and all(len(r) == 1 for r in role_of.values())


def test_without_sessions_the_subject_is_the_case(tmp_path):
    root = make_bids(tmp_path / "ds", n_subjects=3, sessions=())
    ds = discover(root)
    assert ds.layout == "bids"
    assert [(c.case_id, c.patient_id) for c in ds.cases] == [(f"sub-0{k}", f"sub-0{k}") for k in (1, 2, 3)]
    assert sorted(ds.cases[0].modalities) == ["FLAIR", "T1w", "T1wCE", "T2w"]
    apply_labels(ds, LabelSpec(root / "participants.tsv", label_column="group"))
    assert [ds.label_name(c) for c in ds.cases] == ["patient", "control", "patient"]


def test_sub_folders_without_dataset_description_and_one_subject_alone(tmp_path):
    root = make_bids(tmp_path / "ds", n_subjects=2)
    (root / "dataset_description.json").unlink()
    _nii(root / "derivatives" / "seg" / "sub-02" / "anat" / "sub-02_desc-tumor_dseg.nii.gz")
    (root / "sub-02" / "sub-02_sessions.tsv").write_text("session_id\tage\nses-01\t40\nses-01\t41\n")
    assert [c.case_id for c in discover(root).cases] == ["sub-01_ses-01", "sub-01_ses-02",
                                                           "sub-02_ses-01", "sub-02_ses-02"]
    one = discover(root / "sub-02")
    assert one.layout == "bids" and [c.case_id for c in one.cases] == ["sub-02_ses-01", "sub-02_ses-02"]
    assert {c.patient_id for c in one.cases} == {"sub-02"}
    _warning(one, "sub-02_sessions.tsv", "session_id(s) on several rows: ses-01")
    _warning(one, "sessions.tsv file(s)", "columns age")
    _warning(one, "sub-02_desc-tumor_dseg.nii.gz", "several sessions")
    assert all(c.segmentation is None for c in one.cases)


def test_participants_problems_are_warned(tmp_path):
    root = make_bids(tmp_path / "ds", n_subjects=2)
    _participants(root, ["sub-01", "sub-02", "sub-01"], extra_rows="sub-09\t50\tM\tn/a\n")
    ds = discover(root)
    _warning(ds, "participants.tsv", "participant_id(s) on several rows (sub-01)")
    _warning(ds, "participants.tsv", "subjects without a folder (sub-09)")
    _warning(ds, "participants.tsv: columns age, sex, group", "group hold n/a", "--exclude-label n/a")


def test_variants_and_mismatched_names(tmp_path):
    root = make_bids(tmp_path / "ds", n_subjects=1, sessions=())
    anat = root / "sub-01" / "anat"
    _nii(anat / "sub-01_acq-fast_T2w.nii.gz")
    _nii(anat / "sub-02_PD.nii.gz")
    _nii(anat / "sub-01_foo-bar_PD.nii.gz")
    ds = discover(root)
    (case,) = ds.cases
    assert case.modalities["T2w"].path.name == "sub-01_T2w.nii.gz"
    _warning(ds, "2 T2w files", "no acq-/rec-/other variant entity", "not used: sub-01_acq-fast_T2w.nii.gz")
    _warning(ds, "sub-02_PD.nii.gz", "named for sub-02 but in folder sub-01")
    _warning(ds, "sub-01_foo-bar_PD.nii.gz", "unknown BIDS entity foo")
    assert case.modalities["PD"].path.name == "sub-01_foo-bar_PD.nii.gz"


def test_pybids_is_imported_only_for_a_bids_folder(tmp_path):
    code = ("import sys\nfrom mriviewer.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'bids'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_without_pybids_the_folders_still_open(tmp_path, monkeypatch):
    from mriviewer.core.errors import DatasetError
    from mriviewer.data.layouts import bids as bids_layout

    def missing():
        raise DatasetError("a BIDS dataset needs pybids to read its file names; install it with: pip install pybids")

    monkeypatch.setattr(bids_layout, "_pybids", missing)
    root = make_bids(tmp_path / "ds", n_subjects=2, sessions=())
    ds = discover(root)
    assert ds.layout != "bids" and len(ds.cases) == 2
    _warning(ds, "pip install pybids")
