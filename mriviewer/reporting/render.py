"""Images of a report: every modality in three planes through the crosshair, with the Grad-CAM
overlay and the segmentation, crosshair drawn.

The Grad-CAM is coloured exactly as the viewer colours it (:func:`mriviewer.core.colour.overlay_rgba`:
the user's colour map, threshold and opacity; transparent at or below the threshold), so the
report shows what the user saw.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mriviewer.core.colour import CAM_THRESHOLD, blend, label_rgba, overlay_rgba, window_to_uint8
from mriviewer.core.planes import (
    PLANES,
    pixel_size_mm,
    plane_axes,
    plane_slice,
    voxel_to_screen,
)
from mriviewer.core.volume import Volume, percentile_window, same_grid

#: Crosshair colour (cyan: distinct from the inferno map and the label colours).
CROSSHAIR_RGB = (0, 190, 255)


# ---------------------------------------------------------------------------- images
def _grid_plane(volume: Volume, shape, affine, plane: str, index: int, radiological: bool,
                nearest: bool = False) -> np.ndarray:
    """Screen image of ``plane`` through slice ``index`` of the canonical grid
    ``(shape, affine)``, sampled from ``volume`` (resampled through the affines when its grid
    differs; only that one slab is computed)."""
    from mriviewer.core.resample import resample_to_grid

    s = plane_axes(plane)[0]
    index = int(np.clip(index, 0, shape[s] - 1))
    if same_grid(volume.shape, volume.affine, shape, affine):
        return plane_slice(volume.data, plane, index, radiological)
    shift = np.eye(4)
    shift[s, 3] = index
    slab_shape = list(shape)
    slab_shape[s] = 1
    data = resample_to_grid(np.asarray(volume.data), volume.affine, tuple(slab_shape), np.asarray(affine) @ shift,
                            order=0 if nearest else 1)
    return plane_slice(data, plane, 0, radiological)


def render_planes(volume: Volume, cursor, cam: np.ndarray | None = None, window=None, radiological: bool = True,
                  cmap: str = "inferno", opacity: float = 0.5, *, grid: Volume | None = None,
                  labels: Volume | None = None, label_opacity: float = 0.45, crosshair: bool = True,
                  threshold: float = CAM_THRESHOLD, size: int = 256,
                  planes: Iterable[str] = PLANES) -> dict[str, np.ndarray]:
    """RGB images of ``volume`` in each plane through ``cursor``.

    Args:
        volume: the image (any grid; resampled onto ``grid``'s slab when it differs).
        cursor: canonical voxel index ``(i, j, k)`` on ``grid``.
        cam: ``(I, J, K)`` map in [0, 1] on ``grid`` blended with :func:`mriviewer.core.colour.overlay_rgba`, or ``None``.
        window: ``(low, high)`` display window; default :func:`~mriviewer.core.volume.percentile_window`.
        radiological: patient's right on the screen's left (axial, coronal).
        grid: the canonical volume whose grid the planes are cut from (default ``volume``).
        labels: a segmentation drawn in :data:`~mriviewer.core.colour.LABEL_COLOURS` (values
            rounded to integers; interpolated BraTS files hold fractions), or ``None``.
        crosshair: draw the crosshair lines (cyan, with a gap at the centre).
        size: pixels of the longer side; the other follows the voxel size in mm.

    Returns:
        ``{plane: (rows, cols, 3) uint8}``, rows top to bottom as on screen.
    """
    from PIL import Image, ImageDraw

    grid = grid if grid is not None else volume
    shape, affine = grid.shape, grid.affine
    low, high = window or percentile_window(volume.data)
    out = {}
    for plane in planes:
        s = plane_axes(plane)[0]
        grey = window_to_uint8(_grid_plane(volume, shape, affine, plane, cursor[s], radiological), low, high)
        rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
        if labels is not None:
            lab = _grid_plane(labels, shape, affine, plane, cursor[s], radiological, nearest=True)
            rgb = blend(rgb, label_rgba(np.rint(np.nan_to_num(lab)).astype(np.int32), label_opacity))
        if cam is not None:
            rgb = blend(rgb, overlay_rgba(plane_slice(cam, plane, cursor[s], radiological), cmap, opacity, threshold))
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        dy, dx = pixel_size_mm(plane, grid.spacing)
        h_mm, w_mm = rgb.shape[0] * dy, rgb.shape[1] * dx
        scale = size / max(h_mm, w_mm)
        w_px, h_px = max(1, round(w_mm * scale)), max(1, round(h_mm * scale))
        # Voxels as blocks, as the viewer draws them (no interpolation across the overlay's edge).
        img = Image.fromarray(rgb).resize((w_px, h_px), Image.NEAREST)
        if crosshair:
            row, col = voxel_to_screen(plane, cursor, shape, radiological)
            y = (row + 0.5) * h_px / rgb.shape[0]
            x = (col + 0.5) * w_px / rgb.shape[1]
            gap = max(3.0, 0.04 * max(w_px, h_px))
            draw = ImageDraw.Draw(img)
            for a, b in ((0, x - gap), (x + gap, w_px)):
                if b > a:
                    draw.line([(a, y), (b, y)], fill=CROSSHAIR_RGB, width=1)
            for a, b in ((0, y - gap), (y + gap, h_px)):
                if b > a:
                    draw.line([(x, a), (x, b)], fill=CROSSHAIR_RGB, width=1)
        out[plane] = np.asarray(img)
    return out
