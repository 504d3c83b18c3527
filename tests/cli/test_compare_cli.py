"""``mriviewer compare`` (issue 15): runs with the same split are compared on their own test cases
from their recorded predictions; another split is refused with the reason; ``--data`` scores every
run on a labelled set, leaving out what any run trained or selected on."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from mriviewer.cli import main

_TINY = ["--epochs", "1", "--split", "50/25/25", "--image-size", "32", "--depth", "8", "--slices-per-case", "1",
         "--batch-size", "4", "--set", "augment={}", "--set", "num_workers=0", "--device", "cpu", "--pretrained", "none"]


@pytest.fixture(scope="module")
def runs(demo_dir, tmp_path_factory):
    """Three 1-epoch runs on the demo: a ResNet and a 3D CNN with seed 0 (the same split), a 3D CNN with seed 1."""
    root = tmp_path_factory.mktemp("compare")
    out = {}
    for name, model, seed in (("resnet", "resnet18-2d", 0), ("cnn", "cnn3d", 0), ("cnn-seed1", "cnn3d", 1)):
        out[name] = root / name
        assert main(["train", "--data", str(demo_dir), "--model", model, "--seed", str(seed), "--out",
                     str(out[name]), *_TINY]) == 0
    return out


def _test_rows(run) -> dict[str, list[str]]:
    return {r["case_id"]: r for r in csv.DictReader(open(run / "predictions.csv")) if r["split"] == "test"}


def test_same_split_is_compared_on_the_recorded_test_predictions(runs, tmp_path, capsys):
    capsys.readouterr()
    png = tmp_path / "roc.png"
    assert main(["compare", str(runs["resnet"]), str(runs["cnn"] / "best.pt"), "--json", "--out", str(png)]) == 0
    r = json.loads(capsys.readouterr().out)
    tests = json.loads((runs["resnet"] / "metrics.json").read_text())["split"]["test"]
    assert r["cases"]["source"] == "own test set" and sorted(r["cases"]["case_ids"]) == sorted(tests)
    assert r["n_cases"] == len(tests) and [x["name"] for x in r["runs"]] == ["resnet", "cnn"]
    # The recorded predictions, not new ones: each run's AUC is the one in its metrics.
    for x, name in zip(r["runs"], ("resnet", "cnn"), strict=True):
        recorded = json.loads((runs[name] / "metrics.json").read_text())["test"]["auc"]
        assert x["auc"] == pytest.approx(recorded, abs=1e-4) and x["model"] in ("resnet18-2d", "cnn3d")
    pair = r["pairs"][0]
    assert (pair["a"], pair["b"], pair["n_cases"]) == ("resnet", "cnn", len(tests))
    assert pair["delong"]["p"] is None or 0 <= pair["delong"]["p"] <= 1  # 3 cases: DeLong needs 2 of each class
    assert any("little power" in v for v in pair["verdict"]) and r["seed"] == 0 and r["n_boot"] == 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["roc.png"]
    assert main(["compare", str(runs["resnet"]), str(runs["cnn"])]) == 0
    text = capsys.readouterr().out
    assert "the runs' own test set" in text and "ΔAUC" in text and "McNemar exact" in text
    assert "resnet vs cnn (differences are resnet − cnn)" in text and "paired bootstrap 95% CI" in text


def test_another_split_is_refused_with_the_reason(runs, capsys):
    capsys.readouterr()
    assert main(["compare", str(runs["resnet"]), str(runs["cnn-seed1"])]) == 2
    err = capsys.readouterr().err
    assert "different split seeds (0 vs 1)" in err and "--data PATH" in err and "Traceback" not in err
    assert main(["compare", str(runs["resnet"])]) == 2
    assert "two runs or more" in capsys.readouterr().err


def test_a_checkpoint_without_its_predictions_is_refused(runs, tmp_path, capsys):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copyfile(runs["cnn"] / "best.pt", alone / "best.pt")
    capsys.readouterr()
    assert main(["compare", str(runs["resnet"]), str(alone / "best.pt")]) == 2
    assert "does not hold its test predictions" in capsys.readouterr().err


def test_data_scores_every_run_and_leaves_out_what_any_trained_on(runs, demo_dir, tmp_path, capsys):
    from mriviewer.demo.dataset import make_demo_dataset

    other = make_demo_dataset(tmp_path / "other", n_cases=8, seed=7, matrix=40, n_slices=20)
    capsys.readouterr()
    names = [str(runs[k]) for k in ("resnet", "cnn", "cnn-seed1")]
    assert main(["compare", *names, "--data", str(other), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["cases"]["source"] == "data" and r["n_cases"] == 8 and len(r["pairs"]) == 3
    assert all(p["delong"].get("p_holm") is not None or p["delong"]["p"] is None for p in r["pairs"])
    assert not any("left out" in n for n in r["notes"])  # another dataset: all external

    # The training data itself: only the cases no run trained or selected on remain, and a run's
    # own test cases come from its recorded predictions.
    assert main(["compare", str(runs["resnet"]), str(runs["cnn"]), "--data", str(demo_dir), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    tests = set(_test_rows(runs["resnet"]))
    assert set(r["cases"]["case_ids"]) == tests
    assert any("left out in all" in n for n in r["notes"])
    assert any("resnet: its recorded test predictions used for" in n for n in r["notes"])
    own = json.loads((runs["resnet"] / "metrics.json").read_text())["test"]["auc"]
    assert r["runs"][0]["auc"] == pytest.approx(own, abs=1e-4)
    # With seed 1 in the mix, what any of the three trained or selected on is left out.
    assert main(["compare", *names, "--data", str(demo_dir), "--json"]) == 0
    r3 = json.loads(capsys.readouterr().out)
    seed1_seen = {c for role in ("train", "validation")
                  for c in json.loads((runs["cnn-seed1"] / "metrics.json").read_text())["split"][role]}
    assert set(r3["cases"]["case_ids"]) == tests - seed1_seen
