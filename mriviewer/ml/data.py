"""Preprocessing of cases into network inputs, and the patient-level split.

Network grid
------------
A case's modalities are re-indexed to the closest RAS orientation
(:meth:`~mriviewer.volume.Volume.canonical`) and, when several, resampled through their affines
onto the first one's grid (:func:`mriviewer.resample.case_on_grid`: the same millimetre in every
channel), then resized (MONAI ``Resize``, trilinear) to one fixed network grid and scaled by their 0.5–99.5 intensity percentiles to ``[0, 1]`` (MONAI
``ScaleIntensityRangePercentiles``), then stacked as channels. Arrays are
``(C, D, H, W)`` with ``D`` = superior axis (axial slices), ``H`` = anterior axis, ``W`` = right
axis of the canonical volume, i.e. canonical ``data[i, j, k]`` transposed to ``[k, j, i]``.
3D models see the whole stack (``D = config.depth``); 2D models see ``slices_per_case`` axial
slices from the central half of the head (``D`` = full canonical slice count, sampled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..datasets import Case, ModalitySource
from ..errors import DatasetError
from ..volume import Volume
from .config import TrainConfig

log = logging.getLogger(__name__)

__all__ = ["CaseInput", "Preprocessor", "patient_split", "normalise_channels"]

Loader = Callable[[ModalitySource], Volume]

#: Inputs in [0, 1] are mapped to (x - 0.5) / 0.25 before entering a network.
INPUT_MEAN, INPUT_STD = 0.5, 0.25


@dataclass
class CaseInput:
    """A case on the network grid.

    Attributes:
        array: ``(C, D, H, W)`` float32 in [0, 1] (see module docstring for axis order).
        reference: the canonical volume of the first input modality; Grad-CAM maps are
            resampled back to its grid.
        missing: requested modalities the case lacks (their channel is zeros).
    """

    array: np.ndarray
    reference: Volume
    missing: list[str]


def normalise_channels(x):
    """Map [0, 1] inputs to the network's input scale (works on numpy and torch)."""
    return (x - INPUT_MEAN) / INPUT_STD


