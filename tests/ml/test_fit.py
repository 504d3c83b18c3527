"""The fit loop's parts: its stateful hooks (state_dict round trips), the typed epoch events and
their fold numbers, and seeded augmentation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mriviewer.ml.config import TrainConfig
from mriviewer.ml.events import EpochEvent, EpochRecord, FoldEvent, ProgressEvent

TINY_2D = dict(image_size=32, slices_per_case=3, batch_size=8, pretrained="none", device="cpu", augment={})
TINY_3D = dict(image_size=32, depth=8, batch_size=4, pretrained="none", device="cpu", augment={})


def test_fit_hooks_save_and_restore_their_state():
    """Best-epoch selection, early stopping and the LR schedule restore from ``state_dict()``."""
    from mriviewer.ml.hooks import BestEpoch, EarlyStopping, LRSchedule

    model = torch.nn.Linear(2, 1)
    sel = BestEpoch("val_auc", {"n_cases": 4})
    assert sel.update({"epoch": 1, "val_auc": 0.6, "val_loss": 0.7, "val_accuracy": 0.5}, model)
    assert not sel.update({"epoch": 2, "val_auc": 0.5, "val_loss": 0.1, "val_accuracy": 0.5}, model)
    again = BestEpoch("val_auc")
    again.load_state_dict(sel.state_dict())
    assert again.best == {"epoch": 1, "val_auc": 0.6, "val_loss": 0.7, "val_accuracy": 0.5, "monitor": "val_auc",
                          "n_cases": 4}
    assert all(torch.equal(again.weights[k], v) for k, v in model.state_dict().items())
    assert not again.improves({"val_auc": 0.55, "val_loss": 0.0})

    stop = EarlyStopping(2)
    assert not stop.update(False)
    resumed = EarlyStopping(2)
    resumed.load_state_dict(stop.state_dict())
    assert resumed.update(False) and not EarlyStopping(0).update(False)

    cfg = TrainConfig(scheduler="plateau", gamma=0.5, plateau_patience=0, monitor="val_auc")
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = LRSchedule(cfg, opt)
    for auc_value in (0.6, 0.5, 0.4):  # worse twice: the rate halves twice
        sched.step({"val_auc": auc_value})
    opt2 = torch.optim.SGD(model.parameters(), lr=opt.param_groups[0]["lr"])
    restored = LRSchedule(cfg, opt2)
    restored.load_state_dict(sched.state_dict())
    restored.step({"val_auc": 0.3})
    assert opt.param_groups[0]["lr"] == 0.25 and opt2.param_groups[0]["lr"] == 0.125
    assert LRSchedule(TrainConfig(scheduler="none"), opt).state_dict() == {}


def test_epoch_events_are_typed_and_carry_the_fold():
    values = {"epoch": 3, "phase": "train", "fold": "FLAIR fold 2", "lr": 1e-3, "train_loss": 0.5,
              "val_loss": 0.6, "val_auc": 0.7, "val_accuracy": 0.75, "seconds": 1.5, "is_best": True}
    ev = EpochEvent(dict(values))  # a dict is converted
    assert isinstance(ev.record, EpochRecord) and ev.record.as_dict() == values and ev.fold_index == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.record.epoch = 4
    assert EpochEvent(EpochRecord(**{**values, "fold": "holdout"})).fold_index is None
    assert ProgressEvent("train", 1, 1, 4, 0.5, "fold 3", 2).fold_index == 3
    assert ProgressEvent("prepare", 0, 1, 4, fold="FLAIR").fold_index is None
    assert FoldEvent("fold 2", 2, 3, {}).fold_index == 2 and FoldEvent("holdout", 1, 1, {}).fold_index is None


@pytest.mark.parametrize("model", ["resnet18-2d", "cnn3d"])
def test_augmentation_is_deterministic_per_seed(model):
    from mriviewer.ml.augment import make_augment

    tiny = TINY_3D if model == "cnn3d" else TINY_2D
    aug = {"flip_lr": 0.5, "rotate_deg": 20, "scale": [0.9, 1.1], "shift": 0.1, "brightness": [0.8, 1.2]}
    cfg = TrainConfig(model=model, modalities=["FLAIR"], **{**tiny, "augment": aug})
    shape = (1, 8, 32, 32) if model == "cnn3d" else (1, 32, 32)
    x = torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)

    def draws(seed):
        torch.manual_seed(0)  # torchvision's steps draw from torch's generator
        augment = make_augment(cfg, seed)
        return [augment(x) for _ in range(4)]

    a, b, c = draws(3), draws(3), draws(4)
    assert all(type(t) is torch.Tensor and t.shape == x.shape for t in a)  # plain tensors for collation
    assert all(torch.equal(s, t) for s, t in zip(a, b, strict=True))
    assert not all(torch.equal(s, t) for s, t in zip(a, c, strict=True))
    assert make_augment(TrainConfig(model=model, **{**tiny, "augment": {}})) is None
