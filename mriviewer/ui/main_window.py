"""The main window: binds the Qt-free :class:`~mriviewer.app.model.AppModel` (dataset, case,
checkpoint, predictions, Grad-CAM, training run) and :class:`~mriviewer.app.viewer.ViewerState`
(what is shown and how) to the views and controls. It holds no working state of its own.

Docks: Cases (left), Display (left, below), Prediction and Train (right). All slow work
(loading, training, prediction, Grad-CAM, reports) runs in workers; every worker's error goes
to :meth:`AppModel.report_error`, shown here in one non-modal message naming the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import qthrottled

from mriviewer import RESEARCH_ONLY, __version__
from mriviewer.app.model import AppModel, runs_dir
from mriviewer.app.viewer import ViewerState
from mriviewer.cache.memory import default_cache
from mriviewer.core.errors import MriViewerError
from mriviewer.core.resample import resample_to_grid
from mriviewer.core.volume import MODALITIES, same_grid
from mriviewer.data.cases import Case
from mriviewer.ml.events import EpochEvent, TrainResult
from mriviewer.ui import settings as app_settings
from mriviewer.ui.actions import ActionRegistry, ShortcutsDialog
from mriviewer.ui.controls.case_browser import CaseBrowser
from mriviewer.ui.controls.display_panel import DisplayPanel
from mriviewer.ui.controls.train_panel import TrainPanel
from mriviewer.ui.views.layout import ViewerLayout
from mriviewer.ui.workers import WorkerPool

log = logging.getLogger(__name__)

__all__ = ["MainWindow", "runs_dir", "LabelledFoldersDialog"]


class MainWindow(QtWidgets.QMainWindow):
    """mriviewer's main window.

    Signals (for scripting and tests): ``dataset_opened``, ``volume_shown(case_id)``,
    ``training_finished(object)`` (a TrainResult), ``predictions_ready``,
    ``gradcam_ready(case_id)``, ``error_shown(str)``, ``batch_finished(object)`` (an
    :class:`~mriviewer.reporting.batch.ExportSummary`).
    """

    dataset_opened = QtCore.Signal()
    volume_shown = QtCore.Signal(str)
    training_finished = QtCore.Signal(object)
    predictions_ready = QtCore.Signal()
    gradcam_ready = QtCore.Signal(str)
    error_shown = QtCore.Signal(str)
    batch_finished = QtCore.Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"mriviewer {__version__} — {RESEARCH_ONLY}")
        self.resize(1500, 950)
        self.model = AppModel()
        self.state = ViewerState()
        self.cache = default_cache()
        self.workers = WorkerPool(owner=self)
        self._load_token = 0
        self._cam_token = 0
        self._messages: list[QtWidgets.QMessageBox] = []
        self._warned: set[str] = set()
        self._loaded_case: tuple | None = None

        self.viewer = ViewerLayout(self.state)
        self._build_central()
        self._build_docks()
        self.actions = ActionRegistry(self)
        self._build_actions()
        self._build_menus()
        self._build_status()
        self._bind()
        app_settings.restore_display(self.state)
        self._restore_geometry()

    # ------------------------------------------------------------------ compatibility
    dataset = property(lambda self: self.model.dataset)
    predictor = property(lambda self: self.model.predictor)
    predictions = property(lambda self: self.model.predictions)
    prediction_errors = property(lambda self: self.model.prediction_errors)
    cams = property(lambda self: self.model.cams)
    trainer = property(lambda self: self.model.trainer)
    last_result = property(lambda self: self.model.last_result)
    views = property(lambda self: self.viewer.views)

    # ------------------------------------------------------------------ building
    def _build_central(self) -> None:
        central = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        bar = QtWidgets.QHBoxLayout()
        self.modality_combo = QtWidgets.QComboBox()
        self.modality_combo.setMinimumWidth(110)
        self.modality_combo.setToolTip("Modality shown in the three planes (M cycles)")
        self.modality_combo.currentIndexChanged.connect(self._modality_changed)
        self.grid_combo = QtWidgets.QComboBox()
        self.grid_combo.setToolTip("All modalities of a case are shown on one grid, so the crosshair is the "
                                   "same millimetre in each: the finest modality's (default), a chosen one, "
                                   "or each series' own (native)")
        self.grid_combo.addItem("Grid: finest", "auto")
        for m in MODALITIES:
            self.grid_combo.addItem(f"Grid: {m}", m)
        self.grid_combo.addItem("Grid: native", "native")
        self.grid_combo.currentIndexChanged.connect(lambda _: self._reload_case())
        self.case_title = QtWidgets.QLabel("")
        self.case_title.setStyleSheet("font-weight: bold;")
        self.case_title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        for w in (QtWidgets.QLabel("Modality"), self.modality_combo, self.grid_combo):
            bar.addWidget(w)
        bar.addWidget(self.case_title, 1)
        disclaimer = QtWidgets.QLabel(RESEARCH_ONLY)
        disclaimer.setStyleSheet("color: #c00; font-weight: bold;")
        bar.addWidget(disclaimer)
        lay.addLayout(bar)
        lay.addWidget(self.viewer, 1)
        self.setCentralWidget(central)

    def _build_prediction_box(self) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(box)
        lay.setContentsMargins(4, 4, 4, 4)
        self.pred_label = QtWidgets.QLabel(self.model.prediction_text(None)[0])
        self.pred_label.setWordWrap(True)
        self.pred_label.setStyleSheet("font-size: 12pt;")
        self.pred_detail = QtWidgets.QLabel("")
        self.pred_detail.setWordWrap(True)
        self.model_label = QtWidgets.QLabel("")
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #555;")
        self.cam_status = QtWidgets.QLabel("")
        self.cam_status.setWordWrap(True)
        # Which class Grad-CAM explains (as in pytorch-grad-cam's targets): the predicted one, or
        # any other, e.g. to see the evidence against the prediction or when its map is empty.
        self.cam_class = QtWidgets.QComboBox()
        self.cam_class.setToolTip("The class whose evidence Grad-CAM shows")
        self.cam_class.addItem("Grad-CAM of the predicted class", None)
        self.cam_class.setEnabled(False)
        self.cam_class.currentIndexChanged.connect(self._cam_class_changed)
        self.report_button = QtWidgets.QToolButton()
        self.batch_button = QtWidgets.QToolButton()
        row = QtWidgets.QVBoxLayout()  # stacked: side by side they would widen the dock
        for b in (self.report_button, self.batch_button):
            b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            row.addWidget(b)
        for w in (self.pred_label, self.pred_detail, self.cam_class, self.cam_status, self.model_label):
            lay.addWidget(w)
        lay.addLayout(row)
        lay.addStretch(1)
        # Scrolls rather than squeezing word-wrapped lines on top of each other in a short dock.
        scroll = _NarrowScroll()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(box)
        scroll.setMinimumHeight(200)
        return scroll

    def _build_docks(self) -> None:
        self.browser = CaseBrowser(self.model)
        self.case_table = self.browser.table
        self._add_dock("Cases", self.browser, 460, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self.display = DisplayPanel(self.state)
        self._add_dock("Display", self.display, 300, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self.width_spin, self.level_spin = self.display.width_spin, self.display.level_spin
        self.cam_check, self.seg_check = self.display.cam_check, self.display.seg_check
        self._add_dock("Prediction", self._build_prediction_box(), 380,
                       QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self.train_panel = TrainPanel()
        self.train_panel.train_requested.connect(self.start_training)
        self.train_panel.stop_requested.connect(self.stop_training)
        self.train_panel.load_run_requested.connect(self.load_checkpoint)
        # No scroll area around the panel: its settings pages and results scroll on their own,
        # so Train/Stop, the progress bars and the curves always fit the dock.
        self._add_dock("Train", self.train_panel, 380, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)

    def _add_dock(self, title: str, widget: QtWidgets.QWidget, min_width: int, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(widget)
        dock.setMinimumWidth(min_width)
        self.addDockWidget(area, dock)
        return dock

    def _build_actions(self) -> None:
        m, a = self.model, self.actions
        a.add("open", "&Open folder…", self._open_dialog, shortcut=QtGui.QKeySequence.StandardKey.Open)
        a.add("open_file", "Open &file…", self._open_file_dialog)
        a.add("open_labelled", "Open &labelled folders…", self._open_labelled_dialog)
        a.add("open_demo", "Open &demo dataset", self.open_demo)
        a.add("load_checkpoint", "&Load checkpoint…", self._load_checkpoint_dialog)
        a.add("checkpoints", "&Checkpoint manager…", self._checkpoint_manager,
              shortcut="Ctrl+K", tip="Runs and checkpoints with their metadata")
        a.add("save_checkpoint", "&Save checkpoint as…", self._save_checkpoint_dialog,
              enabled_when=lambda: (m.predictor is not None, "Load or train a model first."))
        a.add("report", "Export &report (PDF)…", self._export_report_dialog, enabled_when=m.can_report,
              shortcut="Ctrl+E", tip="PDF of the selected case at the crosshair")
        a.add("batch_report", "Export reports of shown cases…", self._batch_export_dialog,
              enabled_when=m.can_batch_export, tip="One PDF per case shown in the browser, and predictions.csv")
        a.add("export_csv", "Export predictions (&CSV)…", self._export_csv_dialog,
              enabled_when=m.can_export_predictions)
        a.add("screenshot", "Save screen&shot…", self._screenshot_dialog, shortcut="Ctrl+Shift+S",
              enabled_when=lambda: (self.state.volume is not None, "Nothing shown yet."))
        a.add("quit", "&Quit", self.close, shortcut=QtGui.QKeySequence.StandardKey.Quit)
        has_case = lambda: (m.current_case is not None, "Open a dataset first.")  # noqa: E731
        a.add("next_case", "Next case", lambda: self.step_case(1), shortcut=["N", "Ctrl+Down"],
              enabled_when=has_case)
        a.add("prev_case", "Previous case", lambda: self.step_case(-1), shortcut=["P", "Ctrl+Up"],
              enabled_when=has_case)
        a.add("cycle_modality", "Cycle modality", self.cycle_modality, shortcut="M", enabled_when=has_case)
        a.add("toggle_cam", "Toggle Grad-CAM", lambda: self.state.set_overlay_options(
            visible=not self.state.overlay_visible), shortcut="G")
        a.add("toggle_seg", "Toggle segmentation", lambda: self.state.set_segmentation_options(
            visible=not self.state.segmentation_visible), shortcut="S")
        a.add("toggle_layout", "Switch layout (one modality / all modalities)", lambda: self.state.set_layout(
            "grid" if self.state.layout == "single" else "single"), shortcut="L")
        a.add("auto_window", "Reset window/level", self.state.auto_window, shortcut="W")
        a.add("reset_view", "Reset zoom and pan", self.reset_views, shortcut="Home")
        a.add("slice_up", "Next axial slice", lambda: self.state.step(2, 1), shortcut="Shift+Up")
        a.add("slice_down", "Previous axial slice", lambda: self.state.step(2, -1), shortcut="Shift+Down")
        a.add("assign", "Assign &modality…", self._assign_modality_dialog, enabled_when=has_case)
        a.add("cache", "Volume &cache…", self._cache_dialog)
        a.add("shortcuts", "Keyboard and mouse &shortcuts", lambda: ShortcutsDialog(self.actions, self).exec(),
              shortcut="F1")
        a.add("about", "&About", lambda: QtWidgets.QMessageBox.about(
            self, "mriviewer", f"mriviewer {__version__}\n\n{RESEARCH_ONLY}\n\nGeometry from DICOM/NIfTI "
            "headers; patient-level splits; test metrics with bootstrap 95% CI."))
        self.report_button.setDefaultAction(a["report"])
        self.batch_button.setDefaultAction(a["batch_report"])
        for act in a.actions.values():
            self.addAction(act)  # shortcuts work whatever has focus

    def _build_menus(self) -> None:
        a = self.actions
        f = self.menuBar().addMenu("&File")
        for name in ("open", "open_file", "open_labelled", "open_demo"):
            f.addAction(a[name])
        self.recent_menu = f.addMenu("Open &recent")
        self._fill_recent()
        f.addSeparator()
        for name in ("load_checkpoint", "checkpoints", "save_checkpoint"):
            f.addAction(a[name])
        f.addSeparator()
        for name in ("report", "batch_report", "export_csv", "screenshot"):
            f.addAction(a[name])
        f.addSeparator()
        f.addAction(a["quit"])
        v = self.menuBar().addMenu("&View")
        for name in ("toggle_layout", "cycle_modality", "toggle_cam", "toggle_seg", "auto_window",
                     "reset_view", "slice_up", "slice_down"):
            v.addAction(a[name])
        v.addSeparator()
        for dock in self.findChildren(QtWidgets.QDockWidget):
            v.addAction(dock.toggleViewAction())
        c = self.menuBar().addMenu("&Case")
        for name in ("next_case", "prev_case", "assign"):
            c.addAction(a[name])
        t = self.menuBar().addMenu("&Tools")
        t.addAction(a["cache"])
        h = self.menuBar().addMenu("&Help")
        h.addAction(a["shortcuts"])
        h.addAction(a["about"])

    def _build_status(self) -> None:
        self.readout = QtWidgets.QLabel("")
        self.readout.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy = QtWidgets.QProgressBar()
        self.busy.setMaximumWidth(160)
        self.busy.setRange(0, 0)
        self.busy.setVisible(False)
        # Permanent, so status messages never hide the cursor readout.
        self.statusBar().addPermanentWidget(self.readout, 1)
        self.statusBar().addPermanentWidget(self.busy)

    def _bind(self) -> None:
        m, st = self.model, self.state
        m.error.connect(self._show_error_message)
        m.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        m.state_changed.connect(self.actions.update)
        m.dataset_changed.connect(self._dataset_changed)
        m.case_selected.connect(self._case_selected)
        m.checkpoint_changed.connect(self._checkpoint_changed)
        m.prediction_added.connect(self._prediction_added)
        m.training_changed.connect(self._update_train_enabled)
        readout = qthrottled(self._update_readout, timeout=50, leading=True, parent=self)
        self._readout_throttle = readout
        for ev in ("cursor", "volume", "overlay"):
            st.on(ev, readout)
        st.on("volume", self.actions.update)

    # ------------------------------------------------------------------ messages
    def show_error(self, text: str) -> None:
        """Report an error through the app model (the one relay)."""
        self.model.report_error("", text)

    def _show_error_message(self, text: str) -> None:
        """Non-modal error message; the window keeps working."""
        self.statusBar().showMessage(text, 15000)
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, "mriviewer", text,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda *_: self._messages.remove(box) if box in self._messages else None)
        self._messages.append(box)
        box.show()
        self.error_shown.emit(text)

    def _error_from(self, prefix: str):
        return lambda exc: self.model.report_error(prefix, exc)

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.busy.setVisible(busy)
        if text:
            self.statusBar().showMessage(text, 0 if busy else 4000)

    # ------------------------------------------------------------------ dataset
    def open_path(self, path: str | Path) -> bool:
        """Open a dataset, case, series or file. Returns False (and shows why) on failure."""
        ok = self.model.open_path(path)
        if ok:
            self._fill_recent(app_settings.add_recent(str(Path(path).resolve())))
        return ok

    def open_labelled_folders(self, sources: list[tuple[str, str | Path]]) -> bool:
        """Several folders as one dataset, each folder's cases labelled with its class
        (``mriviewer train --data LABEL=PATH …``). Returns False (and shows why) on failure."""
        return self.model.open_labelled_folders(sources)

    def open_dataset(self, ds) -> bool:
        """Show a discovered or assembled :class:`~mriviewer.data.cases.Dataset`."""
        self.model.open_dataset(ds)
        return True

    def open_demo(self) -> None:
        from mriviewer.demo.dataset import ensure_demo

        self._set_busy(True, "Generating the demo dataset…")
        self.workers.start(ensure_demo, on_return=lambda p: (self._set_busy(False), self.open_path(p)),
                           on_error=self._error_from("Demo"))

    def _dataset_changed(self) -> None:
        ds = self.model.dataset
        self.state.clear()
        self._loaded_case = None
        self.train_panel.set_modalities(ds.modalities)
        if isinstance(ds.settings.get("train"), dict):
            self.train_panel.apply_settings(ds.settings["train"])
            self.train_panel.append_log(f"Suggested settings from the dataset: {ds.settings['train']}")
        for w in ds.warnings:
            self.train_panel.append_log(f"Note: {w}")
        self._update_train_enabled()
        self.dataset_opened.emit()
        if self.model.predictor is not None:
            self.predict_all()
        if ds.cases:
            self.model.select_case(ds.cases[0].case_id)

    def _fill_recent(self, items: list[str] | None = None) -> None:
        self.recent_menu.clear()
        for p in items if items is not None else app_settings.recent():
            self.recent_menu.addAction(p, lambda p=p: self.open_path(p))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def current_case(self) -> Case | None:
        return self.model.current_case

    def select_case(self, case_id: str) -> None:
        self.model.select_case(case_id)

    def step_case(self, delta: int) -> None:
        """Next (1) or previous (−1) case in the browser's sorted, filtered order."""
        self.model.step_case(delta, self.browser.visible_case_ids())

    def cycle_modality(self) -> None:
        """Show the case's next loaded modality."""
        names = [m for m in self.state.volumes]
        if len(names) > 1 and self.state.modality in names:
            nxt = names[(names.index(self.state.modality) + 1) % len(names)]
            self.modality_combo.setCurrentIndex(self.modality_combo.findData(nxt))

    def _case_selected(self, _case_id: str) -> None:
        case = self.model.current_case
        if case is None:
            return
        self.case_title.setText(f"Case {case.case_id}")
        self.modality_combo.blockSignals(True)
        self.modality_combo.clear()
        names = list(MODALITIES) if not case.is_2d else []
        names += [m for m in case.modalities if m not in names]
        for m in names:
            self.modality_combo.addItem(m if m in case.modalities else f"{m} (missing)", m)
            if m not in case.modalities:
                item = self.modality_combo.model().item(self.modality_combo.count() - 1)
                item.setEnabled(False)
        keep = self.state.modality if self.state.modality in case.modalities else case.first_modality()
        if keep is not None:
            self.modality_combo.setCurrentIndex(names.index(keep))
        self.modality_combo.blockSignals(False)
        self._show_prediction(case)
        if case.errors and not case.modalities:
            self.show_error("; ".join(case.errors))
            return
        if keep is not None:
            self.load_case(case, keep)

    def _modality_changed(self, _index: int) -> None:
        case = self.model.current_case
        m = self.modality_combo.currentData()
        if case is None or m not in case.modalities:
            return
        if self.state.case_id == case.case_id and m in self.state.volumes:
            self.state.set_modality(m)
            self._apply_cam(case.case_id)
            self.volume_shown.emit(case.case_id)
        else:
            self.load_case(case, m)

    def _reload_case(self) -> None:
        case = self.model.current_case
        m = self.modality_combo.currentData()
        if case is not None and m in case.modalities:
            self.load_case(case, m)

    def _warn_once(self, source: str, title: str, messages: list[str]) -> None:
        """Show ``messages`` about ``source`` under ``title``, once per source and session."""
        if messages and source not in self._warned:
            self._warned.add(source)
            self.show_error(title + "\n" + "\n".join(messages))

    def load_case(self, case: Case, modality: str) -> None:
        """Load every modality of ``case`` in a worker, on the common grid chosen in the grid
        box, and show ``modality``."""
        self._load_token += 1
        token = self._load_token
        self._set_busy(True, f"Loading {case.case_id}…")
        grid_choice = self.grid_combo.currentData()

        def done(result):
            vols, reference, seg, native = result
            if token != self._load_token:
                return
            self._set_busy(False, f"Loaded {case.case_id}"
                           + (f" on the {reference} grid" if reference else " (native grids)"))
            shown = modality if modality in vols else next(iter(vols))
            self.state.set_case(case.case_id, vols, shown, native=native)
            if seg is not None:
                self.state.set_segmentation(seg.data)
            if case.segmentation is not None:
                seg_src = str(case.segmentation)
                if seg is not None:
                    seg_msgs = seg.meta.get("warnings") or []
                else:  # it failed to load: case_on_grid put the reason in the case's errors
                    seg_msgs = [e for e in case.errors if seg_src in e]
                    self.browser.table_model.update_case(case.case_id)
                self._warn_once(seg_src, f"Case {case.case_id} segmentation:", seg_msgs)
            for m, vol in vols.items():
                self._warn_once(str(case.modalities[m].path), f"Case {case.case_id} {m} loaded with warnings:",
                                vol.meta.get("warnings") or [])
            if shown != modality:
                self.modality_combo.blockSignals(True)
                self.modality_combo.setCurrentIndex(self.modality_combo.findData(shown))
                self.modality_combo.blockSignals(False)
            self.volume_shown.emit(case.case_id)
            self._apply_cam(case.case_id)

        def failed(exc):
            self._set_busy(False)
            msg = str(exc) if isinstance(exc, MriViewerError) else f"{type(exc).__name__}: {exc}"
            if msg not in case.errors:
                case.errors.append(msg)
                self.browser.table_model.update_case(case.case_id)
            self.show_error(f"Cannot load case {case.case_id}: {msg}")

        self.workers.start(self._load_on_grid, case, modality, grid_choice, on_return=done, on_error=failed)

    # Older name, kept for scripts.
    load_modality = load_case

    def _load_on_grid(self, case: Case, modality: str, choice: str):
        """Worker: every modality of the case decoded (parallel processes) and put on the common
        grid (:func:`mriviewer.cache.grid.case_on_grid`), with each file's own grid for the readout.
        Returns ``(volumes, reference, seg, native)``."""
        from mriviewer.cache.grid import case_on_grid

        vols, reference, seg = case_on_grid(case, self.cache, None, choice)
        if modality not in vols:
            self.cache.get(case.modalities[modality])  # raises the load error, naming the file
        native = {}
        for m in vols:
            try:
                src = self.cache.get(case.modalities[m])
                native[m] = (src.affine, src.shape)
            except MriViewerError:
                pass
        return vols, reference, seg, native

    def reset_views(self) -> None:
        for v in self.viewer.shown_views():
            v.reset_view()

    # ------------------------------------------------------------------ readout
    def _update_readout(self) -> None:
        st = self.state
        if st.volume is None:
            self.readout.setText("")
            return
        if st.volume.is_2d:
            i, j = st.cursor[0], st.cursor[1]
            text = (f"{st.case_id}  pixel (column {st.volume.shape[0] - 1 - i}, row {st.volume.shape[1] - 1 - j})  "
                    f"value {st.cursor_value():.1f}")
        else:
            xyz = st.cursor_world()
            idx = st.native_index()
            text = (f"{st.case_id} {st.modality}  voxel {idx if idx is not None else st.cursor}  "
                    f"RAS ({xyz[0]:.1f}, {xyz[1]:.1f}, {xyz[2]:.1f}) mm  ")
            text += "  ".join(f"{m} {'—' if v is None else f'{v:.1f}'}" for m, v in st.values_at_cursor().items())
        if st.overlay is not None:
            text += f"  Grad-CAM {float(st.overlay[st.cursor]):.2f}"
        self.readout.setText(text)

    # ------------------------------------------------------------------ training
    def _update_train_enabled(self) -> None:
        ok, why = self.model.can_train()
        if self.model.training:
            return
        self.train_panel.set_can_train(ok, why)

    def start_training(self) -> None:
        """Start a training run with the Train panel's settings (button: Train)."""
        try:
            cfg = self.train_panel.config()
            trainer = self.model.start_training(cfg, self.cache.get)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return
        self.train_panel.set_running(True, cfg)
        self.train_panel.append_log(f"Run folder: {trainer.out_dir}")
        if cfg.preset:
            self.train_panel.append_log(f"Preset {cfg.preset} v{cfg.preset_version}"
                                        + (f", overrides: {json.dumps(cfg.overrides)}" if cfg.overrides else
                                           ", no overrides"))
        elif cfg.overrides:
            self.train_panel.append_log(f"No preset; changed from the defaults: {json.dumps(cfg.overrides)}")
        self._train_worker = self.workers.start(
            trainer.run, on_yield=self._train_event, on_return=self._training_done,
            on_error=self._training_failed,
        )

    def stop_training(self) -> None:
        """Ask the run to stop after the current batch (button: Stop)."""
        if self.model.training:
            self.model.stop_training()
            self.train_panel.status.setText("Stopping after this batch…")

    def _train_event(self, event) -> None:
        self.train_panel.show_event(event)
        if isinstance(event, EpochEvent):
            self.statusBar().showMessage(f"Epoch {event.record['epoch']} done", 3000)

    def _training_failed(self, exc) -> None:
        self.train_panel.set_running(False)
        self.train_panel.status.setText("Failed")
        self.train_panel.append_log(f"Training failed: {exc}", "warning")
        self.model.training_failed(exc)

    def _training_done(self, result: TrainResult) -> None:
        """Show the run's test results; load its model unless the run was stopped while another
        model is loaded (then offer it: a stopped run never replaces the model silently)."""
        panel = self.train_panel
        panel.set_running(False)
        decision = self.model.training_finished(result)
        panel.show_results(result.metrics, stopped=result.stopped, source=f"Run {result.out_dir}")
        ckpt = result.checkpoint
        if decision == "none":
            panel.status.setText("Stopped before the first epoch ended: no checkpoint was saved."
                                 if result.stopped else "Finished without a checkpoint.")
        elif decision == "offered":
            msg = f"Stopped run's checkpoint kept at {ckpt}; the loaded model is unchanged."
            panel.status.setText(msg)
            panel.append_log(msg)
            panel.offer_checkpoint(ckpt)
            self.statusBar().showMessage(msg, 15000)
        else:
            if result.stopped:
                panel.status.setText(f"Stopped. Loaded the stopped run's best checkpoint: {ckpt}")
                panel.append_log(f"Loading the best checkpoint of a stopped run (chosen on validation before the "
                                 f"stop): {ckpt}")
            else:
                panel.status.setText(f"Finished. Checkpoint: {ckpt}")

        def finish():
            self._update_train_enabled()
            self.training_finished.emit(result)

        if decision in ("none", "offered"):
            finish()
        else:  # finished once its model is loaded
            self.load_checkpoint(ckpt, then=finish)

    # ------------------------------------------------------------------ prediction
    def load_checkpoint(self, path: str | Path, then: Callable[[], None] | None = None) -> None:
        """Load a checkpoint in a worker (reading one and building its network takes seconds for
        the video networks), then predict every case and show the current case's Grad-CAM.
        ``then`` runs on the GUI thread once the model is loaded or has failed to load (the
        failure is reported through the app model; the previous model stays)."""
        path = str(path)
        self._set_busy(True, f"Loading checkpoint {path}…")

        def done(predictor):
            self._set_busy(False, f"Loaded {path}")
            self.model.use_predictor(predictor, path)
            if then is not None:
                then()

        def failed(exc):
            self._set_busy(False)
            self.model.report_error(f"Checkpoint {path} not loaded", exc)
            if then is not None:
                then()

        self.workers.start(self.model.open_predictor, path, "auto", self.model.dataset_modalities(),
                           on_return=done, on_error=failed)

    def _checkpoint_changed(self) -> None:
        m = self.model
        p = m.predictor
        self.cam_class.blockSignals(True)
        self.cam_class.clear()
        self.cam_class.addItem("Grad-CAM of the predicted class", None)
        for k, name in enumerate(p.class_names if p is not None else []):
            self.cam_class.addItem(f"Grad-CAM of '{name}'", k)
        self.cam_class.setEnabled(p is not None)
        self.cam_class.blockSignals(False)
        text = m.checkpoint_summary()
        self.model_label.setText(text)
        self.train_panel.append_log(text)
        just_trained = m.last_result is not None and m.last_result.checkpoint is not None and \
            Path(m.last_result.checkpoint) == Path(m.checkpoint_path)
        test = p.test_metrics or {}
        if not just_trained and test:
            cv = p.metrics.get("cv") or {}
            shown = {"test": cv.get("test") or test, "warnings": list(p.metrics.get("warnings") or [])}
            if cv.get("summary"):
                shown["summary"] = cv["summary"]
            self.train_panel.show_results(shown, source=f"Loaded checkpoint {m.checkpoint_path}")
        if self.train_panel.pending_checkpoint and m.pending_checkpoint is None:
            self.train_panel.offer_checkpoint(None)
        self.state.set_overlay(None)
        self.predict_all()

    def predict_all(self) -> None:
        if self.model.predictor is None or self.model.dataset is None:
            return
        self._set_busy(True, "Predicting all cases…")
        self.workers.start(self.model.predict_iter, self.cache.get, on_yield=self.model.add_prediction,
                           on_return=lambda _, p=self.model.predictor: self._predictions_done(p),
                           on_error=self._error_from("Prediction failed"))

    def _prediction_added(self, case_id: str) -> None:
        case = self.model.current_case
        if case is not None and case.case_id == case_id:
            self._show_prediction(case)

    def _predictions_done(self, predictor) -> None:
        if predictor is not self.model.predictor:  # a replaced model's run ended early
            return
        self._set_busy(False, f"{len(self.model.predictions)} predictions")
        self.browser.fit_columns()
        self.predictions_ready.emit()

    def _show_prediction(self, case: Case) -> None:
        head, detail = self.model.prediction_text(case)
        self.pred_label.setText(head)
        self.pred_detail.setText(detail)
        if self.model.predictor is None:
            self.cam_status.setText("")
            return
        if case.case_id in self.model.predictions:
            self._request_cam(case)
        else:
            self.cam_status.setText("")
            self.state.set_overlay(None)

    def _request_cam(self, case: Case) -> None:
        m = self.model
        pred = m.predictions.get(case.case_id)
        wanted = self.cam_class.currentData()
        if wanted is None:
            wanted = pred.predicted if pred else None
        cached = m.cams.get(case.case_id)
        if cached is not None and (wanted is None or cached.class_index == wanted):  # else computed below
            self._cam_token += 1  # a computation still running for another case must not caption this one
            self.cam_status.setText(cached.describe(m.predictor.class_names[cached.class_index]))
            self._apply_cam(case.case_id)
            return
        predictor, loader = m.predictor, self.cache.get
        self._cam_token += 1
        token = self._cam_token
        self.cam_status.setText("Computing Grad-CAM…")

        def done(result):
            if m.predictor is not predictor:  # another model was loaded meanwhile
                return
            latest = token == self._cam_token
            if latest or case.case_id not in m.cams:  # an older request never replaces a newer map
                m.add_cam(case.case_id, result)
            if latest:
                self.cam_status.setText(result.describe(predictor.class_names[result.class_index]))
                self._apply_cam(case.case_id)
            self.gradcam_ready.emit(case.case_id)

        def failed(exc):
            if token == self._cam_token:
                self.cam_status.setText(f"Grad-CAM failed: {exc}")

        self.workers.start(predictor.gradcam, case, loader, wanted, on_return=done, on_error=failed)

    def _cam_class_changed(self) -> None:
        case = self.model.current_case
        if case is not None and case.case_id in self.model.predictions:
            self._request_cam(case)

    def _apply_cam(self, case_id: str) -> None:
        """Lay the case's Grad-CAM over the displayed volume (resampled through the affines when
        the displayed modality is on another grid)."""
        res = self.model.cams.get(case_id)
        vol = self.state.volume
        if vol is None or self.state.case_id != case_id:
            return
        if res is None:
            self.state.set_overlay(None)
            return

        def show(cam):
            if self.state.volume is vol:  # still the volume it was resampled for
                self.state.set_overlay(np.ascontiguousarray(cam, dtype=np.float32))

        if same_grid(res.cam.shape, res.reference.affine, vol.shape, vol.affine):
            show(res.cam)
        else:  # resampling a large grid takes seconds: not on the GUI thread
            self.workers.start(resample_to_grid, res.cam, res.reference.affine, vol.shape, vol.affine,
                               order=1, on_return=show, on_error=self._error_from("Grad-CAM overlay"))

    # ------------------------------------------------------------------ export
    def export_report(self, path: str | Path) -> Path | None:
        """Write the PDF report of the selected case at the current crosshair."""
        from mriviewer.reporting.inputs import build_report_inputs
        from mriviewer.reporting.pdf import write_case_report

        ok, why = self.model.can_report()
        if not ok:
            self.show_error(why)
            return None
        case = self.model.current_case
        try:
            cam = self.model.cams.get(case.case_id)
            pred = self.model.predictions.get(case.case_id)
            cursor = None
            if cam is not None and self.state.volume is not None:
                world = self.state.cursor_world()
                ijk = np.round(cam.reference.world_to_voxel(world)).astype(int)
                cursor = tuple(int(v) for v in np.clip(ijk, 0, np.array(cam.reference.shape) - 1))
            inputs = build_report_inputs(
                self.model.predictor, case, self.cache.get, cursor=cursor, prediction=pred, gradcam=cam,
                dataset=self.model.dataset, radiological=self.state.radiological, cmap=self.state.cmap, opacity=self.state.opacity,
            )
            if self.state.modality == inputs.volume.modality and self.state.window:
                inputs.window = self.state.window
            out = write_case_report(inputs, path)
        except (MriViewerError, OSError) as exc:
            self.show_error(f"Report not written: {exc}")
            return None
        self.statusBar().showMessage(f"Report written to {out}", 8000)
        return out

    def export_predictions(self, path: str | Path) -> Path | None:
        from mriviewer.reporting.predictions_csv import write_predictions_csv

        ok, why = self.model.can_export_predictions()
        if not ok:
            self.show_error(why)
            return None
        m = self.model
        preds = [m.predictions[c.case_id] for c in m.cases if c.case_id in m.predictions]
        try:
            return write_predictions_csv(preds, m.predictor.class_names, path, m.dataset)
        except OSError as exc:
            self.show_error(f"Predictions not written: {exc}")
            return None

    def save_screenshot(self, path: str | Path) -> Path | None:
        """Write the views area (the current layout) as a PNG."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        tmp = path.with_name(path.name + ".part.png")
        if not self.viewer.grab_layout().save(str(tmp), "PNG"):
            self.show_error(f"{path}: screenshot not written")
            return None
        tmp.replace(path)
        self.statusBar().showMessage(f"Screenshot written to {path}", 8000)
        return path

    # ------------------------------------------------------------------ dialogs
    def assign_modality(self, old: str, new: str, all_cases: bool = True) -> bool:
        """Rename modality ``old`` to ``new`` (every case, or the selected one): the user's
        override of the modality read from names and SeriesDescription."""
        case = self.model.current_case
        try:
            n = self.model.assign_modality(old, new, all_cases or case is None)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return False
        self.train_panel.set_modalities(self.model.dataset.modalities)
        if case is not None:
            self._loaded_case = None
            self.model.case_id = None
            self.model.select_case(case.case_id)
        self.statusBar().showMessage(f"{old} is now {new} in {n} case(s)", 6000)
        return True

    def _assign_modality_dialog(self) -> None:
        case = self.model.current_case
        if case is None or not case.modalities:
            return
        old, ok = QtWidgets.QInputDialog.getItem(self, "Assign modality", "Series:", list(case.modalities), 0, False)
        if not ok:
            return
        new, ok = QtWidgets.QInputDialog.getItem(self, "Assign modality", f"{old} is:",
                                                 [m for m in MODALITIES if m != old], 0, True)
        if ok and new:
            self.assign_modality(old, new)

    def _open_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open dataset, case or series folder")
        if path:
            self.open_path(path)

    def _open_labelled_dialog(self) -> None:
        dlg = LabelledFoldersDialog(self)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.sources():
            self.open_labelled_folders(dlg.sources())

    def _open_file_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open image", "", "Images (*.nii *.nii.gz *.dcm *.png *.jpg *.jpeg);;All files (*)")
        if path:
            self.open_path(path)

    def _load_checkpoint_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load checkpoint", str(runs_dir()), "Checkpoint (*.pt)")
        if path:
            self.load_checkpoint(path)

    def _checkpoint_manager(self) -> None:
        from mriviewer.ui.controls.checkpoints import CheckpointDialog

        dlg = CheckpointDialog(runs_dir(), self.model.dataset, self)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.chosen:
            self.load_checkpoint(dlg.chosen)

    def _save_checkpoint_dialog(self) -> None:
        src = self.model.checkpoint_path
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save checkpoint as", src.name, "Checkpoint (*.pt)")
        if path:
            self.save_checkpoint(path)

    def save_checkpoint(self, path: str | Path) -> Path | None:
        """Copy the loaded checkpoint (weights, config, split, metrics) to ``path`` atomically."""
        import shutil

        from mriviewer.core.files import atomic_path

        try:
            with atomic_path(path) as tmp:
                shutil.copyfile(self.model.checkpoint_path, tmp)
        except OSError as exc:
            self.show_error(f"{path}: checkpoint not saved ({exc})")
            return None
        self.statusBar().showMessage(f"Checkpoint saved to {path}", 8000)
        return Path(path)

    def _export_report_dialog(self) -> None:
        case = self.model.current_case
        name = f"mriviewer-report-{case.case_id.replace('/', '_') if case else 'case'}.pdf"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export report", name, "PDF (*.pdf)")
        if path:
            self.export_report(path)

    def _batch_export_dialog(self) -> None:
        out = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder for the reports")
        if out:
            self.export_reports(out, self.browser.visible_case_ids())

    def export_reports(self, out_dir: str | Path, case_ids: list[str] | None = None):
        """Batch export with a progress dialog and Cancel: one PDF per case and
        ``predictions.csv`` (:func:`mriviewer.reporting.batch.export_reports`). Returns the worker."""
        from mriviewer.ui.controls.batch_export import run_batch_export

        return run_batch_export(self, out_dir, case_ids)

    def _export_csv_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export predictions", "predictions.csv", "CSV (*.csv)")
        if path:
            self.export_predictions(path)

    def _screenshot_dialog(self) -> None:
        case = self.state.case_id or "view"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save screenshot", f"mriviewer-{case.replace('/', '_')}.png", "PNG (*.png)")
        if path:
            self.save_screenshot(path)

    def _cache_dialog(self) -> None:
        from mriviewer.ui.controls.cache_dialog import CacheDialog

        CacheDialog(self).exec()

    # ------------------------------------------------------------------ settings
    def _restore_geometry(self) -> None:
        s = app_settings.settings()
        geo, dock_state = s.value("geometry"), s.value("windowState")
        if isinstance(geo, QtCore.QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        if isinstance(dock_state, QtCore.QByteArray) and not dock_state.isEmpty():
            self.restoreState(dock_state)
        else:  # first start: the views get the room, the docks their working widths
            docks = {d.objectName(): d for d in self.findChildren(QtWidgets.QDockWidget)}
            self.resizeDocks([docks["casesDock"], docks["trainDock"]], [460, 400],
                             QtCore.Qt.Orientation.Horizontal)
            self.resizeDocks([docks["predictionDock"], docks["trainDock"]], [230, 700],
                             QtCore.Qt.Orientation.Vertical)

    def closeEvent(self, ev):  # noqa: N802
        if self.model.training:
            self.model.stop_training()
        try:
            s = app_settings.settings()
            s.setValue("geometry", self.saveGeometry())
            s.setValue("windowState", self.saveState())
            app_settings.save_display(self.state)
            s.sync()
        except Exception as exc:  # noqa: BLE001 - settings must never block quitting
            log.warning("settings not saved: %s", exc)
        super().closeEvent(ev)


class _NarrowScroll(QtWidgets.QScrollArea):
    """A scroll area that does not ask for its content's unwrapped width (long lines wrap)."""

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt naming)
        return QtCore.QSize(380, 220)


