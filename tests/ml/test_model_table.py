"""Every model on phantoms whose label is visible: it separates held-out cases and its Grad-CAM
points at the lesion (MONAI-style table: one test body, a row per model)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mriviewer.cache.memory import VolumeCache
from mriviewer.data.cases import ModalitySource
from mriviewer.data.discover import discover
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.engine import run_training
from mriviewer.ml.predict import Predictor

# (model, epochs, lr, image size, batch, augmentation, Grad-CAM checked): small enough for CI on
# two CPU cores. Grad-CAM reads the layer Predictor.cam_layer picks for these sizes (≥ 7 cells a
# side, or cells of ≤ 4 samples on the 16-slice axis): ResNet-18 layer3 (8×8), EfficientNet-B0
# features.3 (8×8), cnn3d features.1 (4×8×8), the video networks layer2 (8×8×8; MC3-18 16×8×8).
# R3D-18 uses lr 3e-4: at 1e-3 its validation AUC falls to 0.5 after the first epoch.
# R(2+1)D-18 trains with the left-right flip its grading presets use (p 0.5 here) for 8 epochs;
# its localisation depends on the seed and the setting (held-out lesion cases whose layer2 peak is
# in the lesion, seeds in brackets). With this row's setting: 6/6, 4/6, 0/6, 6/6 (seeds 0-3), so
# 3 of 4 seeds pass the "more than half" bar. Without the flip: 0/6 at 5 epochs (0, 1), at 64 px
# and at lr 3e-4 (0); 4/6 at 8 and 12 epochs (0) but 0/6 at 8 (1, 2) and 12 (1); the seed-0,
# 5-epoch map peaks on the right scalp, as bright as the lesion, while MONAI occlusion
# sensitivity on that model peaks in the lesion in 6/6 (the network uses the lesion; the
# gradient-averaged map does not show it). 80 phantoms with the flip, 5 epochs: 3/12, 1/12,
# 0/12 (0-2). Empty maps (all evidence for the class is lowered evidence against it, which
# Grad-CAM's ReLU drops) occurred for seed 2 and others; GradCamResult.empty says so in the GUI,
# reports and cam-check. Seed 0 is the table's seed for every model.
TABLE = [
    ("resnet18-2d", 6, 1e-3, 128, 16, {}, True),
    ("efficientnet-b0-2d", 8, 1e-3, 64, 8, {}, True),
    ("cnn3d", 8, 1e-3, 32, 4, {}, True),
    ("r3d-18", 5, 3e-4, 32, 4, {}, True),
    ("mc3-18", 5, 1e-3, 32, 4, {}, True),
    ("r2plus1d-18", 8, 1e-3, 32, 4, {"flip_lr": 0.5}, True),
]


@pytest.mark.parametrize("model,epochs,lr,size,batch,augment,localises", TABLE)
def test_model_learns_visible_label_and_cam_points_at_lesion(model, epochs, lr, size, batch, augment, localises,
                                                            phantom_dir, tmp_path):
    ds = discover(phantom_dir)
    cfg = TrainConfig(model=model, modalities=["FLAIR"], epochs=epochs, lr=lr, image_size=size, depth=16,
                      slices_per_case=3, slice_range=[0.4, 0.6], batch_size=batch, pretrained="none",
                      device="cpu", augment=augment, split=[0.5, 0.2, 0.3], seed=0)
    result = run_training(cfg, ds, tmp_path / model, loader=VolumeCache().get)
    test = result.metrics["test"]
    assert test["n_cases"] == 12
    assert test["auc"] > 0.9, (model, test["auc"], [h["val_auc"] for h in result.history])

    pred = Predictor.load(result.checkpoint, device="cpu")
    cache = VolumeCache()
    hits, gain = [], []
    for cid in result.metrics["split"]["test"]:
        case = ds.case(cid)
        if case.label != 1:
            continue
        result_cam = pred.gradcam(case, cache.get, class_index=1)
        cam = result_cam.cam
        assert cam.shape == result_cam.reference.shape and 0 <= cam.min() and cam.max() <= 1
        lesion = cache.get(ModalitySource("SEG", case.segmentation, "nifti")).data > 0
        near = ndimage.binary_dilation(lesion, iterations=2)  # a coarse map may peak at the edge
        hits.append(bool(near[np.unravel_index(np.argmax(cam), cam.shape)]))
        head = cam > 0
        # Share of the map's energy near the lesion against a map uniform over the same support.
        gain.append((cam[near].sum() / max(cam.sum(), 1e-12)) / max((near & head).sum() / max(head.sum(), 1), 1e-12))
    if localises:  # "most": the peak is near the lesion in more than half the held-out lesion cases
        assert sum(hits) > len(hits) / 2, (model, hits, np.round(gain, 2))
