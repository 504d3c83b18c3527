"""The Train panel: preset picker, an editor for every hyperparameter, Train/Stop, progress with
ETA, live curves, the log with its warnings, and the held-out test results of the last run.

Made of focused parts: :class:`~.header.SetupHeader` (preset, model, modalities, device),
:class:`~.form.ConfigForm` (the editors, generated from the
:class:`~mriviewer.ml.config.TrainConfig` fields' metadata), :class:`~.run_view.RunView`
(buttons, progress, :class:`~.curves.TrainingCurves`, :class:`~.results.ResultsView`, log,
warnings), and the settings logic (:class:`~.settings.SettingsMixin`). The run's state — its
epochs, warnings, status, progress and results — lives in a Qt-free
:class:`~mriviewer.app.training.TrainingRun` (:attr:`TrainPanel.run`) that the view observes; a
stopped run's offered checkpoint is the app model's
(:attr:`~mriviewer.app.model.AppModel.pending_checkpoint`). :meth:`TrainPanel.config` starts
from the chosen preset (or the defaults) and applies what the editors hold with
:meth:`~mriviewer.ml.config.TrainConfig.with_overrides`, so the run's ``config.json`` records the
preset, its version and every edited key. Running the engine is the main window's job.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from mriviewer.app.model import AppModel
from mriviewer.app.training import TrainingRun
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.presets import list_presets
from mriviewer.ui.controls.train.form import ConfigForm
from mriviewer.ui.controls.train.header import SetupHeader
from mriviewer.ui.controls.train.run_view import RunView
from mriviewer.ui.controls.train.settings import SettingsMixin

__all__ = ["TrainPanel"]

#: Widgets of the parts reachable as the panel's attributes (scripts, tests and the window use them).
_HEADER_WIDGETS = ("preset_combo", "preset_info", "preset_notes", "model", "from_checkpoint_button", "modality_box",
                   "modality_layout", "modality_hint", "device_label")
_RUN_WIDGETS = ("train_button", "stop_button", "load_run_button", "progress", "overall", "status", "tabs", "log",
                "warning_list", "curves", "results")
_CURVE_ITEMS = ("loss_plot", "train_curve", "val_curve", "auc_plot", "auc_curve", "best_marker", "lr_plot",
                "lr_curve")
_RESULT_WIDGETS = ("results_label", "results_warnings", "confusion_caption", "confusion_table", "roc_plot",
                   "roc_legend")
#: Older names of some editors, kept for scripts and tests written against the earlier panel.
_EDITOR_ALIASES = {"epochs": "epochs", "lr": "lr", "batch": "batch_size", "image_size": "image_size",
                   "depth": "depth", "device": "device", "pretrained": "pretrained"}


class TrainPanel(SettingsMixin, QtWidgets.QWidget):
    """Widgets for one training run.

    Signals: ``train_requested``, ``stop_requested``, ``load_run_requested(str)`` (the
    checkpoint of a stopped run the user asked to load).

    Args:
        parent: the parent widget.
        app_model: the :class:`~mriviewer.app.model.AppModel` whose ``pending_checkpoint`` the
            "Load this run's model" button offers; without one, the panel uses the model of the
            window it is placed in (its nearest ancestor with an ``AppModel`` as ``model``).

    Attributes:
        run: the :class:`~mriviewer.app.training.TrainingRun` shown.
        header, form, run_view: the parts; their widgets are also the panel's attributes
            (``preset_combo``, ``fields``, ``train_button``, ``loss_plot``, ``results_label``, …).
    """

    train_requested = QtCore.Signal()
    stop_requested = QtCore.Signal()
    load_run_requested = QtCore.Signal(str)

    def __init__(self, parent=None, app_model: AppModel | None = None) -> None:
        super().__init__(parent)
        self.presets = list_presets()
        self.run = TrainingRun()
        self.edited_keys: list[str] = []
        self._app_model: AppModel | None = None
        self._offered = False
        self.header = SetupHeader(self.presets)
        self.form = ConfigForm()
        self.run_view = RunView(self.run)
        self._expose_parts()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.form)
        self.splitter.addWidget(self.run_view)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 5)
        layout.addWidget(self.splitter, 1)
        self._connect_settings()
        self.train_button.clicked.connect(self.train_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.load_run_button.clicked.connect(self._load_run_clicked)
        self.run.ended.connect(self.refresh_device)
        if app_model is not None:
            self.bind_app_model(app_model)
        self._relevance()
        self._refresh_overrides()
        self.refresh_device()

    def _expose_parts(self) -> None:
        """The parts' widgets as the panel's attributes (``panel.train_button``, …)."""
        for names, part in ((_HEADER_WIDGETS, self.header), (_RUN_WIDGETS, self.run_view),
                            (_CURVE_ITEMS, self.run_view.curves), (_RESULT_WIDGETS, self.run_view.results)):
            for name in names:
                setattr(self, name, getattr(part, name))
        self.fields = self.form.fields
        self.field_labels = self.form.field_labels
        self.field_group = self.form.field_group
        self.settings_tabs = self.form
        self._warnings_tab = self.run_view.warnings_tab
        for alias, key in _EDITOR_ALIASES.items():
            setattr(self, alias, self.fields[key].editor)

    # ------------------------------------------------------------------ the run's state
    @property
    def modality_checks(self) -> dict[str, QtWidgets.QCheckBox]:
        """Modality → its check box (the open dataset's modalities)."""
        return self.header.modality_checks

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self.run.running

    @property
    def history(self) -> list:
        """The run's finished epochs (:class:`~mriviewer.ml.events.EpochRecord`\\ s)."""
        return self.run.history

    @property
    def warnings(self) -> list[str]:
        """The run's warnings (and those logged before it), each once."""
        return self.run.warnings

    # ------------------------------------------------------------------ train button and run
    def set_can_train(self, ok: bool, reason: str = "") -> None:
        """Whether a labelled dataset is open; the Train button is enabled only then (and when
        no run is in progress)."""
        self.run_view.set_can_train(ok, reason)

    def set_running(self, running: bool, config: TrainConfig | None = None) -> None:
        """Enter or leave the running state; entering clears the curves, results and warnings
        (``config``: the run's config, for fold counts and the ETA) and the offered checkpoint."""
        if running:
            self.offer_checkpoint(None)
            self.run.start(config)
        else:
            self.run.end()

    def append_log(self, text: str, level: str = "info") -> None:
        """Add a line to the log (warnings in colour, and to the Warnings list); the log
        follows new lines unless the user has scrolled up."""
        self.run.add_log(text, level)

    def add_warning(self, text: str) -> None:
        """Collect a warning in the Warnings list (once)."""
        self.run.add_warning(text)

    def show_event(self, event) -> None:
        """Display one engine event (:mod:`mriviewer.ml.events`)."""
        self.run.handle(event)

    # ------------------------------------------------------------------ results
    def clear_results(self) -> None:
        """Show no results (a run is under way)."""
        self.run.clear_results()

    def show_results(self, metrics: dict, stopped: bool = False, source: str = "") -> None:
        """Show a run's ``metrics.json`` content (or a checkpoint's metrics in that shape): the
        test metrics with intervals, the CV summary or each modality's test AUC, the ROC curve
        and the confusion matrix, and the warnings; switches to the Results tab."""
        self.run.set_results(metrics, stopped, source)

    def confusion_counts(self) -> list[list[int]]:
        """The confusion matrix shown (rows true, columns predicted)."""
        return self.run_view.results.confusion_counts()

    # ------------------------------------------------------------------ the offered checkpoint
    def bind_app_model(self, model: AppModel) -> None:
        """Offer ``model``'s :attr:`~mriviewer.app.model.AppModel.pending_checkpoint` (the button
        follows its changes)."""
        if self._app_model is model:
            return
        self._app_model = model
        model.state_changed.connect(self._sync_offer)
        self._sync_offer()

    def app_model(self) -> AppModel | None:
        """The bound app model, else that of the window the panel is in (bound then)."""
        if self._app_model is None:
            w = self.parentWidget()
            while w is not None and not isinstance(getattr(w, "model", None), AppModel):
                w = w.parentWidget()
            if w is not None:
                self.bind_app_model(w.model)
        return self._app_model

    @property
    def pending_checkpoint(self) -> str | None:
        """The stopped run's checkpoint offered by "Load this run's model" (``None``: none): the
        app model's, while the panel offers it."""
        model = self.app_model()
        if not self._offered or model is None or model.pending_checkpoint is None:
            return None
        return str(model.pending_checkpoint)

    def offer_checkpoint(self, path: str | Path | None) -> None:
        """Show (``path``: the app model's pending checkpoint) or hide (``None``) the "Load this
        run's model" button."""
        self._offered = path is not None
        self._sync_offer()

    def _sync_offer(self) -> None:
        try:
            path = self.pending_checkpoint
            self.load_run_button.setVisible(path is not None)
            self.load_run_button.setToolTip(f"Load {path} (replacing the loaded model)" if path else "")
        except RuntimeError:  # the widget is gone (the model outlives its window in scripts)
            pass

    def _load_run_clicked(self) -> None:
        path = self.pending_checkpoint
        if path:
            self.offer_checkpoint(None)
            self.load_run_requested.emit(path)
