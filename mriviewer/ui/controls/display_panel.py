"""Display controls bound to :class:`~mriviewer.app.viewer.ViewerState`: layout, modality,
window/level (level and width boxes, a pyqtgraph ``HistogramLUTItem`` of the whole volume with
draggable levels, presets, reset) and the overlays (Grad-CAM: toggle, colour map, opacity,
threshold; segmentation: toggle, opacity).

The histogram's gradient (its colour bar) is hidden: the slices are greyscale. Its right-click
colour-map menu is never built (:func:`_histogram_widget`): pyqtgraph fills that menu with every
matplotlib map, importing matplotlib, which cost about a second at every window's start."""

from __future__ import annotations

import contextlib

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from mriviewer.app.viewer import WINDOW_PRESETS, ViewerState

__all__ = ["DisplayPanel", "CMAPS"]

#: Colour maps offered for Grad-CAM (matplotlib names).
CMAPS = ("inferno", "jet", "hot", "viridis", "magma")

#: Voxels sampled for the histogram (evenly strided), enough for its shape, cheap to bin.
HIST_SAMPLES = 200_000


class _NoColorMapMenu(QtWidgets.QMenu):
    """Stands in for pyqtgraph's ``ColorMapMenu`` on the hidden gradient: the same signal,
    no entries."""

    sigColorMapTriggered = QtCore.Signal(object)

    def __init__(self, *_, **__) -> None:
        super().__init__()


@contextlib.contextmanager
def _without_colormap_menu():
    """While a ``GradientEditorItem`` is built: its ``ColorMapMenu`` is :class:`_NoColorMapMenu`
    (GUI thread only, restored at once; a pyqtgraph without that name builds its own)."""
    from pyqtgraph.graphicsItems import GradientEditorItem as module

    real = getattr(module, "ColorMapMenu", None)
    if real is None:
        yield
        return
    module.ColorMapMenu = _NoColorMapMenu
    try:
        yield
    finally:
        module.ColorMapMenu = real


def _histogram_widget() -> pg.HistogramLUTWidget:
    """The whole volume's histogram with draggable levels, its gradient hidden and without the
    gradient's colour-map menu (see the module docstring)."""
    with _without_colormap_menu():
        hist = pg.HistogramLUTWidget(orientation="horizontal", gradientPosition="bottom")
    hist.item.gradient.hide()  # greyscale; the widget is for the histogram and levels
    return hist


