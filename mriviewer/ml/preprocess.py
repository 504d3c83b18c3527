"""Preprocessing of cases into network inputs.

Network grid
------------
A case's modalities are re-indexed to the closest RAS orientation
(:meth:`~mriviewer.core.volume.Volume.canonical`) and, when several, resampled through their affines
onto the first one's grid (:func:`mriviewer.cache.grid.case_on_grid`: the same millimetre in every
channel). Then, per :class:`~.config.TrainConfig`:

* ``spacing_mm > 0``: resized to isotropic voxels of that size (MONAI ``Resize``, trilinear)
  and centre padded/cropped to ``(depth, image_size, image_size)`` (MONAI
  ``ResizeWithPadOrCrop``), so the field of view stays in millimetres (grading presets);
* else in-plane resized to ``image_size``; the slice axis resized to ``depth`` (3D,
  ``depth_mode="resize"``), zero-padded front and back or centre-cropped to ``depth``
  (``"pad_crop"``), or kept (2D models);
* intensities scaled to [0, 1] by the 0.5–99.5 percentiles (MONAI
  ``ScaleIntensityRangePercentiles``) or min–max (MONAI ``ScaleIntensity``).

Arrays are ``(C, D, H, W)`` with ``D`` = superior axis (axial slices), ``H`` = anterior axis,
``W`` = right axis of the canonical volume, i.e. canonical ``data[i, j, k]`` transposed to
``[k, j, i]``. 3D models see the whole stack; 2D models see ``slices_per_case`` axial slices
within ``slice_range`` of the head's axial extent. 2D image cases with ``color="rgb"`` keep their
three colour channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mriviewer.core.errors import DatasetError, LoadError
from mriviewer.core.volume import Volume
from mriviewer.data.cases import Case, ModalitySource
from mriviewer.ml.config import TrainConfig

Loader = Callable[[ModalitySource], Volume]


#: ImageNet channel statistics (torchvision's).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


#: ``normalise="fixed"``: [0, 1] inputs are mapped to (x − 0.5) / 0.25.
INPUT_MEAN, INPUT_STD = 0.5, 0.25


@dataclass
class CaseInput:
    """A case on the network grid.

    Attributes:
        array: ``(C, D, H, W)`` float32 in [0, 1] (see module docstring for axis order).
        reference: the canonical volume of the first input modality; Grad-CAM maps are
            resampled back to its grid.
        missing: requested modalities the case lacks (their channel is zeros).
        substituted: ``{wanted: used}`` where ``modality_fallback`` supplied another modality.
        meta: facts for the confound guard: ``spacing_mm``, ``shape``, ``dtype``, ``scanner``.
    """

    array: np.ndarray
    reference: Volume
    missing: list[str]
    substituted: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def normalise_channels(x, mode: str = "fixed"):
    """Map [0, 1] inputs ``(B, C, …)`` to the network's input scale (numpy or torch).

    ``"fixed"``: (x − 0.5) / 0.25; ``"imagenet"``: ImageNet mean/std per channel for three
    channels, their averages otherwise (a grey slice through an averaged RGB stem); ``"none"``.
    """
    if mode == "none":
        return x
    if mode == "imagenet":
        c = x.shape[1]
        if c == 3:
            shape = (1, 3) + (1,) * (x.ndim - 2)
            if hasattr(x, "new_tensor"):
                mean, std = x.new_tensor(IMAGENET_MEAN).reshape(shape), x.new_tensor(IMAGENET_STD).reshape(shape)
            else:
                mean, std = np.reshape(IMAGENET_MEAN, shape), np.reshape(IMAGENET_STD, shape)
            return (x - mean) / std
        return (x - float(np.mean(IMAGENET_MEAN))) / float(np.mean(IMAGENET_STD))
    return (x - INPUT_MEAN) / INPUT_STD


class Preprocessor:
    """Turns cases into network inputs according to a :class:`TrainConfig`.

    Args:
        config: the training configuration.
        loader: ``ModalitySource → Volume`` (normally :meth:`VolumeCache.get`).
    """

    def __init__(self, config: TrainConfig, loader: Loader) -> None:
        self.config = config
        self.loader = loader

    # ------------------------------------------------------------------ modalities
    def resolve_modalities(self, case: Case) -> tuple[dict[str, str], list[str]]:
        """``({wanted: modality used}, missing)`` for ``case``: a wanted modality is used when
        present, else the first present substitute from ``modality_fallback``."""
        mods = self.config.modalities or [case.first_modality()]
        used, missing = {}, []
        for m in mods:
            if m in case.modalities:
                used[m] = m
                continue
            sub = next((s for s in self.config.modality_fallback.get(m, []) if s in case.modalities), None)
            if sub is None:
                missing.append(m)
            else:
                used[m] = sub
        return used, missing

    def usable(self, case: Case) -> bool:
        """Whether ``case`` has at least one of the configured modalities (or a fallback)."""
        return bool(self.resolve_modalities(case)[0])

    # ------------------------------------------------------------------ grid
    def case_input(self, case: Case) -> CaseInput:
        """Load and resample all configured modalities of ``case``.

        Raises:
            DatasetError: the case has none of the configured modalities.
            LoadError: a modality file cannot be read.
        """
        used, missing = self.resolve_modalities(case)
        mods = self.config.modalities or [case.first_modality()]
        if not used:
            raise DatasetError(f"case {case.case_id}: none of the modalities {', '.join(mods)} present")
        if case.is_2d and self.config.color == "rgb":
            return self._rgb_input(case, used, missing)
        present = list(dict.fromkeys(used.values()))
        volumes = self._on_one_grid(case, present)
        if self.config.brain_extraction == "deepbet" and not case.is_2d:
            from mriviewer.ml.brain import deepbet_mask

            brain = deepbet_mask(volumes[present[0]])
            volumes = {m: Volume(np.where(brain, v.data, 0).astype(v.data.dtype), v.affine, v.modality,
                                 list(v.sources), {**v.meta, "brain_extraction": "deepbet"})
                       for m, v in volumes.items()}
        reference = volumes[present[0]]
        channels = [self._channel(volumes[used[m]]) if m in used else None for m in mods]
        grid = next(c.shape for c in channels if c is not None)
        channels = [c if c is not None else np.zeros(grid, dtype=np.float32) for c in channels]
        meta = self._meta(reference, present)
        mid = self._mid_shape(reference)
        if mid is not None:
            meta["grid_mid"] = list(mid)
        subs = {m: u for m, u in used.items() if m != u}
        return CaseInput(np.stack(channels), reference, missing, subs, meta)

    def _meta(self, ref: Volume, present: list[str]) -> dict:
        m = ref.meta or {}
        scanner = " ".join(str(m[k]) for k in ("manufacturer", "Manufacturer", "model", "ManufacturerModelName")
                           if m.get(k)) or None
        return {"spacing_mm": [round(float(s), 2) for s in ref.spacing], "shape": list(ref.shape),
                "dtype": str(m.get("stored_dtype") or ref.data.dtype), "scanner": scanner,
                "modalities": present}

    def _mid_shape(self, vol: Volume) -> tuple[int, int, int] | None:
        """``(D, H, W)`` of a 3D model's grid before the centre pad/crop, or ``None`` when the
        network grid is a plain resize. Grad-CAM uses it to undo the pad/crop."""
        cfg = self.config
        if not cfg.is_3d:
            return None
        k, j, i = vol.shape[2], vol.shape[1], vol.shape[0]
        if cfg.spacing_mm > 0:
            sk, sj, si = vol.spacing[2], vol.spacing[1], vol.spacing[0]
            return tuple(max(1, round(n * s / cfg.spacing_mm)) for n, s in ((k, sk), (j, sj), (i, si)))
        if cfg.depth_mode == "pad_crop":
            return (k, cfg.image_size, cfg.image_size)
        return None

    def _channel(self, vol: Volume) -> np.ndarray:
        """One canonical volume → ``(D, H, W)`` float32 in [0, 1] on the network grid."""
        from monai.transforms import (
            Resize,
            ResizeWithPadOrCrop,
            ScaleIntensity,
            ScaleIntensityRangePercentiles,
        )

        cfg = self.config
        data = np.nan_to_num(vol.data.astype(np.float32, copy=False))
        dhw = np.ascontiguousarray(data.transpose(2, 1, 0))[None]  # (1, K, J, I)
        size = cfg.image_size
        mid = self._mid_shape(vol)
        if mid is not None:
            dhw = Resize(spatial_size=mid, mode="trilinear", anti_aliasing=False)(dhw)
            dhw = ResizeWithPadOrCrop(spatial_size=(cfg.depth, size, size))(dhw)
        else:
            depth = cfg.depth if cfg.is_3d else dhw.shape[1]
            dhw = Resize(spatial_size=(depth, size, size), mode="trilinear", anti_aliasing=False)(dhw)
        if cfg.intensity == "minmax":
            out = ScaleIntensity(minv=0.0, maxv=1.0)(dhw)
        else:
            out = ScaleIntensityRangePercentiles(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True)(dhw)
        return np.asarray(out, dtype=np.float32)[0]

    def _rgb_input(self, case: Case, used: dict, missing: list[str]) -> CaseInput:
        """A 2D image's three colour channels ``(3, 1, size, size)`` in [0, 1] (PIL, bilinear)."""
        from PIL import Image

        src = case.modalities[next(iter(used.values()))]
        try:
            with Image.open(src.path) as im:
                rgb = im.convert("RGB").resize((self.config.image_size,) * 2, Image.Resampling.BILINEAR)
                arr = np.asarray(rgb, dtype=np.float32)  # (rows, cols, 3)
        except Exception as exc:
            raise LoadError(src.path, f"cannot read image ({type(exc).__name__}: {exc})") from exc
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        reference = self.loader(src).canonical()
        # Rows run top to bottom = posterior to anterior of the canonical (I, J, 1) image: H is flipped.
        chw = arr.transpose(2, 0, 1)[:, ::-1, :]
        meta = self._meta(reference, [src.modality])
        return CaseInput(np.ascontiguousarray(chw[:, None]), reference, missing, {}, meta)

    @staticmethod
    def foreground_slices(array: np.ndarray) -> np.ndarray:
        """``(D,)`` bool: axial slices of ``array`` ``(C, D, H, W)`` in which more than 1 % of
        the pixels exceed 10 % of the [0, 1] range in some channel."""
        depth = array.shape[1]
        return (array.max(axis=0) > 0.1).reshape(depth, -1).mean(axis=1) > 0.01

    def _on_one_grid(self, case: Case, present: list[str]) -> dict[str, Volume]:
        """The case's modalities, canonical; with several, resampled onto the grid of the
        first (channels aligned voxel for voxel even when the series were acquired in
        different planes, as in RSNA-MICCAI). Uses the cache's disk-cached grids when the
        loader is a :class:`~mriviewer.cache.memory.VolumeCache`."""
        from mriviewer.cache.grid import case_on_grid
        from mriviewer.core.resample import reference_grid, resample_volume

        cache = getattr(self.loader, "__self__", None)
        if len(present) > 1 and hasattr(cache, "get_many"):
            vols, _, _ = case_on_grid(case, cache, present, reference=present[0])
            failed = [m for m in present if m not in vols]
            if failed:  # raise the load error of the first that failed, naming its file
                self.loader(case.modalities[failed[0]])
            return vols
        volumes = {m: self.loader(case.modalities[m]).canonical() for m in present}
        if len(present) > 1:
            shape, affine = reference_grid(volumes[present[0]])
            volumes = {m: resample_volume(v, shape, affine) if m != present[0] else v for m, v in volumes.items()}
        return volumes

    def slice_indices(self, array: np.ndarray) -> np.ndarray:
        """Axial slice indices (along ``D``) for a 2D model: ``slices_per_case`` evenly spaced
        within ``slice_range`` of the foreground's axial extent of ``array`` ``(C, D, H, W)``."""
        depth = array.shape[1]
        n = min(self.config.slices_per_case, depth)
        if depth == 1:
            return np.zeros(1, dtype=int)
        idx = np.flatnonzero(self.foreground_slices(array))
        lo, hi = (idx[0], idx[-1]) if idx.size else (0, depth - 1)
        span = hi - lo
        a, b = self.config.slice_range
        lo, hi = lo + span * a, lo + span * b
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
