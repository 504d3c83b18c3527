"""Seen by patient (issue 14): a checkpoint records each case's patient, hashed and keyed by where
the id came from; another study of a trained patient is not external; layout-derived ids are
matched only in the trained folder or a copy of it, DICOM PatientIDs in any folder; near-duplicate
images join patient groups; the warm-start leak check works per patient."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mriviewer.cache.memory import VolumeCache
from mriviewer.data.cases import Case, ModalitySource, case_identity, content_fingerprint
from mriviewer.data.discover import discover
from mriviewer.data.patients import patient_id_source
from mriviewer.ml.checkpoint import load_checkpoint
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.engine import run_training
from mriviewer.ml.predict import Predictor
from mriviewer.ml.seen import Seen, SeenIndex, patient_entry, record_patients, warm_start_overlap
from mriviewer.ml.splits import Split, make_splits

TINY_3D = dict(image_size=32, depth=8, batch_size=4, pretrained="none", device="cpu", augment={}, num_workers=0)


def brats23_phantoms(out: str | Path, n_patients: int = 8, seed: int = 0, shape=(20, 20, 10)) -> Path:
    """BraTS 2023 layout, two time points per patient (``BraTS-GLI-<p>-000`` and ``-001``), one
    FLAIR (``t2f``) each and a ``labels.csv``; label 1 (odd patients) has a bright blob. Every
    volume is new noise, so no two cases (nor two seeds) share content."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = ["case,label"]
    for p in range(n_patients):
        for t in range(2):
            cid = f"BraTS-GLI-{p:05d}-{t:03d}"
            write_study(out / cid, cid, p % 2, rng, shape)
            rows.append(f"{cid},{p % 2}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")
    return out


