"""The viewer's display state, apart from any widget (napari's ``components``, FSLeyes'
``displaycontext``): the displayed case and its modalities on one grid, the crosshair, the
window/level per modality, the layout, the display convention and the overlays' options.
Widgets observe it through :meth:`ViewerState.on` (psygnal signals in ``state.events``) and
change it through its setters; tests drive it without a window.

Events: ``"volume"`` (a new case or modality is shown), ``"cursor"``, ``"window"``,
``"overlay"``, ``"segmentation"``, ``"convention"``, ``"layout"``, ``"grid"`` (the common grid
chosen for the next load).

All volumes of a case are held canonical (RAS, :meth:`~mriviewer.core.volume.Volume.canonical`) and,
unless the user chose each series' native grid, on one common grid
(:func:`mriviewer.cache.grid.case_on_grid`), so one crosshair index is the same millimetre in each.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
from psygnal import Signal, SignalGroup

from mriviewer.core.volume import MODALITIES, Volume, percentile_window, same_grid

__all__ = ["ViewerState", "WINDOW_PRESETS", "LAYOUTS", "GRIDS"]

#: Window presets offered by the viewer: name → (lower, upper) percentile; ``None`` = full range.
WINDOW_PRESETS: dict[str, tuple[float, float] | None] = {
    "1–99 %": (1.0, 99.0),
    "0.5–99.5 %": (0.5, 99.5),
    "Full range": None,
}

#: Layouts: one modality in three planes, or every modality × plane.
LAYOUTS = ("single", "grid")

#: Common grids a case is shown on (:func:`mriviewer.cache.grid.case_on_grid`'s ``reference``):
#: the finest modality's, a named modality's, or each series' own (``"native"``).
GRIDS = ("auto", *MODALITIES, "native")


class ViewerEvents(SignalGroup):
    """The signals of :class:`ViewerState` (no arguments; read the state)."""

    volume = Signal()
    cursor = Signal()
    window = Signal()
    overlay = Signal()
    segmentation = Signal()
    convention = Signal()
    layout = Signal()
    grid = Signal()


class ViewerState:
    """Observable display state of one viewer.

    Attributes:
        case_id: the displayed case's id.
        modality: the modality shown in the single layout.
        volume: that modality's volume, canonical (RAS), or ``None``.
        volumes: every loaded modality of the case, canonical, on ``volume``'s grid (or each on
            its own grid when the user chose native grids).
        native: modality → ``(affine (4, 4), shape (3,))`` of the file's own grid, for the
            readout's voxel index in the file's grid.
        cursor: crosshair as a canonical voxel index ``(i, j, k)`` on ``volume``'s grid.
        windows: display window ``(low, high)`` per modality of the shown case (a new case
            starts from ``default_window``).
        radiological: patient's right on the screen's left.
        layout: ``"single"`` or ``"grid"`` (see :data:`LAYOUTS`).
        grid: the common grid of a case's modalities (see :data:`GRIDS`): ``"auto"`` (the
            finest), a modality's name, or ``"native"``.
        overlay: ``(I, J, K)`` [0, 1] map (Grad-CAM) on ``volume``'s grid, or ``None``.
        overlay_visible, opacity, cmap, threshold: the overlay's display options; values below
            ``threshold`` are transparent.
        segmentation: integer label map on ``volume``'s grid or ``None``;
            ``segmentation_visible``, ``seg_opacity`` its options.
    """

    def __init__(self) -> None:
        self.events = ViewerEvents()
        self.case_id: str | None = None
        self.modality: str | None = None
        self.volume: Volume | None = None
        self.volumes: dict[str, Volume] = {}
        self.native: dict[str, tuple[np.ndarray, tuple[int, int, int]]] = {}
        self._grid_key, self._grid = None, {}
        self._labels_of: tuple | None = None  # (label map, its labels): segmentation_labels' cache
        self._slices: dict[tuple, tuple] = {}
        self.cursor: tuple[int, int, int] = (0, 0, 0)
        self.windows: dict[str, tuple[float, float]] = {}
        self.radiological = True
        self.layout = "single"
        self.grid = "auto"
        self.default_window = "0.5–99.5 %"
        self.overlay: np.ndarray | None = None
        self.overlay_visible = True
        self.opacity = 0.5
        self.cmap = "inferno"
        self.threshold = 0.15
        self.segmentation: np.ndarray | None = None
        self.segmentation_visible = True
        self.seg_opacity = 0.4

    # ------------------------------------------------------------------ events
    def on(self, event: str, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever ``event`` happens."""
        getattr(self.events, event).connect(callback)

    def _emit(self, event: str) -> None:
        getattr(self.events, event).emit()

    # ------------------------------------------------------------------ volumes
    def set_volume(self, case_id: str, modality: str, volume: Volume, keep_cursor_mm: bool = True) -> None:
        """Show one ``volume`` (any orientation; stored canonical) as the case's only modality."""
        self.set_case(case_id, {modality: volume}, modality, keep_cursor_mm=keep_cursor_mm)

    def set_case(self, case_id: str, volumes: dict[str, Volume], modality: str,
                 native: dict | None = None, keep_cursor_mm: bool = True) -> None:
        """Show a case: ``volumes`` (modality → Volume, any orientation; stored canonical) and
        ``modality`` (one of them) in the single layout. The crosshair keeps its world position
        when the same case stays shown and the point falls inside, else goes to the centre.

        Raises:
            KeyError: ``modality`` not in ``volumes``.
        """
        if modality not in volumes:
            raise KeyError(modality)
        same_case = keep_cursor_mm and self.volume is not None and self.case_id == case_id
        old_world = self.cursor_world() if same_case else None
        if case_id != self.case_id:  # MR intensities are arbitrary units per scan: each case
            self.windows = {}        # starts from its own percentiles (the default preset)
        self.case_id, self.modality = case_id, modality
        self.volumes = {m: v.canonical() for m, v in volumes.items()}
        self.native = dict(native or {})
        self.volume = self.volumes[modality]
        self.overlay = None
        self.segmentation = None
        self._place_cursor(old_world)
        for m, v in self.volumes.items():
            if m not in self.windows:
                self.windows[m] = self._preset_window(v, self.default_window)
        self._emit("volume")
        self._emit("cursor")

    def set_modality(self, modality: str) -> None:
        """Show another loaded modality of the case in the single layout; the crosshair keeps
        its millimetre position.

        Raises:
            KeyError: ``modality`` is not loaded.
        """
        if modality == self.modality:
            return
        vol = self.volumes[modality]
        old_world = self.cursor_world() if self.volume is not None else None
        linked = self.volume is not None and same_grid(vol.shape, vol.affine, self.volume.shape, self.volume.affine)
        self.modality, self.volume = modality, vol
        if not linked:  # native grids: overlays are on the other grid
            self.overlay = None
            self.segmentation = None
        self._place_cursor(old_world)
        self._emit("volume")
        self._emit("cursor")

    def _place_cursor(self, world: np.ndarray | None) -> None:
        shape = np.array(self.volume.shape)
        cursor = shape // 2
        if world is not None:
            ijk = np.round(self.volume.world_to_voxel(world)).astype(int)
            if np.all(ijk >= 0) and np.all(ijk < shape):
                cursor = ijk
        self.cursor = tuple(int(v) for v in cursor)

    def clear(self) -> None:
        """Show nothing."""
        self.volume, self.overlay, self.segmentation, self.case_id = None, None, None, None
        self.volumes, self.native = {}, {}
        self._emit("volume")

    def grid_volumes(self) -> dict[str, Volume]:
        """The modalities the grid layout shows: those on ``volume``'s grid, in loading order."""
        if self.volume is None:
            return {}
        key = (id(self.volume), tuple(id(v) for v in self.volumes.values()))
        if self._grid_key != key:
            self._grid_key = key
            self._grid = {m: v for m, v in self.volumes.items()
                          if same_grid(v.shape, v.affine, self.volume.shape, self.volume.affine)}
        return self._grid

    def layer_slice(self, array: np.ndarray, plane: str, index: int) -> np.ndarray:
        """:func:`mriviewer.core.planes.plane_slice` of an overlay or label map, shared by every view
        that shows it (the grid's four rows draw the same Grad-CAM slice). Keeps the last few."""
        from mriviewer.core.planes import plane_slice

        key = (id(array), plane, int(index), self.radiological)
        hit = self._slices.get(key)
        if hit is not None and hit[0]() is array:  # (a weak reference: never keeps a map alive)
            return hit[1]
        out = plane_slice(array, plane, index, self.radiological)
        if len(self._slices) >= 24:
            self._slices.clear()
        self._slices[key] = (weakref.ref(array), out)
        return out

    # ------------------------------------------------------------------ cursor
    def set_cursor(self, ijk) -> None:
        """Move the crosshair to canonical voxel ``ijk`` (clipped to the volume)."""
        if self.volume is None:
            return
        ijk = np.clip(np.round(np.asarray(ijk, dtype=float)).astype(int), 0, np.array(self.volume.shape) - 1)
        new = tuple(int(v) for v in ijk)
        if new != self.cursor:
            self.cursor = new
            self._emit("cursor")

    def set_cursor_world(self, xyz) -> None:
        """Move the crosshair to the voxel nearest RAS point ``xyz`` (mm)."""
        if self.volume is not None:
            self.set_cursor(self.volume.world_to_voxel(np.asarray(xyz, dtype=float)))

    def step(self, axis: int, delta: int) -> None:
        """Move the crosshair ``delta`` voxels along canonical ``axis`` (slice stepping)."""
        ijk = list(self.cursor)
        ijk[axis] += delta
        self.set_cursor(ijk)

    def cursor_world(self) -> np.ndarray:
        """Crosshair position in RAS mm, shape ``(3,)``."""
        return self.volume.voxel_to_world(np.array(self.cursor, dtype=float))

    def cursor_value(self, modality: str | None = None) -> float | None:
        """Voxel value under the crosshair in ``modality`` (default: the shown one)."""
        vol = self.volume if modality is None else self.volumes.get(modality)
        if vol is None:
            return None
        if vol is not self.volume and modality not in self.grid_volumes():
            ijk = np.round(vol.world_to_voxel(self.cursor_world())).astype(int)
            if np.any(ijk < 0) or np.any(ijk >= np.array(vol.shape)):
                return None
            return float(vol.data[tuple(ijk)])
        return float(vol.data[self.cursor])

    def values_at_cursor(self) -> dict[str, float | None]:
        """Modality → intensity under the crosshair (``None`` outside that volume)."""
        return {m: self.cursor_value(m) for m in self.volumes}

    def native_index(self, modality: str | None = None) -> tuple[int, int, int] | None:
        """The crosshair as a voxel index in the grid of ``modality``'s own file (not the
        canonical common grid), or ``None`` when unknown or outside that file's grid."""
        m = modality or self.modality
        if self.volume is None or m not in self.native:
            return None
        affine, shape = self.native[m]
        ijk = np.round(np.linalg.solve(affine, np.append(self.cursor_world(), 1.0))[:3]).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= np.array(shape)):
            return None
        return tuple(int(v) for v in ijk)

    # ------------------------------------------------------------------ window
    @property
    def window(self) -> tuple[float, float]:
        """Display window ``(low, high)`` of the shown modality."""
        return self.window_of(self.modality)

    def window_of(self, modality: str | None) -> tuple[float, float]:
        """Display window ``(low, high)`` of ``modality``."""
        return self.windows.get(modality or "", (0.0, 1.0))

    def set_window(self, low: float, high: float, modality: str | None = None) -> None:
        """Set the display window of ``modality`` (default the shown one); ``high > low``."""
        if not (np.isfinite(low) and np.isfinite(high)):
            return
        if high <= low:
            high = low + 1e-6
        self.windows[modality or self.modality or ""] = (float(low), float(high))
        self._emit("window")

    def set_level_width(self, level: float, width: float, modality: str | None = None) -> None:
        """Set the window by centre (level) and width, in the image's units."""
        width = max(float(width), 1e-6)
        self.set_window(level - width / 2, level + width / 2, modality)

    def apply_window_preset(self, name: str, modality: str | None = None) -> None:
        """Set the window from a :data:`WINDOW_PRESETS` entry (percentiles of the volume)."""
        m = modality or self.modality
        vol = self.volumes.get(m) if m else None
        if vol is None:
            return
        self.default_window = name
        self.set_window(*self._preset_window(vol, name), m)

    @staticmethod
    def _preset_window(vol: Volume, name: str) -> tuple[float, float]:
        bounds = WINDOW_PRESETS.get(name, (0.5, 99.5))
        if bounds is None:
            finite = vol.data[np.isfinite(vol.data)] if vol.data.dtype.kind == "f" else vol.data
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            return (lo, hi) if hi > lo else (lo, lo + 1.0)
        return percentile_window(vol.data, *bounds)

    def auto_window(self) -> None:
        """Reset the window of the shown modality to the 0.5–99.5 percentiles."""
        self.apply_window_preset("0.5–99.5 %")

    # ------------------------------------------------------------------ overlays
    def set_overlay(self, overlay: np.ndarray | None) -> None:
        """Set the overlay map; it must have the displayed volume's shape.

        Raises:
            ValueError: shape mismatch.
        """
        if overlay is not None and self.volume is not None and overlay.shape != self.volume.shape:
            raise ValueError(f"overlay shape {overlay.shape} != volume shape {self.volume.shape}")
        self.overlay = overlay
        self._emit("overlay")

    def set_overlay_options(self, visible: bool | None = None, opacity: float | None = None,
                            cmap: str | None = None, threshold: float | None = None) -> None:
        """Change the Grad-CAM overlay's visibility, opacity [0, 1], colour map (a matplotlib
        name) or threshold [0, 1]."""
        if visible is not None:
            self.overlay_visible = bool(visible)
        if opacity is not None:
            self.opacity = float(np.clip(opacity, 0.0, 1.0))
        if cmap is not None:
            self.cmap = cmap
        if threshold is not None:
            self.threshold = float(np.clip(threshold, 0.0, 1.0))
        self._emit("overlay")

    def set_segmentation(self, labels: np.ndarray | None) -> None:
        """Set the label map (integer labels, 0 = background) on the displayed grid.

        Raises:
            ValueError: shape mismatch.
        """
        if labels is not None and self.volume is not None and labels.shape != self.volume.shape:
            raise ValueError(f"segmentation shape {labels.shape} != volume shape {self.volume.shape}")
        self.segmentation = None if labels is None else np.clip(np.rint(labels), 0, 255).astype(np.uint8)
        self._emit("segmentation")

    def set_segmentation_options(self, visible: bool | None = None, opacity: float | None = None) -> None:
        """Show/hide the segmentation or change its opacity [0, 1]."""
        if visible is not None:
            self.segmentation_visible = bool(visible)
        if opacity is not None:
            self.seg_opacity = float(np.clip(opacity, 0.0, 1.0))
        self._emit("segmentation")

    def set_segmentation_visible(self, visible: bool) -> None:
        """Show or hide the segmentation."""
        self.set_segmentation_options(visible=visible)

    def segmentation_labels(self) -> list[int]:
        """The label values present in the segmentation (without 0). Computed once per label
        map (``np.unique`` over a BraTS volume takes ~50 ms; the location panel asks on every
        cursor move)."""
        seg = self.segmentation
        if seg is None:
            return []
        if self._labels_of is None or self._labels_of[0] is not seg:
            self._labels_of = (seg, [int(v) for v in np.unique(seg) if v > 0])
        return list(self._labels_of[1])

    # ------------------------------------------------------------------ display
    def set_radiological(self, radiological: bool) -> None:
        """Radiological (patient's right on the screen's left) or neurological display."""
        self.radiological = bool(radiological)
        self._emit("convention")

    def set_layout(self, layout: str) -> None:
        """``"single"`` (one modality, three planes) or ``"grid"`` (modality × plane).

        Raises:
            ValueError: unknown layout.
        """
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if layout != self.layout:
            self.layout = layout
            self._emit("layout")

    def set_grid(self, grid: str) -> None:
        """Choose the common grid the shown case is loaded on (one of :data:`GRIDS`); the
        session reloads the case on it.

        Raises:
            ValueError: unknown grid.
        """
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
        if grid != self.grid:
            self.grid = grid
            self._emit("grid")
