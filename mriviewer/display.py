"""From a canonical volume to what a person sees: planes, screen orientation, window/level and
overlay colours. No Qt: the viewer, the report and the tests share this code.

A canonical volume (see :mod:`mriviewer.volume`) has ``i → R``, ``j → A``, ``k → S``. On screen
(row 0 at the top, column 0 at the left):

============  ===========  ===================  ========================  =================
plane         slice axis   rows (top → bottom)  columns, radiological     letters L/R/T/B
============  ===========  ===================  ========================  =================
axial         k            j descending (A→P)   i descending (R→L)        R, L, A, P
coronal       j            k descending (S→I)   i descending (R→L)        R, L, S, I
sagittal      i            k descending (S→I)   j descending (A→P)        A, P, S, I
============  ===========  ===================  ========================  =================

The neurological convention mirrors the columns of the axial and coronal planes (patient's left
on the screen's left). This is the convention of radiology workstations, 3D Slicer and
ITK-SNAP (radiological default) and FSLeyes (neurological default).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "PLANES", "plane_slice", "plane_axes", "orientation_letters", "screen_to_voxel",
    "voxel_to_screen", "pixel_size_mm", "window_to_uint8", "colormap_lut", "overlay_rgba",
    "composite_rgb", "label_rgba", "overlay_lut", "label_lut", "LABEL_COLOURS", "LABEL_NAMES",
]

PLANES = ("axial", "coronal", "sagittal")

# plane -> (slice axis, row axis, column axis)
_AXES = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}


def plane_axes(plane: str) -> tuple[int, int, int]:
    """``(slice axis, row axis, column axis)`` of ``plane`` in canonical voxel axes."""
    return _AXES[plane]


def _flip_cols(plane: str, radiological: bool) -> bool:
    # Columns run opposite to the voxel axis in radiological axial/coronal and in sagittal.
    return True if plane == "sagittal" else radiological


def plane_slice(data: np.ndarray, plane: str, index: int, radiological: bool = True) -> np.ndarray:
    """The 2D screen image of ``plane`` at slice ``index`` of a canonical array.

    Args:
        data: canonical ``(I, J, K)`` array (or ``(I, J, K, C)`` for RGBA overlays).
        plane: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        index: slice index along the plane's slice axis (clipped to the valid range).
        radiological: patient's right on the screen's left (axial, coronal).

    Returns:
        ``(rows, cols[, C])`` array, row 0 at the top of the screen, C-contiguous.
    """
    s, r, c = _AXES[plane]
    index = min(max(int(index), 0), data.shape[s] - 1)
    img = data[(slice(None),) * s + (index,)]  # a view: the one copy is the contiguous one below
    # remaining axes keep their order: move row axis first
    remaining = [a for a in (0, 1, 2) if a != s]
    if remaining.index(r) != 0:
        img = np.swapaxes(img, 0, 1)
    img = img[::-1]  # rows: high voxel index (A or S) at the top
    if _flip_cols(plane, radiological):
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def orientation_letters(plane: str, radiological: bool = True) -> dict[str, str]:
    """Anatomical letters at the screen edges: keys ``left``, ``right``, ``top``, ``bottom``."""
    if plane == "sagittal":
        return {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    top, bottom = ("A", "P") if plane == "axial" else ("S", "I")
    left, right = ("R", "L") if radiological else ("L", "R")
    return {"left": left, "right": right, "top": top, "bottom": bottom}


def screen_to_voxel(plane: str, row: float, col: float, index: int, shape: tuple[int, int, int],
                    radiological: bool = True) -> np.ndarray:
    """Canonical voxel index ``(i, j, k)`` (float) of screen pixel ``(row, col)`` on slice
    ``index`` of ``plane``; the inverse of :func:`plane_slice`'s mapping."""
    s, r, c = _AXES[plane]
    ijk = np.zeros(3)
    ijk[s] = index
    ijk[r] = shape[r] - 1 - row
    ijk[c] = shape[c] - 1 - col if _flip_cols(plane, radiological) else col
    return ijk


def voxel_to_screen(plane: str, ijk, shape: tuple[int, int, int], radiological: bool = True) -> tuple[float, float]:
    """Screen ``(row, col)`` of canonical voxel ``ijk`` in ``plane``."""
    s, r, c = _AXES[plane]
    row = shape[r] - 1 - ijk[r]
    col = shape[c] - 1 - ijk[c] if _flip_cols(plane, radiological) else ijk[c]
    return float(row), float(col)


