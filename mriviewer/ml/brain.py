"""Optional brain extraction before training (skull stripping of unstripped inputs).

Paper 003 skull-stripped its healthy IXI volumes with FSL BET2 while the BraTS tumours came
stripped; training on stripped and unstripped heads side by side hands the model a shortcut.
``brain_extraction="deepbet"`` removes everything outside the brain with deepbet (Fisch et al.,
2024, "deepbet: Fast brain extraction of T1-weighted MRI using Convolutional Neural Networks"),
a maintained library whose weights ship inside its wheel, so it works offline. It is an optional
dependency (``pip install "mriviewer[bet]"``); the step is recorded in the run's config and is
part of the sample store's key.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

from mriviewer.core.errors import ConfigError
from mriviewer.core.volume import Volume

__all__ = ["deepbet_mask", "BRAIN_EXTRACTORS"]

#: Values of ``TrainConfig.brain_extraction``.
BRAIN_EXTRACTORS = ("none", "deepbet")

_model = None
_lock = threading.Lock()


def deepbet_mask(volume: Volume, threshold: float = 0.5) -> np.ndarray:
    """Brain mask of ``volume`` by deepbet.

    Args:
        volume: a T1-weighted (or similar) head volume; any orientation (deepbet works on the
            closest canonical orientation and returns the mask on the input grid).
        threshold: probability above which a voxel is brain.

    Returns:
        ``(I, J, K)`` bool mask on ``volume``'s grid.

    Raises:
        ConfigError: deepbet is not installed.
    """
    global _model
    try:
        import nibabel as nib
        from deepbet.bet import BrainExtraction
    except ImportError as exc:
        raise ConfigError('brain_extraction "deepbet" needs the deepbet package: pip install "mriviewer[bet]"') from exc
    import torch

    with _lock:
        if _model is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation inside deepbet
                _model = BrainExtraction(no_gpu=not torch.cuda.is_available())
        img = nib.Nifti1Image(np.asarray(volume.data, dtype=np.float32), volume.affine)
        _, mask, _ = _model.run(img, threshold=threshold)
    return np.asarray(mask.dataobj) > 0
