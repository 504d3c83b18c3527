"""One world for a case: resampling volumes onto a common grid through their affines.

Every target voxel's centre is mapped to world mm (target affine), then into the source's voxel
grid (inverse source affine) and interpolated — trilinear for images, nearest neighbour for
segmentations — so that a voxel index names the same millimetre of the patient in every
modality. Uses ``torch.nn.functional.grid_sample`` (multi-threaded; the identical-grid case is a
no-op) with ``align_corners=True`` so that voxel centres map exactly.
"""

from __future__ import annotations

import numpy as np

from mriviewer.core.volume import Volume, same_grid


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
    """The grid ``(shape, affine)`` of ``volume`` in canonical (closest RAS) orientation (from its
    affine: nothing is copied)."""
    return volume.canonical_grid()


def resample_volume(volume: Volume, shape: tuple[int, int, int], affine: np.ndarray,
                    nearest: bool = False) -> Volume:
    """``volume`` on the grid ``(shape, affine)``; ``nearest`` for segmentations. A volume whose
    canonical orientation already is that grid (co-registered BraTS modalities, a series and its
    own reference) is returned re-indexed only (:meth:`Volume.canonical`: exact, its dtype kept),
    without interpolation."""
    own_shape, own_affine = volume.canonical_grid()
    if same_grid(own_shape, own_affine, shape, affine):
        return volume.canonical()
    data = resample_to_grid(np.asarray(volume.data), volume.affine, shape, affine, order=0 if nearest else 1)
    meta = dict(volume.meta)
    meta["resampled_from"] = {"shape": list(volume.shape), "affine": volume.affine.tolist()}
    return Volume(data, affine, volume.modality, list(volume.sources), meta)