def write_study(folder: Path, cid: str, label: int, rng, shape=(20, 20, 10)) -> None:
    """(Re)write one study's ``<cid>-t2f.nii.gz`` with new content."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    img = rng.normal(100, 8, shape).astype(np.float32)
    if label:
        img[8:12, 8:12, 4:6] += 150
    nib.save(nib.Nifti1Image(img, np.diag([2.0, 2.0, 2.0, 1.0])), str(folder / f"{cid}-t2f.nii.gz"))


def split_of(ds, train_ids, test_ids=()) -> dict:
    """A checkpoint's split record (as :mod:`mriviewer.ml.fit` and the engine write it)."""
    roles = {"train": [ds.case(i) for i in train_ids], "validation": [], "test": [ds.case(i) for i in test_ids]}
    split = {r: [c.case_id for c in cs] for r, cs in roles.items()}
    split["identities"] = {r: [case_identity(c) for c in cs] for r, cs in roles.items()}
    split["fingerprints"] = {r: [content_fingerprint(c) for c in cs] for r, cs in roles.items()}
    return record_patients(split, ds.cases, ds)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-epoch CPU run on 8 patients × 2 studies: (data folder, run folder, metrics)."""
    root = tmp_path_factory.mktemp("seen")
    data = brats23_phantoms(root / "brats23")
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], epochs=1, split=[0.5, 0.25, 0.25], seed=0, **TINY_3D)
    result = run_training(cfg, discover(data), root / "run", loader=VolumeCache().get)
    return data, root / "run", result.metrics


def test_the_checkpoint_records_hashed_patients_per_role(trained):
    data, run, metrics = trained
    split = load_checkpoint(run / "best.pt")["split"]
    assert split["patients"] == metrics["split"]["patients"]
    ds = discover(data)
    for role in ("train", "validation", "test"):
        entries = split["patients"][role]
        assert len(entries) == len(split[role]) and all(e.startswith("name:") for e in entries)
        assert entries == [patient_entry(ds.case(cid), ds) for cid in split[role]]
    assert "BraTS-GLI" not in repr(split["patients"])  # hashed: no patient id in clear
    # A patient's two time points share one entry, and one role.
    role = {cid: r for r in ("train", "validation", "test") for cid in split[r]}
    assert all(role[f"BraTS-GLI-{p:05d}-000"] == role[f"BraTS-GLI-{p:05d}-001"] for p in range(8))


def test_another_study_of_a_trained_patient_is_not_external(trained, tmp_path):
    data, run, metrics = trained
    pred = Predictor.load(run / "best.pt", device="cpu")
    train = metrics["split"]["train"]
    ds = discover(data)
    assert all(pred.role_of(c, ds) == r for r in ("train", "validation", "test") for c in map(ds.case, metrics["split"][r]))
    # A copy of the data with a trained patient's study replaced by another scan.
    copy = Path(shutil.copytree(data, tmp_path / "copy"))
    replaced = train[0]
    write_study(copy / replaced, replaced, ds.case(replaced).label, np.random.default_rng(99))
    cds = discover(copy)
    assert pred.seen_by(cds.case(replaced), cds) == Seen("train-patient", "patient id, copy of the trained folder")
    assert pred.role_of(cds.case(replaced)) == "external"  # without its dataset, a name-derived id is not matched
    assert pred.role_of(cds.case(metrics["split"]["test"][0]), cds) == "test"
    # A new time point of a trained patient in the trained folder itself.
    patient = replaced.rsplit("-", 1)[0]
    write_study(data / f"{patient}-002", f"{patient}-002", 0, np.random.default_rng(7))
    try:
        ds = discover(data)
        assert pred.seen_by(ds.case(f"{patient}-002"), ds) == Seen("train-patient", "patient id, same folder")
    finally:
        shutil.rmtree(data / f"{patient}-002")
    # The warm-start leak check: a new split that tests this study warns per patient.
    i = [c.case_id for c in cds.cases].index(replaced)
    msgs = warm_start_overlap(str(run / "best.pt"), cds.cases, [Split("holdout", [], [], [i])], cds)
    assert len(msgs) == 1 and "1 test case(s) are other studies of patients" in msgs[0] and replaced in msgs[0]
    assert warm_start_overlap("none", cds.cases, [Split("holdout", [], [], [i])], cds) == []


def test_colliding_layout_ids_of_another_dataset_are_external(trained, tmp_path):
    data, run, metrics = trained
    pred = Predictor.load(run / "best.pt", device="cpu")
    other = discover(brats23_phantoms(tmp_path / "brats23", seed=5))  # the same names, other scans
    assert {pred.role_of(c, other) for c in other.cases} == {"external"}


def test_dicom_patient_ids_match_across_folders_and_layout_ids_do_not(tmp_path):
    from mriviewer.demo.dataset import make_demo_dataset

    demos = [make_demo_dataset(tmp_path / f"demo{s}", n_cases=3, seed=s, matrix=8, n_slices=2) for s in (1, 2)]
    for site, demo in (("site-a", demos[0]), ("site-b", demos[1])):  # DICOM series named by scan
        for n in (0, 1):
            shutil.copytree(demo / "train" / f"0000{n}" / "FLAIR", tmp_path / site / f"{site}-mr{n}")
    a, b = discover(tmp_path / "site-a"), discover(tmp_path / "site-b")
    assert {patient_id_source(c, a) for c in a.cases} == {"dicom"}
    assert patient_entry(a.case("site-a-mr1"), a) == patient_entry(b.case("site-b-mr1"), b) is not None
    index = SeenIndex(split_of(a, ["site-a-mr1"], ["site-a-mr0"]))
    # Patient 00001's scan at another site (other files, other content) is the same patient.
    assert index.seen_by(b.case("site-b-mr1"), b) == Seen("train-patient", "DICOM PatientID")
    assert index.seen_by(b.case("site-b-mr1")) == Seen("train-patient", "DICOM PatientID")
    assert index.role_of(b.case("site-b-mr0"), b) == "external"  # a test patient: unseen by the model
    # The RSNA layouts of both demos number their cases alike: the case folder is no person.
    r1, r2 = discover(demos[0]), discover(demos[1])
    assert {patient_id_source(c, r1) for c in r1.cases} == {"layout"}
    rsna = SeenIndex(split_of(r1, ["00000", "00001", "00002"]))
    assert {rsna.role_of(c, r2) for c in r2.cases} == {"external"}
    assert {rsna.role_of(c, r1) for c in r1.cases} == {"train"}


def test_placeholder_and_missing_patient_ids_record_nothing():
    src = {"FLAIR": ModalitySource("FLAIR", Path("/nowhere/FLAIR"), "dicom")}
    assert patient_entry(Case("scan", dict(src), patient_id="ANONYMOUS")) is None
    assert patient_entry(Case("scan", dict(src), patient_id=None)) is None
    assert patient_entry(Case("scan", dict(src), patient_id="P-17")).startswith("dicom:")
    # An old checkpoint (no patients recorded) answers as before.
    old = SeenIndex({"train": ["scan"], "identities": {"train": []}, "fingerprints": {"train": []}})
    assert old.seen_by("scan") == Seen("train", "id") and not old.records_patients


def test_near_duplicates_join_patient_groups_and_keep_them_in_one_role():
    from mriviewer.ml.duplicates import merge_duplicate_groups

    # Patients p1 (cases 0, 1), p2 (2, 3), p3 (4), p4…: an image of p1 near-duplicates one of p2.
    groups = ["p1", "p1", "p2", "p2", "p3"] + [f"q{k}" for k in range(15)]
    merged, clusters = merge_duplicate_groups(groups, [(1, 2, 3)])
    assert len(set(merged[:4])) == 1 and merged[4] != merged[0] and clusters == [[0, 1, 2, 3]]
    labels = [0, 0, 0, 0, 1] + [k % 2 for k in range(15)]
    for split in make_splits(labels, merged, split=[0.5, 0.25, 0.25], seed=0) + \
            make_splits(labels, merged, folds=3, seed=0):
        role = {i: r for r, members in split.roles().items() for i in members}
        assert len({role[i] for i in range(4)}) == 1
