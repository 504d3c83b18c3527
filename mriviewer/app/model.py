"""The application's working state, apart from any widget (napari's ``ViewerModel``, FSLeyes'
``displaycontext``): the open dataset, the selected case, the loaded checkpoint, its predictions
and Grad-CAM maps, and the training run. Widgets observe it through its typed psygnal signals
and change it through its methods; :mod:`mriviewer.ui` binds to it and holds no state of its own.
Every method here is synchronous and Qt-free, so the prediction → Grad-CAM → report path is
tested without a window (``tests/test_appmodel.py``); the GUI runs the slow ones in workers.

Signals (``model.<signal>.connect(callback)``):

==========================  ==========================================================
``dataset_changed()``       a dataset was opened (``model.dataset``)
``case_selected(str)``      the selected case id changed
``checkpoint_changed()``    a model was loaded (``model.predictor``); predictions cleared
``prediction_added(str)``   a case's prediction (or its error) arrived
``cam_added(str)``          a case's Grad-CAM arrived
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from psygnal import Signal

from mriviewer.core.errors import MriViewerError
from mriviewer.core.volume import MODALITIES
from mriviewer.data.cases import Case, Dataset

log = logging.getLogger(__name__)

__all__ = ["AppModel", "CaseRow", "runs_dir", "CASE_COLUMNS"]

#: Columns of the case browser, in order.
CASE_COLUMNS = ("Case", "Label", "Prediction", "P", "Split", "Modalities", "Errors")
_SHORT = {"FLAIR": "FL", "T1w": "T1", "T1wCE": "T1c", "T2w": "T2"}


def runs_dir() -> Path:
    """Where GUI training runs are written: ``$MRIVIEWER_RUNS_DIR`` or ``~/mriviewer-runs``."""
    return Path(os.environ.get("MRIVIEWER_RUNS_DIR", Path.home() / "mriviewer-runs"))


@dataclass
class CaseRow:
    """One row of the case browser (see :data:`CASE_COLUMNS`); ``probability`` is that of the
    predicted class, ``None`` before prediction; ``tooltip`` explains modalities and errors."""

    case_id: str
    label: str
    prediction: str
    probability: float | None
    split: str
    modalities: str
    errors: str
    tooltip: str

    def values(self) -> tuple:
        p = "" if self.probability is None else f"{self.probability:.2f}"
        return (self.case_id, self.label, self.prediction, p, self.split, self.modalities, self.errors)


class AppModel:
    """mriviewer's application state (see the module docstring for the signals).

    Attributes:
        dataset: the open :class:`~mriviewer.data.cases.Dataset` or ``None``.
        case_id: the selected case's id or ``None``.
        predictor: the loaded :class:`~mriviewer.ml.predict.Predictor` or ``None``.
        checkpoint_path: where ``predictor`` came from.
        predictions: case id → :class:`~mriviewer.ml.predict.Prediction`.
        prediction_errors: case id → why it could not be predicted.
        cams: case id → :class:`~mriviewer.ml.predict.GradCamResult`.
        trainer: the current or last :class:`~mriviewer.ml.engine.Trainer`.
        training: a run is in progress.
        last_result: the last finished run's :class:`~mriviewer.ml.events.TrainResult`.
        pending_checkpoint: a stopped run's checkpoint offered, not loaded.
    """

    dataset_changed = Signal()
    case_selected = Signal(str)
    checkpoint_changed = Signal()
    prediction_added = Signal(str)
    cam_added = Signal(str)
    training_changed = Signal()
    error = Signal(str)
    message = Signal(str)
    state_changed = Signal()

    def __init__(self) -> None:
        self.dataset: Dataset | None = None
        self.case_id: str | None = None
        self.predictor = None
        self.checkpoint_path: Path | None = None
        self.predictions: dict = {}
        self.prediction_errors: dict[str, str] = {}
        self.cams: dict = {}
        self.trainer = None
        self.training = False
        self.last_result = None
        self.pending_checkpoint: Path | None = None

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
        self.predictions.clear()
        self.prediction_errors.clear()
        self.cams.clear()
        self.dataset_changed.emit()
        self.state_changed.emit()

    @property
    def cases(self) -> list[Case]:
        return list(self.dataset.cases) if self.dataset is not None else []

    def case(self, case_id: str | None) -> Case | None:
        """The case with ``case_id`` or ``None``."""
        if self.dataset is None or case_id is None:
            return None
        return next((c for c in self.dataset.cases if c.case_id == case_id), None)

    @property
    def current_case(self) -> Case | None:
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

    def dataset_summary(self) -> str:
        """One line: root, layout, case count, task, cases with errors."""
        ds = self.dataset
        if ds is None:
            return "No dataset. File ▸ Open folder… or File ▸ Open demo."
        n_err = sum(bool(c.errors) for c in ds.cases)
        task = {"binary": "binary", "multiclass": f"{len(ds.class_names)} classes",
                "none": "no labels"}[ds.task]
        return f"{ds.root}: {ds.layout}, {len(ds.cases)} cases, {task}" + (
            f", {n_err} with errors" if n_err else "")

    def assign_modality(self, old: str, new: str, all_cases: bool = True) -> int:
        """Rename modality ``old`` to ``new`` in every case (or the selected one). Returns how
        many cases changed.

        Raises:
            DatasetError: ``new`` already present, unknown ``old``.
        """
        from mriviewer.data.cases import assign_modality

        n = assign_modality(self.dataset, old, new, None if all_cases else self.case_id)
        self.dataset_changed.emit()
        self.state_changed.emit()
        return n

    # ------------------------------------------------------------------ case rows
    def split_of(self, case: Case) -> str:
        """The case's role for the loaded checkpoint (train / validation / test / external) or
        ``""`` with no model."""
        if self.predictor is None:
            return ""
        try:
            return self.predictor.role_of(case)
        except Exception:  # noqa: BLE001 - a damaged split record must not hide the row
            return "?"

    def row(self, case: Case) -> CaseRow:
        """The browser row of ``case``."""
        ds = self.dataset
        label = self.short_class(ds.label_name(case) if ds is not None else None) or "—"
        if case.is_2d:
            mods, tip = "2D image", ""
        else:
            mods = "all 4" if all(m in case.modalities for m in MODALITIES) else \
                " ".join(_SHORT[m] if m in case.modalities else "–" for m in MODALITIES)
            extra = [m for m in case.modalities if m not in MODALITIES]
            if extra:
                mods += " +" + ",".join(extra)
            missing = [m for m in MODALITIES if m not in case.modalities]
            tip = "present: " + ", ".join(case.modalities) + (
                f"; missing: {', '.join(missing)}" if missing else "")
        pred = self.predictions.get(case.case_id)
        err = self.prediction_errors.get(case.case_id)
        errors = list(case.errors) + ([f"not predicted: {err}"] if err else [])
        return CaseRow(
            case_id=case.case_id, label=label,
            prediction=self.short_class(pred.class_name) if pred is not None else ("not predicted" if err else ""),
            probability=pred.probability if pred is not None else None,
            split=self.split_of(case), modalities=mods,
            errors=str(len(errors)) if errors else "",
            tooltip="\n".join([tip] + errors + ([f"predicted: {pred.class_name}"] if pred is not None else [])
                               + ([f"label: {ds.label_name(case)}"] if ds is not None and ds.label_name(case) else [])
                               ).strip(),
        )

    def class_prefix(self) -> str:
        """Words every class name starts with (``"MGMT "`` for MGMT unmethylated / methylated),
        left out of the browser's narrow columns; ``""`` when none."""
        names = list(self.dataset.class_names) if self.dataset is not None else []
        if self.predictor is not None:
            names += list(self.predictor.class_names)
        if len(names) < 2:
            return ""
        words = [n.split(" ") for n in names]
        common = []
        for group in zip(*words, strict=False):
            if len(set(group)) != 1:
                break
            common.append(group[0])
        if not common or any(len(w) <= len(common) for w in words):
            return ""
        return " ".join(common) + " "

    def short_class(self, name: str | None) -> str | None:
        """``name`` without :meth:`class_prefix`."""
        prefix = self.class_prefix()
        return name[len(prefix):] if name and prefix and name.startswith(prefix) else name

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

    def can_export_predictions(self) -> tuple[bool, str]:
        if not self.predictions:
            return False, "No predictions yet: train or load a checkpoint first."
        return True, ""

    def can_batch_export(self) -> tuple[bool, str]:
        if self.predictor is None or self.dataset is None:
            return False, "Load or train a model and open a dataset first."
        return True, ""

    # ------------------------------------------------------------------ checkpoint
    def load_checkpoint(self, path: str | Path, device: str = "auto") -> bool:
        """Load a checkpoint (:meth:`open_predictor`, then :meth:`use_predictor`) on this
        thread. Returns False and emits :attr:`error` on failure (the previous model stays
        loaded). The GUI runs the two halves apart: reading a checkpoint takes seconds for the
        video networks, so :meth:`open_predictor` runs in a worker."""
        try:
            predictor = self.open_predictor(path, device, self.dataset_modalities())
        except (MriViewerError, OSError) as exc:
            self.report_error(f"Checkpoint {path} not loaded", exc)
            return False
        self.use_predictor(predictor, path)
        return True

    def dataset_modalities(self) -> list[str] | None:
        """The open dataset's modalities a model must find (``None``: no dataset, or a 2D set,
        whose single image serves any 2D model)."""
        ds = self.dataset
        if ds is None or any(c.is_2d for c in ds.cases[:1]):
            return None
        return list(ds.modalities)

    @staticmethod
    def open_predictor(path: str | Path, device: str = "auto", modalities: list[str] | None = None):
        """Read a checkpoint into a :class:`~mriviewer.ml.predict.Predictor` without touching
        the model's state (safe in a worker thread).

        Raises:
            CheckpointError: unreadable or invalid checkpoint.
            DatasetError: ``modalities`` lacks one the model needs.
        """
        from mriviewer.ml.predict import Predictor

        predictor = Predictor.load(path, device=device)
        if modalities is not None:
            predictor.check_modalities(modalities)
        return predictor

    def use_predictor(self, predictor, path: str | Path) -> None:
        """Make ``predictor`` (read from ``path``) the loaded model: predictions and maps are
        cleared (those still arriving from the previous model are dropped, see
        :meth:`add_prediction`); the caller runs :meth:`predict_iter`."""
        self.predictor = predictor
        self.checkpoint_path = Path(path)
        if self.pending_checkpoint is not None and Path(self.pending_checkpoint) == Path(path):
            self.pending_checkpoint = None
        self.predictions.clear()
        self.prediction_errors.clear()
        self.cams.clear()
        self.checkpoint_changed.emit()
        self.state_changed.emit()

    def checkpoint_summary(self) -> str:
        """One line on the loaded model: architecture, where it was chosen, its test AUC with
        interval and the number of held-out cases."""
        p = self.predictor
        if p is None:
            return "No model loaded. Train one or load a checkpoint."
        val = p.metrics.get("validation") or {}
        test = p.test_metrics or {}
        text = f"Model {p.config.model} from {self.checkpoint_path}"
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
        return text

    # ------------------------------------------------------------------ predictions
    def predict_iter(self, loader: Callable) -> Iterator[tuple[str, object]]:
        """Generator (run it in a worker): ``(case_id, Prediction or MriViewerError, predictor)``
        for every case of the open dataset with the loaded model. Feed each item to
        :meth:`add_prediction` on the GUI thread. It stops early once another model is loaded."""
        predictor, cases = self.predictor, self.cases
        if predictor is None:
            return
        for case in cases:
            if self.predictor is not predictor:  # replaced: its remaining predictions are not wanted
                return
            try:
                yield case.case_id, predictor.predict(case, loader), predictor
            except (MriViewerError, OSError) as exc:
                yield case.case_id, exc, predictor

    def add_prediction(self, item: tuple[str, object]) -> None:
        """Record one result of :meth:`predict_iter` (a prediction or the reason there is none).
        A result of a model that is no longer the loaded one is dropped: it would stand beside
        the new model's predictions as if it were one of them."""
        case_id, pred, made_by = item
        if made_by is not self.predictor:
            return
        if isinstance(pred, BaseException):
            self.prediction_errors[case_id] = str(pred)
        else:
            self.predictions[case_id] = pred
            self.prediction_errors.pop(case_id, None)
        self.prediction_added.emit(case_id)
        self.state_changed.emit()

    def add_cam(self, case_id: str, result) -> None:
        """Record a case's :class:`~mriviewer.ml.predict.GradCamResult`."""
        self.cams[case_id] = result
        self.cam_added.emit(case_id)

    def prediction_text(self, case: Case | None) -> tuple[str, str]:
        """``(headline, detail)`` for the prediction box of ``case``."""
        p = self.predictor
        if p is None:
            return "No model loaded. Train one or load a checkpoint.", ""
        if case is None:
            return "", ""
        pred = self.predictions.get(case.case_id)
        if pred is None:
            err = self.prediction_errors.get(case.case_id)
            return (f"Not predicted: {err}" if err else "Predicting…"), ""
        probs = ", ".join(f"{n}: {q:.2f}" for n, q in zip(p.class_names, pred.probs, strict=False))
        detail = f"Model {p.config.model}: {probs}"
        truth = self.dataset.label_name(case) if self.dataset is not None else None
        if truth:
            detail += f"<br>Known label: {truth}"
        split = self.split_of(case)
        if split and split != "external":
            detail += f"<br>This case was in the model's <b>{split}</b> set."
        return f"<b>{pred.class_name}</b> — probability {pred.probability:.3f}", detail

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
