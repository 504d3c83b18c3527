"""One anatomical plane: a pyqtgraph ``ViewBox`` with an ``ImageItem`` for the slice, one for the
segmentation and one for the Grad-CAM overlay, two ``InfiniteLine``s for the crosshair and
orientation letters at the edges. It reads and writes :class:`~mriviewer.app.viewer.ViewerState`
and holds no state of its own beyond what it draws.

Colour tables live in the items (``ImageItem.setLookupTable`` with fixed ``levels``): a redraw
hands pyqtgraph the scalar slice only, never an RGBA image computed in Python.

Mouse (as in FSLeyes, ITK-SNAP and Slicer): left click/drag moves the crosshair; wheel steps
slices; Ctrl+wheel zooms; middle drag pans; **right drag changes window/level** (horizontal =
width, vertical = level); double click resets the view.

Scene coordinates are millimetres on screen: x to the right, y downwards (the ViewBox is
Y-inverted), so a pixel ``(row, col)`` covers ``[col·dx, (col+1)·dx) × [row·dy, (row+1)·dy)``.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mriviewer.app.viewer import ViewerState
from mriviewer.core.colour import label_lut, overlay_lut
from mriviewer.core.planes import (
    orientation_letters,
    pixel_size_mm,
    plane_axes,
    plane_slice,
    screen_to_voxel,
    voxel_to_screen,
)

__all__ = ["SliceView", "WL_PIXELS"]

#: Pixels of right-drag that change the width by a factor e (and the level by one width).
WL_PIXELS = 200.0

#: The title's left margin and its least gap to the top orientation letter, in pixels.
_TITLE_X, _TITLE_GAP = 6.0, 8.0


class _SliceViewBox(pg.ViewBox):
    """ViewBox with the viewer's mouse bindings (see the module docstring)."""

    def __init__(self, owner: SliceView) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.owner = owner
        self._wl_start = None

    def wheelEvent(self, ev, axis=None):  # noqa: N802 (Qt naming)
        if ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        self.owner.step(1 if delta > 0 else -1)
        ev.accept()

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            if ev.double():
                self.owner.reset_view()
            else:
                self.owner.click_at(self.mapSceneToView(ev.scenePos()))
            ev.accept()
        elif ev.button() == QtCore.Qt.MouseButton.RightButton:
            ev.accept()  # no context menu: right drag is window/level
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        button = ev.button()
        if button == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.owner.click_at(self.mapSceneToView(ev.scenePos()))
        elif button == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            if ev.isStart():
                self._wl_start = self.owner.state.window_of(self.owner.modality)
            if self._wl_start is None:
                return
            d = ev.screenPos() - ev.buttonDownScreenPos()
            self.owner.drag_window(self._wl_start, d.x(), d.y())
            if ev.isFinish():
                self._wl_start = None
        elif button == QtCore.Qt.MouseButton.MiddleButton:
            ev.accept()
            tr = self.childGroup.transform()
            tr = pg.functions.invertQTransform(tr)
            delta = tr.map(ev.lastPos()) - tr.map(ev.pos())
            self.translateBy(x=delta.x(), y=delta.y())
        else:
            super().mouseDragEvent(ev, axis)


class _ScreenText(QtWidgets.QGraphicsSimpleTextItem):
    """Text at a fixed viewport position (scene coordinates of a pyqtgraph ``GraphicsView`` are
    viewport pixels). Keeps its anchor when the text changes."""

    def __init__(self, text: str, align, owner) -> None:
        super().__init__(text)
        self._anchor = (0.0, 0.0, "topleft")
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        # Rendered once into a pixmap, not laid out again at every repaint of the slice.
        self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def place(self, x: float, y: float, anchor: str) -> None:
        """Put the text at viewport ``(x, y)``, ``anchor`` saying which of its points is there."""
        self._anchor = (x, y, anchor)
        r = self.boundingRect()
        dx = {"left": 0, "right": -r.width(), "top": -r.width() / 2, "bottom": -r.width() / 2,
              "topleft": 0}[anchor]
        dy = {"left": -r.height() / 2, "right": -r.height() / 2, "top": 0, "bottom": -r.height(),
              "topleft": 0}[anchor]
        self.setPos(x + dx, y + dy)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt naming)
        if text != self.text():
            super().setText(text)
            self.place(*self._anchor)