class DisplayPanel(QtWidgets.QWidget):
    """Layout, window/level and overlay controls of the viewer."""

    def __init__(self, state: ViewerState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self._syncing = False
        self._hist_volume = None
        self._build_view_controls()
        self._build_window_controls()
        self._build_overlay_controls()
        self._build_form()
        state.on("volume", self._volume_changed)
        state.on("window", self._sync_window)
        state.on("overlay", self._sync_overlay)
        state.on("segmentation", self._sync_overlay)
        state.on("layout", self._sync_layout)
        state.on("convention", self._sync_layout)
        self._volume_changed()

    def _build_view_controls(self) -> None:
        """Layout and display convention."""
        state = self.state
        self.layout_combo = QtWidgets.QComboBox()
        self.layout_combo.addItem("One modality, three planes", "single")
        self.layout_combo.addItem("All modalities × planes", "grid")
        self.layout_combo.currentIndexChanged.connect(lambda _: state.set_layout(self.layout_combo.currentData()))
        self.convention = QtWidgets.QComboBox()
        self.convention.addItems(["Radiological", "Neurological"])
        self.convention.setToolTip("Radiological: the patient's right on the screen's left; "
                                   "neurological: left on left")
        self.convention.currentIndexChanged.connect(lambda i: state.set_radiological(i == 0))

    def _build_window_controls(self) -> None:
        """Level and width boxes, presets, reset and the whole volume's histogram."""
        state = self.state
        self.level_spin = QtWidgets.QDoubleSpinBox(decimals=1, minimum=-1e7, maximum=1e7)
        self.width_spin = QtWidgets.QDoubleSpinBox(decimals=1, minimum=1e-3, maximum=2e7)
        for w in (self.level_spin, self.width_spin):
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self._window_edited)
        self.preset_combo = QtWidgets.QComboBox()
        self.preset_combo.addItem("Preset…", None)
        for name in WINDOW_PRESETS:
            self.preset_combo.addItem(name, name)
        self.preset_combo.activated.connect(self._preset_chosen)
        self.reset_button = QtWidgets.QPushButton("Reset")
        self.reset_button.setToolTip("0.5–99.5 percentile window (W)")
        self.reset_button.clicked.connect(state.auto_window)
        self.hist = _histogram_widget()
        self.hist.setMinimumHeight(110)
        self.hist.setMaximumHeight(130)
        self._hist_image = pg.ImageItem(axisOrder="row-major")  # whole-volume sample, never drawn
        self.hist.item.setImageItem(self._hist_image)
        self.hist.item.sigLevelsChanged.connect(self._hist_levels_changed)
        self.modality_caption = QtWidgets.QLabel("")

    def _build_overlay_controls(self) -> None:
        """Grad-CAM: toggle, colour map, opacity, threshold; segmentation: toggle, opacity."""
        state = self.state
        self.cam_check = QtWidgets.QCheckBox("Grad-CAM")
        self.cam_check.setChecked(state.overlay_visible)
        self.cam_check.setToolTip("Show the Grad-CAM map (G)")
        self.cam_check.toggled.connect(lambda v: state.set_overlay_options(visible=v))
        self.cmap_combo = QtWidgets.QComboBox()
        self.cmap_combo.addItems(CMAPS)
        self.cmap_combo.currentTextChanged.connect(lambda c: state.set_overlay_options(cmap=c))
        self.opacity = self._slider(int(state.opacity * 100),
                                    lambda v: state.set_overlay_options(opacity=v / 100))
        self.threshold = self._slider(int(state.threshold * 100),
                                      lambda v: state.set_overlay_options(threshold=v / 100))
        self.threshold.setToolTip("Grad-CAM values below this are not drawn")
        self.seg_check = QtWidgets.QCheckBox("Segmentation")
        self.seg_check.setChecked(state.segmentation_visible)
        self.seg_check.setToolTip("Show the case's tumour mask (BraTS seg / GT_W), nearest-neighbour "
                                  "on the viewer's grid (S)")
        self.seg_check.toggled.connect(lambda v: state.set_segmentation_options(visible=v))
        self.seg_opacity = self._slider(int(state.seg_opacity * 100),
                                        lambda v: state.set_segmentation_options(opacity=v / 100))

    def _build_form(self) -> None:
        form = QtWidgets.QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        form.addRow("Layout", self.layout_combo)
        form.addRow("Convention", self.convention)
        wl = QtWidgets.QHBoxLayout()
        wl.addWidget(QtWidgets.QLabel("L"))
        wl.addWidget(self.level_spin, 1)
        wl.addWidget(QtWidgets.QLabel("W"))
        wl.addWidget(self.width_spin, 1)
        form.addRow("Window", wl)
        pr = QtWidgets.QHBoxLayout()
        pr.addWidget(self.preset_combo, 1)
        pr.addWidget(self.reset_button)
        form.addRow(self.modality_caption, pr)
        form.addRow(self.hist)
        cam = QtWidgets.QHBoxLayout()
        cam.addWidget(self.cam_check)
        cam.addWidget(self.cmap_combo, 1)
        form.addRow(cam)
        form.addRow("  opacity", self.opacity)
        form.addRow("  threshold", self.threshold)
        form.addRow(self.seg_check)
        form.addRow("  opacity", self.seg_opacity)

    @staticmethod
    def _slider(value: int, slot) -> QtWidgets.QSlider:
        s = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, minimum=0, maximum=100, value=value)
        s.valueChanged.connect(slot)
        return s

    # ------------------------------------------------------------------ state → widgets
    def _volume_changed(self) -> None:
        st = self.state
        vol = st.volume
        enabled = vol is not None
        for w in (self.level_spin, self.width_spin, self.preset_combo, self.reset_button, self.hist):
            w.setEnabled(enabled)
        if vol is None:
            self.modality_caption.setText("")
            for w in (self.level_spin, self.width_spin):
                w.blockSignals(True)
                w.setValue(0.0 if w is self.level_spin else 1.0)
                w.setSpecialValueText("—")
                w.setValue(w.minimum())
                w.blockSignals(False)
            return
        for w in (self.level_spin, self.width_spin):
            w.setSpecialValueText("")
        self.modality_caption.setText(st.modality or "")
        if self._hist_volume is not vol:
            self._hist_volume = vol
            data = vol.data.reshape(-1)
            step = max(1, data.size // HIST_SAMPLES)
            sample = np.asarray(data[::step], dtype=np.float32)
            sample = sample[np.isfinite(sample)]
            side = int(np.sqrt(max(sample.size, 1)))
            img = sample[: side * side].reshape(side, side) if side else np.zeros((1, 1), np.float32)
            self._syncing = True
            self._hist_image.setImage(img, autoLevels=False, levels=st.window)
            self.hist.item.setHistogramRange(float(img.min()), float(img.max()))
            self._syncing = False
        self._sync_window()

    def _sync_window(self) -> None:
        if self.state.volume is None:
            return
        low, high = self.state.window
        self._syncing = True
        for w in (self.level_spin, self.width_spin):
            w.blockSignals(True)
        self.level_spin.setValue((low + high) / 2)
        self.width_spin.setValue(high - low)
        step = max((high - low) / 100, 0.1)
        self.level_spin.setSingleStep(step)
        self.width_spin.setSingleStep(step)
        for w in (self.level_spin, self.width_spin):
            w.blockSignals(False)
        self.hist.item.setLevels(low, high)
        self._syncing = False

    def _sync_overlay(self) -> None:
        st = self.state
        for w, v in ((self.cam_check, st.overlay_visible), (self.seg_check, st.segmentation_visible)):
            if w.isChecked() != v:
                w.blockSignals(True)
                w.setChecked(v)
                w.blockSignals(False)
        self.cam_check.setText("Grad-CAM" if st.overlay is not None else "Grad-CAM (none yet)")
        self.seg_check.setText("Segmentation" if st.segmentation is not None else "Segmentation (none)")

    def _sync_layout(self) -> None:
        i = self.layout_combo.findData(self.state.layout)
        if i >= 0 and i != self.layout_combo.currentIndex():
            self.layout_combo.blockSignals(True)
            self.layout_combo.setCurrentIndex(i)
            self.layout_combo.blockSignals(False)
        conv = 0 if self.state.radiological else 1
        if self.convention.currentIndex() != conv:
            self.convention.blockSignals(True)
            self.convention.setCurrentIndex(conv)
            self.convention.blockSignals(False)

    # ------------------------------------------------------------------ widgets → state
    def _window_edited(self) -> None:
        self.state.set_level_width(self.level_spin.value(), self.width_spin.value())

    def _hist_levels_changed(self, *_) -> None:
        if self._syncing or self.state.volume is None:
            return
        low, high = self.hist.item.getLevels()
        self.state.set_window(low, high)

    def _preset_chosen(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name:
            self.state.apply_window_preset(name)
        self.preset_combo.setCurrentIndex(0)
