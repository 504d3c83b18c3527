"""``mriviewer compare``: two runs on the same split are compared on their paired test cases;
runs tested on different cases are refused with the reason; ``--data`` scores an external set."""

from __future__ import annotations

import json

import pytest

from mriviewer.cli import main

TINY = ["--epochs", "1", "--image-size", "32", "--slices-per-case", "3", "--device", "cpu", "--pretrained", "none"]


@pytest.fixture(scope="module")
def runs(demo_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    out = {}
    for name, extra in (("a", ["--seed", "0"]), ("b", ["--seed", "0", "--lr", "0.01"]), ("c", ["--seed", "1"])):
        out[name] = root / name
        assert main(["train", "--data", str(demo_dir), "--model", "resnet18-2d", *TINY, *extra,
                     "--out", str(out[name])]) == 0
    return out


def test_same_split_is_compared_on_paired_cases(runs, capsys):
    capsys.readouterr()
    assert main(["compare", str(runs["a"]), str(runs["b"]), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_cases"] >= 2 and [r["name"] for r in res["runs"]] == ["a", "b"]
    assert main(["compare", str(runs["a"]), str(runs["b"])]) == 0
    text = capsys.readouterr().out
    assert "ΔAUC" in text and "DeLong" in text and "McNemar" in text and "little power" in text


def test_different_splits_are_refused(runs, capsys):
    capsys.readouterr()
    assert main(["compare", str(runs["a"]), str(runs["c"])]) == 2
    err = capsys.readouterr().err
    assert "different cases" in err and "--data" in err


def test_external_data_scores_both(runs, tmp_path, capsys):
    from mriviewer.demo.dataset import make_demo_dataset

    other = make_demo_dataset(tmp_path / "other", n_cases=8, seed=7, matrix=32, n_slices=8)
    capsys.readouterr()
    assert main(["compare", str(runs["a"]), str(runs["c"]), "--data", str(other), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_cases"] == 8
