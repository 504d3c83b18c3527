"""Config, presets, splits, checkpoint format and the training engine on generated data (CPU)."""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from mriviewer.cache.memory import VolumeCache
from mriviewer.core.errors import CheckpointError, ConfigError, DatasetError
from mriviewer.data.discover import discover
from mriviewer.ml.config import TrainConfig, parse_set_values
from mriviewer.ml.engine import Trainer, run_training
from mriviewer.ml.events import EpochEvent, EpochRecord, FoldEvent, ProgressEvent
from mriviewer.ml.predict import Predictor
from mriviewer.ml.preprocess import Preprocessor
from mriviewer.ml.presets import get_preset, list_presets
from mriviewer.ml.splits import make_splits

TINY_2D = dict(image_size=32, slices_per_case=3, batch_size=8, pretrained="none", device="cpu", augment={})
TINY_3D = dict(image_size=32, depth=8, batch_size=4, pretrained="none", device="cpu", augment={})


# ---------------------------------------------------------------------------- config and presets
@pytest.mark.parametrize("bad,match", [
    ({"image_size": 100000}, "image_size"), ({"image_size": "abc"}, "image_size must be int"),
    ({"model": "vgg"}, "unknown value"), ({"split": [0.5, 0.5, 0.1]}, "split"), ({"lr": -1.0}, "lr"),
    ({"augment": {"twist": 1}}, "augment"), ({"folds": 1}, "folds"), ({"slice_range": [0.6, 0.4]}, "slice_range"),
    ({"epochs": True}, "epochs must be int"), ({"modalities": [1]}, "modalities"),
])
def test_config_refuses_wrong_types_and_absurd_values(bad, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict(bad)


def test_set_values_are_parsed_applied_and_recorded():
    values = parse_set_values(["lr=0.01", "split=[0.8,0.1,0.1]", "modalities=FLAIR,T2w", "augment.flip_lr=0.25",
                               "amp=bf16"])
    cfg = get_preset("mgmt-resnet18-2d").config(values)
    assert cfg.lr == 0.01 and cfg.split == [0.8, 0.1, 0.1] and cfg.modalities == ["FLAIR", "T2w"]
    assert cfg.augment["flip_lr"] == 0.25 and cfg.amp == "bf16"
    assert cfg.overrides == values and cfg.preset == "mgmt-resnet18-2d" and cfg.preset_version == 1
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="unknown key"):
        cfg.with_overrides({"learning_rate": 1})


def test_every_paper_has_a_valid_preset():
    names = {p.name for p in list_presets()}
    assert names == {"mgmt-resnet18-2d", "mgmt-efficientnet-b0", "mgmt-cnn3d-flair", "grading-r2plus1d-18",
                     "grading-mc3-18", "grading-r3d-18", "tumour-type-resnet18-2d"}
    r = get_preset("mgmt-resnet18-2d").config()
    assert (r.optimizer, r.lr, r.momentum, r.scheduler, r.step_size, r.gamma, r.epochs, r.monitor) == \
        ("sgd", 0.001, 0.9, "step", 7, 0.1, 30, "val_accuracy")
    assert any("ours" in n for n in get_preset("mgmt-resnet18-2d").notes)
    e = get_preset("mgmt-efficientnet-b0").config()
    assert e.per_modality and e.freeze == "backbone" and e.finetune_freeze == "batchnorm" and e.loss == "bce"
    assert e.head == "mlp32" and e.slice_range == [0.4, 0.6] and e.image_size == 300 and e.total_epochs == 30
    c = get_preset("mgmt-cnn3d-flair").config()
    assert (c.model, c.depth, c.depth_mode, c.batch_size, c.split, c.monitor) == \
        ("cnn3d", 32, "pad_crop", 8, [0.8, 0.1, 0.1], "val_auc")
    for m in ("r2plus1d-18", "mc3-18", "r3d-18"):
        g = get_preset(f"grading-{m}").config()
        assert (g.model, g.stem, g.dropout, g.loss, g.lr, g.weight_decay, g.batch_size, g.folds, g.spacing_mm) == \
            (m, "random", 0.3, "weighted_ce", 1e-5, 1e-3, 1, 3, 2.0)
    t = get_preset("tumour-type-resnet18-2d").config()
    assert (t.color, t.optimizer, t.lr, t.split) == ("rgb", "sgd", 0.01, [0.7, 0.15, 0.15])


