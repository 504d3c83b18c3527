"""Every model on phantoms whose label is visible: it separates held-out cases and its Grad-CAM
points at the lesion (MONAI-style table: one test body, a row per model)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mriviewer.cache import VolumeCache
from mriviewer.datasets import ModalitySource, discover
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.engine import run_training
from mriviewer.ml.predict import Predictor

# (model, epochs, lr, image size, batch): small enough for CI on two CPU cores.
TABLE = [
    ("resnet18-2d", 6, 1e-3, 64, 16),
    ("efficientnet-b0-2d", 8, 3e-3, 64, 16),
    ("cnn3d", 8, 1e-3, 32, 4),
    ("r3d-18", 5, 1e-3, 32, 4),
    ("mc3-18", 5, 1e-3, 32, 4),
    ("r2plus1d-18", 5, 1e-3, 32, 4),
]


@pytest.mark.parametrize("model,epochs,lr,size,batch", TABLE)
def test_model_learns_visible_label_and_cam_points_at_lesion(model, epochs, lr, size, batch, phantom_dir, tmp_path):
    ds = discover(phantom_dir)
    cfg = TrainConfig(model=model, modalities=["FLAIR"], epochs=epochs, lr=lr, image_size=size, depth=16,
                      slices_per_case=3, slice_range=[0.4, 0.6], batch_size=batch, pretrained="none",
                      device="cpu", augment={}, split=[0.5, 0.2, 0.3], seed=0)
    result = run_training(cfg, ds, tmp_path / model, loader=VolumeCache().get)
    test = result.metrics["test"]
    assert test["n_cases"] == 12
    assert test["auc"] > 0.9, (model, test["auc"], [h["val_auc"] for h in result.history])

    pred = Predictor.load(result.checkpoint, device="cpu")
    cache = VolumeCache()
    hits = []
    for cid in result.metrics["split"]["test"]:
        case = ds.case(cid)
        if case.label != 1:
            continue
        cam = pred.gradcam(case, cache.get, class_index=1)
        lesion = cache.get(ModalitySource("SEG", case.segmentation, "nifti")).data > 0
        near = ndimage.binary_dilation(lesion, iterations=2)  # a coarse map may peak at the edge
        hits.append(bool(near[np.unravel_index(np.argmax(cam.cam), cam.cam.shape)]))
    assert sum(hits) > len(hits) / 2, (model, hits)
