"""The main window: binds the Qt-free models to the views and controls, and holds no working
state of its own. :class:`~mriviewer.app.model.AppModel` is the dataset, case, checkpoint,
predictions, Grad-CAM and training run; :class:`~mriviewer.app.viewer.ViewerState` is what is
shown and how; :class:`~mriviewer.app.session.Session` does the work (loading a case on its
grid, predicting, Grad-CAM, training) on the workers of :class:`~mriviewer.ui.workers.WorkerPool`;
the texts come from :mod:`mriviewer.app.presenters`.

Docks: Cases (left), Display (left, below), Prediction and Train (right). Commands and menus
are in :mod:`mriviewer.ui.menus`, their prompts in :mod:`mriviewer.ui.dialogs`. Every error
goes to :meth:`AppModel.report_error`, shown here in one non-modal message naming the file.
Quitting stops a training run, cancels the other work and waits (at most
:data:`CLOSE_TIMEOUT_S`) for the workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets
from superqt import QElidingLabel
from superqt.utils import qthrottled

from mriviewer import RESEARCH_ONLY, __version__
from mriviewer.app import presenters
from mriviewer.app.model import AppModel, runs_dir
from mriviewer.app.session import Session
from mriviewer.app.viewer import ViewerState
from mriviewer.cache.memory import default_cache
from mriviewer.core.errors import MriViewerError
from mriviewer.data.cases import Case
from mriviewer.ml.events import EpochEvent
from mriviewer.ui import exports
from mriviewer.ui import settings as app_settings
from mriviewer.ui.actions import ActionRegistry
from mriviewer.ui.controls.case_browser import CaseBrowser
from mriviewer.ui.controls.display_panel import DisplayPanel
from mriviewer.ui.controls.prediction_panel import PredictionPanel
from mriviewer.ui.controls.train import TrainPanel
from mriviewer.ui.dialogs import LabelledFoldersDialog
from mriviewer.ui.menus import build_actions, build_menus
from mriviewer.ui.views.layout import ViewerLayout
from mriviewer.ui.workers import WorkerPool

log = logging.getLogger(__name__)

__all__ = ["MainWindow", "runs_dir", "LabelledFoldersDialog", "CLOSE_TIMEOUT_S"]

#: Seconds quitting waits for the workers once they were asked to stop.
CLOSE_TIMEOUT_S = 2.0

_LEFT, _RIGHT = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, QtCore.Qt.DockWidgetArea.RightDockWidgetArea


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
        self.session = Session(self.model, self.state, self.cache, run=self.workers.start, bind=False)
        self._messages: list[QtWidgets.QMessageBox] = []
        self.viewer = ViewerLayout(self.state)
        self._build_central()
        self._build_docks()
        self.actions = ActionRegistry(self)
        build_actions(self)
        build_menus(self)
        self.report_button.setDefaultAction(self.actions["report"])
        self.batch_button.setDefaultAction(self.actions["batch_report"])
        self._fill_recent()
        self._build_status()
        self._bind()
        app_settings.restore_display(self.state)
        app_settings.restore_window(self, {"casesDock": 460, "trainDock": 400},
                                    {"predictionDock": 230, "trainDock": 700})

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
        self.modality_combo = QtWidgets.QComboBox()
        self.modality_combo.setMinimumWidth(110)
        self.modality_combo.setToolTip("Modality shown in the three planes (M cycles)")
        self.modality_combo.currentIndexChanged.connect(
            lambda _: self.session.select_modality(self.modality_combo.currentData()))
        self.grid_combo = QtWidgets.QComboBox()
        self.grid_combo.setToolTip("All modalities of a case are shown on one grid, so the crosshair is the "
                                   "same millimetre in each: the finest modality's (default), a chosen one, "
                                   "or each series' own (native)")
        for text, grid in presenters.GRID_ITEMS:
            self.grid_combo.addItem(text, grid)
        self.grid_combo.currentIndexChanged.connect(lambda _: self.state.set_grid(self.grid_combo.currentData()))
        # The case line takes the row's room and elides (in the middle, ids differ at their
        # ends) only when even that is too narrow; the full id is its tooltip.
        self.case_title = QElidingLabel("")
        self.case_title.setElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.case_title.setStyleSheet("font-weight: bold;")
        self.case_title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
        bar = QtWidgets.QHBoxLayout()
        for w in (QtWidgets.QLabel("Modality"), self.modality_combo, self.grid_combo):
            bar.addWidget(w)
        bar.addWidget(self.case_title, 1)
        # The disclaimer has a line of its own: beside the selectors it left the case id no room.
        self.disclaimer = QtWidgets.QLabel(RESEARCH_ONLY)
        self.disclaimer.setObjectName("researchBanner")
        self.disclaimer.setStyleSheet("color: #c00; font-weight: bold;")
        self.disclaimer.setWordWrap(True)
        central = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addLayout(bar)
        lay.addWidget(self.disclaimer)
        lay.addWidget(self.viewer, 1)
        self.setCentralWidget(central)

    def _build_docks(self) -> None:
        self.browser = CaseBrowser(self.model)
        self.case_table = self.browser.table
        self._add_dock("Cases", self.browser, 460, _LEFT)
        self.display = DisplayPanel(self.state)
        self._add_dock("Display", self.display, 300, _LEFT)
        self.width_spin, self.level_spin = self.display.width_spin, self.display.level_spin
        self.cam_check, self.seg_check = self.display.cam_check, self.display.seg_check
        self.prediction = PredictionPanel(self.model)
        for name in ("pred_label", "pred_detail", "cam_class", "cam_status", "model_label", "report_button",
                     "batch_button"):
            setattr(self, name, getattr(self.prediction, name))
        self._add_dock("Prediction", self.prediction, 380, _RIGHT)
        self.train_panel = TrainPanel(app_model=self.model)
        self.train_panel.train_requested.connect(self.start_training)
        self.train_panel.stop_requested.connect(self.stop_training)
        self.train_panel.load_run_requested.connect(self.load_checkpoint)
        # No scroll area around the panel: its settings pages and results scroll on their own,
        # so Train/Stop, the progress bars and the curves always fit the dock.
        self._add_dock("Train", self.train_panel, 380, _RIGHT)

    def _add_dock(self, title: str, widget: QtWidgets.QWidget, min_width: int, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(widget)
        dock.setMinimumWidth(min_width)
        self.addDockWidget(area, dock)
        return dock

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
        m, st, se = self.model, self.state, self.session
        m.error.connect(self._show_error_message)
        m.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        m.state_changed.connect(self.actions.update)
        m.dataset_changed.connect(self._dataset_changed)
        m.checkpoint_changed.connect(self._checkpoint_changed)
        m.prediction_added.connect(self._prediction_added)
        m.training_changed.connect(self._update_train_enabled)
        se.status.connect(self._set_busy)
        se.case_shown.connect(self._case_shown)
        se.case_loaded.connect(lambda case_id: self.volume_shown.emit(case_id))
        se.case_updated.connect(lambda case_id: self.browser.table_model.update_case(case_id))
        se.cam_caption_changed.connect(lambda text: self.cam_status.setText(text))
        se.cam_ready.connect(lambda case_id: self.gradcam_ready.emit(case_id))
        se.predictions_done.connect(self._predictions_done)
        se.train_event.connect(self._train_event)
        se.training_ended.connect(self._training_ended)
        se.training_complete.connect(self._training_complete)
        se.training_error.connect(self._training_error)
        readout = qthrottled(self._update_readout, timeout=50, leading=True, parent=self)
        for ev in ("cursor", "volume", "overlay"):
            st.on(ev, readout)
        st.on("volume", self.actions.update)
        st.on("volume", self._sync_modality_combo)
        st.on("grid", self._sync_grid_combo)
        se.case_order = self.browser.visible_case_ids  # the prefetch follows the browser's order
        se.bind()  # after the widgets: the browser lists a new dataset before its first case is selected

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

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.busy.setVisible(busy)
        if text:
            self.statusBar().showMessage(text, 0 if busy else 4000)

    # ------------------------------------------------------------------ dataset and case
    def open_path(self, path: str | Path) -> bool:
        """Open a dataset, case, series or file. Returns False (and shows why) on failure."""
        ok = self.model.open_path(path)
        if ok:
            self._fill_recent(app_settings.add_recent(str(Path(path).resolve())))
        return ok

    def open_path_in_background(self, path: str | Path):
        """Open ``path`` with discovery in a worker thread, a progress dialog and Cancel (File ▸
        Open, the command line); returns the :class:`~mriviewer.ui.opening.FolderOpener`, whose
        ``finished(opened)`` says how it ended."""
        from mriviewer.ui.opening import FolderOpener

        def done(ds) -> None:
            self.model.open_dataset(ds)
            self._fill_recent(app_settings.add_recent(str(Path(path).resolve())))

        opener = self.opener = FolderOpener(self, path, done, lambda exc: self.model.report_error("", exc))
        opener.finished.connect(lambda _opened: setattr(self, "opener", None))
        opener.start()
        return opener

    def open_labelled_folders(self, sources: list[tuple[str, str | Path]]) -> bool:
        """Several folders as one dataset, each folder's cases labelled with its class
        (``mriviewer train --data LABEL=PATH …``). Returns False (and shows why) on failure."""
        return self.model.open_labelled_folders(sources)

    def open_dataset(self, ds) -> bool:
        """Show a discovered or assembled :class:`~mriviewer.data.cases.Dataset`."""
        self.model.open_dataset(ds)
        return True

    def open_demo(self) -> None:
        """Generate (once) and open the built-in demo dataset."""
        self.session.open_demo(self.open_path)

    def _dataset_changed(self) -> None:
        ds, panel = self.model.dataset, self.train_panel
        panel.set_modalities(ds.modalities)
        if isinstance(ds.settings.get("train"), dict):
            panel.apply_settings(ds.settings["train"])
            panel.append_log(f"Suggested settings from the dataset: {ds.settings['train']}")
        for w in ds.warnings:
            panel.append_log(f"Note: {w}")
        self._update_train_enabled()
        self.dataset_opened.emit()

    def _fill_recent(self, items: list[str] | None = None) -> None:
        self.recent_menu.clear()
        for p in items if items is not None else app_settings.recent():
            self.recent_menu.addAction(p, lambda p=p: self.open_path_in_background(p))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def current_case(self) -> Case | None:
        """The selected case."""
        return self.model.current_case

    def select_case(self, case_id: str) -> None:
        """Select a case by id (it is loaded and shown)."""
        self.model.select_case(case_id)

    def step_case(self, delta: int) -> None:
        """Next (1) or previous (−1) case in the browser's sorted, filtered order."""
        self.model.step_case(delta, self.browser.visible_case_ids())

    def cycle_modality(self) -> None:
        """Show the case's next loaded modality."""
        names = list(self.state.volumes)
        if len(names) > 1 and self.state.modality in names:
            nxt = names[(names.index(self.state.modality) + 1) % len(names)]
            self.modality_combo.setCurrentIndex(self.modality_combo.findData(nxt))

    def load_case(self, case: Case, modality: str) -> None:
        """Load every modality of ``case`` in a worker, on the common grid chosen in the grid
        box, and show ``modality``."""
        self.session.load_case(case, modality)

    load_modality = load_case  # older name, kept for scripts

    def _case_shown(self, case_id: str, modality: str) -> None:
        case = self.model.case(case_id)
        self.case_title.setText(presenters.case_title(case))
        self.case_title.setToolTip(presenters.case_title(case))
        combo = self.modality_combo
        combo.blockSignals(True)
        combo.clear()
        for text, m, present in presenters.modality_items(case):
            combo.addItem(text, m)
            combo.model().item(combo.count() - 1).setEnabled(present)
        if modality:
            combo.setCurrentIndex(combo.findData(modality))
        combo.blockSignals(False)
        self.prediction.show_case(case)

    def _sync_modality_combo(self) -> None:
        """The modality box follows the modality shown (a load may show another than asked)."""
        st = self.state
        i = self.modality_combo.findData(st.modality)
        if st.volume is None or st.case_id != self.model.case_id or i < 0 or i == self.modality_combo.currentIndex():
            return
        self.modality_combo.blockSignals(True)
        self.modality_combo.setCurrentIndex(i)
        self.modality_combo.blockSignals(False)

    def _sync_grid_combo(self) -> None:
        i = self.grid_combo.findData(self.state.grid)
        if i >= 0 and i != self.grid_combo.currentIndex():
            self.grid_combo.blockSignals(True)
            self.grid_combo.setCurrentIndex(i)
            self.grid_combo.blockSignals(False)

    def reset_views(self) -> None:
        """Undo zoom and pan in every shown view."""
        for v in self.viewer.shown_views():
            v.reset_view()

    def _update_readout(self) -> None:
        self.readout.setText(presenters.status_readout(self.state))

    def assign_modality(self, old: str, new: str, all_cases: bool = True) -> bool:
        """Rename modality ``old`` to ``new`` (every case, or the selected one): the user's
        override of the modality read from names and SeriesDescription. Refused (False, and
        said why) while a run trains."""
        try:
            n = self.session.assign_modality(old, new, all_cases)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return False
        self.train_panel.set_modalities(self.model.dataset.modalities)
        self.statusBar().showMessage(presenters.assigned_text(old, new, n), 6000)
        return True

    # ------------------------------------------------------------------ training
    def _update_train_enabled(self) -> None:
        ok, why = self.model.can_train()
        if not self.model.training:
            self.train_panel.set_can_train(ok, why)

    def start_training(self) -> None:
        """Start a training run with the Train panel's settings (button: Train)."""
        try:
            cfg = self.train_panel.config()
            trainer = self.session.start_training(cfg)
        except MriViewerError as exc:
            self.show_error(str(exc))
            return
        self.train_panel.set_running(True, cfg)
        for line in presenters.training_start_log(trainer, cfg):
            self.train_panel.append_log(line)

    def stop_training(self) -> None:
        """Ask the run to stop after the current batch (button: Stop)."""
        if self.model.training:
            self.model.stop_training()
            self.train_panel.status.setText("Stopping after this batch…")

    def _train_event(self, event) -> None:
        self.train_panel.show_event(event)
        if isinstance(event, EpochEvent):
            self.statusBar().showMessage(presenters.epoch_text(event), 3000)

    def _training_error(self, exc) -> None:
        self.train_panel.set_running(False)
        self.train_panel.status.setText("Failed")
        self.train_panel.append_log(f"Training failed: {exc}", "warning")

    def _training_ended(self, result, decision: str) -> None:
        """Show the run's test results and what became of its checkpoint (loaded unless the run
        was stopped while another model is loaded: then it is offered)."""
        panel = self.train_panel
        panel.set_running(False)
        panel.show_results(result.metrics, stopped=result.stopped, source=f"Run {result.out_dir}")
        status, lines = presenters.training_outcome(result, decision)
        panel.status.setText(status)
        for line in lines:
            panel.append_log(line)
        if decision == "offered":
            panel.offer_checkpoint(result.checkpoint)
            self.statusBar().showMessage(status, 15000)

    def _training_complete(self, result) -> None:
        self._update_train_enabled()
        self.training_finished.emit(result)

    # ------------------------------------------------------------------ model and predictions
    def load_checkpoint(self, path: str | Path, then: Callable[[], None] | None = None) -> None:
        """Load a checkpoint in a worker (reading one and building its network takes seconds for
        the video networks), then predict every case and show the current case's Grad-CAM.
        ``then`` runs on the GUI thread once the model is loaded or has failed to load (the
        failure is reported through the app model; the previous model stays)."""
        self.session.load_checkpoint(path, then)

    def _checkpoint_changed(self) -> None:
        m, panel = self.model, self.train_panel
        self.prediction.fill_classes()
        text = presenters.checkpoint_summary(m)
        self.model_label.setText(text)
        panel.append_log(text)
        shown = presenters.checkpoint_results(m)
        if shown is not None:
            panel.show_results(shown, source=f"Loaded checkpoint {m.checkpoint_path}")
        self.prediction.show_case(m.current_case)  # the panel's offer follows AppModel.state_changed

    def predict_all(self) -> None:
        """Predict every case with the loaded model (in a worker)."""
        self.session.predict_all()

    def _prediction_added(self, case_id: str) -> None:
        if case_id == self.model.case_id:
            self.prediction.show_case(self.model.current_case)

    def _predictions_done(self) -> None:
        self.browser.fit_columns()
        self.predictions_ready.emit()

    # ------------------------------------------------------------------ export
    def export_report(self, path: str | Path) -> Path | None:
        """Write the PDF report of the selected case at the current crosshair."""
        return exports.export_report(self, path)

    def export_predictions(self, path: str | Path) -> Path | None:
        """File ▸ Export predictions: one row per predicted case, its ``split`` the case's role
        for the loaded checkpoint (as ``mriviewer evaluate`` and the batch export write it)."""
        return exports.export_predictions(self, path)

    def export_reports(self, out_dir: str | Path, case_ids: list[str] | None = None):
        """Batch export with a progress dialog and Cancel: one PDF per case and
        ``predictions.csv`` (:func:`mriviewer.reporting.batch.export_reports`). Returns the worker."""
        from mriviewer.ui.controls.batch_export import run_batch_export

        return run_batch_export(self, out_dir, case_ids)

    def save_screenshot(self, path: str | Path) -> Path | None:
        """Write the views area (the current layout) as a PNG."""
        return exports.save_screenshot(self, path)

    def save_checkpoint(self, path: str | Path) -> Path | None:
        """Copy the loaded checkpoint (weights, config, split, metrics) to ``path`` atomically."""
        try:
            out = self.model.save_checkpoint(path)
        except (MriViewerError, OSError) as exc:
            self.show_error(f"{path}: checkpoint not saved ({exc})")
            return None
        self.statusBar().showMessage(f"Checkpoint saved to {out}", 8000)
        return out

    # ------------------------------------------------------------------ quitting
    def closeEvent(self, ev):  # noqa: N802
        """Quit: stop a training run, cancel loads and predictions, wait (at most
        :data:`CLOSE_TIMEOUT_S`) for the workers, save the settings."""
        self.session.shutdown()
        if getattr(self, "opener", None) is not None and self.opener.running:
            self.opener.cancel()
            self.opener.wait(CLOSE_TIMEOUT_S)
        self.workers.close(CLOSE_TIMEOUT_S)
        app_settings.save_window(self, self.state)
        super().closeEvent(ev)