# ---------------------------------------------------------------------------- splits
def test_holdout_roles_are_disjoint_grouped_and_stratified():
    labels = [i % 2 for i in range(40)]
    (s,) = make_splits(labels, [f"p{i}" for i in range(40)], split=(0.7, 0.15, 0.15), seed=3)
    assert (len(s.train), len(s.val), len(s.test)) == (28, 6, 6)
    assert set(s.train) | set(s.val) | set(s.test) == set(range(40))
    assert not set(s.train) & set(s.val) and not set(s.train) & set(s.test) and not set(s.val) & set(s.test)
    assert {labels[i] for i in s.test} == {0, 1} and {labels[i] for i in s.val} == {0, 1} and not s.warnings
    assert make_splits(labels, [f"p{i}" for i in range(40)], seed=3)[0].test == s.test


def test_several_cases_of_one_patient_stay_in_one_role():
    labels = [i % 2 for i in range(60)]
    groups = [f"p{i // 3}" for i in range(60)]  # three images per patient
    for s in make_splits(labels, groups, folds=4, seed=0):
        roles = [set(np.asarray(groups)[r]) for r in (s.train, s.val, s.test)]
        assert not roles[0] & roles[1] and not roles[0] & roles[2] and not roles[1] & roles[2]


def test_kfold_tests_every_case_once_and_says_when_it_cannot_stratify():
    labels = [0] * 10 + [1] * 2
    splits = make_splits(labels, [str(i) for i in range(12)], folds=3, seed=0)
    tested = sorted(i for s in splits for i in s.test)
    assert tested == list(range(12))
    assert any("stratification" in w for s in splits for w in s.warnings)
    for s in splits:  # every class stays in training when it can
        assert {labels[i] for i in s.train} == {0, 1}
    with pytest.raises(DatasetError, match="at least"):
        make_splits([0, 1], ["a", "b"])


# ---------------------------------------------------------------------------- checkpoint
def _checkpoint(tmp_path, **changes):
    from mriviewer.ml.checkpoint import new_checkpoint, save_checkpoint
    from mriviewer.ml.models.build import build_model

    cfg = TrainConfig(model="resnet18-2d", modalities=["FLAIR"], pretrained="none")
    model, _ = build_model("resnet18-2d", 1, 2, "none")
    ck = new_checkpoint(model, cfg, ["a", "b"], 2)
    ck.update(changes)
    return save_checkpoint(tmp_path / "best.pt", ck)


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    from mriviewer.ml.checkpoint import load_checkpoint

    path = _checkpoint(tmp_path)
    ck = load_checkpoint(path)
    assert ck["config"].model == "resnet18-2d" and ck["class_names"] == ["a", "b"]
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary file left
    for bad, match in [({"config": {**ck["config"].to_dict(), "image_size": 100000}}, "image_size"),
                       ({"config": {**ck["config"].to_dict(), "image_size": "abc"}}, "image_size"),
                       ({"config": None}, "no config"), ({"format_version": 99}, "newer"),
                       ({"class_names": list(range(5))}, "class list"), ({"format": "x"}, "not an mriviewer")]:
        sub = tmp_path / f"bad{len(list(tmp_path.iterdir()))}"
        sub.mkdir()
        with pytest.raises(CheckpointError, match=match):
            Predictor.load(_checkpoint(sub, **bad))
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")


