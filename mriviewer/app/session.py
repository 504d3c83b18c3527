"""The app's workflow, Qt-free (napari's ``components`` beside its ``_qt``, FSLeyes' display
context beside its views): a :class:`Session` loads the selected case on the common grid,
predicts every case with the loaded model, computes the Grad-CAM maps the prediction box asks
for, runs training and loads checkpoints, keeping :class:`~mriviewer.app.model.AppModel` and
:class:`~mriviewer.app.viewer.ViewerState` up to date.

The slow work goes through a *runner* the UI injects,
``run(func, *args, on_yield=, on_return=, on_error=, cancel=, **kwargs)``:
:meth:`mriviewer.ui.workers.WorkerPool.start` runs it on superqt workers and calls back on the
GUI thread; :func:`~mriviewer.app.work.run_now` runs it synchronously (scripts and tests).
Workers only ever see :func:`~mriviewer.app.work.snapshot` copies of the cases and return what
changed, and the callbacks apply it, so a case or a model is never changed from a worker thread.

Requests follow "the latest wins": a load, a Grad-CAM or a prediction run superseded by a newer
one (another case, model or class chosen meanwhile) never shows its result, though a map it
computed is kept in the model's per-class cache. A new selection cancels the loads before it (a
queued one never starts, a running one stops after its current files: :class:`DecodeLane`).
Once a case is shown, the next in the browser's order (:attr:`Session.case_order`; the previous,
going backwards) is decoded into the cache; moving elsewhere cancels that, moving to it waits.
:meth:`Session.cancel` cancels work: a generator stops before its next item, and no result of a
cancelled job is applied; :meth:`Session.shutdown` (quitting) also stops a training run.

Signals:

===============================  ====================================================
``status(bool, str)``            busy or not, and a status line (``""``: leave it)
``case_shown(str, str)``         a case was selected and this modality will be shown
``case_loaded(str)``             a case's volumes are shown
``case_updated(str)``            a case's errors changed (its browser row)
``cam_caption_changed(str)``     the line under the prediction about its Grad-CAM
``cam_ready(str)``               a case's Grad-CAM was computed
``predictions_done()``           every case was predicted
``train_event(object)``          an event of the training run (``mriviewer.ml.events``)
``training_ended(object, str)``  the run's TrainResult and the model's decision
``training_complete(object)``    the run is over, its model loaded if it was to be
``training_error(object)``       the run failed with this exception
===============================  ====================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from psygnal import Signal

from mriviewer.app import presenters, work
from mriviewer.app.work import DecodeLane, Job, LoadedCase, Runner, load_on_grid, run_now, snapshot
from mriviewer.core.errors import MriViewerError

log = logging.getLogger(__name__)

__all__ = ["Session", "Job", "LoadedCase", "Runner", "run_now", "snapshot", "load_on_grid"]


class Session:
    """The workflow between the app model, the viewer state and the slow work (see the module
    docstring for the runner and the signals).

    Args:
        model: the :class:`~mriviewer.app.model.AppModel`.
        state: the :class:`~mriviewer.app.viewer.ViewerState`.
        cache: a :class:`~mriviewer.cache.memory.VolumeCache` (its ``get`` loads a source).
        run: the :data:`Runner` (default :func:`run_now`).
        bind: connect to the models' signals now; a window passes ``False`` and calls
            :meth:`bind` once its widgets are connected (they see each change first).

    Attributes:
        cam_caption: the line about the shown case's Grad-CAM.
        wanted_modality: the modality asked for the selected case (shown once loaded).
        closed: :meth:`shutdown` was called; nothing new starts.
        case_order: the case ids in the browser's order, for the prefetch (``None``: the dataset's).
        prefetch: decode the next case once one is shown (default true).
    """

    status = Signal(bool, str)
    case_shown = Signal(str, str)
    case_loaded = Signal(str)
    case_updated = Signal(str)
    cam_caption_changed = Signal(str)
    cam_ready = Signal(str)
    predictions_done = Signal()
    train_event = Signal(object)
    training_ended = Signal(object, str)
    training_complete = Signal(object)
    training_error = Signal(object)

    def __init__(self, model, state, cache, run: Runner = run_now, bind: bool = True) -> None:
        self.model, self.state, self.cache = model, state, cache
        self._run = run
        self.cam_caption = ""
        self.wanted_modality: str | None = None
        self.closed = False
        self._jobs: set[Job] = set()
        self._load_token = 0
        self._cam_token = 0
        self._warned: set[str] = set()
        self.case_order: Callable[[], list[str]] | None = None
        self.prefetch = True
        self._lane = DecodeLane()
        if bind:
            self.bind()

    def bind(self) -> None:
        """Follow the models: a new dataset, case, checkpoint, prediction, Grad-CAM class or grid."""
        m = self.model
        m.dataset_changed.connect(self._dataset_changed)
        m.case_selected.connect(self._case_selected)
        m.checkpoint_changed.connect(self._checkpoint_changed)
        m.prediction_added.connect(self._prediction_added)
        m.cam_class_changed.connect(self._cam_class_changed)
        self.state.on("grid", self.reload)

    # ------------------------------------------------------------------ jobs
    def _start(self, kind: str, func: Callable, *args, on_yield=None, on_return=None, on_error=None, replace: bool = False,
               stoppable: bool = True, cancel: Callable | None = None, on_end=None, **kwargs) -> Job | None:
        """Run ``func`` through the runner as a :class:`Job` of ``kind``; ``replace`` cancels the
        running jobs of that kind first. Callbacks of a cancelled job are dropped. A generator
        function stops at its next item once cancelled unless ``stoppable`` is false, a plain
        one does not start once cancelled; ``cancel`` is called as well (e.g. ``Trainer.stop``)
        when the runner stops the job; ``on_end(job)`` once it ends, cancelled or not."""
        if self.closed:
            return None
        if replace:
            self.cancel(kind)
        job = Job(kind)
        self._jobs.add(job)

        def live(callback, ends: bool):
            def call(*a):
                if ends:
                    self._jobs.discard(job)
                    job.finished = True
                    if on_end is not None:
                        on_end(job)
                if callback is not None and not job.cancelled and not self.closed:
                    callback(*a)
            return call

        run = work.as_job(func, job, stoppable)

        def stop() -> None:
            job.cancel()
            if cancel is not None:
                cancel()

        self._run(run, *args, on_yield=live(on_yield, False) if on_yield is not None else None,
                  on_return=live(on_return, True), on_error=live(on_error, True), cancel=stop, **kwargs)
        return job

    def cancel(self, kind: str | None = None) -> None:
        """Cancel the running jobs of ``kind`` (default: all but a training run, which Stop ends
        with its result recorded): their results are dropped, and a prediction run stops before
        its next case."""
        for job in list(self._jobs):
            if job.kind == kind or (kind is None and job.kind != "train"):
                job.cancel()
                self._jobs.discard(job)

    def running(self, kind: str | None = None) -> list[str]:
        """The kinds of the jobs still running (of ``kind``)."""
        return [j.kind for j in self._jobs if kind is None or j.kind == kind]

    def shutdown(self) -> None:
        """Quit: stop a training run (:meth:`Trainer.stop <mriviewer.ml.engine.Trainer.stop>`,
        and its events are no longer read, so it ends at its next one, within a batch, without
        the test pass a Stop runs), cancel every other job and drop every late result; nothing
        new starts."""
        self.model.stop_training()
        self.cancel()
        self.cancel("train")
        self.closed = True

    def _status(self, busy: bool, text: str = "") -> None:
        self.status.emit(busy, text)

    # ------------------------------------------------------------------ model events
    def _dataset_changed(self) -> None:
        self._load_token += 1  # a load of the previous dataset's case must not show
        self.cancel("load")
        self.cancel("prefetch")
        self._lane.drop()
        self.state.clear()
        if self.model.predictor is not None:
            self.predict_all()
        ds = self.model.dataset
        if ds is not None and ds.cases:
            self.model.select_case(ds.cases[0].case_id)

    def modality_for(self, case) -> str | None:
        """The modality to show for ``case``: the one shown now if the case has it, else its
        first."""
        return self.state.modality if self.state.modality in case.modalities else case.first_modality()

    def _case_selected(self, _case_id: str) -> None:
        case = self.model.current_case
        if case is None:
            return
        modality = self.modality_for(case)
        self.wanted_modality = modality
        self.case_shown.emit(case.case_id, modality or "")
        self.show_prediction(case)
        if case.errors and not case.modalities:
            self.model.report_error("", "; ".join(case.errors))
            return
        if modality is not None:
            self.load_case(case, modality)

    def _checkpoint_changed(self) -> None:
        self._set_caption("")
        self.state.set_overlay(None)
        self.predict_all()

    def _prediction_added(self, case_id: str) -> None:
        case = self.model.current_case
        if case is not None and case.case_id == case_id:
            self.show_prediction(case)

    def _cam_class_changed(self) -> None:
        case = self.model.current_case
        if case is not None and case.case_id in self.model.predictions:
            self.request_cam(case)

    # ------------------------------------------------------------------ loading
    def select_modality(self, modality: str) -> None:
        """Show another modality of the selected case (loaded already, or loaded now)."""
        case = self.model.current_case
        if case is None or modality not in case.modalities:
            return
        self.wanted_modality = modality
        if self.state.case_id == case.case_id and modality in self.state.volumes:
            self.state.set_modality(modality)
            self.apply_cam(case.case_id)
            self.case_loaded.emit(case.case_id)
        else:
            self.load_case(case, modality)

    def reload(self) -> None:
        """Load the selected case again (e.g. on another grid), showing the wanted modality."""
        case = self.model.current_case
        if case is not None and self.wanted_modality in case.modalities:
            self.load_case(case, self.wanted_modality)

    def load_case(self, case, modality: str) -> Job | None:
        """Load every modality of ``case`` in the background on the grid of ``state.grid`` and
        show ``modality``. Earlier loads are cancelled, and a prefetch of another case; it starts
        when the :class:`DecodeLane` lets it (``None`` is returned until then)."""
        self.wanted_modality = modality
        self._load_token += 1
        token = self._load_token
        self._status(True, f"Loading {case.case_id}…")
        snap = snapshot(case)
        n_errors = len(snap.errors)
        self.cancel("load")
        if not self._lane.prefetches(case.case_id):
            self.cancel("prefetch")
        return self._lane.request(case.case_id, lambda: self._decode(
            "load", work.load_steps, snap, modality, self.state.grid, self.cache,
            on_return=lambda result: self._loaded(token, case, snap, modality, result),
            on_error=lambda exc: self._load_failed(case, snap.errors[n_errors:], exc)))

    def _decode(self, kind: str, func: Callable, *args, **kwargs) -> Job | None:
        """Start a load or a prefetch, counted in the :class:`DecodeLane` until it ends."""
        if not self.closed:
            self._lane.started()
        return self._start(kind, func, *args, on_end=self._lane.ended, **kwargs)

    def _prefetch_after(self, case_id: str) -> None:
        """Decode the next case in the browser's order (the previous, going backwards) into the cache."""
        order = self.case_order() if self.case_order is not None else [c.case_id for c in self.model.cases]
        nxt = self.model.case(self._lane.after(order, case_id))
        if self.prefetch and nxt is not None and nxt.modalities and self._lane.free \
                and not self._lane.prefetches(nxt.case_id):
            self.cancel("prefetch")
            self._lane.prefetch_started(nxt.case_id, self._decode("prefetch", work.prefetch_steps, snapshot(nxt),
                                                                  self.cache, self.state.grid))

    def _add_case_errors(self, case, errors: list[str]) -> None:
        """Add ``errors`` the case lacks to ``case.errors`` (here, never in a worker)."""
        new = [e for e in dict.fromkeys(errors) if e not in case.errors]
        if new:
            case.errors.extend(new)
            self.case_updated.emit(case.case_id)

    def _loaded(self, token: int, case, snap, modality: str, result: LoadedCase) -> None:
        self._add_case_errors(case, result.errors)
        if token != self._load_token:
            return
        self._status(False, presenters.loaded_text(case.case_id, result.reference))
        shown = modality if modality in result.volumes else next(iter(result.volumes))
        self.wanted_modality = shown
        self.state.set_case(case.case_id, result.volumes, shown, native=result.native)
        if result.segmentation is not None:
            self.state.set_segmentation(result.segmentation.data)
        self._warn_loaded(case, snap, result)
        self.case_loaded.emit(case.case_id)
        self.apply_cam(case.case_id)
        self._prefetch_after(case.case_id)

    def _load_failed(self, case, found: list[str], exc: BaseException) -> None:
        self._status(False)
        msg = str(exc) if isinstance(exc, MriViewerError) else f"{type(exc).__name__}: {exc}"
        self._add_case_errors(case, [*found, msg])
        self.model.report_error("", f"Cannot load case {case.case_id}: {msg}")

    def _warn_loaded(self, case, snap, result: LoadedCase) -> None:
        """The loaders' warnings (segmentation, each modality's file), once per file."""
        for source, title, messages in work.load_warnings(case, snap, result):
            self._warn_once(source, title, messages)

    def _warn_once(self, source: str, title: str, messages: list[str]) -> None:
        """Report ``messages`` about ``source`` under ``title``, once per source and session."""
        if messages and source not in self._warned:
            self._warned.add(source)
            self.model.report_error("", title + "\n" + "\n".join(messages))

    # ------------------------------------------------------------------ checkpoint and predictions
    def load_checkpoint(self, path: str | Path, then: Callable[[], None] | None = None) -> Job | None:
        """Read a checkpoint in the background, then make it the model (its predictions follow).
        ``then`` runs once it is loaded or has failed to (the failure is reported through the
        model; the previous model stays)."""
        path = str(path)
        self._status(True, f"Loading checkpoint {path}…")

        def done(predictor) -> None:
            self._status(False, f"Loaded {path}")
            self.model.use_predictor(predictor, path)
            if then is not None:
                then()

        def failed(exc) -> None:
            self._status(False)
            self.model.report_error(f"Checkpoint {path} not loaded", exc)
            if then is not None:
                then()

        m = self.model  # its cases are placed in the checkpoint's split in the worker
        return self._start("checkpoint", work.open_checkpoint, m.open_predictor, path, m.dataset_modalities(),
                           [snapshot(c) for c in m.cases], m.dataset, on_return=done, on_error=failed)

    def predict_all(self) -> Job | None:
        """Predict every case with the loaded model in the background (a run still going for
        this or an earlier dataset is cancelled)."""
        m = self.model
        if m.predictor is None or m.dataset is None:
            return None
        self._status(True, "Predicting all cases…")
        predictor = m.predictor
        return self._start("predict", m.predict_iter, self.cache.get, [snapshot(c) for c in m.cases], replace=True,
                           on_yield=m.add_prediction, on_return=lambda _: self._predicted(predictor),
                           on_error=lambda exc: m.report_error("Prediction failed", exc))

    def _predicted(self, predictor) -> None:
        if predictor is not self.model.predictor:  # a replaced model's run ended early
            return
        self._status(False, f"{len(self.model.predictions)} predictions")
        self.predictions_done.emit()

    # ------------------------------------------------------------------ Grad-CAM
    def _set_caption(self, text: str) -> None:
        if not text:  # no map wanted now: a request still running must not caption this case
            self._cam_token += 1
        self.cam_caption = text
        self.cam_caption_changed.emit(text)

    def show_prediction(self, case) -> None:
        """The selected case's Grad-CAM once it is predicted (nothing before)."""
        if self.model.predictor is None:
            self._set_caption("")
        elif case.case_id in self.model.predictions:
            self.request_cam(case)
        else:
            self._set_caption("")
            self.state.set_overlay(None)

    def request_cam(self, case) -> Job | None:
        """Show the Grad-CAM of ``case`` for the model's chosen class (its predicted class by
        default): from the per-class cache, or computed in the background. Only the latest
        request captions and shows its map; an older one's map is kept for its case."""
        m = self.model
        predictor = m.predictor
        wanted = m.wanted_cam_class(case.case_id)
        self._cam_token += 1
        token = self._cam_token
        cached = m.cached_cam(case.case_id, wanted)
        if cached is not None:
            m.add_cam(case.case_id, cached)
            self._set_caption(presenters.cam_caption(cached, predictor.class_names))
            self.apply_cam(case.case_id)
            return None
        self._set_caption("Computing Grad-CAM…")
        return self._start("cam", predictor.gradcam, snapshot(case), self.cache.get, wanted,
                           on_return=lambda result: self._cam_done(token, predictor, case.case_id, result),
                           on_error=lambda exc: self._cam_failed(token, exc))

    def _cam_done(self, token: int, predictor, case_id: str, result) -> None:
        m = self.model
        if m.predictor is not predictor:  # another model was loaded meanwhile
            return
        latest = token == self._cam_token
        m.add_cam(case_id, result, shown=latest or case_id not in m.cams)  # an older one never replaces a newer
        if latest:
            self._set_caption(presenters.cam_caption(result, predictor.class_names))
            self.apply_cam(case_id)
        self.cam_ready.emit(case_id)

    def _cam_failed(self, token: int, exc: BaseException) -> None:
        if token == self._cam_token:
            self._set_caption(f"Grad-CAM failed: {exc}")

    def apply_cam(self, case_id: str) -> None:
        """Lay the case's Grad-CAM over the displayed volume (resampled through the affines, in
        the background, when the displayed modality is on another grid)."""
        from mriviewer.core.resample import resample_to_grid
        from mriviewer.core.volume import same_grid

        res = self.model.cams.get(case_id)
        vol = self.state.volume
        if vol is None or self.state.case_id != case_id:
            return
        if res is None:
            self.state.set_overlay(None)
            return

        def show(cam) -> None:
            if self.state.volume is vol:  # still the volume it was resampled for
                self.state.set_overlay(np.ascontiguousarray(cam, dtype=np.float32))

        if same_grid(res.cam.shape, res.reference.affine, vol.shape, vol.affine):
            show(res.cam)
        else:  # resampling a large grid takes seconds
            self._start("overlay", resample_to_grid, res.cam, res.reference.affine, vol.shape, vol.affine,
                        order=1, replace=True, on_return=show,
                        on_error=lambda exc: self.model.report_error("Grad-CAM overlay", exc))

    def report_cursor(self) -> tuple[int, int, int] | None:
        """The crosshair as a voxel of the selected case's Grad-CAM grid (where a report's
        images are cut), or ``None`` without a map or a shown volume."""
        case = self.model.current_case
        cam = self.model.cams.get(case.case_id) if case is not None else None
        if cam is None or self.state.volume is None:
            return None
        ijk = np.round(cam.reference.world_to_voxel(self.state.cursor_world())).astype(int)
        return tuple(int(v) for v in np.clip(ijk, 0, np.array(cam.reference.shape) - 1))

    # ------------------------------------------------------------------ training and editing
    def start_training(self, config):
        """Start a run with ``config`` in the background; returns its Trainer.

        Raises:
            MriViewerError: no labelled dataset, a run in progress, or a bad config.
        """
        trainer = self.model.start_training(config, self.cache.get)
        self._start("train", trainer.run, cancel=trainer.stop, on_yield=self.train_event.emit,
                    on_return=self._trained, on_error=self._train_failed)
        return trainer

    def _trained(self, result) -> None:
        decision = self.model.training_finished(result)
        self.training_ended.emit(result, decision)
        if decision == "load":  # complete once its model is loaded
            self.load_checkpoint(result.checkpoint, then=lambda: self.training_complete.emit(result))
        else:
            self.training_complete.emit(result)

    def _train_failed(self, exc: BaseException) -> None:
        self.training_error.emit(exc)
        self.model.training_failed(exc)

    def assign_modality(self, old: str, new: str, all_cases: bool = True) -> int:
        """Rename modality ``old`` to ``new`` (every case, or the selected one) and show the
        selected case again. Returns how many cases changed.

        Raises:
            MriViewerError: refused (``new`` present, unknown ``old``, a run training).
        """
        case = self.model.current_case
        n = self.model.assign_modality(old, new, all_cases or case is None)
        if case is not None:
            self.model.select_case(None)
            self.model.select_case(case.case_id)
        return n

    def open_demo(self, then: Callable[[Path], None]) -> Job | None:
        """Generate the demo dataset in the background (once) and hand its folder to ``then``."""
        from mriviewer.demo.dataset import ensure_demo

        self._status(True, "Generating the demo dataset…")

        def done(path) -> None:
            self._status(False)
            then(path)

        def failed(exc) -> None:
            self._status(False)
            self.model.report_error("Demo", exc)

        return self._start("demo", ensure_demo, on_return=done, on_error=failed)
