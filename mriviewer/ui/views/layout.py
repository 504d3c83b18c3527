"""The views area: the single layout (one modality in three large planes and a cursor panel)
or the grid layout (every modality × plane, one crosshair in patient millimetres). A 2D image
fills the whole area. Views not shown are deactivated so they cost nothing."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import qthrottled

from mriviewer.app import presenters
from mriviewer.app.viewer import ViewerState
from mriviewer.core.colour import colormap_lut
from mriviewer.core.planes import PLANES
from mriviewer.ui.views.slice_view import SliceView

__all__ = ["ViewerLayout", "CursorPanel", "MAX_GRID_MODALITIES"]

#: Rows of the modality × plane grid.
MAX_GRID_MODALITIES = 4


class CursorPanel(QtWidgets.QWidget):
    """The location panel (FSLeyes' idea): the crosshair in RAS mm, and for every modality its
    intensity and the voxel index in its own file's grid; the Grad-CAM value and the
    segmentation label under the cursor; the segmentation legend and the Grad-CAM colour bar."""

    def __init__(self, state: ViewerState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.text = QtWidgets.QLabel("")
        self.text.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.text.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        self.text.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.legend = QtWidgets.QLabel("")
        self.legend.setWordWrap(True)
        for lab in (self.text, self.legend):
            lab.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.colorbar = QtWidgets.QLabel()
        self.colorbar.setFixedHeight(14)
        self.colorbar.setScaledContents(True)
        self.colorbar_caption = QtWidgets.QLabel("")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(self.text)
        lay.addStretch(1)
        lay.addWidget(self.legend)
        lay.addWidget(self.colorbar_caption)
        lay.addWidget(self.colorbar)
        # A readout at most every 50 ms (superqt's throttle; the last position always shows):
        # rich-text layout costs more than redrawing three planes.
        self._throttled = qthrottled(self.refresh, timeout=50, leading=True, parent=self)
        for ev in ("cursor", "volume", "overlay", "segmentation"):
            state.on(ev, self._throttled)
        self._cbar_key = None

    def refresh(self) -> None:
        """Show the readout, legend and colour bar for the current state (when visible)."""
        st = self.state
        if not self.isVisible() or st.volume is None:
            if st.volume is None:
                self.text.setText("")
            return
        self.text.setText(presenters.readout_html(st))
        self.legend.setText(presenters.legend_html(st.segmentation_labels() if st.segmentation_visible else []))
        show_cam = st.overlay is not None and st.overlay_visible
        self.colorbar.setVisible(show_cam)
        self.colorbar_caption.setVisible(show_cam)
        if show_cam:
            key = (st.cmap, st.threshold)
            if key != self._cbar_key:
                self._cbar_key = key
                lut = colormap_lut(st.cmap)[:, :3].copy()
                img = QtGui.QImage(lut.tobytes(), 256, 1, 3 * 256, QtGui.QImage.Format.Format_RGB888).copy()
                self.colorbar.setPixmap(QtGui.QPixmap.fromImage(img))
            self.colorbar_caption.setText(presenters.colorbar_caption(st.threshold))


class ViewerLayout(QtWidgets.QWidget):
    """Holds every view and arranges those the state's layout shows."""

    def __init__(self, state: ViewerState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.views = {p: SliceView(p, state) for p in PLANES}
        self.grid_views = {(r, p): SliceView(p, state, slot=r)
                           for r in range(MAX_GRID_MODALITIES) for p in PLANES}
        for v in self.grid_views.values():
            v.active = False
        self.cursor_panel = CursorPanel(state)
        self.row_labels = [self._row_label() for _ in range(MAX_GRID_MODALITIES)]
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(3)
        self._arranged = None
        state.on("layout", self.arrange)
        state.on("volume", self.arrange)

    @staticmethod
    def _row_label() -> QtWidgets.QLabel:
        lab = QtWidgets.QLabel("")
        lab.setStyleSheet("font-weight: bold;")
        lab.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        lab.setMinimumWidth(24)
        return lab

    def all_views(self) -> list[SliceView]:
        """The single layout's views and the grid's."""
        return list(self.views.values()) + list(self.grid_views.values())

    def shown_views(self) -> list[SliceView]:
        """The views the current layout shows."""
        return [v for v in self.all_views() if v.active and v.isVisible()]

    def arrange(self) -> None:
        """Place the views of the current layout; deactivate the others."""
        st = self.state
        vol = st.volume
        is_2d = vol is not None and vol.is_2d
        grid_names = list(st.grid_volumes()) if st.layout == "grid" and not is_2d else []
        key = ("2d",) if is_2d else (st.layout, tuple(grid_names))
        if key == self._arranged:
            return
        self._arranged = key
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget() is not None:
                item.widget().setVisible(False)
        for r in range(4):
            self._grid.setRowStretch(r, 0)
        for c in range(4):
            self._grid.setColumnStretch(c, 0)
        shown: list[QtWidgets.QWidget] = []
        if is_2d:
            self._grid.addWidget(self.views["axial"], 0, 0)
            self._grid.setRowStretch(0, 1)
            self._grid.setColumnStretch(0, 1)
            shown = [self.views["axial"]]
        elif st.layout == "grid" and grid_names:
            for r, name in enumerate(grid_names[:MAX_GRID_MODALITIES]):
                self.row_labels[r].setText("\n".join(name) if len(name) <= 5 else name)
                self._grid.addWidget(self.row_labels[r], r, 0)
                self._grid.setRowStretch(r, 1)
                shown.append(self.row_labels[r])
                for c, plane in enumerate(PLANES):
                    v = self.grid_views[(r, plane)]
                    self._grid.addWidget(v, r, c + 1)
                    shown.append(v)
            for c in range(3):
                self._grid.setColumnStretch(c + 1, 1)
        else:
            self._grid.addWidget(self.views["axial"], 0, 0)
            self._grid.addWidget(self.views["coronal"], 0, 1)
            self._grid.addWidget(self.views["sagittal"], 1, 0)
            self._grid.addWidget(self.cursor_panel, 1, 1)
            for i in range(2):
                self._grid.setRowStretch(i, 1)
                self._grid.setColumnStretch(i, 1)
            shown = [self.views[p] for p in PLANES] + [self.cursor_panel]
        for w in shown:
            w.setVisible(True)
        for v in self.all_views():
            should = v in shown
            if should != v.active:
                v.set_active(should)
        if self.cursor_panel in shown:
            self.cursor_panel.refresh()

    def grab_layout(self) -> QtGui.QImage:
        """The views area as an image (for File ▸ Save screenshot)."""
        return self.grab().toImage()