def test_version_1_checkpoint_is_migrated(tmp_path):
    from mriviewer.ml.checkpoint import load_checkpoint

    old_cfg = {"model": "resnet18-2d", "modalities": ["FLAIR"], "amp": True, "val_fraction": 0.25}
    path = _checkpoint(tmp_path, format_version=1, config=old_cfg, metrics={"val_auc": 0.8},
                       split={"train": ["1"], "val": ["2"]})
    ck = load_checkpoint(path)
    assert ck["metrics"]["validation"]["val_auc"] == 0.8 and ck["metrics"]["test"] is None
    assert ck["split"]["validation"] == ["2"] and ck["config"].amp == "auto"


# ---------------------------------------------------------------------------- engine
def test_holdout_run_reports_test_metrics_never_seen_before(phantom_dir, tmp_path):
    ds = discover(phantom_dir)
    cfg = TrainConfig(model="resnet18-2d", modalities=["FLAIR"], epochs=2, split=[0.6, 0.2, 0.2], **TINY_2D)
    events = []
    result = run_training(cfg, ds, tmp_path / "run", callbacks=[events.append], loader=VolumeCache().get)
    epochs = [e.record for e in events if isinstance(e, EpochEvent)]
    assert [r.epoch for r in epochs] == [1, 2] and all(math.isfinite(r.train_loss) for r in epochs)
    assert any(isinstance(e, ProgressEvent) and e.stage == "train" and e.epochs == 2 for e in events)
    assert [e.name for e in events if isinstance(e, FoldEvent)] == ["holdout"]
    assert all(e.fold_index is None for e in events if isinstance(e, (EpochEvent, ProgressEvent, FoldEvent)))
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [list(r) for r in m["epochs"]] == [[f.name for f in dataclasses.fields(EpochRecord)]] * 2
    assert [r["epoch"] for r in m["epochs"]] == [1, 2]
    test = m["test"]
    for key in ("auc", "auc_ci", "accuracy", "accuracy_ci", "balanced_accuracy", "f1_macro", "f1_macro_ci",
                "f1_weighted", "per_class", "confusion_matrix", "roc", "warnings"):
        assert key in test
    split = m["split"]
    assert not set(split["train"]) & set(split["validation"]) and not set(split["test"]) & \
        (set(split["train"]) | set(split["validation"]))
    assert test["n_cases"] == len(split["test"]) == 8
    assert m["validation"]["epoch"] in (1, 2) and m["validation"]["monitor"] == "val_auc"
    # The checkpoint carries the test metrics and the roles; the predictor reproduces the test predictions.
    pred = Predictor.load(result.checkpoint, device="cpu")
    assert pred.test_metrics["auc"] == test["auc"]
    assert pred.role_of(split["test"][0]) == "test" and pred.role_of("nobody") == "external"
    alone = discover(phantom_dir / split["train"][0]).cases[0]  # the same files under another id
    alone.case_id = "renamed"
    assert pred.role_of(alone) == "train"
    rows = list(csv.DictReader(open(tmp_path / "run" / "predictions.csv")))
    cache = VolumeCache()
    for row in rows[:3]:
        p = pred.predict(ds.case(row["case_id"]), cache.get)
        assert p.probs[1] == pytest.approx(float(row["p_label=1"]), abs=2e-2)
    # One preprocessing for a report's prediction and Grad-CAM gives what the two calls give.
    case = ds.case(rows[0]["case_id"])
    both, cam = pred.predict_with_gradcam(case, cache.get)
    assert np.allclose(both.probs, pred.predict(case, cache.get).probs, atol=1e-6)
    assert np.allclose(cam.cam, pred.gradcam(case, cache.get).cam, atol=1e-5) and cam.class_index == both.predicted


