"""The loaded model's part of the app state: the checkpoint, its predictions of every case,
the Grad-CAM maps (one cache entry per case and class) and the class Grad-CAM explains.
:class:`~mriviewer.app.model.AppModel` is made of it and the dataset and training part; this
module holds what changes when a checkpoint is loaded, Qt-free and synchronous (the slow calls
run in workers through :class:`~mriviewer.app.session.Session`).

Signals (on the app model):

==============================  ======================================================
``checkpoint_changed()``        a model was loaded (``model.predictor``); predictions cleared
``prediction_added(str)``       a case's prediction (or its error) arrived
``cam_added(str)``              a case's shown Grad-CAM changed
``cam_class_changed()``         the class Grad-CAM explains changed (``model.cam_class``)
==============================  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from psygnal import Signal

from mriviewer.core.errors import MriViewerError

__all__ = ["PredictionsMixin"]


class PredictionsMixin:
    """The checkpoint, predictions and Grad-CAM part of :class:`~mriviewer.app.model.AppModel`.

    Attributes:
        predictor: the loaded :class:`~mriviewer.ml.predict.Predictor` or ``None``.
        checkpoint_path: where ``predictor`` came from.
        predictions: case id → :class:`~mriviewer.ml.predict.Prediction`.
        prediction_errors: case id → why it could not be predicted.
        cams: case id → the :class:`~mriviewer.ml.predict.GradCamResult` shown for it (of the
            chosen class; what reports use).
        cam_cache: ``(case id, class index)`` → every map computed with this model.
        cam_class: the class Grad-CAM explains, ``None`` for each case's predicted class.
        pending_checkpoint: a stopped run's checkpoint offered, not loaded.
    """

    checkpoint_changed = Signal()
    prediction_added = Signal(str)
    cam_added = Signal(str)
    cam_class_changed = Signal()

    def _init_predictions(self) -> None:
        self.predictor = None
        self.checkpoint_path: Path | None = None
        self.predictions: dict = {}
        self.prediction_errors: dict[str, str] = {}
        self.cams: dict = {}
        self.cam_cache: dict[tuple[str, int], object] = {}
        self.cam_class: int | None = None
        self.pending_checkpoint: Path | None = None

    def _clear_predictions(self) -> None:
        self.predictions.clear()
        self.prediction_errors.clear()
        self.cams.clear()
        self.cam_cache.clear()

    # ------------------------------------------------------------------ roles
    def split_of(self, case) -> str:
        """The case's role for the loaded checkpoint (train / validation / test / external) or
        ``""`` with no model."""
        if self.predictor is None:
            return ""
        try:
            return self.predictor.role_of(case, self.dataset)
        except Exception:  # noqa: BLE001 - a damaged split record must not hide the row
            return "?"

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
        :meth:`add_prediction`), Grad-CAM explains the predicted class again; the caller runs
        :meth:`predict_iter`."""
        self.predictor = predictor
        self.checkpoint_path = Path(path)
        if self.pending_checkpoint is not None and Path(self.pending_checkpoint) == Path(path):
            self.pending_checkpoint = None
        self._clear_predictions()
        self.cam_class = None
        self.checkpoint_changed.emit()
        self.state_changed.emit()

    def save_checkpoint(self, path: str | Path) -> Path:
        """Copy the loaded checkpoint (weights, config, split, metrics) to ``path`` atomically.

        Raises:
            MriViewerError: no checkpoint loaded.
            OSError: it cannot be copied.
        """
        import shutil

        from mriviewer.core.files import atomic_path

        if self.checkpoint_path is None:
            raise MriViewerError("Load or train a model first.")
        with atomic_path(path) as tmp:
            shutil.copyfile(self.checkpoint_path, tmp)
        return Path(path)

    # ------------------------------------------------------------------ predictions
    def predict_iter(self, loader: Callable, cases: list | None = None) -> Iterator[tuple[str, object, object]]:
        """Generator (run it in a worker): ``(case_id, Prediction or MriViewerError, predictor)``
        for every case of the open dataset (or of ``cases``, e.g. snapshots a worker may read
        safely) with the loaded model. Feed each item to :meth:`add_prediction` on the GUI
        thread. It stops early once another model is loaded."""
        predictor = self.predictor
        cases = list(cases) if cases is not None else self.cases
        if predictor is None:
            return
        for case in cases:
            if self.predictor is not predictor:  # replaced: its remaining predictions are not wanted
                return
            try:
                yield case.case_id, predictor.predict(case, loader), predictor
            except (MriViewerError, OSError) as exc:
                yield case.case_id, exc, predictor

    def add_prediction(self, item: tuple[str, object, object]) -> None:
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

    def predictions_in_order(self) -> list:
        """The predictions of the open dataset's cases, in the dataset's order."""
        return [self.predictions[c.case_id] for c in self.cases if c.case_id in self.predictions]

    def role_of_id(self, case_id: str) -> str:
        """:meth:`split_of` the case with ``case_id`` (``"external"`` for an id the dataset
        lacks): the ``split`` column of an exported predictions CSV, as ``mriviewer evaluate``
        and the batch export fill it."""
        case = self.case(case_id)
        if case is None:
            return "external" if self.predictor is not None else ""
        return self.split_of(case)

    # ------------------------------------------------------------------ Grad-CAM
    def set_cam_class(self, class_index: int | None) -> None:
        """Choose the class Grad-CAM explains (``None``: each case's predicted class), as
        pytorch-grad-cam's targets: e.g. the evidence against the prediction."""
        if class_index != self.cam_class:
            self.cam_class = class_index
            self.cam_class_changed.emit()

    def wanted_cam_class(self, case_id: str) -> int | None:
        """The class whose map the case should show: :attr:`cam_class` or its predicted class
        (``None`` before its prediction)."""
        if self.cam_class is not None:
            return self.cam_class
        pred = self.predictions.get(case_id)
        return pred.predicted if pred is not None else None

    def cached_cam(self, case_id: str, class_index: int | None):
        """The map of ``case_id`` for ``class_index`` computed with this model, or ``None``."""
        if class_index is None:
            return None
        return self.cam_cache.get((case_id, class_index))

    def add_cam(self, case_id: str, result, shown: bool = True) -> None:
        """Record a case's :class:`~mriviewer.ml.predict.GradCamResult` (kept per class); with
        ``shown`` it becomes the case's map in :attr:`cams`."""
        self.cam_cache[(case_id, result.class_index)] = result
        if shown and self.cams.get(case_id) is not result:
            self.cams[case_id] = result
            self.cam_added.emit(case_id)

