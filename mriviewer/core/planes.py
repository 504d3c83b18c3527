"""From a canonical volume to what a person sees: planes, screen orientation, window/level and
overlay colours. No Qt: the viewer, the report and the tests share this code.

A canonical volume (see :mod:`mriviewer.core.volume`) has ``i → R``, ``j → A``, ``k → S``. On screen
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

import numpy as np

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