def test_cross_validation_pools_out_of_fold_predictions(phantom_dir, tmp_path):
    ds = discover(phantom_dir)
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], epochs=1, folds=3, loss="bce", **TINY_3D)
    events = []
    result = run_training(cfg, ds, tmp_path / "cv", callbacks=[events.append], loader=VolumeCache().get)
    m = result.metrics
    # Every event of a fold carries the fold's number, typed (no parsing of the "fold k" tags).
    assert [e.fold_index for e in events if isinstance(e, FoldEvent)] == [1, 2, 3]
    assert [e.fold_index for e in events if isinstance(e, EpochEvent)] == [1, 2, 3]
    train = [e for e in events if isinstance(e, ProgressEvent) and e.stage == "train"]
    assert train and all(e.fold == f"fold {e.fold_index}" for e in train)
    assert [f["name"] for f in m["folds"]] == ["fold 1", "fold 2", "fold 3"]
    tested = [c for f in m["folds"] for c in f["split"]["test"]]
    assert sorted(tested) == sorted(c.case_id for c in ds.labelled()) and m["test"]["n_cases"] == 40
    assert m["summary"]["auc"]["n"] == 3 and "sd" in m["summary"]["auc"]
    assert m["chosen_fold"] in ("fold 1", "fold 2", "fold 3")
    for k in (1, 2, 3):
        assert (tmp_path / "cv" / f"fold-{k}" / "best.pt").is_file()
    assert (tmp_path / "cv" / "best.pt").is_file()
    # The checkpoint manager offers the run's chosen model only, with its own fold's test AUC
    # and the pooled figure apart (the pooled one includes cases this model trained on).
    from mriviewer.ml.checkpoint import find_checkpoints

    (tmp_path / "truncated").mkdir()  # a damaged file is listed with its reason, never raised
    data = (tmp_path / "cv" / "best.pt").read_bytes()
    (tmp_path / "truncated" / "best.pt").write_bytes(data[: len(data) // 2])
    damaged = [r for r in find_checkpoints(tmp_path) if "error" in r]
    assert len(damaged) == 1 and "cannot read checkpoint" in damaged[0]["error"]
    (tmp_path / "truncated" / "best.pt").unlink()
    (listed,) = find_checkpoints(tmp_path)
    chosen = next(f for f in m["folds"] if f["name"] == m["chosen_fold"])
    assert listed["path"] == tmp_path / "cv" / "best.pt" and listed["n_test"] == chosen["test"]["n_cases"] < 40
    assert listed["cv_auc"] == pytest.approx(m["test"]["auc"])


def test_random_labels_give_a_chance_warning(phantom_dir, tmp_path):
    """Labels shuffled at random: the test AUC interval contains 0.5 and the run says so."""
    ds = discover(phantom_dir)
    rng = np.random.default_rng(7)
    for c, lab in zip(ds.cases, rng.permutation([c.label for c in ds.cases]), strict=True):
        c.label = int(lab)
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], epochs=2, split=[0.4, 0.2, 0.4], **TINY_3D)
    result = run_training(cfg, ds, tmp_path / "rand", loader=VolumeCache().get)
    lo, hi = result.metrics["test"]["auc_ci"]
    assert lo <= 0.5 <= hi
    assert any("not distinguishable from chance" in w for w in result.metrics["warnings"])
    assert any("not distinguishable from chance" in m for m in result.messages)
    # The same warnings as typed caveats, in metrics.json too: the test set's own are "test-set".
    kinds = {c["message"]: c["kind"] for c in result.metrics["caveats"]}
    assert any(k == "test-set" and "chance" in m for m, k in kinds.items())
    on_disk = json.loads((tmp_path / "rand" / "metrics.json").read_text())
    assert on_disk["caveats"] == result.metrics["caveats"]


def test_freeze_then_fine_tune_phases_and_early_stopping(phantom_dir, tmp_path):
    ds = discover(phantom_dir)
    cfg = TrainConfig(model="resnet18-2d", modalities=["FLAIR"], epochs=2, freeze="backbone", finetune_epochs=1,
                      finetune_lr=1e-4, finetune_batch_size=4, loss="bce", head="mlp32", dropout=0.4,
                      scheduler="plateau", monitor="val_loss", **TINY_2D)
    result = run_training(cfg, ds, tmp_path / "ft", loader=VolumeCache().get)
    phases = [r["phase"] for r in json.loads((tmp_path / "ft" / "metrics.json").read_text())["epochs"]]
    assert phases == ["train (backbone frozen)"] * 2 + ["fine-tune"]
    assert any("Phase 2 of 2: fine-tune" in m for m in result.messages)
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], epochs=30, lr=1e-9, early_stopping=2, **TINY_3D)
    result = run_training(cfg, ds, tmp_path / "es", loader=VolumeCache().get)
    assert len(result.history) < 30 and any("Early stopping" in m for m in result.messages)


