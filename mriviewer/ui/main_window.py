"""The main window: case list, modality selector, three linked planes, window/level, the
prediction and Grad-CAM box, and the Train panel.

All slow work (loading volumes, training, predicting, Grad-CAM) runs in workers; errors arrive
on the GUI thread and are shown in a non-modal message naming the file, and the window keeps
working.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .. import RESEARCH_ONLY, __version__
from ..cache import default_cache
from ..datasets import Case, Dataset, discover
from ..errors import MriViewerError
from ..ml.engine import EpochEvent, Trainer, TrainResult
from ..resample import resample_to_grid
from ..viewstate import ViewerState
from ..volume import MODALITIES
from .slice_view import SliceView
from .train_panel import TrainPanel
from .workers import WorkerPool

log = logging.getLogger(__name__)

__all__ = ["MainWindow", "runs_dir"]

COLUMNS = ("Case", "Label", "Modalities", "Prediction", "P")
SHORT = {"FLAIR": "FL", "T1w": "T1", "T1wCE": "T1c", "T2w": "T2"}


def runs_dir() -> Path:
    """Where GUI training runs are written: ``$MRIVIEWER_RUNS_DIR`` or ``~/mriviewer-runs``."""
    return Path(os.environ.get("MRIVIEWER_RUNS_DIR", Path.home() / "mriviewer-runs"))


class MainWindow(QtWidgets.QMainWindow):
    """mriviewer's main window.

    Signals (for scripting and tests): ``dataset_opened``, ``volume_shown(case_id)``,
    ``training_finished(object)`` (a TrainResult), ``predictions_ready``,
    ``gradcam_ready(case_id)``, ``error_shown(str)``.
    """

    dataset_opened = QtCore.Signal()
    volume_shown = QtCore.Signal(str)
    training_finished = QtCore.Signal(object)
    predictions_ready = QtCore.Signal()
    gradcam_ready = QtCore.Signal(str)
    error_shown = QtCore.Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"mriviewer {__version__} — {RESEARCH_ONLY}")
        self.resize(1500, 950)
        self.state = ViewerState()
        self.dataset: Dataset | None = None
        self.cache = default_cache()
        self.workers = WorkerPool(owner=self)
        self.predictor = None
        self.predictions: dict = {}
        self.prediction_errors: dict[str, str] = {}
        self.cams: dict = {}  # case_id -> GradCamResult
        self.trainer: Trainer | None = None
        self.last_result: TrainResult | None = None
        self._load_token = 0
        self._cam_token = 0
        self._messages: list[QtWidgets.QMessageBox] = []
        self._warned: set[str] = set()

        self._build_views()
        self._build_case_dock()
        self._build_train_dock()
        self._build_menus()
        self._build_status()
        self.state.on("cursor", self._update_readout)
        self.state.on("volume", self._arrange_views)
        self.state.on("window", self._sync_window_widgets)
        self.state.on("volume", self._sync_window_widgets)

    # ------------------------------------------------------------------ building
    def _build_views(self) -> None:
        central = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(central)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.setSpacing(4)

        bar = QtWidgets.QHBoxLayout()
        self.modality_combo = QtWidgets.QComboBox()
        self.modality_combo.setMinimumWidth(110)
        self.modality_combo.currentIndexChanged.connect(self._modality_changed)
        self.level_spin = QtWidgets.QDoubleSpinBox(decimals=1, minimum=-1e6, maximum=1e6)
        self.width_spin = QtWidgets.QDoubleSpinBox(decimals=1, minimum=1e-3, maximum=2e6)
        self.level_spin.setKeyboardTracking(False)
        self.width_spin.setKeyboardTracking(False)
        self.level_spin.valueChanged.connect(self._window_edited)
        self.width_spin.valueChanged.connect(self._window_edited)
        auto = QtWidgets.QPushButton("Auto W/L")
        auto.setToolTip("0.5–99.5 percentile window")
        auto.clicked.connect(self.state.auto_window)
        self.grid_combo = QtWidgets.QComboBox()
        self.grid_combo.setToolTip("All modalities of a case are shown on one grid, so the crosshair is the "
                                   "same millimetre in each: the finest modality's (default), a chosen one, "
                                   "or each series' own (native)")
        self.grid_combo.addItem("Grid: finest", "auto")
        for m in MODALITIES:
            self.grid_combo.addItem(f"Grid: {m}", m)
        self.grid_combo.addItem("Grid: native", "native")
        self.grid_combo.currentIndexChanged.connect(lambda _: self._modality_changed(0))
        self.seg_check = QtWidgets.QCheckBox("Segmentation")
        self.seg_check.setChecked(True)
        self.seg_check.setToolTip("Show the case's tumour mask (BraTS seg / GT_W), resampled nearest-neighbour")
        self.seg_check.toggled.connect(lambda v: self.state.set_segmentation_visible(v))
        self.convention = QtWidgets.QComboBox()
        self.convention.addItems(["Radiological", "Neurological"])
        self.convention.setToolTip("Radiological: the patient's right on the screen's left; neurological: left on left")
        self.convention.currentIndexChanged.connect(lambda i: self.state.set_radiological(i == 0))
        for w in (QtWidgets.QLabel("Modality"), self.modality_combo, self.grid_combo, QtWidgets.QLabel("Level"),
                  self.level_spin, QtWidgets.QLabel("Width"), self.width_spin, auto, self.convention):
            bar.addWidget(w)
        bar.addStretch(1)
        grid.addLayout(bar, 0, 0, 1, 2)

        self.views = {p: SliceView(p, self.state) for p in ("axial", "coronal", "sagittal")}
        self._grid = grid
        grid.addWidget(self.views["axial"], 1, 0)
        grid.addWidget(self.views["coronal"], 1, 1)
        grid.addWidget(self.views["sagittal"], 2, 0)
        grid.addWidget(self._build_prediction_box(), 2, 1)
        grid.setRowStretch(1, 1)
        grid.setRowStretch(2, 1)
        self.setCentralWidget(central)

    def _build_prediction_box(self) -> QtWidgets.QWidget:
        box = QtWidgets.QGroupBox("Prediction")
        lay = QtWidgets.QVBoxLayout(box)
        self.pred_label = QtWidgets.QLabel("No model loaded. Train one or load a checkpoint.")
        self.pred_label.setWordWrap(True)
        self.pred_label.setStyleSheet("font-size: 13pt;")
        self.pred_detail = QtWidgets.QLabel("")
        self.pred_detail.setWordWrap(True)
        disclaimer = QtWidgets.QLabel(RESEARCH_ONLY)
        disclaimer.setStyleSheet("color: #c00; font-weight: bold;")
        self.cam_check = QtWidgets.QCheckBox("Grad-CAM")
        self.cam_check.setChecked(True)
        self.cam_check.toggled.connect(lambda v: self.state.set_overlay_options(visible=v))
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, minimum=0, maximum=100, value=50)
        self.opacity.valueChanged.connect(lambda v: self.state.set_overlay_options(opacity=v / 100))
        self.cmap_combo = QtWidgets.QComboBox()
        self.cmap_combo.addItems(["inferno", "jet", "hot", "viridis"])
        self.cmap_combo.currentTextChanged.connect(lambda c: self.state.set_overlay_options(cmap=c))
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.seg_check)
        row.addWidget(self.cam_check)
        row.addWidget(QtWidgets.QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        row.addWidget(self.cmap_combo)
        self.cam_status = QtWidgets.QLabel("")
        self.report_button = QtWidgets.QPushButton("Export report (PDF)…")
        self.report_button.clicked.connect(self._export_report_dialog)
        self.report_button.setEnabled(False)
        for w in (self.pred_label, self.pred_detail):
            lay.addWidget(w)
        lay.addLayout(row)
        lay.addWidget(self.cam_status)
        lay.addWidget(self.report_button)
        lay.addStretch(1)
        lay.addWidget(disclaimer)
        return box

    def _build_case_dock(self) -> None:
        self.case_table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.case_table.setHorizontalHeaderLabels(COLUMNS)
        self.case_table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.case_table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.case_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.case_table.verticalHeader().setVisible(False)
        self.case_table.horizontalHeader().setStretchLastSection(True)
        self.case_table.setTextElideMode(QtCore.Qt.TextElideMode.ElideLeft)
        self.case_table.setWordWrap(False)
        self.case_table.itemSelectionChanged.connect(self._case_selected)
        self.dataset_label = QtWidgets.QLabel("No dataset. File ▸ Open folder… or File ▸ Open demo.")
        self.dataset_label.setWordWrap(True)
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.dataset_label)
        lay.addWidget(self.case_table)
        self._add_dock("Cases", w, 420, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)

    def _add_dock(self, title: str, widget: QtWidgets.QWidget, min_width: int, area) -> None:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(widget)
        dock.setMinimumWidth(min_width)
        self.addDockWidget(area, dock)

    def _build_train_dock(self) -> None:
        self.train_panel = TrainPanel()
        self.train_panel.train_requested.connect(self.start_training)
        self.train_panel.stop_requested.connect(self.stop_training)
        self.train_panel.load_run_requested.connect(self.load_checkpoint)
        self.dataset_opened.connect(self._update_train_enabled)
        # No scroll area around the panel: the settings pages and the results scroll on their
        # own, so Train/Stop, the progress bars and the curves always fit the dock. (A scroll
        # area would size the panel to its word-wrapped preferred height and push them out.)
        self._add_dock("Train", self.train_panel, 380, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)

    def _update_train_enabled(self) -> None:
        """Train is possible only with a labelled dataset open."""
        ds = self.dataset
        if ds is None:
            self.train_panel.set_can_train(False, "Open a labelled dataset first.")
        elif ds.task == "none":
            self.train_panel.set_can_train(False, f"{ds.root}: no labels found, nothing to train on.")
        else:
            self.train_panel.set_can_train(True)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        m.addAction("Open folder…", self._open_dialog, QtGui.QKeySequence.StandardKey.Open)
        m.addAction("Open file…", self._open_file_dialog)
        m.addAction("Open labelled folders…", self._open_labelled_dialog)
        m.addAction("Open demo dataset", self.open_demo)
        m.addSeparator()
        m.addAction("Load checkpoint…", self._load_checkpoint_dialog)
        m.addAction("Export report (PDF)…", self._export_report_dialog)
        m.addAction("Export predictions (CSV)…", self._export_csv_dialog)
        m.addSeparator()
        m.addAction("Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)
        c = self.menuBar().addMenu("&Case")
        c.addAction("Assign modality…", self._assign_modality_dialog)
        h = self.menuBar().addMenu("&Help")
        h.addAction("About", lambda: QtWidgets.QMessageBox.about(
            self, "mriviewer", f"mriviewer {__version__}\n\n{RESEARCH_ONLY}\n\nGeometry from DICOM/NIfTI headers; "
            "patient-level splits; AUC with bootstrap 95% CI."))

    def _build_status(self) -> None:
        self.readout = QtWidgets.QLabel("")
        self.busy = QtWidgets.QProgressBar()
        self.busy.setMaximumWidth(160)
        self.busy.setRange(0, 0)
        self.busy.setVisible(False)
        self.statusBar().addWidget(self.readout, 1)
        self.statusBar().addPermanentWidget(self.busy)

    # ------------------------------------------------------------------ messages
    def show_error(self, text: str) -> None:
        """Non-modal error message; the window keeps working."""
        log.warning(text)
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
        def handler(exc: BaseException):
            msg = str(exc) if isinstance(exc, MriViewerError) else f"{type(exc).__name__}: {exc}"
            self.show_error(f"{prefix}: {msg}")
        return handler

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.busy.setVisible(busy)
        if text:
            self.statusBar().showMessage(text, 0 if busy else 4000)

    # ------------------------------------------------------------------ dataset
    def open_path(self, path: str | Path) -> bool:
        """Open a dataset, case, series or file. Returns False (and shows why) on failure."""
        try:
            ds = discover(path)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return False
        return self.open_dataset(ds)

    def open_labelled_folders(self, sources: list[tuple[str, str | Path]]) -> bool:
        """Open several folders as one dataset, each folder's cases labelled with its class
        (``mriviewer train --data LABEL=PATH …``). Returns False (and shows why) on failure."""
        from ..datasets import assemble

        try:
            ds = assemble(sources)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return False
        return self.open_dataset(ds)

    def open_dataset(self, ds) -> bool:
        """Show a discovered or assembled :class:`~mriviewer.datasets.Dataset`."""
        self.dataset = ds
        self.predictions.clear()
        self.cams.clear()
        self.state.clear()
        n_err = sum(bool(c.errors) for c in ds.cases)
        task = {"binary": "binary", "multiclass": f"{len(ds.class_names)} classes", "none": "no labels"}[ds.task]
        self.dataset_label.setText(
            f"<b>{ds.root}</b><br>{ds.layout}, {len(ds.cases)} cases, {task}"
            + (f", <span style='color:#c00'>{n_err} with errors</span>" if n_err else "")
        )
        self.train_panel.set_modalities(ds.modalities)
        if isinstance(ds.settings.get("train"), dict):
            self.train_panel.apply_settings(ds.settings["train"])
            self.train_panel.append_log(f"Suggested settings from the dataset: {ds.settings['train']}")
        self.train_panel.train_button.setEnabled(ds.task != "none")
        for w in ds.warnings:
            self.train_panel.append_log(f"Note: {w}")
        self._fill_table()
        self.dataset_opened.emit()
        if ds.cases:
            self.case_table.selectRow(0)
        return True

    def open_demo(self) -> None:
        from ..demo import ensure_demo

        self._set_busy(True, "Generating the demo dataset…")
        self.workers.start(ensure_demo, on_return=lambda p: (self._set_busy(False), self.open_path(p)),
                           on_error=self._error_from("Demo"))

    def _fill_table(self) -> None:
        ds = self.dataset
        self.case_table.setRowCount(len(ds.cases))
        for r, case in enumerate(ds.cases):
            label = ds.label_name(case) or "—"
            if case.is_2d:
                mods = "2D image"
            else:
                mods = " ".join(SHORT[m] if m in case.modalities else "–" for m in MODALITIES)
            values = (case.case_id, label, mods, "", "")
            for c, v in enumerate(values):
                item = QtWidgets.QTableWidgetItem(v)
                if c == 2 and not case.is_2d:
                    missing = [m for m in MODALITIES if m not in case.modalities]
                    present = ", ".join(m for m in MODALITIES if m in case.modalities)
                    item.setToolTip(f"present: {present}" + (f"; missing: {', '.join(missing)}" if missing else ""))
                if case.errors:
                    item.setBackground(QtGui.QColor(255, 210, 210))
                    item.setToolTip("\n".join(case.errors))
                self.case_table.setItem(r, c, item)
        self._fit_columns()

    def _fit_columns(self) -> None:
        self.case_table.resizeColumnsToContents()
        for col, widest in ((0, 150), (1, 150)):
            if self.case_table.columnWidth(col) > widest:
                self.case_table.setColumnWidth(col, widest)

    def current_case(self) -> Case | None:
        rows = self.case_table.selectionModel().selectedRows() if self.case_table.selectionModel() else []
        if not rows or self.dataset is None:
            return None
        return self.dataset.cases[rows[0].row()]

    def select_case(self, case_id: str) -> None:
        for r, c in enumerate(self.dataset.cases):
            if c.case_id == case_id:
                self.case_table.selectRow(r)
                return

    def _case_selected(self) -> None:
        case = self.current_case()
        if case is None:
            return
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
        if case.errors and not case.modalities:
            self.show_error("; ".join(case.errors))
            return
        if keep is not None:
            self.load_modality(case, keep)
        self._show_prediction(case)

    def _modality_changed(self, _index: int) -> None:
        case = self.current_case()
        m = self.modality_combo.currentData()
        if case is not None and m in case.modalities:
            self.load_modality(case, m)

    def load_modality(self, case: Case, modality: str) -> None:
        """Load ``modality`` of ``case`` in a worker and show it on the case's common grid."""
        self._load_token += 1
        token = self._load_token
        self._set_busy(True, f"Loading {case.case_id} {modality}…")
        src = case.modalities[modality]
        grid_choice = self.grid_combo.currentData()

        def done(result):
            vol, reference, seg = result
            self._set_busy(False, f"Loaded {case.case_id} {modality}"
                           + (f" on the {reference} grid" if reference else " (native grid)"))
            if token != self._load_token:
                return
            self.state.set_volume(case.case_id, modality, vol)
            self.state.set_segmentation(seg)
            warnings = vol.meta.get("warnings") or []
            if warnings and str(src.path) not in self._warned:
                self._warned.add(str(src.path))
                self.show_error(f"Case {case.case_id} {modality} loaded with warnings:\n" + "\n".join(warnings))
            self.volume_shown.emit(case.case_id)
            self._apply_cam(case.case_id)

        def failed(exc):
            self._set_busy(False)
            msg = str(exc) if isinstance(exc, MriViewerError) else f"{src.path}: {type(exc).__name__}: {exc}"
            if msg not in case.errors:
                case.errors.append(msg)
                self._fill_table_row_error(case)
            self.show_error(f"Cannot load case {case.case_id} {modality}: {msg}")

        self.workers.start(self._load_on_grid, case, modality, grid_choice, on_return=done, on_error=failed)

    def _load_on_grid(self, case: Case, modality: str, choice: str):
        """Worker: all modalities of the case decoded at once (parallel processes, so switching
        modality afterwards is immediate), the requested one and the segmentation on the common
        grid (:func:`mriviewer.resample.case_on_grid`). Returns ``(volume, reference, seg)``."""
        from ..resample import case_on_grid

        vols, reference, seg = case_on_grid(case, self.cache, [modality], choice)
        if modality not in vols:
            self.cache.get(case.modalities[modality])  # raises the load error, naming the file
        return vols[modality], reference, seg

    def _fill_table_row_error(self, case: Case) -> None:
        r = self.dataset.cases.index(case)
        for c in range(len(COLUMNS)):
            item = self.case_table.item(r, c)
            if item is not None:
                item.setBackground(QtGui.QColor(255, 210, 210))
                item.setToolTip("\n".join(case.errors))

    def _arrange_views(self) -> None:
        """A 2D image gets the whole left column (the other planes do not exist)."""
        vol = self.state.volume
        is_2d = vol is not None and vol.is_2d
        axial = self.views["axial"]
        self._grid.removeWidget(axial)
        self._grid.addWidget(axial, 1, 0, 2 if is_2d else 1, 1)
        self.views["sagittal"].setVisible(not is_2d)

    # ------------------------------------------------------------------ window / readout
    def _sync_window_widgets(self) -> None:
        low, high = self.state.window
        for w in (self.level_spin, self.width_spin):
            w.blockSignals(True)
        self.level_spin.setValue((low + high) / 2)
        self.width_spin.setValue(high - low)
        step = max((high - low) / 100, 0.1)
        self.level_spin.setSingleStep(step)
        self.width_spin.setSingleStep(step)
        for w in (self.level_spin, self.width_spin):
            w.blockSignals(False)

    def _window_edited(self) -> None:
        level, width = self.level_spin.value(), self.width_spin.value()
        self.state.set_window(level - width / 2, level + width / 2)

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
            text = (f"{st.case_id} {st.modality}  voxel ({st.cursor[0]}, {st.cursor[1]}, {st.cursor[2]})  "
                    f"RAS ({xyz[0]:.1f}, {xyz[1]:.1f}, {xyz[2]:.1f}) mm  value {st.cursor_value():.1f}")
        if st.overlay is not None:
            text += f"  Grad-CAM {float(st.overlay[st.cursor]):.2f}"
        self.readout.setText(text)

    # ------------------------------------------------------------------ training
    def start_training(self) -> None:
        """Start a training run with the Train panel's settings (button: Train)."""
        if self.dataset is None or self.dataset.task == "none":
            self.show_error("Open a labelled dataset first." if self.dataset is None
                            else f"{self.dataset.root}: no labels found, nothing to train on.")
            return
        if self.train_panel.running:
            self.show_error("A training run is in progress; stop it first.")
            return
        try:
            cfg = self.train_panel.config()
            out = runs_dir() / f"{self.dataset.root.name}-{cfg.model}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
            self.trainer = Trainer(cfg, self.dataset, out, loader=self.cache.get)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return
        self.train_panel.set_running(True, cfg)
        self.train_panel.append_log(f"Run folder: {out}")
        if cfg.preset:
            self.train_panel.append_log(f"Preset {cfg.preset} v{cfg.preset_version}"
                                        + (f", overrides: {json.dumps(cfg.overrides)}" if cfg.overrides else
                                           ", no overrides"))
        elif cfg.overrides:
            self.train_panel.append_log(f"No preset; changed from the defaults: {json.dumps(cfg.overrides)}")
        self._train_worker = self.workers.start(
            self.trainer.run, on_yield=self._train_event, on_return=self._training_done,
            on_error=self._training_failed,
        )

    def stop_training(self) -> None:
        """Ask the run to stop after the current batch (button: Stop)."""
        if self.trainer is not None and self.train_panel.running:
            self.trainer.stop()
            self.train_panel.status.setText("Stopping after this batch…")

    def _train_event(self, event) -> None:
        self.train_panel.show_event(event)
        if isinstance(event, EpochEvent):
            self.statusBar().showMessage(f"Epoch {event.record['epoch']} done", 3000)

    def _training_failed(self, exc) -> None:
        self.train_panel.set_running(False)
        self._update_train_enabled()
        self.train_panel.status.setText("Failed")
        self.train_panel.append_log(f"Training failed: {exc}", "warning")
        self._error_from("Training failed")(exc)

    def _training_done(self, result: TrainResult) -> None:
        """Show the run's test results; load its model unless the run was stopped while another
        model is loaded (then offer it: a stopped run never replaces the model silently)."""
        panel = self.train_panel
        panel.set_running(False)
        self._update_train_enabled()
        self.last_result = result
        panel.show_results(result.metrics, stopped=result.stopped, source=f"Run {result.out_dir}")
        ckpt = result.checkpoint
        if ckpt is None:
            panel.status.setText("Stopped before the first epoch ended: no checkpoint was saved."
                                 if result.stopped else "Finished without a checkpoint.")
        elif result.stopped and self.predictor is not None:
            msg = f"Stopped run's checkpoint kept at {ckpt}; the loaded model is unchanged."
            panel.status.setText(msg)
            panel.append_log(msg)
            panel.offer_checkpoint(ckpt)
            self.statusBar().showMessage(msg, 15000)
        elif result.stopped:
            panel.status.setText(f"Stopped. Loaded the stopped run's best checkpoint: {ckpt}")
            panel.append_log(f"Loading the best checkpoint of a stopped run (chosen on validation before the "
                             f"stop): {ckpt}")
            self.load_checkpoint(ckpt)
        else:
            panel.status.setText(f"Finished. Checkpoint: {ckpt}")
            self.load_checkpoint(ckpt)
        self.training_finished.emit(result)

    # ------------------------------------------------------------------ prediction
    def load_checkpoint(self, path: str | Path) -> bool:
        """Load a checkpoint, then predict every case and show the current case's Grad-CAM."""
        from ..ml.predict import Predictor

        try:
            predictor = Predictor.load(path)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return False
        self.predictor = predictor
        self.predictions.clear()
        self.prediction_errors.clear()
        self.cams.clear()
        m = predictor.metrics
        val = m.get("validation") or {}
        test = predictor.test_metrics or {}
        text = f"Model {predictor.config.model} from {path}"
        if val:
            text += f"; chosen on validation ({val.get('monitor', 'val_auc')}, epoch {val.get('epoch', '?')})"
        if test:
            ci = test.get("auc_ci") or [None, None]
            auc = test.get("auc")
            text += (f"; test AUC {'n/a' if auc is None else f'{auc:.3f}'}"
                     + (f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if None not in ci else "")
                     + f" on {test.get('n_cases', '?')} held-out cases")
        else:
            text += "; no test metrics in this checkpoint"
        self.train_panel.append_log(text)
        just_trained = self.last_result is not None and self.last_result.checkpoint is not None and \
            Path(self.last_result.checkpoint) == Path(path)
        if not just_trained and test:
            cv = m.get("cv") or {}
            shown = {"test": cv.get("test") or test, "warnings": []}
            if cv.get("summary"):
                shown["summary"] = cv["summary"]
            self.train_panel.show_results(shown, source=f"Loaded checkpoint {path}")
        if self.train_panel.pending_checkpoint and Path(self.train_panel.pending_checkpoint) == Path(path):
            self.train_panel.offer_checkpoint(None)
        self.report_button.setEnabled(True)
        self.predict_all()
        return True

    def predict_all(self) -> None:
        if self.predictor is None or self.dataset is None:
            return
        predictor, cases, loader = self.predictor, list(self.dataset.cases), self.cache.get

        def run():
            for case in cases:
                try:
                    yield case.case_id, predictor.predict(case, loader)
                except MriViewerError as exc:
                    yield case.case_id, exc

        self._set_busy(True, "Predicting all cases…")
        self.workers.start(run, on_yield=self._prediction_arrived,
                           on_return=lambda _: self._predictions_done(),
                           on_error=self._error_from("Prediction failed"))

    def _prediction_arrived(self, item) -> None:
        case_id, pred = item
        r = next(i for i, c in enumerate(self.dataset.cases) if c.case_id == case_id)
        if isinstance(pred, Exception):
            self.case_table.item(r, 3).setText("not predicted")
            self.case_table.item(r, 3).setToolTip(str(pred))
            self.prediction_errors[case_id] = str(pred)
            return
        self.predictions[case_id] = pred
        self.case_table.item(r, 3).setText(pred.class_name)
        self.case_table.item(r, 4).setText(f"{pred.probability:.2f}")
        case = self.current_case()
        if case is not None and case.case_id == case_id:
            self._show_prediction(case)

    def _predictions_done(self) -> None:
        self._set_busy(False, f"{len(self.predictions)} predictions")
        self._fit_columns()
        self.predictions_ready.emit()

    def _show_prediction(self, case: Case) -> None:
        if self.predictor is None:
            return
        pred = self.predictions.get(case.case_id)
        if pred is None:
            err = self.prediction_errors.get(case.case_id)
            self.pred_label.setText(f"Not predicted: {err}" if err else "Predicting…")
            self.pred_detail.setText("")
            self.state.set_overlay(None)
            return
        self.pred_label.setText(f"<b>{pred.class_name}</b> — probability {pred.probability:.3f}")
        probs = ", ".join(f"{n}: {p:.2f}" for n, p in zip(self.predictor.class_names, pred.probs, strict=False))
        truth = ""
        if self.dataset.label_name(case):
            truth = f"<br>Known label: {self.dataset.label_name(case)}"
        self.pred_detail.setText(f"Model {self.predictor.config.model}: {probs}{truth}")
        self._request_cam(case)

    def _request_cam(self, case: Case) -> None:
        if case.case_id in self.cams:
            self._apply_cam(case.case_id)
            return
        predictor, loader, pred = self.predictor, self.cache.get, self.predictions.get(case.case_id)
        self._cam_token += 1
        token = self._cam_token
        self.cam_status.setText("Computing Grad-CAM…")

        def done(result):
            self.cams[case.case_id] = result
            if token == self._cam_token:
                self.cam_status.setText(
                    f"Grad-CAM for '{predictor.class_names[result.class_index]}' "
                    f"({result.reference.modality} grid, layer4)")
            self._apply_cam(case.case_id)
            self.gradcam_ready.emit(case.case_id)

        def failed(exc):
            self.cam_status.setText(f"Grad-CAM failed: {exc}")

        self.workers.start(predictor.gradcam, case, loader, pred.predicted if pred else None,
                           on_return=done, on_error=failed)

    def _apply_cam(self, case_id: str) -> None:
        """Lay the case's Grad-CAM over the displayed volume (resampled through the affines when
        the displayed modality is on another grid)."""
        res = self.cams.get(case_id)
        vol = self.state.volume
        if res is None or vol is None or self.state.case_id != case_id:
            return

        def show(cam):
            if self.state.volume is vol:  # still the volume it was resampled for
                self.state.set_overlay(np.ascontiguousarray(cam, dtype=np.float32))
                self._update_readout()

        same_grid = res.cam.shape == vol.shape and np.allclose(res.reference.affine, vol.affine, atol=1e-4)
        if same_grid:
            show(res.cam)
        else:  # resampling a large grid takes seconds: not on the GUI thread
            self.workers.start(resample_to_grid, res.cam, res.reference.affine, vol.shape, vol.affine,
                               order=1, on_return=show, on_error=self._error_from("Grad-CAM overlay"))

    # ------------------------------------------------------------------ export
    def export_report(self, path: str | Path) -> Path | None:
        """Write the PDF report of the selected case at the current crosshair."""
        from ..report import build_report_inputs, write_case_report

        case = self.current_case()
        if self.predictor is None or case is None:
            self.show_error("Load or train a model and select a case first.")
            return None
        try:
            cam = self.cams.get(case.case_id)
            pred = self.predictions.get(case.case_id)
            cursor = None
            if cam is not None and self.state.volume is not None:
                world = self.state.cursor_world()
                ijk = np.round(cam.reference.world_to_voxel(world)).astype(int)
                cursor = tuple(int(v) for v in np.clip(ijk, 0, np.array(cam.reference.shape) - 1))
            inputs = build_report_inputs(
                self.predictor, case, self.cache.get, cursor=cursor, prediction=pred, gradcam=cam,
                radiological=self.state.radiological, cmap=self.state.cmap, opacity=self.state.opacity,
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
        from ..report import write_predictions_csv

        if not self.predictions:
            self.show_error("No predictions yet: train or load a checkpoint first.")
            return None
        preds = [self.predictions[c.case_id] for c in self.dataset.cases if c.case_id in self.predictions]
        try:
            return write_predictions_csv(preds, self.predictor.class_names, path, self.dataset)
        except OSError as exc:
            self.show_error(f"Predictions not written: {exc}")
            return None

    # ------------------------------------------------------------------ dialogs
    def assign_modality(self, old: str, new: str, all_cases: bool = True) -> bool:
        """Rename modality ``old`` to ``new`` (every case, or the selected one): the user's
        override of the modality read from names and SeriesDescription."""
        from ..datasets import assign_modality

        case = self.current_case()
        try:
            n = assign_modality(self.dataset, old, new, None if all_cases or case is None else case.case_id)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return False
        self.train_panel.set_modalities(self.dataset.modalities)
        self._fill_table()
        if case is not None:
            self.select_case(case.case_id)
            self._case_selected()
        self.statusBar().showMessage(f"{old} is now {new} in {n} case(s)", 6000)
        return True

    def _assign_modality_dialog(self) -> None:
        case = self.current_case()
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

    def _export_report_dialog(self) -> None:
        case = self.current_case()
        name = f"mriviewer-report-{case.case_id.replace('/', '_') if case else 'case'}.pdf"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export report", name, "PDF (*.pdf)")
        if path:
            self.export_report(path)

    def _export_csv_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export predictions", "predictions.csv", "CSV (*.csv)")
        if path:
            self.export_predictions(path)

    def closeEvent(self, ev):  # noqa: N802
        if self.trainer is not None:
            self.trainer.stop()
        super().closeEvent(ev)


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
