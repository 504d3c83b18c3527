"""The PDF report (platypus), its Grad-CAM overlay, and the batch export with progress and cancel.

The checkpoints here are untrained tiny networks with recorded test metrics, split and warnings
(no training: the report only reads what a checkpoint carries), so every test runs in seconds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mriviewer.cache.memory import VolumeCache
from mriviewer.cli import main
from mriviewer.core.colour import overlay_rgba
from mriviewer.core.volume import Volume
from mriviewer.data.discover import discover
from mriviewer.ml.predict import Predictor
from mriviewer.reporting.batch import PREDICTIONS_CSV, export_reports
from mriviewer.reporting.inputs import ExportCancelled, build_report_inputs, report_filename
from mriviewer.reporting.pdf import write_case_report
from mriviewer.reporting.render import render_planes

CONFOUND = "Confound: class 'tumour' comes only from source site-a (voxel spacing differs)."


def pdf_pages(path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(str(path)).pages]


def _checkpoint(out: Path, ds, model: str, modalities: list[str], **cfg) -> Path:
    """An untrained ``model`` checkpoint for ``ds`` carrying test metrics (6 cases: too few, at
    chance), a confound warning, a split and a short history — what a real run records."""
    import torch

    from mriviewer.ml.checkpoint import new_checkpoint, save_checkpoint
    from mriviewer.ml.config import TrainConfig
    from mriviewer.ml.metrics import classification_metrics
    from mriviewer.ml.models.build import build_model

    torch.manual_seed(0)
    config = TrainConfig(model=model, modalities=modalities, pretrained="none", epochs=3, seed=4, **cfg)
    k = len(ds.class_names)
    net, _ = build_model(model, len(modalities), k, "none")
    ids = [c.case_id for c in ds.cases]
    rng = np.random.default_rng(0)
    labels = np.arange(6) % k
    test = classification_metrics(labels, rng.dirichlet([5.0] * k, 6), ds.class_names, n_boot=200)
    ck = new_checkpoint(net, config, list(ds.class_names), k, dataset_root=str(ds.root),
                        split={"train": ids[2:], "validation": ids[1:2], "test": ids[:1]},
                        history=[{"epoch": 1}, {"epoch": 2}, {"epoch": 3}],
                        metrics={"validation": {"epoch": 2, "monitor": "val_auc"}, "test": test,
                                 "warnings": test["warnings"] + [CONFOUND, "Case x skipped: unreadable"]})
    out.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(out / "best.pt", ck)


@pytest.fixture(scope="module")
def brats(tmp_path_factory):
    """Four BraTS-2018-style cases (FLAIR, T1, GT_W with labels 1 / 2 / 4), 24×20×16 at 2 mm,
    T1 on a coarser grid than FLAIR, and an untrained cnn3d checkpoint on FLAIR."""
    import nibabel as nib

    root = tmp_path_factory.mktemp("brats")
    shape = (24, 20, 16)
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    r2 = ((ii - 12) / 10) ** 2 + ((jj - 10) / 8.5) ** 2 + ((kk - 8) / 7) ** 2
    rows = ["case,label"]
    for n in range(4):
        img = np.where(r2 <= 1, 100.0, 2.0).astype(np.float32) + n
        d2 = (ii - 14) ** 2 + (jj - 9) ** 2 + (kk - 8) ** 2
        seg = np.select([d2 <= 2, d2 <= 6, d2 <= 14], [1, 4, 2], 0).astype(np.uint8)
        img[seg > 0] += 80
        case = root / f"case_{n}"
        case.mkdir()
        aff = np.diag([2.0, 2.0, 2.0, 1.0])
        nib.save(nib.Nifti1Image(img, aff), str(case / "FLAIR.nii.gz"))
        nib.save(nib.Nifti1Image(img[::2, ::2, ::2] * 0.5, np.diag([4.0, 4.0, 4.0, 1.0])), str(case / "T1.nii.gz"))
        nib.save(nib.Nifti1Image(seg, aff), str(case / "GT_W.nii.gz"))
        rows.append(f"case_{n},{n % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    ds = discover(root)
    ckpt = _checkpoint(tmp_path_factory.mktemp("brats-run"), ds, "cnn3d", ["FLAIR"], image_size=32, depth=8)
    return ds, Predictor.load(ckpt, device="cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A 2D image folder (two classes, three 48×36 PNGs each) and an untrained resnet18-2d."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for cls in ("glioma", "normal"):
        (root / cls).mkdir()
        for n in range(3):
            arr = (rng.uniform(0, 60, (36, 48)) + (120 if cls == "glioma" else 0) * (np.arange(48) > 30)).astype(np.uint8)
            Image.fromarray(arr).save(root / cls / f"img {n}.png")
    ds = discover(root)
    ckpt = _checkpoint(tmp_path_factory.mktemp("images-run"), ds, "resnet18-2d", ["image"], image_size=32,
                       slices_per_case=1)
    return ds, Predictor.load(ckpt, device="cpu")


def test_3d_report_text_pages_and_model_card(brats, tmp_path):
    ds, predictor = brats
    case = ds.cases[0]
    inputs = build_report_inputs(predictor, case, VolumeCache().get, dataset=ds)
    assert set(inputs.modalities) == {"FLAIR", "T1w"} and inputs.segmentation is not None
    pdf = write_case_report(inputs, tmp_path / "r.pdf")
    pages = pdf_pages(pdf)
    assert 2 <= len(pages) <= 5
    assert all("Research use only" in p for p in pages)
    assert all(f"page {n} of {len(pages)}" in p for n, p in enumerate(pages, start=1))
    text = "\n".join(pages)
    assert f"case {case.case_id}" in text and ds.root.name in text
    assert f"Predicted class: {inputs.prediction.class_name}" in text
    test = predictor.test_metrics
    lo, hi = test["auc_ci"]
    assert f"{test['auc']:.3f}" in text and f"{lo:.3f}–{hi:.3f}" in text
    assert "Brier score" in text and "ECE (10 bins)" in text and f"{test['ece']:.3f}" in text  # calibration
    assert "too few cases" in text and "not distinguishable" in text.replace("\n", " ")
    assert "Confound: class 'tumour'" in text and "Case x skipped" not in text
    assert "test: held out" in text  # this case is the split's test case
    for fact in ("cnn3d", "Preset", "Training set", "2 cases (plus 1 validation and 1 test", "3 run of 3",
                 "epoch 2", "mriviewer 0.1.0", "holdout 70/15/15"):
        assert fact in text, fact
    assert "RAS" in text and "radiological" in text and "T1w with Grad-CAM" in text
    # The segmentation legend names the BraTS labels present.
    assert "necrotic" in text and "oedema" in text and "enhancing tumour" in text
    assert not list(tmp_path.glob(".*tmp"))


def test_2d_report_speaks_in_pixels(images, tmp_path):
    ds, predictor = images
    case = ds.cases[0]
    pdf = write_case_report(build_report_inputs(predictor, case, VolumeCache().get, dataset=ds), tmp_path / "r.pdf")
    pages = pdf_pages(pdf)
    text = "\n".join(pages)
    assert len(pages) <= 3 and all("Research use only" in p for p in pages)
    assert "48 × 36 pixels" in text and "pixel column" in text
    assert "RAS" not in text and "radiological" not in text.lower() and " mm" not in text
    assert "Image with Grad-CAM" in text and f"case {case.case_id}" in text


def test_cam_overlay_is_transparent_below_threshold_and_has_no_black_holes(brats):
    ds, predictor = brats
    vol = VolumeCache().get(ds.cases[0].modalities["FLAIR"]).canonical()
    cam = np.zeros(vol.shape, dtype=np.float32)
    cam[:, :, :] = np.linspace(0, 1, vol.shape[0])[:, None, None]  # rises left to right
    cursor = (12, 10, 8)
    plain = render_planes(vol, cursor, None, crosshair=False)["axial"].astype(int)
    over = render_planes(vol, cursor, cam, crosshair=False, threshold=0.15)["axial"].astype(int)
    # As on screen: transparent at or below the threshold, the overlay's opacity above it.
    rgba = overlay_rgba(np.array([0.0, 0.15, 0.16, 0.5, 1.0]), "inferno", 0.5, 0.15)
    assert list(rgba[:, 3]) == [0, 0, 128, 128, 128]
    # Low map values leave the image as it is; nowhere does the overlay darken it to black.
    screen_cam = render_planes(Volume(cam, vol.affine), cursor, None, (0, 1), crosshair=False)["axial"][..., 0]
    low = screen_cam < 0.15 * 255
    assert low.any() and np.abs(over - plain)[low].max() <= 2
    bright = plain.mean(axis=2) > 100
    assert (over.mean(axis=2)[bright] > 0.5 * plain.mean(axis=2)[bright]).all()


def test_crosshair_is_drawn_at_the_cursor(brats):
    ds, _ = brats
    vol = VolumeCache().get(ds.cases[0].modalities["FLAIR"]).canonical()
    img = render_planes(vol, (5, 6, 7), None, size=vol.shape[0] * 4)["axial"]
    cyan = (img[..., 2] > 200) & (img[..., 0] < 60)
    rows, cols = np.nonzero(cyan)
    # axial, radiological: column from i reversed, row from j reversed (4 screen pixels per voxel)
    assert abs(np.bincount(rows).argmax() - (vol.shape[1] - 1 - 6 + 0.5) * 4) <= 1
    assert abs(np.bincount(cols).argmax() - (vol.shape[0] - 1 - 5 + 0.5) * 4) <= 1


def test_batch_export_writes_every_pdf_and_the_csv(brats, tmp_path):
    ds, predictor = brats
    steps = list(export_reports(predictor, ds, tmp_path / "out", loader=VolumeCache().get))
    assert [s.done for s in steps] == [1, 2, 3, 4] and all(s.total == 4 and s.ok for s in steps)
    pdfs = sorted(p.name for p in (tmp_path / "out").glob("*.pdf"))
    assert pdfs == sorted(report_filename(c.case_id) for c in ds.cases)
    rows = list(csv.DictReader(open(tmp_path / "out" / PREDICTIONS_CSV, encoding="utf-8")))
    assert [r["case_id"] for r in rows] == [c.case_id for c in ds.cases]
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_one_broken_case_does_not_stop_the_batch(brats, tmp_path):
    ds, predictor = brats
    cache = VolumeCache()
    broken = ds.cases[1]

    def loader(src):
        if src.path == broken.modalities["FLAIR"].path:
            raise __import__("mriviewer.core.errors").core.errors.LoadError(src.path, "damaged for the test")
        return cache.get(src)

    gen = export_reports(predictor, ds, tmp_path / "out", loader=loader)
    steps = list(gen)
    assert [s.ok for s in steps] == [True, False, True, True]
    assert "damaged for the test" in steps[1].result and steps[1].case_id == broken.case_id
    assert len(list((tmp_path / "out").glob("*.pdf"))) == 3
    rows = list(csv.DictReader(open(tmp_path / "out" / PREDICTIONS_CSV, encoding="utf-8")))
    assert broken.case_id not in {r["case_id"] for r in rows} and len(rows) == 3


def test_cancel_stops_and_leaves_no_partial_pdf(brats, tmp_path):
    ds, predictor = brats
    polls, steps = [], []

    def cancel():  # true on the second poll after the first case: in the middle of the second case
        if steps:
            polls.append(1)
        return len(polls) >= 2

    gen = export_reports(predictor, ds, tmp_path / "out", loader=VolumeCache().get, cancel=cancel)
    with pytest.raises(StopIteration) as stop:
        while True:
            steps.append(next(gen))
    summary = stop.value.value
    assert summary.cancelled and len(steps) == 1 and summary.predictions_csv is None
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [report_filename(ds.cases[0].case_id)]  # the finished one; no temporary, no CSV
    with pytest.raises(ExportCancelled):
        write_case_report(build_report_inputs(predictor, ds.cases[0], VolumeCache().get), tmp_path / "c.pdf",
                          cancel=lambda: True)
    assert not list(tmp_path.glob("*.pdf")) and not list(tmp_path.glob(".*"))


def test_csv_escapes_formula_cells(tmp_path):
    from mriviewer.ml.predict import Prediction
    from mriviewer.reporting.predictions_csv import write_predictions_csv

    preds = [Prediction("=cmd|' /C calc'!A0", np.array([0.2, 0.8]), 1, "+evil", 0)]
    out = write_predictions_csv(preds, ["-a", "@b"], tmp_path / "p.csv", role=lambda _c: "external")
    rows = list(csv.reader(open(out, encoding="utf-8")))
    assert rows[0][-2:] == ["p_'-a", "p_'@b"]
    assert rows[1][:6] == ["'=cmd|' /C calc'!A0", "", "external", "'-a", "1", "'+evil"]


def test_cli_report_all_cases_and_single_case(brats, tmp_path, capsys):
    ds, predictor = brats
    ck = str(predictor.path)
    out = tmp_path / "reports"
    assert main(["report", "--checkpoint", ck, "--data", str(ds.root), "--all", "--out", str(out),
                 "--device", "cpu"]) == 0
    assert len(list(out.glob("*.pdf"))) == 4 and (out / PREDICTIONS_CSV).is_file()
    sub = tmp_path / "two"
    ids = [ds.cases[3].case_id, ds.cases[0].case_id]
    assert main(["report", "--checkpoint", ck, "--data", str(ds.root), "--cases", ",".join(ids), "--out", str(sub),
                 "--device", "cpu"]) == 0
    rows = list(csv.DictReader(open(sub / PREDICTIONS_CSV, encoding="utf-8")))
    assert [r["case_id"] for r in rows] == ids
    one = tmp_path / "one.pdf"
    assert main(["report", "--checkpoint", ck, "--data", str(ds.root), "--case", ids[0], "--out", str(one),
                 "--device", "cpu"]) == 0
    assert f"case {ids[0]}" in pdf_pages(one)[0]
    capsys.readouterr()
    assert main(["report", "--checkpoint", ck, "--data", str(ds.root), "--cases", "nope", "--out", str(sub)]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["report", "--checkpoint", ck, "--data", str(ds.root), "--out", str(sub)]) == 2


def test_real_brats2019_report_shows_four_modalities_and_the_segmentation(tmp_path):
    from tests.conftest import real_data

    ds = discover(real_data("brats2019-tiny"))
    ds.class_names = ["LGG", "HGG"]  # the folder has no labels; the report needs the model's classes
    predictor = Predictor.load(_checkpoint(tmp_path / "run", ds, "cnn3d", ["FLAIR"], image_size=32, depth=8),
                               device="cpu")
    inputs = build_report_inputs(predictor, ds.cases[0], VolumeCache().get, dataset=ds)
    assert list(inputs.modalities) == ["FLAIR", "T1w", "T1wCE", "T2w"] and inputs.segmentation is not None
    pages = pdf_pages(write_case_report(inputs, tmp_path / "r.pdf"))
    text = "\n".join(pages)
    assert len(pages) <= 6 and all("Research use only" in p for p in pages)
    assert "Segmentation" in text and "_seg.nii.gz" in text and "peritumoural oedema" in text
    for m in ("FLAIR", "T1wCE", "T2w"):
        assert f"{m} with Grad-CAM" in text