def test_per_modality_runs_one_model_each(demo_dir, tmp_path):
    ds = discover(demo_dir)
    cfg = TrainConfig(model="efficientnet-b0-2d", modalities=["FLAIR", "T2w"], per_modality=True, epochs=1,
                      head="mlp32", loss="bce", **TINY_2D)
    result = run_training(cfg, ds, tmp_path / "pm", loader=VolumeCache().get)
    per = result.metrics["per_modality"]
    assert set(per) == {"FLAIR", "T2w"} and all(per[m]["test"]["n_cases"] >= 1 for m in per)
    assert (tmp_path / "pm" / "FLAIR" / "best.pt").is_file() and (tmp_path / "pm" / "T2w" / "metrics.json").is_file()
    assert result.metrics["chosen_on_validation"] in per


def test_stop_ends_within_a_batch_and_keeps_best(phantom_dir, tmp_path):
    ds = discover(phantom_dir)
    cfg = TrainConfig(model="resnet18-2d", modalities=["FLAIR"], epochs=50, **{**TINY_2D, "batch_size": 4})
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
            continue
        if isinstance(ev, ProgressEvent) and ev.stage == "train" and epochs_done >= 1:
            if trainer.stopping:
                batches_after_stop += 1
            else:
                trainer.stop()
    assert result.stopped and batches_after_stop == 0
    assert result.checkpoint is not None and result.checkpoint.is_file()
    assert len(result.history) == 1 and result.metrics["stopped"] is True


def test_training_refuses_unlabelled_dataset(tmp_path):
    import nibabel as nib

    d = tmp_path / "c1"
    d.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(d / "c1_flair.nii.gz"))
    with pytest.raises(DatasetError, match="no labels"):
        next(Trainer(TrainConfig(), discover(tmp_path), tmp_path / "run").run())


def test_model_selection_breaks_ties_by_loss():
    from mriviewer.ml.hooks import _improves

    best = {"val_auc": 1.0, "val_loss": 0.7}
    assert _improves({"val_auc": 1.0, "val_loss": 0.1}, best, "val_auc")
    assert not _improves({"val_auc": 1.0, "val_loss": 0.9}, best, "val_auc")
    assert not _improves({"val_auc": 0.9, "val_loss": 0.01}, best, "val_auc")
    assert _improves({"val_auc": 0.6, "val_loss": 5.0}, {"val_auc": math.nan, "val_loss": math.inf}, "val_auc")
    assert _improves({"val_loss": 0.5, "val_auc": 0.1}, {"val_loss": 0.6, "val_auc": 0.9}, "val_loss")


