"""One world for a case: resampling volumes onto a common grid through their affines.

Every target voxel's centre is mapped to world mm (target affine), then into the source's voxel
grid (inverse source affine) and interpolated — trilinear for images, nearest neighbour for
segmentations — so that a voxel index names the same millimetre of the patient in every
modality. Uses ``torch.nn.functional.grid_sample`` (multi-threaded; the identical-grid case is a
no-op) with ``align_corners=True`` so that voxel centres map exactly.
"""

from __future__ import annotations

import numpy as np

from .errors import MriViewerError
from .volume import Volume, same_grid

__all__ = ["resample_to_grid", "reference_grid", "resample_volume", "highest_resolution", "case_on_grid"]


def resample_to_grid(data: np.ndarray, affine: np.ndarray, shape: tuple[int, int, int],
                     target_affine: np.ndarray, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Resample ``data`` (``(I, J, K)`` with voxel→RAS ``affine``) onto the grid ``shape`` with
    voxel→RAS ``target_affine``.

    Args:
        order: 1 trilinear (images), 0 nearest neighbour (label maps, masks).
        cval: value outside the source grid.

    Returns:
        float32 ``shape`` array (``data`` itself when the grids are identical).
    """
    import torch
    import torch.nn.functional as F

    if same_grid(data.shape, affine, shape, target_affine):
        return data
    src = np.asarray(data, dtype=np.float32)
    vox = torch.from_numpy((np.linalg.inv(affine) @ target_affine)[:3].astype(np.float32))  # target ijk1 -> source ijk
    sizes = torch.tensor([max(n - 1, 1) for n in src.shape], dtype=torch.float32)
    inp = torch.from_numpy(np.ascontiguousarray(src))[None, None] - cval
    out = torch.empty(shape, dtype=torch.float32)
    j = torch.arange(shape[1], dtype=torch.float32)[:, None, None] * vox[:, 1]  # (J, 1, 3)
    k = torch.arange(shape[2], dtype=torch.float32)[None, :, None] * vox[:, 2]  # (1, K, 3)
    jk = j + k + vox[:, 3]  # (J, K, 3)
    step = max(1, 4_000_000 // max(shape[1] * shape[2], 1))  # ~4 M voxels per slab
    for i0 in range(0, shape[0], step):
        i = torch.arange(i0, min(i0 + step, shape[0]), dtype=torch.float32)[:, None, None, None] * vox[:, 0]
        idx = i + jk  # (slab, J, K, 3): source voxel coordinates (i, j, k)
        norm = idx * (2.0 / sizes) - 1.0
        outside = torch.zeros(idx.shape[:3], dtype=torch.bool)
        for n, size in enumerate(src.shape):
            if size == 1:  # a single slice covers only its own thickness
                norm[..., n] = 0.0
                outside |= idx[..., n].abs() > 0.5
        grid = norm.flip(-1)[None]  # grid_sample wants (x, y, z) = (k, j, i) for input (N, C, I, J, K)
        slab = F.grid_sample(inp, grid, mode="nearest" if order == 0 else "bilinear",
                             padding_mode="zeros", align_corners=True)[0, 0] + cval
        slab[outside] = cval
        out[i0:i0 + slab.shape[0]] = slab
    return out.numpy().astype(np.float32, copy=False)


def highest_resolution(volumes: dict[str, Volume]) -> str:
    """The modality with the smallest voxel volume (ties: the first), the default reference."""
    return min(volumes, key=lambda m: float(np.prod(volumes[m].spacing)))


def reference_grid(volume: Volume) -> tuple[tuple[int, int, int], np.ndarray]:
    """The grid ``(shape, affine)`` of ``volume`` in canonical (closest RAS) orientation."""
    can = volume.canonical()
    return can.shape, can.affine


def resample_volume(volume: Volume, shape: tuple[int, int, int], affine: np.ndarray,
                    nearest: bool = False) -> Volume:
    """``volume`` on the grid ``(shape, affine)``; ``nearest`` for segmentations."""
    data = resample_to_grid(np.asarray(volume.data), volume.affine, shape, affine, order=0 if nearest else 1)
    meta = dict(volume.meta)
    meta["resampled_from"] = {"shape": list(volume.shape), "affine": volume.affine.tolist()}
    return Volume(data, affine, volume.modality, list(volume.sources), meta)


#: Version of the grid resampling; part of the disk-cache key of resampled volumes.
GRID_FORMAT = 1


def case_on_grid(case, cache, modalities: list[str] | None = None, reference: str = "auto",
                 processes: int | None = None) -> tuple[dict[str, Volume], str | None, Volume | None]:
    """The modalities of ``case`` on one common grid, and its segmentation (nearest neighbour).

    Args:
        case: a :class:`~mriviewer.datasets.Case`.
        cache: a :class:`~mriviewer.cache.VolumeCache`; decoded sources come from it (decoded in
            parallel when missing) and resampled volumes are stored in its disk cache, keyed by
            both sources' identities, so reopening a case does not resample again.
        modalities: which ones (default: all present).
        reference: the modality whose grid (canonical orientation) is used; ``"auto"`` the
            finest (smallest voxel volume); ``"native"`` no resampling (each canonical).

    Returns:
        ``({modality: Volume}, reference used or None, segmentation or None)``; the segmentation
        is a label :class:`Volume` on the same grid whose ``meta["warnings"]`` carries the
        loader's (e.g. non-integer labels). A modality that failed to load is left out
        (``cache.get`` on it raises the error); a segmentation that fails to load or resample
        does not hide the images: it is left out and its message, naming the file, is added to
        ``case.errors``.
    """
    from .cache import source_key
    from .datasets import ModalitySource

    names = list(modalities or case.modalities)
    all_names = list(case.modalities)
    loaded = cache.get_many([case.modalities[m] for m in all_names], processes)
    vols = {m: v for m, v in zip(all_names, loaded, strict=True) if isinstance(v, Volume)}
    if reference == "native" or not vols or any(v.is_2d for v in vols.values()):
        out = {m: vols[m].canonical() for m in names if m in vols}
        ref_name, shape, affine = None, None, None
    else:
        ref_name = reference if reference in vols else highest_resolution(vols)
        shape, affine = reference_grid(vols[ref_name])
        out = {}
        keys: dict[str, object] = {}  # each source's identity once (it stats, on Windows reads, its files)

        def key_of(name):
            if name not in keys:
                try:
                    keys[name] = source_key(case.modalities[name])
                except OSError:
                    keys[name] = None
            return keys[name]

        for m in names:
            if m not in vols:
                continue
            key = None
            if cache.disk is not None and key_of(m) is not None and key_of(ref_name) is not None:
                key = ("grid", GRID_FORMAT, key_of(m), key_of(ref_name))
            vol = cache.disk.load(key) if key is not None else None
            if vol is None:
                vol = resample_volume(vols[m], shape, affine)
                if key is not None:
                    cache.disk.save(key, vol)
            out[m] = vol
    seg = None
    if case.segmentation is not None and out:
        try:
            seg_vol = cache.get(ModalitySource("SEG", case.segmentation, "nifti"))
            target = next(iter(out.values()))
            seg = resample_volume(seg_vol, target.shape, target.affine, nearest=True)  # keeps meta["warnings"]
        except Exception as exc:  # a broken mask must not hide the images, nor fail unseen
            msg = str(exc) if isinstance(exc, MriViewerError) else f"{type(exc).__name__}: {exc}"
            msg = f"segmentation {case.segmentation}: {msg}" if str(case.segmentation) not in msg else msg
            if msg not in case.errors:
                case.errors.append(msg)
            seg = None
    return out, ref_name, seg
