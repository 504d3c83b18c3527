"""Resampling one volume's voxels onto another grid through their affines (world mm).

Used to lay an overlay computed on one modality's grid over another modality of the same case:
for every target voxel, its world position (target affine) is mapped into the source grid
(inverse source affine) and interpolated with ``scipy.ndimage.map_coordinates``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resample_to_grid"]


def resample_to_grid(data: np.ndarray, affine: np.ndarray, shape: tuple[int, int, int],
                     target_affine: np.ndarray, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Resample ``data`` (``(I, J, K)`` with voxel→RAS ``affine``) onto the grid ``shape`` with
    voxel→RAS ``target_affine``.

    Args:
        order: spline order (0 nearest neighbour for label maps, 1 trilinear).
        cval: value outside the source grid.

    Returns:
        float32 array of ``shape``. Returns ``data`` itself when the grids are identical.
    """
    from scipy.ndimage import map_coordinates

    if tuple(data.shape) == tuple(shape) and np.allclose(affine, target_affine, atol=1e-4):
        return data
    vox = np.linalg.inv(affine) @ target_affine  # target voxel -> source voxel
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1)
    coords = vox[:3, :3].astype(np.float32) @ grid + vox[:3, 3:4].astype(np.float32)
    out = map_coordinates(data.astype(np.float32, copy=False), coords, order=order, cval=cval, prefilter=False)
    return out.reshape(shape).astype(np.float32)