def test_trainer_leaves_the_callers_config_unchanged(phantom_dir, tmp_path):
    """The run fills in ``modalities`` (empty: the dataset's first) on its own copy."""
    cfg = TrainConfig(model="cnn3d", modalities=[], epochs=1, loss="bce", **TINY_3D)
    before = copy.deepcopy(cfg)
    trainer = Trainer(cfg, discover(phantom_dir), tmp_path / "run", loader=VolumeCache().get)
    gen = trainer.run()
    while True:
        try:
            next(gen)
        except StopIteration as done:
            result = done.value
            break
    assert result.checkpoint is not None and trainer.config.modalities == ["FLAIR"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["modalities"] == ["FLAIR"]
    assert cfg == before and cfg.modalities == [] and trainer.config is not cfg


def test_preprocessor_grid_and_missing_channel(demo_dir):
    ds = discover(demo_dir)
    cfg = TrainConfig(model="r3d-18", modalities=["FLAIR", "T1wCE"], image_size=32, depth=8)
    case = next(c for c in ds.cases if "T1wCE" not in c.modalities)
    ci = Preprocessor(cfg, VolumeCache().get).case_input(case)
    assert ci.array.shape == (2, 8, 32, 32)
    assert ci.missing == ["T1wCE"] and ci.array[1].max() == 0
    assert 0 <= ci.array.min() and ci.array.max() <= 1


def test_isotropic_resampling_keeps_millimetres(phantom_dir):
    """spacing_mm: a 2 mm phantom at 4 mm is half as many voxels, centred in the padded grid."""
    ds = discover(phantom_dir)
    cfg = TrainConfig(model="r3d-18", modalities=["FLAIR"], image_size=32, depth=16, spacing_mm=4.0)
    ci = Preprocessor(cfg, VolumeCache().get).case_input(ds.cases[0])
    assert ci.array.shape == (1, 16, 32, 32) and ci.meta["grid_mid"] == [12, 16, 16]
    rows = np.flatnonzero(ci.array[0].max(axis=(0, 2)) > 0.05)
    assert 6 <= rows[0] and rows[-1] <= 25  # 16 voxels of head in the middle of 32


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


def test_bf16_autocast_on_cpu_when_asked(phantom_dir, tmp_path):
    ds = discover(phantom_dir)
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], epochs=1, amp="bf16", **TINY_3D)
    result = run_training(cfg, ds, tmp_path / "bf16", loader=VolumeCache().get)
    assert any("bf16 autocast" in m for m in result.messages)
    assert math.isfinite(result.history[0]["train_loss"])
    assert torch.load(result.checkpoint, weights_only=True)["config"]["amp"] == "bf16"


def test_brain_extraction_without_deepbet_is_a_clear_error(phantom_dir, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_deepbet(name, *a, **k):
        if name.startswith("deepbet"):
            raise ImportError("no deepbet")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_deepbet)
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], image_size=32, depth=8, brain_extraction="deepbet")
    with pytest.raises(ConfigError, match="deepbet"):
        Preprocessor(cfg, VolumeCache().get).case_input(discover(phantom_dir).cases[0])


def test_deepbet_strips_an_unstripped_ixi_head():
    pytest.importorskip("deepbet", reason="optional extra mriviewer[bet] not installed")
    from tests.conftest import real_data

    ds = discover(real_data("ixi-t1-2mm/t1"))
    cfg = TrainConfig(model="cnn3d", modalities=["T1w"], image_size=48, depth=32, brain_extraction="deepbet")
    pre = Preprocessor(cfg, VolumeCache().get)
    stripped = pre.case_input(ds.cases[0]).array
    whole = Preprocessor(TrainConfig(model="cnn3d", modalities=["T1w"], image_size=48, depth=32),
                         VolumeCache().get).case_input(ds.cases[0]).array
    kept = (stripped > 0).mean() / (whole > 0).mean()
    assert 0.2 < kept < 0.8  # the brain is a part of the head, not all of it and not nothing


def test_num_threads_applies_to_the_run_only(phantom_dir, tmp_path):
    """A run's num_threads must not leak into the process (the GUI outlives runs; a leak also
    made later runs in one process train differently)."""
    before = torch.get_num_threads()
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], epochs=1, loss="bce", num_threads=1, **TINY_3D)
    run_training(cfg, discover(phantom_dir), tmp_path / "run", loader=VolumeCache().get)
    assert torch.get_num_threads() == before


def test_dataloader_workers_draw_different_monai_augmentations(phantom_dir):
    """MONAI's random transforms keep a NumPy state that workers would copy and repeat."""
    from torch.utils.data import DataLoader

    from mriviewer.ml.augment import make_augment, reseed_worker

    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], **{**TINY_3D, "augment": {"rotate_deg": 30}})
    augment = make_augment(cfg)

    class Same(torch.utils.data.Dataset):  # the same input at every index: any difference is the augmentation
        def __init__(self):
            self.augment = augment

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return self.augment(torch.arange(1 * 8 * 16 * 16, dtype=torch.float32).reshape(1, 8, 16, 16))

    out = list(DataLoader(Same(), batch_size=1, num_workers=2, worker_init_fn=reseed_worker))
    # Worker 0 gets items 0 and 2, worker 1 items 1 and 3: their first draws must differ.
    assert not torch.equal(out[0], out[1])


