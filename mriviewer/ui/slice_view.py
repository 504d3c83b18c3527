"""One anatomical plane of the ortho viewer: pyqtgraph ``ViewBox`` with an ``ImageItem`` for the
slice, another for the overlay, two ``InfiniteLine``s for the crosshair, and orientation letters
at the edges. It reads and writes :class:`~mriviewer.viewstate.ViewerState`; it holds no state
of its own beyond what it draws.

Scene coordinates are millimetres on screen: x to the right, y downwards (the ViewBox is
Y-inverted), so a pixel ``(row, col)`` covers ``[col·dx, (col+1)·dx) × [row·dy, (row+1)·dy)``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ..display import (
    label_rgba,
    orientation_letters,
    overlay_rgba,
    pixel_size_mm,
    plane_axes,
    plane_slice,
    screen_to_voxel,
    voxel_to_screen,
)
from ..viewstate import ViewerState

__all__ = ["SliceView"]


class _SliceViewBox(pg.ViewBox):
    """ViewBox whose wheel steps slices (Ctrl+wheel zooms) and whose left click/drag moves the
    crosshair; right-drag zooms and middle-drag pans as in pyqtgraph."""

    def __init__(self, owner: SliceView) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.owner = owner

    def wheelEvent(self, ev, axis=None):  # noqa: N802 (Qt naming)
        if ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        self.owner.step(1 if delta > 0 else -1)
        ev.accept()

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self.owner.click_at(self.mapSceneToView(ev.scenePos()))
            ev.accept()
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.owner.click_at(self.mapSceneToView(ev.scenePos()))
        else:
            super().mouseDragEvent(ev, axis)


class SliceView(QtWidgets.QWidget):
    """A single plane (``"axial"``, ``"coronal"`` or ``"sagittal"``) bound to a state."""

    def __init__(self, plane: str, state: ViewerState, parent=None) -> None:
        super().__init__(parent)
        self.plane = plane
        self.state = state
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(160, 160)

        self.graphics = pg.GraphicsView(self)
        self.graphics.setBackground("k")
        self.viewbox = _SliceViewBox(self)
        self.graphics.setCentralItem(self.viewbox)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(10)
        self.seg_item = pg.ImageItem(axisOrder="row-major")
        self.seg_item.setZValue(5)
        self.viewbox.addItem(self.image)
        self.viewbox.addItem(self.seg_item)
        self.viewbox.addItem(self.overlay)
        pen = pg.mkPen((0, 220, 0, 180), width=1)
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        self.hline = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        for line in (self.vline, self.hline):
            line.setZValue(20)
            self.viewbox.addItem(line, ignoreBounds=True)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

        self.title = self._label("", QtCore.Qt.AlignmentFlag.AlignLeft, small=True)
        self.letters = {side: self._label("", QtCore.Qt.AlignmentFlag.AlignCenter) for side in ("left", "right", "top", "bottom")}
        self._shape_key = None
        self._pixel_mm = (1.0, 1.0)

        for ev in ("volume", "convention"):
            state.on(ev, self.refresh)
        state.on("cursor", self.refresh_slice)
        state.on("window", self._update_levels)
        state.on("overlay", self._update_overlay)
        state.on("segmentation", self._update_segmentation)

    def _label(self, text: str, align, small: bool = False) -> QtWidgets.QLabel:
        lab = QtWidgets.QLabel(text, self)
        lab.setAlignment(align)
        lab.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        size = 9 if small else 13
        lab.setStyleSheet(f"color: #ffd24d; font-weight: bold; font-size: {size}pt; background: transparent;")
        return lab

    # ------------------------------------------------------------------ layout
    def resizeEvent(self, ev):  # noqa: N802
        super().resizeEvent(ev)
        w, h = self.width(), self.height()
        s = 24
        self.letters["left"].setGeometry(2, h // 2 - s // 2, s, s)
        self.letters["right"].setGeometry(w - s - 2, h // 2 - s // 2, s, s)
        self.letters["top"].setGeometry(w // 2 - s // 2, 2, s, s)
        self.letters["bottom"].setGeometry(w // 2 - s // 2, h - s - 2, s, s)
        self.title.setGeometry(6, 4, w // 2 - 20, 20)

    # ------------------------------------------------------------------ geometry
    @property
    def slice_axis(self) -> int:
        return plane_axes(self.plane)[0]

    def slice_index(self) -> int:
        return int(self.state.cursor[self.slice_axis])

    def step(self, delta: int) -> None:
        """Move the slice ``delta`` voxels along this plane's slice axis (towards S, A or R for
        positive delta)."""
        self.state.step(self.slice_axis, delta)

    def click_at(self, point: QtCore.QPointF) -> None:
        """Move the crosshair to a point in scene millimetres."""
        vol = self.state.volume
        if vol is None:
            return
        dy, dx = self._pixel_mm
        row, col = np.floor(point.y() / dy), np.floor(point.x() / dx)  # the pixel under the point
        ijk = screen_to_voxel(self.plane, row, col, self.slice_index(), vol.shape, self.state.radiological)
        self.state.set_cursor(ijk)

    def keyPressEvent(self, ev):  # noqa: N802
        key = ev.key()
        if key in (QtCore.Qt.Key.Key_Up, QtCore.Qt.Key.Key_PageUp, QtCore.Qt.Key.Key_Right):
            self.step(1)
        elif key in (QtCore.Qt.Key.Key_Down, QtCore.Qt.Key.Key_PageDown, QtCore.Qt.Key.Key_Left):
            self.step(-1)
        else:
            super().keyPressEvent(ev)

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        """Redraw everything (new volume or convention)."""
        vol = self.state.volume
        is_2d = vol is not None and vol.is_2d
        visible = vol is not None and (not is_2d or self.plane == "axial")
        self.setVisible(visible or vol is None)
        if vol is None:
            self.image.clear()
            self.overlay.clear()
            for lab in self.letters.values():
                lab.setText("")
            self.title.setText(self.plane)
            return
        letters = orientation_letters(self.plane, self.state.radiological)
        for side, lab in self.letters.items():
            lab.setText("" if is_2d else letters[side])
        self._pixel_mm = pixel_size_mm(self.plane, vol.spacing)
        self.refresh_slice(reset_range=True)

    def refresh_slice(self, reset_range: bool = False) -> None:
        """Redraw the slice, overlay and crosshair at the current cursor."""
        vol = self.state.volume
        if vol is None:
            return
        img = plane_slice(vol.data, self.plane, self.slice_index(), self.state.radiological)
        if img.dtype != np.float32:
            img = img.astype(np.float32)
        self.image.setImage(img, autoLevels=False, levels=self.state.window)
        dy, dx = self._pixel_mm
        rect = QtCore.QRectF(0, 0, img.shape[1] * dx, img.shape[0] * dy)
        self.image.setRect(rect)
        key = (vol.shape, self.plane, self._pixel_mm)
        if reset_range or key != self._shape_key:
            self._shape_key = key
            self.viewbox.setRange(rect, padding=0.02)
        self._update_overlay(redraw_only=True)
        self._update_segmentation()
        row, col = voxel_to_screen(self.plane, self.state.cursor, vol.shape, self.state.radiological)
        self.vline.setPos((col + 0.5) * dx)
        self.hline.setPos((row + 0.5) * dy)
        self.vline.setVisible(not vol.is_2d)
        self.hline.setVisible(not vol.is_2d)
        n = vol.shape[self.slice_axis]
        self.title.setText(f"{self.plane}  {self.slice_index() + 1}/{n}" if not vol.is_2d else "2D image")

    def _update_levels(self) -> None:
        if self.state.volume is not None:
            self.image.setLevels(self.state.window)

    def _draw_layer(self, item: pg.ImageItem, volume, visible: bool, colour) -> None:
        """Draw this plane's slice of an ``(I, J, K)`` layer as RGBA (``colour`` maps a 2D slice
        to RGBA uint8), or hide the item."""
        if self.state.volume is None or volume is None or not visible:
            item.clear()
            item.setVisible(False)
            return
        values = plane_slice(volume, self.plane, self.slice_index(), self.state.radiological)
        item.setImage(colour(values), autoLevels=False, levels=(0, 255))
        dy, dx = self._pixel_mm
        item.setRect(QtCore.QRectF(0, 0, values.shape[1] * dx, values.shape[0] * dy))
        item.setVisible(True)

    def _update_overlay(self, redraw_only: bool = False) -> None:
        st = self.state
        self._draw_layer(self.overlay, st.overlay, st.overlay_visible,
                         lambda v: overlay_rgba(v, st.cmap, st.opacity))

    def _update_segmentation(self) -> None:
        st = self.state
        self._draw_layer(self.seg_item, st.segmentation, st.segmentation_visible, label_rgba)

    def grab_image(self) -> QtGui.QImage:
        return self.grab().toImage()
