"""Colours for what a person sees, on screen and in the PDF alike: window/level to 8 bits, colour
maps as 256-entry lookup tables, segmentation label colours, and overlays.

One colouring path: the viewer hands :func:`overlay_lut` to a pyqtgraph ``ImageItem`` (levels
``(0, 1)``, the item's opacity sets the blend), and the PDF colours the same map with
:func:`overlay_rgba`, which indexes the same table the way pyqtgraph does
(``index = min(floor(v × 256), 255)``), so a value is transparent in the report exactly where it
is transparent on screen, and has the same colour and opacity elsewhere.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


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


#: Colours of segmentation labels (BraTS: 1 necrotic core, 2 oedema, 3/4 enhancing tumour).
LABEL_COLOURS = {1: (255, 60, 60), 2: (60, 220, 60), 3: (255, 220, 0), 4: (255, 220, 0)}


#: Names of the BraTS labels (2018–2021: 1 necrotic/non-enhancing core, 2 peritumoural oedema,
#: 4 enhancing tumour; BraTS 2023 renumbers enhancing tumour as 3).
LABEL_NAMES = {1: "necrotic core", 2: "oedema", 3: "enhancing tumour", 4: "enhancing tumour"}


#: Default Grad-CAM threshold: map values at or below it are transparent (screen and PDF).
CAM_THRESHOLD = 0.15


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


def overlay_rgba(values: np.ndarray, cmap: str = "inferno", opacity: float = 0.5,
                 threshold: float = CAM_THRESHOLD) -> np.ndarray:
    """Colour a [0, 1] map (Grad-CAM) as the viewer shows it, as RGBA uint8 ``(..., 4)``.

    Args:
        values: the map, any shape; NaN counts as 0, values are clipped to [0, 1].
        cmap: a matplotlib colour map name.
        opacity: the overlay's opacity (0–1), the viewer's overlay opacity.
        threshold: values whose lookup-table entry lies below ``threshold`` (as in
            :func:`overlay_lut`) are transparent.

    Returns:
        ``values.shape + (4,)`` uint8: the colour map's RGB at each value and alpha
        ``round(255 × opacity)`` above the threshold, 0 at or below it — the pixels a pyqtgraph
        ``ImageItem`` with :func:`overlay_lut` and that opacity paints (see the module docstring).
    """
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    index = np.minimum(np.floor(v * 256.0), 255).astype(np.uint8)
    rgba = overlay_lut(cmap, float(threshold))[index].copy()
    alpha = float(np.clip(opacity, 0.0, 1.0))
    rgba[..., 3] = np.round(rgba[..., 3].astype(np.float32) * alpha).astype(np.uint8)
    return rgba


def blend(rgb: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """``rgb`` (float32 ``(R, C, 3)``, 0–255) with ``rgba`` (uint8 ``(R, C, 4)``) alpha-blended over
    it ("over" compositing); returns float32 ``(R, C, 3)``."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return rgb * (1.0 - a) + rgba[..., :3].astype(np.float32) * a
