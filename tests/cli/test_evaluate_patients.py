"""``evaluate`` and ``predict`` per patient (issue 14): another study of a patient the model trained
on is left out of the external figures, said once with its count, and never called external; the
run's own test cases stay "Test"; another dataset whose layout-derived patient ids collide with
the trained ones is scored in full."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from mriviewer.cli import main
from tests.ml.test_seen_patients import brats23_phantoms, write_study


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``mriviewer train`` (1 epoch, CPU) on 8 patients × 2 time points: (data, best.pt, metrics)."""
    root = tmp_path_factory.mktemp("evaluate-patients")
    data = brats23_phantoms(root / "brats23")
    out = root / "run"
    assert main(["train", "--data", str(data), "--model", "cnn3d", "--epochs", "1", "--out", str(out),
                 "--split", "50/25/25", "--set", "image_size=32", "--set", "depth=8", "--set", "batch_size=4",
                 "--set", "augment={}", "--set", "num_workers=0", "--device", "cpu"]) == 0
    return data, out / "best.pt", json.loads((out / "metrics.json").read_text())


def _rows(path) -> dict[str, str]:
    return {r["case_id"]: r["split"] for r in csv.DictReader(open(path))}


def test_other_study_of_a_trained_patient_is_left_out_and_said_once(run, tmp_path, capsys):
    data, ckpt, metrics = run
    split = metrics["split"]
    trained = [cid for cid in split["train"] if cid.endswith("-001") and cid[:-3] + "000" in split["train"]]
    replaced = trained[0]
    copy = shutil.copytree(data, tmp_path / "copy")
    label = int(replaced.split("-")[2]) % 2
    write_study(copy / replaced, replaced, label, np.random.default_rng(123))  # another scan, same study name

    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(copy), "--out", str(tmp_path / "ev")]) == 0
    err = capsys.readouterr().err
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["test"]["n_cases"] == len(split["test"]) and ev["roles"] == {"test": len(split["test"])}
    others = [w for w in ev["warnings"] if "other studies" in w]
    assert others == ["1 case(s) are other studies of patients the model trained on; left out "
                      "(matched 1 by patient id, copy of the trained folder)"]
    assert f"{len(split['train']) + len(split['validation']) - 1} case(s) the model was trained or selected on " \
           "were left out" in ev["warnings"]
    # The run's own test cases are its test set, not an external one.
    assert "External test" not in err and "Test (the run's own test cases)" in err and ev["external"] is False
    assert set(_rows(tmp_path / "ev" / "predictions.csv").values()) == {"test"}

    assert main(["predict", "--checkpoint", str(ckpt), "--data", str(copy), "--out", str(tmp_path / "p.csv")]) == 0
    rows = _rows(tmp_path / "p.csv")
    assert rows[replaced] == "train-patient" and "external" not in rows.values()
    assert "other studies of patients used to fit or choose this model" in capsys.readouterr().err

    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(copy), "--include-seen",
                 "--out", str(tmp_path / "ev-all")]) == 0
    ev = json.loads((tmp_path / "ev-all" / "metrics.json").read_text())
    assert ev["test"]["n_cases"] == 16 and ev["roles"]["train-patient"] == 1
    assert any("other studies of patients the model trained on; included" in w for w in ev["warnings"])


def test_colliding_patient_ids_of_another_dataset_are_all_scored(run, tmp_path, capsys):
    _, ckpt, _ = run
    other = brats23_phantoms(tmp_path / "brats23", seed=5)  # the same BraTS ids, other patients' scans
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(other), "--out", str(tmp_path / "ev")]) == 0
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["test"]["n_cases"] == 16 and ev["roles"] == {"external": 16} and ev["external"] is True
    assert not any("left out" in w or "other studies" in w for w in ev["warnings"])
    assert "External test" in capsys.readouterr().err
    assert set(_rows(tmp_path / "ev" / "predictions.csv").values()) == {"external"}
