"""Training-time augmentation (random flips, rotations, intensity jitter) and worker seeding.
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
    for t in steps:
        if hasattr(t, "set_random_state"):
            t.set_random_state(seed)
    return _Compose(steps)


class _Compose:
    """Apply transforms in order (picklable for DataLoader workers)."""

    def __init__(self, steps) -> None:
        self.steps = steps

    def __call__(self, x):
        import torch

        for t in self.steps:
            x = t(x)
        return torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x.as_tensor() if hasattr(x, "as_tensor") else x


def reseed_worker(worker_id: int) -> None:
    """``DataLoader`` ``worker_init_fn``: MONAI's random transforms keep their own NumPy state,
    which every worker would otherwise copy from the parent and repeat (the same "random"
    augmentation in every worker); each worker's transforms are re-seeded from the worker's own
    seed (what ``monai.data.utils.worker_init_fn`` does for MONAI datasets). torchvision's v2
    transforms draw from torch's generator, which PyTorch already seeds per worker."""
    import torch

    info = torch.utils.data.get_worker_info()
    augment = getattr(getattr(info, "dataset", None), "augment", None)
    for t in getattr(augment, "steps", ()):
        if hasattr(t, "set_random_state"):
            t.set_random_state(seed=info.seed % (2**32))