class LabelledFoldersDialog(QtWidgets.QDialog):
    """Rows of (class, folder): several folders assembled into one labelled dataset, e.g. HGG,
    LGG and healthy brains from three archives (the GUI's ``--data LABEL=PATH``)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open labelled folders")
        self.table = QtWidgets.QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Class", "Folder"])
        self.table.horizontalHeader().setStretchLastSection(True)
        add = QtWidgets.QPushButton("Add folder…")
        add.clicked.connect(self._add)
        remove = QtWidgets.QPushButton("Remove")
        remove.clicked.connect(lambda: self.table.removeRow(self.table.currentRow()))
        note = QtWidgets.QLabel("Each folder's cases get its class. If a class comes from one source only, "
                                "the run warns that the model may learn the source, not the disease.")
        note.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.resize(640, 320)

    def add_row(self, label: str, folder: str) -> None:
        n = self.table.rowCount()
        self.table.insertRow(n)
        self.table.setItem(n, 0, QtWidgets.QTableWidgetItem(label))
        self.table.setItem(n, 1, QtWidgets.QTableWidgetItem(folder))

    def _add(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of one class")
        if folder:
            self.add_row(Path(folder).name, folder)

    def sources(self) -> list[tuple[str, str]]:
        """The ``(class, folder)`` rows with both filled in."""
        out = []
        for r in range(self.table.rowCount()):
            label, folder = (self.table.item(r, c) for c in (0, 1))
            if label and folder and label.text().strip() and folder.text().strip():
                out.append((label.text().strip(), folder.text().strip()))
        return out