class Preprocessor:
    """Turns cases into network inputs according to a :class:`TrainConfig`.

    Args:
        config: the training configuration (model, modalities, image_size, depth, …).
        loader: ``ModalitySource → Volume`` (normally :meth:`VolumeCache.get`).
    """

    def __init__(self, config: TrainConfig, loader: Loader) -> None:
        self.config = config
        self.loader = loader

    def _grid(self, reference: Volume) -> tuple[int, int, int]:
        size = self.config.image_size
        if self.config.is_3d:
            return (self.config.depth, size, size)
        return (reference.shape[2], size, size)

    def case_input(self, case: Case) -> CaseInput:
        """Load and resample all configured modalities of ``case``.

        Raises:
            DatasetError: the case has none of the configured modalities.
            LoadError: a modality file cannot be read.
        """
        from monai.transforms import Resize, ScaleIntensityRangePercentiles

        mods = self.config.modalities or [case.first_modality()]
        present = [m for m in mods if m in case.modalities]
        if not present:
            raise DatasetError(f"case {case.case_id}: none of the modalities {', '.join(mods)} present")
        volumes = self._on_one_grid(case, present)
        reference = volumes[present[0]]
        grid = self._grid(reference)
        resize = Resize(spatial_size=grid, mode="trilinear", anti_aliasing=False)
        scale = ScaleIntensityRangePercentiles(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True)
        channels = []
        for m in mods:
            if m not in volumes:
                channels.append(np.zeros(grid, dtype=np.float32))
                continue
            data = np.nan_to_num(volumes[m].data.astype(np.float32, copy=False))
            dhw = np.ascontiguousarray(data.transpose(2, 1, 0))[None]  # (1, K, J, I)
            out = scale(resize(dhw))
            channels.append(np.asarray(out, dtype=np.float32)[0])
        missing = [m for m in mods if m not in volumes]
        return CaseInput(np.stack(channels), reference, missing)

    @staticmethod
    def foreground_slices(array: np.ndarray) -> np.ndarray:
        """``(D,)`` bool: axial slices of ``array`` ``(C, D, H, W)`` in which more than 1 % of
        the pixels exceed 10 % of the [0, 1] range in some channel."""
        depth = array.shape[1]
        return (array.max(axis=0) > 0.1).reshape(depth, -1).mean(axis=1) > 0.01

    def _on_one_grid(self, case: Case, present: list[str]) -> dict[str, Volume]:
        """The case's modalities, canonical; with several, resampled onto the grid of the
        first (so that channels are aligned voxel for voxel even when the series were acquired
        in different planes, as in RSNA-MICCAI). Uses the cache's disk-cached grids when the
        loader is a :class:`~mriviewer.cache.VolumeCache`."""
        from ..resample import case_on_grid, reference_grid, resample_volume

        cache = getattr(self.loader, "__self__", None)
        if len(present) > 1 and hasattr(cache, "get_many"):
            vols, _, _ = case_on_grid(case, cache, present, reference=present[0])
            missing = [m for m in present if m not in vols]
            if missing:  # raise the load error of the first that failed, naming its file
                self.loader(case.modalities[missing[0]])
            return vols
        volumes = {m: self.loader(case.modalities[m]).canonical() for m in present}
        if len(present) > 1:
            shape, affine = reference_grid(volumes[present[0]])
            volumes = {m: resample_volume(v, shape, affine) if m != present[0] else v for m, v in volumes.items()}
        return volumes

    def slice_indices(self, array: np.ndarray) -> np.ndarray:
        """Axial slice indices (along ``D``) sampled for a 2D model: ``slices_per_case``
        evenly spaced within the central half of the foreground (voxels above 10 % of the
        range) of ``array`` ``(C, D, H, W)``."""
        depth = array.shape[1]
        n = min(self.config.slices_per_case, depth)
        if depth == 1:
            return np.zeros(1, dtype=int)
        idx = np.flatnonzero(self.foreground_slices(array))
        lo, hi = (idx[0], idx[-1]) if idx.size else (0, depth - 1)
        span = hi - lo
        lo, hi = lo + span * 0.25, hi - span * 0.25
        return np.unique(np.round(np.linspace(lo, hi, n)).astype(int))

    def samples(self, ci: CaseInput) -> np.ndarray:
        """The network samples of a preprocessed case — the same for training and prediction:
        2D → ``(S, C, H, W)`` slices (:meth:`slice_indices`); 3D → ``(1, C, D, H, W)``."""
        if self.config.is_3d:
            return ci.array[None]
        idx = self.slice_indices(ci.array)
        return np.ascontiguousarray(ci.array[:, idx].transpose(1, 0, 2, 3))

    def training_samples(self, case: Case) -> tuple[np.ndarray, CaseInput]:
        """:meth:`samples` of ``case`` and its :class:`CaseInput`."""
        ci = self.case_input(case)
        return self.samples(ci), ci


def patient_split(
    cases: Sequence[Case], val_fraction: float, seed: int
) -> tuple[list[Case], list[Case]]:
    """Split cases into training and validation sets by case (patient), stratified by label.

    One case is one patient in RSNA/BraTS layouts, so no patient is in both sets. Uses
    scikit-learn's ``train_test_split``; falls back to an unstratified split when a class has
    fewer than two cases.

    Args:
        cases: labelled cases.
        val_fraction: share of cases for validation (at least one case each side).
        seed: random state.

    Returns:
        ``(train, val)``, disjoint, their union the input.

    Raises:
        DatasetError: fewer than 2 labelled cases.
    """
    from sklearn.model_selection import train_test_split

    cases = list(cases)
    if len(cases) < 2:
        raise DatasetError(f"need at least 2 labelled cases to split, found {len(cases)}")
    labels = [c.label for c in cases]
    n_val = min(max(1, int(round(len(cases) * val_fraction))), len(cases) - 1)
    counts = np.bincount(labels)
    n_classes = int((counts > 0).sum())
    stratify = labels if counts[counts > 0].min() >= 2 and n_val >= n_classes and len(cases) - n_val >= n_classes else None
    idx = np.arange(len(cases))
    tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    train, val = [cases[i] for i in sorted(tr)], [cases[i] for i in sorted(va)]
    assert not {c.case_id for c in train} & {c.case_id for c in val}
    return train, val