def pixel_size_mm(plane: str, spacing: tuple[float, float, float]) -> tuple[float, float]:
    """``(row height, column width)`` in mm of a screen pixel of ``plane``."""
    _, r, c = _AXES[plane]
    return float(spacing[r]), float(spacing[c])


def window_to_uint8(img: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly to 0–255 (clipped), NaN → 0."""
    scale = 255.0 / max(high - low, 1e-12)
    img = np.asarray(img, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.clip((img - np.float32(low)) * np.float32(scale), 0, 255)
    out[np.isnan(out)] = 0  # NaN voxels are black
    return out.astype(np.uint8)


@lru_cache(maxsize=16)
def colormap_lut(name: str = "inferno") -> np.ndarray:
    """A matplotlib colormap as a ``(256, 4)`` uint8 RGBA lookup table."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return (cmap(np.linspace(0, 1, 256)) * 255).round().astype(np.uint8)


def overlay_rgba(values: np.ndarray, cmap: str = "inferno", opacity: float = 0.5,
                 threshold: float = 0.15) -> np.ndarray:
    """Colour a [0, 1] map (e.g. Grad-CAM) as RGBA uint8 ``(..., 4)``; values below
    ``threshold`` are transparent, others have alpha ``opacity`` × 255."""
    lut = colormap_lut(cmap)
    idx = np.clip(np.nan_to_num(values) * 255, 0, 255).astype(np.uint8)
    rgba = lut[idx].copy()
    rgba[..., 3] = np.where(values >= threshold, int(round(opacity * 255)), 0).astype(np.uint8)
    return rgba


#: Colours of segmentation labels (BraTS: 1 necrotic core, 2 oedema, 3/4 enhancing tumour).
LABEL_COLOURS = {1: (255, 60, 60), 2: (60, 220, 60), 3: (255, 220, 0), 4: (255, 220, 0)}


#: Names of the BraTS labels (2018–2021: 1 necrotic/non-enhancing core, 2 peritumoural oedema,
#: 4 enhancing tumour; BraTS 2023 renumbers enhancing tumour as 3).
LABEL_NAMES = {1: "necrotic core", 2: "oedema", 3: "enhancing tumour", 4: "enhancing tumour"}


@lru_cache(maxsize=64)
def overlay_lut(cmap: str = "inferno", threshold: float = 0.15) -> np.ndarray:
    """``(256, 4)`` uint8 lookup table for a [0, 1] map shown with levels ``(0, 1)`` in a
    pyqtgraph ``ImageItem``: the colour map's RGB, alpha 0 below ``threshold`` and 255 above
    (the item's opacity sets the blend). The slice itself is never recoloured per redraw. The
    returned array is shared (cached): do not modify it."""
    lut = colormap_lut(cmap).copy()
    cut = int(np.ceil(np.clip(threshold, 0.0, 1.0) * 255))
    lut[:, 3] = 255
    lut[:cut, 3] = 0
    return lut


@lru_cache(maxsize=1)
def label_lut() -> np.ndarray:
    """``(256, 4)`` uint8 lookup table for an integer label map shown with levels ``(0, 255)``:
    0 transparent, BraTS labels in :data:`LABEL_COLOURS`, other labels cyan."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[1:] = (0, 200, 255, 255)
    for value, colour in LABEL_COLOURS.items():
        lut[value, :3] = colour
    return lut


def label_rgba(labels: np.ndarray, opacity: float = 0.35) -> np.ndarray:
    """Colour an integer label map as RGBA uint8 ``(..., 4)``; 0 is transparent, labels
    without a listed colour are cyan."""
    labels = np.asarray(labels)
    rgba = np.zeros(labels.shape + (4,), dtype=np.uint8)
    fg = labels > 0
    rgba[fg] = (0, 200, 255, int(opacity * 255))
    for value, colour in LABEL_COLOURS.items():
        rgba[labels == value, :3] = colour
    return rgba


def composite_rgb(grey: np.ndarray, rgba: np.ndarray | None = None) -> np.ndarray:
    """Blend an RGBA overlay onto a uint8 greyscale image; returns ``(rows, cols, 3)`` uint8."""
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    if rgba is not None:
        a = rgba[..., 3:4].astype(np.float32) / 255.0
        rgb = rgb * (1 - a) + rgba[..., :3].astype(np.float32) * a
    return np.clip(rgb, 0, 255).astype(np.uint8)