class SliceView(QtWidgets.QWidget):
    """A single plane (``"axial"``, ``"coronal"`` or ``"sagittal"``) bound to a state.

    Args:
        plane: the anatomical plane.
        state: the viewer state it draws and edits.
        slot: ``None`` to show the state's current modality (single layout); an integer to show
            the slot-th modality of :meth:`ViewerState.grid_volumes` (grid layout).
    """

    def __init__(self, plane: str, state: ViewerState, slot: int | None = None, parent=None) -> None:
        super().__init__(parent)
        self.plane = plane
        self.state = state
        self.slot = slot
        self.active = True
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(120, 120)

        self.graphics = pg.GraphicsView(self)
        self.graphics.setBackground("k")
        # Repaint the whole viewport: with pyqtgraph's minimal updates, a crosshair line moving
        # over the margins around a narrow image left ghost segments there.
        self.graphics.setViewportUpdateMode(QtWidgets.QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.viewbox = _SliceViewBox(self)
        self.graphics.setCentralItem(self.viewbox)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.seg_item = pg.ImageItem(axisOrder="row-major")
        self.seg_item.setZValue(5)
        self.seg_item.setLookupTable(label_lut())
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(10)
        self._overlay_lut_key = None
        self.viewbox.addItem(self.image)
        self.viewbox.addItem(self.seg_item)
        self.viewbox.addItem(self.overlay)
        # The crosshair: plain Qt line items across the image (pyqtgraph's InfiniteLine recomputes
        # its bounds from the view at every move, a third of a redraw's cost).
        pen = pg.mkPen((0, 220, 0, 180), width=1)
        pen.setCosmetic(True)
        self.vline = QtWidgets.QGraphicsLineItem()
        self.hline = QtWidgets.QGraphicsLineItem()
        for line in (self.vline, self.hline):
            line.setPen(pen)
            line.setZValue(20)
            line.setVisible(False)
            self.viewbox.addItem(line, ignoreBounds=True)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

        self.title = self._label("", QtCore.Qt.AlignmentFlag.AlignLeft, small=True)
        self.letters = {side: self._label("", QtCore.Qt.AlignmentFlag.AlignCenter)
                        for side in ("left", "right", "top", "bottom")}
        self._shape_key = None
        self._pixel_mm = (1.0, 1.0)
        self._drawn_volume = None
        self._keys: dict[str, object] = {}  # what each layer shows now (see refresh_slice)

        for ev in ("volume", "convention"):
            state.on(ev, self.refresh)
        state.on("cursor", self.refresh_slice)
        state.on("window", self._update_levels)
        state.on("overlay", self._update_overlay)
        state.on("segmentation", self._update_segmentation)

    def _label(self, text: str, align, small: bool = False) -> _ScreenText:
        """Text fixed to the viewport (title, orientation letters): an item of the view's own
        scene, outside the ViewBox, so it is painted with the slice in one pass (child QLabels
        cost as much to repaint as the three planes)."""
        item = _ScreenText(text, align, self)
        font = QtGui.QFont()
        font.setBold(True)
        font.setPointSize(9 if small else 13)
        item.setFont(font)
        item.setBrush(QtGui.QColor("#ffd24d"))
        item.setZValue(1000)
        self.graphics.scene().addItem(item)
        return item

    # ------------------------------------------------------------------ what it shows
    @property
    def modality(self) -> str | None:
        """The modality this view shows (its grid slot's, or the state's)."""
        if self.slot is None:
            return self.state.modality
        names = list(self.state.grid_volumes())
        return names[self.slot] if self.slot < len(names) else None

    def shown_volume(self):
        """The volume this view draws (``None`` when its slot is empty)."""
        if self.slot is None:
            return self.state.volume
        m = self.modality
        return self.state.volumes.get(m) if m is not None else None

    def set_active(self, active: bool) -> None:
        """Inactive views (hidden by the layout) skip redraws; activating redraws."""
        self.active = bool(active)
        if self.active:
            self.refresh()

    # ------------------------------------------------------------------ layout
    def resizeEvent(self, ev):  # noqa: N802
        super().resizeEvent(ev)
        self._set_title()
        self._place_labels()

    def title_room(self) -> float:
        """Pixels the title may take: from its left margin to a gap before the top letter."""
        letter = self.letters["top"].boundingRect().width() or QtGui.QFontMetricsF(
            self.letters["top"].font()).horizontalAdvance("S")
        return self.graphics.width() / 2 - letter / 2 - _TITLE_X - _TITLE_GAP

    def _set_title(self) -> None:
        """``axial 88/155``; on two lines when one is too wide for the room left of the top
        letter, just ``88/155`` when even that is (measured in the title's font)."""
        vol = self.shown_volume()
        if vol is None:
            return
        if vol.is_2d:
            self.title.setText("2D image")
            return
        pos = f"{self.slice_index() + 1}/{vol.shape[self.slice_axis]}"
        metrics, room = QtGui.QFontMetricsF(self.title.font()), self.title_room()
        for text in (f"{self.plane} {pos}", f"{self.plane}\n{pos}", pos):
            if max(metrics.horizontalAdvance(line) for line in text.split("\n")) <= room:
                break
        self.title.setText(text)

    def _place_labels(self) -> None:
        """Letters at the middle of each edge, the title at the top left."""
        w, h = self.graphics.width(), self.graphics.height()
        self.letters["left"].place(4, h / 2, "left")
        self.letters["right"].place(w - 4, h / 2, "right")
        self.letters["top"].place(w / 2, 2, "top")
        self.letters["bottom"].place(w / 2, h - 2, "bottom")
        self.title.place(_TITLE_X, 4, "topleft")

    # ------------------------------------------------------------------ interaction
    @property
    def slice_axis(self) -> int:
        """The canonical axis this plane's slices are taken along."""
        return plane_axes(self.plane)[0]

    def slice_index(self) -> int:
        """The slice shown: the crosshair's index along :attr:`slice_axis`."""
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

    def drag_window(self, start: tuple[float, float], dx: float, dy: float) -> None:
        """Window/level from a right drag of ``(dx, dy)`` screen pixels since ``start`` (the
        window when the drag began): the width scales by ``exp(dx / WL_PIXELS)``, the level moves
        down by ``dy / WL_PIXELS`` widths (dragging up brightens, as in Slicer)."""
        low, high = start
        width0, level0 = high - low, (high + low) / 2
        width = width0 * math.exp(dx / WL_PIXELS)
        level = level0 + dy * width0 / WL_PIXELS
        self.state.set_level_width(level, width, self.modality)

    def reset_view(self) -> None:
        """Fit the slice to the view (undo zoom and pan)."""
        self._shape_key = None
        self.refresh_slice(reset_range=True)

    def keyPressEvent(self, ev):  # noqa: N802
        key = ev.key()
        if key in (QtCore.Qt.Key.Key_Up, QtCore.Qt.Key.Key_PageUp):
            self.step(1)
        elif key in (QtCore.Qt.Key.Key_Down, QtCore.Qt.Key.Key_PageDown):
            self.step(-1)
        else:
            super().keyPressEvent(ev)

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        """Redraw everything (new volume, modality or convention)."""
        if not self.active:
            return
        self._keys.clear()
        vol = self.shown_volume()
        if vol is None:
            self.image.clear()
            self.overlay.clear()
            self.seg_item.clear()
            for lab in self.letters.values():
                lab.setText("")
            self.vline.setVisible(False)
            self.hline.setVisible(False)
            self.title.setText(self.plane if self.slot is None else "")
            return
        is_2d = vol.is_2d
        letters = orientation_letters(self.plane, self.state.radiological)
        for side, lab in self.letters.items():
            lab.setText("" if is_2d else letters[side])
        self._pixel_mm = pixel_size_mm(self.plane, vol.spacing)
        self.refresh_slice(reset_range=True)

    def refresh_slice(self, reset_range: bool = False) -> None:
        """Redraw the slice, overlays and crosshair at the current cursor. A layer is sliced
        again only when its array, this plane's slice index or the convention changed (a click
        in this plane only moves the crosshair)."""
        if not self.active:
            return
        vol = self.shown_volume()
        if vol is None:
            return
        if vol.shape != self.state.volume.shape:  # a native-grid modality in the grid: not linked
            return
        index, radiological = self.slice_index(), self.state.radiological
        dy, dx = self._pixel_mm
        key = (id(vol.data), index, radiological)
        if key != self._keys.get("image") or reset_range:
            img = plane_slice(vol.data, self.plane, index, radiological)
            if img.dtype != np.float32:
                img = img.astype(np.float32)
            self.image.setImage(img, autoLevels=False, levels=self.state.window_of(self.modality))
            self._keys["image"] = key
            rect = QtCore.QRectF(0, 0, img.shape[1] * dx, img.shape[0] * dy)
            if self._drawn_volume is not vol or reset_range:
                self.image.setRect(rect)
            shape_key = (vol.shape, self.plane, self._pixel_mm)
            if reset_range or shape_key != self._shape_key:
                self._shape_key = shape_key
                self.viewbox.setRange(rect, padding=0.02)
            self._drawn_volume = vol
            self._set_title()
        self._update_overlay()
        self._update_segmentation()
        row, col = voxel_to_screen(self.plane, self.state.cursor, vol.shape, radiological)
        _, r_axis, c_axis = plane_axes(self.plane)
        width, height = vol.shape[c_axis] * dx, vol.shape[r_axis] * dy
        pos = ((col + 0.5) * dx, (row + 0.5) * dy, width, height, not vol.is_2d)
        if pos != self._keys.get("cross"):
            self._keys["cross"] = pos
            x, y = pos[0], pos[1]
            self.vline.setLine(x, 0.0, x, height)
            self.hline.setLine(0.0, y, width, y)
            self.vline.setVisible(pos[4])
            self.hline.setVisible(pos[4])

    def _update_levels(self) -> None:
        if self.active and self.shown_volume() is not None:
            self.image.setLevels(self.state.window_of(self.modality))

    def _draw_layer(self, name: str, item: pg.ImageItem, volume, visible: bool, levels) -> None:
        """Draw this plane's slice of an ``(I, J, K)`` layer through the item's lookup table,
        or hide the item; nothing is redone when the layer's slice is the one drawn."""
        vol = self.shown_volume()
        if vol is None or volume is None or not visible or volume.shape != vol.shape:
            if self._keys.get(name) is not None:
                item.clear()
                item.setVisible(False)
                self._keys[name] = None
            return
        key = (id(volume), self.slice_index(), self.state.radiological, self._pixel_mm)
        if key == self._keys.get(name):
            return
        values = self.state.layer_slice(volume, self.plane, self.slice_index())
        item.setImage(values, autoLevels=False, levels=levels)
        dy, dx = self._pixel_mm
        item.setRect(QtCore.QRectF(0, 0, values.shape[1] * dx, values.shape[0] * dy))
        item.setVisible(True)
        self._keys[name] = key

    def _update_overlay(self) -> None:
        if not self.active:
            return
        st = self.state
        key = (st.cmap, round(st.threshold, 4))
        # The table (matplotlib's colormap, a 0.5 s import) is built once there is a map to show.
        if key != self._overlay_lut_key and st.overlay is not None:
            self._overlay_lut_key = key
            self.overlay.setLookupTable(overlay_lut(st.cmap, st.threshold))
        if self.overlay.opacity() != st.opacity:
            self.overlay.setOpacity(st.opacity)
        self._draw_layer("overlay", self.overlay, st.overlay, st.overlay_visible, (0.0, 1.0))

    def _update_segmentation(self) -> None:
        if not self.active:
            return
        st = self.state
        if self.seg_item.opacity() != st.seg_opacity:
            self.seg_item.setOpacity(st.seg_opacity)
        self._draw_layer("segmentation", self.seg_item, st.segmentation, st.segmentation_visible, (0, 255))

    def grab_image(self) -> QtGui.QImage:
        """The view as an image."""
        return self.grab().toImage()
