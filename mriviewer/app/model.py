"""The application's working state, apart from any widget (napari's ``ViewerModel``, FSLeyes'
``displaycontext``): the open dataset, the selected case, the training run, and (from
:class:`~mriviewer.app.predictions.PredictionsMixin`) the loaded checkpoint, its predictions and
Grad-CAM maps. Widgets observe it through its typed psygnal signals and change it through its
methods; :mod:`mriviewer.ui` binds to it and holds no state of its own. Every method here is
synchronous and Qt-free, so the prediction → Grad-CAM → report path is tested without a window
(``tests/app/test_appmodel.py``); :class:`~mriviewer.app.session.Session` runs the slow ones in
workers, and the text the panels show comes from :mod:`mriviewer.app.presenters`.

Signals (``model.<signal>.connect(callback)``):

==========================  ==========================================================
``dataset_changed()``       a dataset was opened (``model.dataset``)
``case_selected(str)``      the selected case id changed
``checkpoint_changed()``    a model was loaded (``model.predictor``); predictions cleared
``prediction_added(str)``   a case's prediction (or its error) arrived
``cam_added(str)``          a case's shown Grad-CAM changed
``cam_class_changed()``     the class Grad-CAM explains changed
``training_changed()``      a run started or ended (``model.training``)
``error(str)``              one relay for every error: a message naming the file
``message(str)``            a status line (progress, what was written)
``state_changed()``         anything that enables or disables actions changed
==========================  ==========================================================
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Callable
from pathlib import Path

from psygnal import Signal

from mriviewer.app.predictions import PredictionsMixin
from mriviewer.core.errors import MriViewerError
from mriviewer.data.cases import Case, Dataset

log = logging.getLogger(__name__)

__all__ = ["AppModel", "runs_dir"]


def runs_dir() -> Path:
    """Where GUI training runs are written: ``$MRIVIEWER_RUNS_DIR`` or ``~/mriviewer-runs``."""
    return Path(os.environ.get("MRIVIEWER_RUNS_DIR", Path.home() / "mriviewer-runs"))


class AppModel(PredictionsMixin):
    """mriviewer's application state (see the module docstring for the signals).

    Attributes:
        dataset: the open :class:`~mriviewer.data.cases.Dataset` or ``None``.
        case_id: the selected case's id or ``None``.
        trainer: the current or last :class:`~mriviewer.ml.engine.Trainer`.
        training: a run is in progress.
        last_result: the last finished run's :class:`~mriviewer.ml.events.TrainResult`.

    The checkpoint's attributes (``predictor``, ``checkpoint_path``, ``predictions``,
    ``prediction_errors``, ``cams``, ``cam_cache``, ``cam_class``, ``pending_checkpoint``) are
    described in :class:`~mriviewer.app.predictions.PredictionsMixin`.
    """

    dataset_changed = Signal()
    case_selected = Signal(str)
    training_changed = Signal()
    error = Signal(str)
    message = Signal(str)
    state_changed = Signal()

    def __init__(self) -> None:
        self.dataset: Dataset | None = None
        self.case_id: str | None = None
        self._init_predictions()
        self.trainer = None
        self.training = False
        self.last_result = None

    # ------------------------------------------------------------------ errors
    def report_error(self, prefix: str, exc: BaseException | str) -> str:
        """The one place errors go: formats ``exc`` (a :class:`MriViewerError` as it is, any
        other exception with its type) after ``prefix`` and emits :attr:`error`. Returns the
        message."""
        if isinstance(exc, str):
            msg = exc
        elif isinstance(exc, MriViewerError):
            msg = str(exc)
        else:
            msg = f"{type(exc).__name__}: {exc}"
        text = f"{prefix}: {msg}" if prefix else msg
        log.warning("%s", text)
        self.error.emit(text)
        return text

    # ------------------------------------------------------------------ dataset
    def open_path(self, path: str | Path) -> bool:
        """Open a dataset, case, series or file (:func:`~mriviewer.data.discover.discover`).
        Returns False and emits :attr:`error` when it cannot be opened."""
        from mriviewer.data.discover import discover

        return self._open(discover, path)

    def open_labelled_folders(self, sources: list[tuple[str, str | Path]]) -> bool:
        """Several folders as one dataset, each folder's cases labelled with its class
        (:func:`~mriviewer.data.assemble.assemble`). Returns False and emits :attr:`error` on failure."""
        from mriviewer.data.assemble import assemble

        return self._open(assemble, sources)

    def _open(self, build: Callable, what) -> bool:
        try:
            ds = build(what)
        except (MriViewerError, OSError) as exc:
            self.report_error("", exc)
            return False
        self.open_dataset(ds)
        return True

    def open_dataset(self, ds: Dataset) -> None:
        """Make ``ds`` the open dataset; predictions and maps of the previous one are dropped
        (the loaded model stays and is run again on the new cases by the caller)."""
        self.dataset = ds
        self.case_id = None
        self._clear_predictions()
        self.dataset_changed.emit()
        self.state_changed.emit()

    @property
    def cases(self) -> list[Case]:
        """The open dataset's cases (a new list; empty with no dataset)."""
        return list(self.dataset.cases) if self.dataset is not None else []

    def case(self, case_id: str | None) -> Case | None:
        """The case with ``case_id`` or ``None``."""
        if self.dataset is None or case_id is None:
            return None
        return next((c for c in self.dataset.cases if c.case_id == case_id), None)

    @property
    def current_case(self) -> Case | None:
        """The selected case or ``None``."""
        return self.case(self.case_id)

    def select_case(self, case_id: str | None) -> None:
        """Select a case by id (emits :attr:`case_selected` when it changes)."""
        if case_id is not None and self.case(case_id) is None:
            raise KeyError(case_id)
        if case_id != self.case_id:
            self.case_id = case_id
            self.case_selected.emit(case_id or "")
            self.state_changed.emit()

    def step_case(self, delta: int, visible: list[str] | None = None) -> str | None:
        """Select the next (``delta`` = 1) or previous (−1) case among ``visible`` ids (the
        browser's filtered order; default all). Returns the new id."""
        ids = visible if visible is not None else [c.case_id for c in self.cases]
        if not ids:
            return None
        i = ids.index(self.case_id) + delta if self.case_id in ids else 0
        new = ids[max(0, min(len(ids) - 1, i))]
        self.select_case(new)
        return new

    def assign_modality(self, old: str, new: str, all_cases: bool = True) -> int:
        """Rename modality ``old`` to ``new`` in every case (or the selected one). Returns how
        many cases changed. Refused while a run trains: its thread reads the cases' modalities.

        Raises:
            DatasetError: ``new`` already present, unknown ``old``.
            MriViewerError: a training run is in progress (:meth:`can_assign_modality`).
        """
        from mriviewer.data.cases import assign_modality

        ok, why = self.can_assign_modality()
        if not ok:
            raise MriViewerError(why)
        n = assign_modality(self.dataset, old, new, None if all_cases else self.case_id)
        self.dataset_changed.emit()
        self.state_changed.emit()
        return n

    # ------------------------------------------------------------------ actions' state
    def can_train(self) -> tuple[bool, str]:
        """Whether Train may start, and why not."""
        if self.training:
            return False, "A training run is in progress; stop it first."
        if self.dataset is None:
            return False, "Open a labelled dataset first."
        if self.dataset.task == "none":
            if self.dataset.layout == "collection" and any(c.label is not None for c in self.dataset.cases):
                return False, (f"{self.dataset.root} holds several datasets with different labels: open one "
                               f"of them, or File ▸ Open labelled folders… to make one task.")
            return False, f"{self.dataset.root}: no labels found, nothing to train on."
        return True, ""

    def can_report(self) -> tuple[bool, str]:
        """Whether a report of the selected case can be written, and why not."""
        if self.predictor is None:
            return False, "Load or train a model first."
        case = self.current_case
        if case is None:
            return False, "Select a case first."
        if case.case_id in self.prediction_errors:
            return False, f"Case {case.case_id} cannot be predicted: {self.prediction_errors[case.case_id]}"
        return True, ""

    def can_assign_modality(self) -> tuple[bool, str]:
        """Whether Case ▸ Assign modality may rename a modality now, and why not."""
        if self.training:
            return False, "A training run is in progress; its cases cannot change until it ends."
        if self.dataset is None:
            return False, "Open a dataset first."
        return True, ""

    def apply_label_table(self, spec):
        """Label the open dataset's cases from the user's table (File ▸ Load labels…; the CLI's
        ``--labels``): :func:`mriviewer.data.label_table.apply_labels`. Predictions stay (they do
        not depend on labels); the browser and panels are told.

        Returns:
            The :class:`~mriviewer.data.label_table.LabelMatch`.

        Raises:
            LabelFileError: the table cannot label the cases (the message names the file).
            MriViewerError: no dataset, or a training run is in progress (its cases' labels
                cannot change under it).
        """
        from mriviewer.data.label_table import apply_labels

        ok, why = self.can_assign_modality()
        if not ok:
            raise MriViewerError(why)
        match = apply_labels(self.dataset, spec)
        self.dataset_changed.emit()
        self.state_changed.emit()
        return match

    def can_export_predictions(self) -> tuple[bool, str]:
        """Whether there are predictions to export, and why not."""
        if not self.predictions:
            return False, "No predictions yet: train or load a checkpoint first."
        return True, ""

    def can_batch_export(self) -> tuple[bool, str]:
        """Whether reports of the dataset's cases can be written, and why not."""
        if self.predictor is None or self.dataset is None:
            return False, "Load or train a model and open a dataset first."
        return True, ""

    # ------------------------------------------------------------------ training
    def start_training(self, config, loader: Callable, out: str | Path | None = None):
        """Create the :class:`~mriviewer.ml.engine.Trainer` of a new run (its ``run()`` generator
        goes to a worker). ``out`` defaults to ``runs_dir()/<dataset>-<model>-<time>``.

        Raises:
            MriViewerError: no labelled dataset, a run in progress, or a bad config.
        """
        from mriviewer.ml.engine import Trainer

        ok, why = self.can_train()
        if not ok:
            raise MriViewerError(why)
        if out is None:
            out = runs_dir() / f"{self.dataset.root.name}-{config.model}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
        self.trainer = Trainer(config, self.dataset, out, loader=loader)
        self.training = True
        self.training_changed.emit()
        self.state_changed.emit()
        return self.trainer

    def stop_training(self) -> None:
        """Ask the run to stop after the current batch."""
        if self.trainer is not None and self.training:
            self.trainer.stop()

    def training_failed(self, exc: BaseException) -> None:
        """Record that the run ended with ``exc`` (reported through :attr:`error`)."""
        self.training = False
        self.training_changed.emit()
        self.state_changed.emit()
        self.report_error("Training failed", exc)

    def training_finished(self, result) -> str:
        """Record a finished run and decide what happens to its checkpoint. A stopped run never
        replaces a loaded model: its checkpoint is offered (:attr:`pending_checkpoint`).

        Returns:
            ``"none"`` (no checkpoint), ``"offered"`` or ``"load"`` (the caller loads
            ``result.checkpoint``).
        """
        self.training = False
        self.last_result = result
        self.training_changed.emit()
        self.state_changed.emit()
        if result.checkpoint is None:
            return "none"
        if result.stopped and self.predictor is not None:
            self.pending_checkpoint = Path(result.checkpoint)
            self.state_changed.emit()
            return "offered"
        return "load"
