"""The command line: info, train, predict, report, demo, and clean errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mriviewer.cli import main
from tests.conftest import real_data


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mriviewer", *args], capture_output=True, text=True, timeout=600)


def test_info_json_on_demo(demo_dir, capsys):
    assert main(["info", str(demo_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "rsna-miccai" and len(info["cases"]) == 12
    case = info["cases"][0]
    assert set(case) >= {"case_id", "label", "modalities", "errors"}
    flair = case["modalities"]["FLAIR"]
    assert set(flair) >= {"path", "shape", "spacing_mm", "affine", "axcodes", "acquisition_plane"}
    assert len(flair["affine"]) == 4 and flair["acquisition_plane"] in ("axial", "coronal", "sagittal")
    assert any(c["modalities"]["T1wCE"] is None for c in info["cases"])


def test_info_json_on_real_rsna(capsys):
    root = real_data("rsna-miccai")
    assert main(["info", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    (case,) = info["cases"]
    assert case["case_id"] == "00046" and case["label"] == 1
    assert case["modalities"]["T1w"] is None
    flair = case["modalities"]["FLAIR"]
    assert flair["shape"] == [512, 512, 143] and flair["acquisition_plane"] == "coronal"
    assert flair["axcodes"] == "LIP"


def test_bad_input_is_one_line_no_traceback(tmp_path):
    r = run_cli("info", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "nope" in r.stderr
    r = run_cli("train", "--data", str(tmp_path), "--model", "vgg", "--epochs", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_train_predict_report(demo_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(demo_dir), "--model", "resnet18-2d", "--epochs", "2", "--out", str(out),
                 "--image-size", "32", "--slices-per-case", "3", "--device", "cpu", "--pretrained", "none"]) == 0
    for name in ("best.pt", "config.json", "metrics.json"):
        assert (out / name).is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"train_loss", "val_loss", "val_auc"} <= set(metrics["epochs"][0])
    roles = metrics["roles"]  # cases and patients per role (the demo: one case per patient)
    assert sum(r["cases"] for r in roles.values()) == 12 and all(r["cases"] == r["patients"] for r in roles.values())
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["checkpoint"].endswith("best.pt")
    # The demo's label shows in T1wCE (its mriviewer.json): training on another modality is said.
    assert "mriviewer.json suggests --modalities T1wCE" in captured.err

    preds = tmp_path / "preds.csv"
    assert main(["predict", "--checkpoint", str(out / "best.pt"), "--data", str(demo_dir), "--out", str(preds)]) == 0
    rows = list(csv.DictReader(preds.open()))
    assert len(rows) == 12
    assert {"case_id", "patient_id", "true_label", "predicted_class", "p_MGMT methylated"} <= set(rows[0])

    pdf = tmp_path / "r.pdf"
    case_id = rows[0]["case_id"]
    assert main(["report", "--checkpoint", str(out / "best.pt"), "--data", str(demo_dir), "--case", case_id,
                 "--out", str(pdf)]) == 0
    text = pdf_text(pdf)
    assert "Research use only" in text and f"case {case_id}" in text and "Predicted class" in text
    # The model card says what was loaded (random weights here), not what was asked for.
    flat = " ".join(text.split())
    assert "Pretrained weights off; training starts from random weights" in flat and "initial weights" not in flat


def pdf_text(path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


@pytest.mark.parametrize("args", [["--version"]])
def test_version(args, capsys):
    with pytest.raises(SystemExit):
        main(args)
    assert "mriviewer" in capsys.readouterr().out


def test_convert_rsna_series_to_nifti(tmp_path):
    import nibabel as nib
    import numpy as np

    from mriviewer.io.readers import load_volume

    folder = real_data("rsna-miccai/train/00046/FLAIR")
    out = tmp_path / "flair.nii.gz"
    assert main(["convert", str(folder.parents[2]), "--modality", "FLAIR", "--out", str(out)]) == 0
    img = nib.load(str(out))
    ours = load_volume(folder)
    np.testing.assert_allclose(img.affine, ours.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj), ours.data)
    assert "".join(nib.aff2axcodes(img.affine)) == "LIP"
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    # An independent reader of the original series puts voxel (0, 0, 0) where the NIfTI says.
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    first = np.array(reader.Execute().TransformIndexToPhysicalPoint([0, 0, 0])) * [-1, -1, 1]
    np.testing.assert_allclose(img.affine[:3, 3], first, atol=1e-3)


def test_convert_needs_a_case_when_several(tmp_path, demo_dir, capsys):
    assert main(["convert", str(demo_dir), "--out", str(tmp_path / "x.nii.gz")]) == 2
    assert "--case" in capsys.readouterr().err
    assert main(["convert", str(demo_dir), "--case", "00001", "--modality", "T2w", "--out", str(tmp_path / "x.nii.gz")]) == 0


def test_assign_modality_override(tmp_path, capsys):
    folder = real_data("dicom-transfer-syntaxes")
    assert main(["info", str(folder), "--json", "--assign", "other=T2w"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert all(c["modalities"]["T2w"] is not None for c in info["cases"])
    assert main(["info", str(folder), "--assign", "FLAIR=T2w"]) == 2  # no case has FLAIR


def test_4d_nifti_volume_choice(tmp_path, capsys):
    import nibabel as nib
    import numpy as np

    data = np.stack([np.full((4, 5, 6), v, np.float32) for v in (10, 20, 30)], axis=-1)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "fmri_t2.nii.gz"))
    out = tmp_path / "v2.nii.gz"
    assert main(["convert", str(tmp_path / "fmri_t2.nii.gz"), "--volume", "2", "--out", str(out)]) == 0
    assert np.asarray(nib.load(str(out)).dataobj).max() == 20
    assert main(["info", str(tmp_path / "fmri_t2.nii.gz"), "--json", "--volume", "3"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "3 volumes" in " ".join(info["cases"][0]["modalities"]["T2w"]["warnings"])
    assert main(["convert", str(tmp_path / "fmri_t2.nii.gz"), "--volume", "9", "--out", str(out)]) == 2


def test_assembled_classes_confound_report_evaluate_and_cam_check(tmp_path, capsys):
    """--data LABEL=PATH from two 'sites' whose voxel spacing differs: the run warns of the
    confound, the PDF report repeats it next to the test figures, predict marks roles, evaluate
    leaves seen cases out, and cam-check ends with its key=value line."""
    from tests.phantoms import make_lesion_phantoms

    a = make_lesion_phantoms(tmp_path / "site-a", n_cases=8, seed=1, spacing_mm=2.0)
    b = make_lesion_phantoms(tmp_path / "site-b", n_cases=8, seed=2, spacing_mm=1.0)
    out = tmp_path / "run"
    data = ["--data", f"tumour={a}", "--data", f"healthy={b}"]
    assert main(["train", *data, "--model", "cnn3d", "--epochs", "1", "--out", str(out), "--split", "50/25/25",
                 "--set", "image_size=32", "--set", "depth=8", "--set", "batch_size=4", "--set", "augment={}",
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "Confound: class 'tumour' comes only from source site-a" in err and "voxel spacing differs" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert any(w.startswith("Confound") for w in metrics["warnings"])
    assert json.loads((out / "config.json").read_text())["overrides"]["split"] == [0.5, 0.25, 0.25]
    # The same --out again is refused without --overwrite.
    assert main(["train", *data, "--model", "cnn3d", "--epochs", "1", "--out", str(out)]) == 2

    pdf = tmp_path / "r.pdf"
    case_id = metrics["split"]["test"][0]
    assert main(["report", "--checkpoint", str(out / "best.pt"), *data, "--case", case_id, "--out", str(pdf)]) == 0
    text = pdf_text(pdf)
    assert "Test set" in text and "Confound" in text

    preds = tmp_path / "p.csv"
    assert main(["predict", "--checkpoint", str(out / "best.pt"), *data, "--out", str(preds)]) == 0
    roles = {r["case_id"]: r["split"] for r in csv.DictReader(preds.open())}
    assert roles[case_id] == "test" and set(roles.values()) == {"train", "validation", "test"}

    assert main(["evaluate", "--checkpoint", str(out / "best.pt"), *data, "--out", str(tmp_path / "ev")]) == 0
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["test"]["n_cases"] == len(metrics["split"]["test"])  # train and validation cases left out
    assert any("left out" in w for w in ev["warnings"])

    # Seen is decided by content, not by name: a copy of the data elsewhere is still seen ...
    import shutil

    copies = [shutil.copytree(d, tmp_path / "copy" / d.name) for d in (a, b)]
    copy_data = ["--data", f"tumour={copies[0]}", "--data", f"healthy={copies[1]}"]
    assert main(["evaluate", "--checkpoint", str(out / "best.pt"), *copy_data, "--out", str(tmp_path / "ev2")]) == 0
    assert json.loads((tmp_path / "ev2" / "metrics.json").read_text())["test"]["n_cases"] == len(metrics["split"]["test"])
    # ... and other scans under the same case ids (new phantoms, same folder names) are not.
    other = [make_lesion_phantoms(tmp_path / "other" / d.name, n_cases=8, seed=s, spacing_mm=sp)
             for d, s, sp in ((a, 11, 2.0), (b, 12, 1.0))]
    other_data = ["--data", f"tumour={other[0]}", "--data", f"healthy={other[1]}"]
    assert main(["evaluate", "--checkpoint", str(out / "best.pt"), *other_data, "--out", str(tmp_path / "ev3")]) == 0
    ev3 = json.loads((tmp_path / "ev3" / "metrics.json").read_text())
    assert ev3["test"]["n_cases"] == 16 and not any("left out" in w for w in ev3["warnings"])
    assert main(["predict", "--checkpoint", str(out / "best.pt"), *other_data, "--out", str(tmp_path / "p3.csv")]) == 0
    assert {r["split"] for r in csv.DictReader((tmp_path / "p3.csv").open())} == {"external"}

    capsys.readouterr()
    assert main(["cam-check", "--checkpoint", str(out / "best.pt"), *data, "--class", "tumour", "--max-cases", "3"]) == 0
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("pointing_game=") and " baseline=" in last and " energy_in_mask=" in last
    # Where the map lies is kept apart from how good the model is, and a model at chance is said to be.
    assert "where the map lies, not whether the model is right" in captured.err
    lo, hi = metrics["test"]["auc_ci"]
    assert ("the model itself is at chance" in captured.err) == (lo <= 0.5 <= hi or any(
        "predicts one class" in w for w in metrics["test"]["warnings"]))


def test_presets_listing(capsys):
    assert main(["presets", "--json"]) == 0
    presets = json.loads(capsys.readouterr().out)
    assert {p["name"] for p in presets} >= {"mgmt-resnet18-2d", "grading-r2plus1d-18", "tumour-type-resnet18-2d"}
    assert all({"version", "task", "paper", "summary", "config"} <= set(p) for p in presets)


def test_demo_twice_is_one_line_and_numeric_case_ids_match(tmp_path, demo_dir):
    out = tmp_path / "d"
    assert main(["demo", "--out", str(out), "--cases", "2"]) == 0
    r = run_cli("demo", "--out", str(out), "--cases", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "already exists" in r.stderr
    from mriviewer.data.discover import discover

    ds = discover(demo_dir)
    assert ds.case("0") is ds.case("00000")


def test_out_of_a_per_modality_run_is_not_overwritten(demo_dir, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "FLAIR").mkdir(parents=True)
    (out / "FLAIR" / "best.pt").write_bytes(b"an earlier per-modality model")
    assert main(["train", "--data", str(demo_dir), "--model", "cnn3d", "--out", str(out), "--epochs", "1"]) == 2
    assert "FLAIR/best.pt" in capsys.readouterr().err
    assert (out / "FLAIR" / "best.pt").read_bytes() == b"an earlier per-modality model"


def test_desktop_installs_a_launcher_for_this_installation_and_removes_it(tmp_path, capsys):
    """A pip-installed app gets its launcher and icon from the wheel (`mriviewer desktop`)."""
    import configparser
    import shlex
    from importlib import resources

    assert (resources.files("mriviewer") / "resources" / "mriviewer.desktop").is_file()
    home = tmp_path / "share"
    assert main(["desktop", "--data-home", str(home)]) == 0
    desktop = home / "applications" / "mriviewer.desktop"
    icon = home / "icons" / "hicolor" / "scalable" / "apps" / "mriviewer.svg"
    assert icon.read_bytes().startswith(b"<")
    entry = configparser.ConfigParser(interpolation=None)
    entry.read_string(desktop.read_text(encoding="utf-8"))
    section = entry["Desktop Entry"]
    program = shlex.split(section["Exec"])
    assert program[-2:] == ["view", "%f"] and section["Icon"] == "mriviewer"
    # Exec names this environment's command (a file that runs), not a bare name looked up on PATH.
    assert Path(program[0]).is_absolute() and os.access(program[0], os.X_OK)
    assert main(["desktop", "--data-home", str(home), "--remove"]) == 0
    assert not desktop.exists() and not icon.exists()


def test_info_writes_nothing_to_the_disk_cache(tmp_path, capsys):
    """``info`` decodes each case into a memory-only cache, emptied after the case (it filled the
    disk cache: 1.8 GiB for one ``info ../shared/data | head``)."""
    from mriviewer.demo.dataset import make_demo_dataset

    data = make_demo_dataset(tmp_path / "d", n_cases=3, seed=5, matrix=24, n_slices=8)
    cache_dir = Path(os.environ["MRIVIEWER_CACHE_DIR"])
    before = set(cache_dir.rglob("*")) if cache_dir.exists() else set()
    assert main(["info", str(data)]) == 0
    after = set(cache_dir.rglob("*")) if cache_dir.exists() else set()
    assert after == before
    lines = capsys.readouterr().out.splitlines()
    assert "3 case(s) of 3 patient(s)" in lines[0] and sum("FLAIR" in ln and "x" in ln for ln in lines) == 3


def test_train_on_a_clinical_sheet_records_the_table(demo_dir, tmp_path, capsys):
    """--labels FILE --label-column: the run trains on that column, metrics.json ("dataset") and
    the checkpoint record the file (name, SHA-256), its columns and the mapping, the report says so."""
    sheet = tmp_path / "clinical.csv"
    sheet.write_text("PatientID,IDH,grade\n" + "".join(f"{n},{'mut' if n % 2 else 'wt'},{2 + n % 3}\n"
                                                       for n in range(12)))
    out = tmp_path / "run"
    assert main(["train", "--data", str(demo_dir), "--labels", str(sheet), "--label-column", "grade",
                 "--label-map", "2=LGG,3=LGG,4=HGG", "--model", "resnet18-2d", "--epochs", "1", "--out", str(out),
                 "--image-size", "32", "--slices-per-case", "2", "--device", "cpu", "--pretrained", "none"]) == 0
    record = json.loads((out / "metrics.json").read_text())["dataset"]
    assert record["class_names"] == ["HGG", "LGG"] and record["patients"] == 12
    assert record["label_table"]["file"] == "clinical.csv" and len(record["label_table"]["sha256"]) == 64
    assert record["label_table"]["label_map"] == {"2": "LGG", "3": "LGG", "4": "HGG"}
    pdf = tmp_path / "r.pdf"
    assert main(["report", "--checkpoint", str(out / "best.pt"), "--data", str(demo_dir), "--labels", str(sheet),
                 "--label-column", "grade", "--label-map", "2=LGG,3=LGG,4=HGG", "--case", "00001",
                 "--out", str(pdf)]) == 0
    flat = " ".join(pdf_text(pdf).split())
    assert "clinical.csv (SHA-256" in flat and "column 'grade'" in flat


def test_runs_lists_every_run_sortable_by_test_auc(tmp_path, capsys):
    """``mriviewer runs DIR``: the runs under a folder with their test AUC and interval."""
    import numpy as np

    from mriviewer.ml.caveats import Caveat
    from mriviewer.ml.config import TrainConfig
    from mriviewer.ml.metrics import classification_metrics

    rng = np.random.default_rng(0)
    labels = np.arange(40) % 2
    for name, shift, model in (("a", 0.0, "cnn3d"), ("deep/b", 2.0, "resnet18-2d")):
        run = tmp_path / name
        run.mkdir(parents=True)
        TrainConfig(model=model, modalities=["FLAIR"]).save(run / "config.json")
        p1 = 1 / (1 + np.exp(-(rng.normal(0, 1, 40) + shift * (labels - 0.5))))
        test = classification_metrics(labels, np.stack([1 - p1, p1], 1), ["0", "1"], n_boot=100)
        (run / "metrics.json").write_text(json.dumps({"test": test, "caveats": [
            Caveat("confound", "Confound: x").to_json(), Caveat("case", "Case 1 skipped").to_json()]}))
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "metrics.json").write_text("{}")  # no config.json beside it
    assert main(["runs", str(tmp_path), "--sort", "auc", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in runs] == ["deep/b", "a"] and runs[0]["test_auc"] > runs[1]["test_auc"]
    assert runs[0]["model"] == "resnet18-2d" and runs[0]["caveats"] == 1 and len(runs[0]["test_auc_ci"]) == 2
    assert main(["runs", str(tmp_path), "--sort", "name"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run") and lines[1].startswith("a ") and "cnn3d / no preset / FLAIR" in lines[1]
