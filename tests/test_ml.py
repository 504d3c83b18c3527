"""Models, split, metrics, training engine and Grad-CAM on tiny generated data (CPU)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mriviewer.cache import VolumeCache
from mriviewer.datasets import Case, discover
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.data import Preprocessor, patient_split
from mriviewer.ml.engine import EpochEvent, ProgressEvent, Trainer, run_training
from mriviewer.ml.metrics import auc, bootstrap_auc_ci
from mriviewer.ml.models import build_model
from mriviewer.ml.predict import Predictor


@pytest.mark.parametrize(
    "name,channels,classes,shape",
    [("resnet18-2d", 1, 2, (2, 1, 32, 32)), ("resnet18-2d", 4, 44, (2, 4, 32, 32)),
     ("r3d-18", 1, 3, (1, 1, 8, 32, 32)), ("r3d-18", 4, 2, (1, 4, 8, 32, 32))],
)
def test_models_take_modalities_as_channels(name, channels, classes, shape):
    model, msg = build_model(name, channels, classes, pretrained="none")
    assert "random weights" in msg
    assert model(torch.zeros(shape)).shape == (shape[0], classes)


def test_pretrained_from_file_adapts_first_conv(tmp_path):
    from torchvision.models import resnet18

    ref = resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    model, msg = build_model("resnet18-2d", 2, 2, pretrained=str(tmp_path / "w.pth"))
    assert "loaded from" in msg
    torch.testing.assert_close(model.layer1[0].conv1.weight, ref.layer1[0].conv1.weight)
    expected = ref.conv1.weight.mean(dim=1, keepdim=True).repeat(1, 2, 1, 1) * 1.5
    torch.testing.assert_close(model.conv1.weight, expected)


def test_missing_hub_weights_says_random(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    _, msg = build_model("r3d-18", 1, 2, pretrained="auto")
    assert "No pretrained weights" in msg and "random weights" in msg


def test_patient_split_is_disjoint_and_stratified():
    cases = [Case(f"{i:03d}", label=i % 2) for i in range(20)]
    train, val = patient_split(cases, 0.25, seed=3)
    assert not {c.case_id for c in train} & {c.case_id for c in val}
    assert len(train) + len(val) == 20 and len(val) == 5
    assert {c.label for c in val} == {0, 1}
    assert patient_split(cases, 0.25, seed=3)[1] == val


def test_auc_and_bootstrap_ci():
    labels = np.array([0, 0, 1, 1, 0, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9], [0.4, 0.6], [0.6, 0.4]])
    assert auc(labels, probs) == pytest.approx(8 / 9)  # 8 of 9 positive-negative pairs ranked right
    lo, hi = bootstrap_auc_ci(labels, probs, n_boot=200)
    assert 0 <= lo <= 8 / 9 <= hi <= 1
    assert math.isnan(auc(np.array([1, 1]), probs[:2]))
    # Multiclass macro one-vs-rest ignores classes absent from the labels.
    p3 = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1]])
    assert auc(np.array([0, 1, 0]), p3) == pytest.approx(1.0)


def test_preprocessor_grid(demo_dir):
    ds = discover(demo_dir)
    cache = VolumeCache()
    cfg = TrainConfig(model="r3d-18", modalities=["FLAIR", "T1wCE"], image_size=32, depth=8)
    case = next(c for c in ds.cases if "T1wCE" not in c.modalities)
    ci = Preprocessor(cfg, cache.get).case_input(case)
    assert ci.array.shape == (2, 8, 32, 32)
    assert ci.missing == ["T1wCE"] and ci.array[1].max() == 0
    assert 0 <= ci.array.min() and ci.array.max() <= 1


@pytest.mark.parametrize("model", ["resnet18-2d", "r3d-18"])
def test_engine_trains_saves_and_predicts(model, demo_dir, tmp_path):
    ds = discover(demo_dir)
    cfg = TrainConfig(model=model, modalities=["FLAIR"], epochs=2, image_size=32, depth=8,
                      slices_per_case=3, batch_size=8, pretrained="none", device="cpu")
    events = []
    result = run_training(cfg, ds, tmp_path / "run", callbacks=[events.append], loader=VolumeCache().get)
    epochs = [e.record for e in events if isinstance(e, EpochEvent)]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in epochs)
    assert any(isinstance(e, ProgressEvent) and e.stage == "train" for e in events)
    assert result.checkpoint == tmp_path / "run" / "best.pt" and result.checkpoint.is_file()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2 and metrics["best"]["epoch"] in (1, 2)
    assert set(metrics["split"]["train"]).isdisjoint(metrics["split"]["val"])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"] == model

    pred = Predictor.load(result.checkpoint, device="cpu")
    cache = VolumeCache()
    # The saved model reproduces the validation predictions of its epoch.
    val = metrics["best"]["val_predictions"]
    for case_id, probs in zip(val["case_ids"], val["probs"], strict=True):
        np.testing.assert_allclose(pred.predict(ds.case(case_id), cache.get).probs, probs, atol=2e-2)
    p = pred.predict(ds.cases[0], cache.get)
    assert p.probs.shape == (2,) and p.probs.sum() == pytest.approx(1, abs=1e-5)
    cam = pred.gradcam(ds.cases[0], cache.get)
    assert cam.cam.shape == cam.reference.shape
    assert cam.cam.min() >= 0 and cam.cam.max() <= 1


def test_stop_ends_within_a_batch_and_keeps_best(demo_dir, tmp_path):
    ds = discover(demo_dir)
    cfg = TrainConfig(model="resnet18-2d", modalities=["FLAIR"], epochs=50, image_size=32,
                      slices_per_case=2, batch_size=4, pretrained="none", device="cpu")
    trainer = Trainer(cfg, ds, tmp_path / "run", loader=VolumeCache().get)
    gen = trainer.run()
    batches_after_stop = 0
    epochs_done = 0
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            result = done.value
            break
        if isinstance(ev, EpochEvent):
            epochs_done += 1
            if epochs_done == 1:
                continue
        if isinstance(ev, ProgressEvent) and ev.stage == "train" and epochs_done >= 1:
            if trainer.stopping:
                batches_after_stop += 1
            else:
                trainer.stop()
    assert result.stopped and batches_after_stop == 0
    assert result.checkpoint is not None and result.checkpoint.is_file()
    assert len(result.history) == 1


def test_training_refuses_unlabelled_dataset(tmp_path):
    import nibabel as nib

    from mriviewer.errors import DatasetError

    d = tmp_path / "c1"
    d.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(d / "c1_flair.nii.gz"))
    with pytest.raises(DatasetError, match="no labels"):
        next(Trainer(TrainConfig(), discover(tmp_path), tmp_path / "run").run())


def test_model_selection_breaks_auc_ties_by_loss():
    from mriviewer.ml.engine import _improves

    best = {"val_auc": 1.0, "val_loss": 0.7}
    assert _improves(1.0, 0.1, best)  # same AUC, lower loss: a better model
    assert not _improves(1.0, 0.9, best)
    assert not _improves(0.9, 0.01, best)
    assert _improves(0.6, 5.0, {"val_auc": math.nan, "val_loss": math.inf})
    assert not _improves(math.nan, 0.1, {"val_auc": 0.6, "val_loss": 1.0})


def test_channels_are_aligned_across_acquisition_planes(demo_dir):
    """Demo case 1: FLAIR coronal, T1w sagittal, T2w axial. On the network grid the marker
    (fixed in world space, brightest in every modality) is at the same voxel in every channel."""
    ds = discover(demo_dir)
    case = ds.cases[1]
    mods = ["FLAIR", "T1w", "T2w"]
    cfg = TrainConfig(model="r3d-18", modalities=mods, image_size=32, depth=16)
    pre = Preprocessor(cfg, VolumeCache().get)
    grids = pre._on_one_grid(case, mods)
    assert len({g.shape for g in grids.values()}) == 1
    peaks = [np.array(np.unravel_index(np.argmax(g.data), g.shape)) for g in grids.values()]
    for p in peaks[1:]:
        assert np.abs(p - peaks[0]).max() <= 1, peaks
    assert pre.case_input(case).array.shape == (3, 16, 32, 32)
