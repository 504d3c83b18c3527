"""The viewer's state, apart from any widget (as napari's ``components`` and FSLeyes'
``displaycontext``): the displayed case and modality, the crosshair, window/level per modality,
display convention and the overlay's options. Widgets observe it through :meth:`ViewerState.on`
and change it through its setters; tests drive it without a window.

Events: ``"volume"`` (a new volume is shown), ``"cursor"``, ``"window"``, ``"overlay"``,
``"segmentation"``, ``"convention"``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

from .volume import Volume, percentile_window

__all__ = ["ViewerState"]


class ViewerState:
    """Observable display state of one viewer.

    Attributes:
        volume: the displayed volume, canonical (RAS) orientation, or ``None``.
        cursor: crosshair as a canonical voxel index ``(i, j, k)``.
        windows: display window ``(low, high)`` per modality.
        radiological: patient's right on the screen's left.
        overlay: ``(I, J, K)`` [0, 1] map on ``volume``'s grid, or ``None``.
        overlay_visible, opacity, cmap: overlay display options.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self.case_id: str | None = None
        self.modality: str | None = None
        self.volume: Volume | None = None
        self.cursor: tuple[int, int, int] = (0, 0, 0)
        self.windows: dict[str, tuple[float, float]] = {}
        self.radiological = True
        self.overlay: np.ndarray | None = None
        self.overlay_visible = True
        self.opacity = 0.5
        self.cmap = "inferno"
        self.segmentation: np.ndarray | None = None
        self.segmentation_visible = True

    # ------------------------------------------------------------------ events
    def on(self, event: str, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever ``event`` happens."""
        self._listeners[event].append(callback)

    def _emit(self, event: str) -> None:
        for cb in list(self._listeners[event]):
            cb()

    # ------------------------------------------------------------------ setters
    def set_volume(self, case_id: str, modality: str, volume: Volume, keep_cursor_mm: bool = True) -> None:
        """Show ``volume`` (any orientation; stored canonical). The crosshair keeps its world
        position when it falls inside the new volume, else goes to the centre."""
        same_case = keep_cursor_mm and self.volume is not None and self.case_id == case_id
        old_world = self.cursor_world() if same_case else None
        self.case_id, self.modality = case_id, modality
        self.volume = volume.canonical()
        self.overlay = None
        self.segmentation = None
        shape = np.array(self.volume.shape)
        cursor = shape // 2
        if old_world is not None:
            ijk = np.round(self.volume.world_to_voxel(old_world)).astype(int)
            if np.all(ijk >= 0) and np.all(ijk < shape):
                cursor = ijk
        self.cursor = tuple(int(v) for v in cursor)
        if modality not in self.windows:
            self.windows[modality] = percentile_window(self.volume.data)
        self._emit("volume")
        self._emit("cursor")

    def clear(self) -> None:
        self.volume, self.overlay, self.case_id = None, None, None
        self._emit("volume")

    def set_cursor(self, ijk) -> None:
        """Move the crosshair to canonical voxel ``ijk`` (clipped to the volume)."""
        if self.volume is None:
            return
        ijk = np.clip(np.round(np.asarray(ijk, dtype=float)).astype(int), 0, np.array(self.volume.shape) - 1)
        new = tuple(int(v) for v in ijk)
        if new != self.cursor:
            self.cursor = new
            self._emit("cursor")

    def step(self, axis: int, delta: int) -> None:
        """Move the crosshair ``delta`` voxels along canonical ``axis`` (slice stepping)."""
        ijk = list(self.cursor)
        ijk[axis] += delta
        self.set_cursor(ijk)

    def cursor_world(self) -> np.ndarray:
        """Crosshair position in RAS mm."""
        return self.volume.voxel_to_world(np.array(self.cursor, dtype=float))

    def cursor_value(self) -> float | None:
        """Voxel value under the crosshair."""
        if self.volume is None:
            return None
        return float(self.volume.data[self.cursor])

    @property
    def window(self) -> tuple[float, float]:
        return self.windows.get(self.modality or "", (0.0, 1.0))

    def set_window(self, low: float, high: float) -> None:
        """Set the display window of the current modality (``high > low``)."""
        if high <= low:
            high = low + 1e-6
        self.windows[self.modality or ""] = (float(low), float(high))
        self._emit("window")

    def auto_window(self) -> None:
        """Reset the window to the 0.5–99.5 percentiles."""
        if self.volume is not None:
            self.set_window(*percentile_window(self.volume.data))

    def set_overlay(self, overlay: np.ndarray | None) -> None:
        """Set the overlay map; it must have the displayed volume's shape."""
        if overlay is not None and self.volume is not None and overlay.shape != self.volume.shape:
            raise ValueError(f"overlay shape {overlay.shape} != volume shape {self.volume.shape}")
        self.overlay = overlay
        self._emit("overlay")

    def set_overlay_options(self, visible: bool | None = None, opacity: float | None = None,
                            cmap: str | None = None) -> None:
        if visible is not None:
            self.overlay_visible = bool(visible)
        if opacity is not None:
            self.opacity = float(np.clip(opacity, 0.0, 1.0))
        if cmap is not None:
            self.cmap = cmap
        self._emit("overlay")

    def set_segmentation(self, labels: np.ndarray | None) -> None:
        """Set the label map (integer labels, 0 = background) on the displayed grid."""
        if labels is not None and self.volume is not None and labels.shape != self.volume.shape:
            raise ValueError(f"segmentation shape {labels.shape} != volume shape {self.volume.shape}")
        self.segmentation = None if labels is None else np.rint(labels).astype(np.int16)
        self._emit("segmentation")

    def set_segmentation_visible(self, visible: bool) -> None:
        self.segmentation_visible = bool(visible)
        self._emit("segmentation")

    def set_radiological(self, radiological: bool) -> None:
        self.radiological = bool(radiological)
        self._emit("convention")