def test_starting_from_a_checkpoint_warns_when_its_training_cases_are_now_test(phantom_dir, tmp_path):
    ds = discover(phantom_dir)
    base = dict(model="cnn3d", modalities=["FLAIR"], epochs=1, loss="bce", split=[0.6, 0.2, 0.2], **TINY_3D)
    first = run_training(TrainConfig(**base, seed=0), ds, tmp_path / "a", loader=VolumeCache().get)
    again = run_training(TrainConfig(**{**base, "pretrained": str(first.checkpoint)}, seed=0), ds, tmp_path / "b",
                         loader=VolumeCache().get)
    assert not any("starts from" in w for w in again.metrics["warnings"])  # same seed and split: no leak
    resplit = run_training(TrainConfig(**{**base, "pretrained": str(first.checkpoint)}, seed=1), ds,
                           tmp_path / "c", loader=VolumeCache().get)
    assert any("training or validation cases of the checkpoint this run starts from" in w
               for w in resplit.metrics["warnings"])
    assert any(c["kind"] == "leak" for c in resplit.metrics["caveats"])


def _image_folder_with_copies(root):
    """Two classes of 14 smooth random images each; three images have a re-encoded copy in the
    same class (one of them twice), and one is filed under both classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = {}
    for cls in ("glioma", "meningioma"):
        (root / cls).mkdir(parents=True)
        for n in range(14):
            small = rng.uniform(0, 255, (8, 8)).astype(np.uint8)
            img = Image.fromarray(small).resize((64, 64), Image.BICUBIC)
            path = root / cls / f"{cls[:2]}_{n:02d}.png"
            img.save(path)
            paths[(cls, n)] = path
    for cls, n, copies in (("glioma", 0, 2), ("glioma", 1, 1), ("meningioma", 2, 1)):
        for c in range(copies):
            Image.open(paths[(cls, n)]).convert("L").save(root / cls / f"copy{c}_{n:02d}.jpg", quality=90)
    Image.open(paths[("glioma", 3)]).save(root / "meningioma" / "filed_twice.png")
    return root


def test_near_duplicates_are_found_grouped_and_never_straddle_roles(tmp_path):
    from mriviewer.ml.duplicates import merge_duplicate_groups, near_duplicate_pairs

    ds = discover(_image_folder_with_copies(tmp_path / "imgs"))
    cases = ds.cases
    pairs = near_duplicate_pairs(cases)
    named = {frozenset((cases[i].case_id, cases[j].case_id)) for i, j, _ in pairs}
    ids = {c.case_id for c in cases}
    gl0 = {i for i in ids if "gl_00" in i or "copy0_00" in i or "copy1_00" in i}
    assert len(gl0) == 3 and all(frozenset((a, b)) in named for a in gl0 for b in gl0 if a != b)
    assert len(pairs) == 3 + 1 + 1 + 1  # the triple, two copies, the image filed under two classes
    groups, clusters = merge_duplicate_groups([c.case_id for c in cases], pairs)
    assert sorted(map(len, clusters)) == [2, 2, 2, 3] and len(set(groups)) == len(cases) - 5

    cfg = TrainConfig(model="resnet18-2d", modalities=list(ds.modalities)[:1], epochs=1, image_size=32, batch_size=8,
                      pretrained="none", device="cpu", augment={}, split=[0.5, 0.25, 0.25], seed=0, num_workers=0)
    result = run_training(cfg, ds, tmp_path / "run", loader=VolumeCache().get)
    text = "\n".join(result.messages)
    assert "6 near-duplicate image pair(s)" in text and "join 9 images into 4 group(s)" in text
    assert "carry different labels" in text and "filed_twice" in text
    assert "fall in different roles" not in text
    role = {cid: r for r, members in result.metrics["split"].items() if r in ("train", "validation", "test")
            for cid in members}
    for members in clusters:
        assert len({role[cases[k].case_id] for k in members}) == 1
