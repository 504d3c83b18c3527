"""The session without Qt: loading a case on its common grid, predicting every case, Grad-CAM
requests (the latest wins, maps cached per class, stale results dropped), cancelling and
quitting, driven by a synchronous runner and by a runner that holds the work back so the test
decides when (and on which thread) each piece runs."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mriviewer.app import presenters
from mriviewer.app.model import AppModel
from mriviewer.app.session import Session
from mriviewer.app.viewer import ViewerState
from mriviewer.app.work import Job, run_now, snapshot, until_cancelled
from mriviewer.cache.memory import VolumeCache
from mriviewer.core.errors import MriViewerError
from mriviewer.data.cases import Case, Dataset, ModalitySource
from mriviewer.ml.predict import GradCamResult, Prediction

NAMES = ["MGMT unmethylated", "MGMT methylated"]


# ---------------------------------------------------------------------------- helpers
def _nifti(path: Path, shape, spacing, value: float = 1.0) -> Path:
    import nibabel as nib

    data = np.full(shape, value, np.float32)
    data[tuple(n // 2 for n in shape)] = value * 10
    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), str(path))
    return path


def _dataset(tmp_path: Path, n: int = 3, broken_seg: int | None = None) -> Dataset:
    """``n`` cases with FLAIR (1 mm) and T2w (2 mm) NIfTI on different grids, labels 0/1;
    case ``broken_seg`` has a segmentation file that cannot be read."""
    cases = []
    for i in range(n):
        d = tmp_path / f"c{i}"
        d.mkdir()
        mods = {"FLAIR": ModalitySource("FLAIR", _nifti(d / "flair.nii.gz", (12, 12, 8), (1, 1, 1)), "nifti"),
                "T2w": ModalitySource("T2w", _nifti(d / "t2.nii.gz", (6, 6, 4), (2, 2, 2), 3.0), "nifti")}
        seg = None
        if i == broken_seg:
            seg = d / "seg.nii.gz"
            seg.write_bytes(b"not a nifti")
        cases.append(Case(f"c{i}", mods, label=i % 2, segmentation=seg))
    return Dataset(tmp_path, "test", cases, list(NAMES))


class FakePredictor:
    """Predicts class 1 for every case; Grad-CAM on the FLAIR grid; odd cases were in its test
    set, even ones in training; counts the Grad-CAM calls."""

    def __init__(self) -> None:
        self.class_names = list(NAMES)
        self.config = SimpleNamespace(model="fake")
        self.metrics, self.test_metrics = {}, {}
        self.cam_calls: list[tuple[str, int | None]] = []

    def role_of(self, case, dataset=None) -> str:
        cid = case.case_id if hasattr(case, "case_id") else case
        return "test" if int(cid[1:]) % 2 else "train"

    def predict(self, case, loader) -> Prediction:
        if case.case_id == "c2" and "T1wCE" in case.modalities:  # never: all predictable
            raise MriViewerError("no T1wCE")
        return Prediction(case.case_id, np.array([0.25, 0.75]), 1, NAMES[1], case.label)

    def gradcam(self, case, loader, class_index=None) -> GradCamResult:
        k = 1 if class_index is None else class_index
        self.cam_calls.append((case.case_id, k))
        ref = loader(case.modalities["FLAIR"]).canonical()
        cam = np.zeros(ref.shape, np.float32)
        cam[1:3, 1:3, 1:3] = 0.5 + 0.25 * k
        return GradCamResult(cam, ref, k, "layer4")


class Held:
    """A runner that keeps each piece of work until the test runs it (``run(i)``), in any
    order; ``run(i, thread=True)`` computes it on another thread first, as a worker would, and
    applies the callbacks here afterwards."""

    def __init__(self) -> None:
        self.jobs: list[SimpleNamespace] = []

    def __call__(self, func, *args, on_yield=None, on_return=None, on_error=None, cancel=None, **kwargs):
        self.jobs.append(SimpleNamespace(func=func, args=args, kwargs=kwargs, on_yield=on_yield,
                                         on_return=on_return, on_error=on_error, cancel=cancel))

    def names(self) -> list[str]:
        return [getattr(j.func, "__name__", "") for j in self.jobs]

    def run(self, i: int = 0, thread: bool = False, before_callbacks=None) -> None:
        job = self.jobs.pop(i)
        if not thread:
            run_now(job.func, *job.args, on_yield=job.on_yield, on_return=job.on_return, on_error=job.on_error,
                    **job.kwargs)
            return
        box: dict = {}

        def work():
            try:
                result = job.func(*job.args, **job.kwargs)
                if inspect.isgenerator(result):  # a generator worker, driven to its end (items dropped)
                    while True:
                        try:
                            next(result)
                        except StopIteration as stop:
                            result = stop.value
                            break
                box["result"] = result
            except Exception as exc:  # noqa: BLE001
                box["error"] = exc

        t = threading.Thread(target=work)
        t.start()
        t.join()
        if before_callbacks is not None:
            before_callbacks()
        if "error" in box:
            job.on_error(box["error"])
        else:
            job.on_return(box["result"])


def _session(ds: Dataset, run=run_now, prefetch: bool = False, cache=None):
    """A session on ``ds`` (opened: its first case selected); without the prefetch of the next
    case unless asked (tests of it are in test_session_loading.py)."""
    model, state = AppModel(), ViewerState()
    session = Session(model, state, cache if cache is not None else VolumeCache(), run=run)
    session.prefetch = prefetch
    model.open_dataset(ds)
    return model, state, session


def _record(session: Session) -> list[tuple]:
    seen: list[tuple] = []
    for name in ("status", "case_shown", "case_loaded", "case_updated", "cam_caption_changed", "cam_ready",
                 "predictions_done"):
        getattr(session, name).connect(lambda *a, n=name: seen.append((n, *a)))
    return seen


# ---------------------------------------------------------------------------- runner and jobs
def test_run_now_drives_generators_and_routes_errors():
    got: list = []

    def gen(n):
        yield from range(n)
        return "done"

    run_now(gen, 3, on_yield=got.append, on_return=got.append)
    assert got == [0, 1, 2, "done"]
    errors: list = []
    run_now(lambda: 1 / 0, on_error=errors.append)
    assert isinstance(errors[0], ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        run_now(lambda: 1 / 0)


def test_cancelled_generator_stops_at_its_next_item_and_is_closed():
    closed: list[bool] = []

    def gen():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    job = Job("predict")
    out = []
    for item in until_cancelled(gen, job)():
        out.append(item)
        if item == 2:
            job.cancel()
    assert out == [0, 1, 2] and closed == [True] and job.cancelled


# ---------------------------------------------------------------------------- loading
def test_select_loads_every_modality_on_one_grid_and_the_grid_choice_reloads(tmp_path):
    model, state, session = _session(_dataset(tmp_path))
    seen = _record(session)
    assert state.case_id == "c0" and state.modality == "FLAIR"  # the first case, selected on opening
    assert {v.shape for v in state.volumes.values()} == {(12, 12, 8)}  # T2w resampled to the finest grid
    model.select_case("c1")
    assert ("case_shown", "c1", "FLAIR") in seen and ("case_loaded", "c1") in seen
    assert ("status", False, "Loaded c1 on the FLAIR grid") in seen
    session.select_modality("T2w")  # loaded already: shown at once, same millimetre
    assert state.modality == "T2w" and state.volume.shape == (12, 12, 8)
    state.set_grid("native")  # the grid choice lives in the viewer state; the session reloads
    assert state.volume.shape == (6, 6, 4) and state.volumes["FLAIR"].shape == (12, 12, 8)
    assert session.wanted_modality == "T2w" and seen[-1] == ("case_loaded", "c1")
    with pytest.raises(ValueError):
        state.set_grid("coarsest")


def test_load_errors_are_applied_on_the_callback_side_never_in_the_worker(tmp_path):
    held = Held()
    model, state, session = _session(_dataset(tmp_path, broken_seg=1), run=held)
    seen = _record(session)
    held.run()  # c0's load
    model.select_case("c1")
    case = model.case("c1")
    assert held.names() == ["load_steps"] and case.errors == []
    during: list[list[str]] = []
    errors: list[str] = []
    model.error.connect(errors.append)
    held.run(thread=True, before_callbacks=lambda: during.append(list(case.errors)))
    assert during == [[]]  # the worker wrote into its snapshot, not the case
    assert len(case.errors) == 1 and "seg.nii.gz" in case.errors[0]  # applied here, by the callback
    assert ("case_updated", "c1") in seen and state.case_id == "c1"
    assert any("segmentation" in e and "seg.nii.gz" in e for e in errors)  # said once, naming the file
    assert snapshot(case).errors == case.errors and snapshot(case).errors is not case.errors


def test_a_superseded_load_never_shows(tmp_path):
    held = Held()
    model, state, session = _session(_dataset(tmp_path), run=held)
    seen = _record(session)
    model.select_case("c1")
    model.select_case("c2")
    # c0's load and c1's were started, then cancelled; c2's waits for one of them to end.
    assert held.names() == ["load_steps"] * 2 and session.running("load") == []
    held.run(1)  # c1's, cancelled: ends at once, nothing shown, and c2's starts
    assert held.names() == ["load_steps"] * 2 and state.case_id is None
    held.run(1)  # c2's
    assert state.case_id == "c2"
    held.run(0)  # c0's, late, cancelled: nothing
    assert state.case_id == "c2" and held.jobs == []
    assert [e for e in seen if e[0] == "case_loaded"] == [("case_loaded", "c2")]


# ---------------------------------------------------------------------------- predictions and Grad-CAM
def test_predict_all_then_gradcam_cached_per_class(tmp_path):
    model, state, session = _session(_dataset(tmp_path))
    seen = _record(session)
    fake = FakePredictor()
    model.use_predictor(fake, tmp_path / "fake.pt")
    assert len(model.predictions) == 3 and ("predictions_done",) in seen
    # The selected case's map of its predicted class, over the volume; FLAIR grid = shown grid.
    assert fake.cam_calls == [("c0", 1)] and model.cams["c0"].class_index == 1
    assert session.cam_caption == "Grad-CAM for 'MGMT methylated' (layer4, FLAIR grid)"
    assert state.overlay is not None and state.overlay.shape == state.volume.shape
    model.set_cam_class(0)  # the evidence for the other class: computed once
    assert fake.cam_calls[-1] == ("c0", 0) and model.cams["c0"].class_index == 0
    model.set_cam_class(None)  # back to the predicted class: from the cache
    assert len(fake.cam_calls) == 2 and model.cams["c0"].class_index == 1
    # The CSV's split column: each case's role for the checkpoint (what the GUI export writes).
    from mriviewer.reporting.predictions_csv import write_predictions_csv

    out = write_predictions_csv(model.predictions_in_order(), NAMES, tmp_path / "p.csv", model.dataset,
                                role=model.role_of_id)
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows[0][2] == "split" and [r[2] for r in rows[1:]] == ["train", "test", "train"]


def test_gradcam_latest_request_wins_and_stale_results_are_dropped(tmp_path):
    held = Held()
    model, state, session = _session(_dataset(tmp_path), run=held)
    held.run()  # c0 shown
    fake = FakePredictor()
    model.use_predictor(fake, tmp_path / "fake.pt")
    held.run(0)  # the predictions
    assert len(model.predictions) == 3
    assert held.names() == ["gradcam"]
    model.set_cam_class(0)  # a second request for c0 while the first runs
    assert held.names() == ["gradcam", "gradcam"]
    held.run(1)  # the latest (class 0) first
    assert session.cam_caption.startswith("Grad-CAM for 'MGMT unmethylated'")
    held.run(0)  # the older (class 1) arrives late: cached, never shown, no caption
    assert model.cams["c0"].class_index == 0 and model.cached_cam("c0", 1) is not None
    assert session.cam_caption.startswith("Grad-CAM for 'MGMT unmethylated'")
    # A request still running when another model is loaded is dropped.
    model.select_case("c1")
    held.run(held.names().index("load_steps"))
    assert held.names() == ["gradcam"]
    other = FakePredictor()
    model.use_predictor(other, tmp_path / "other.pt")
    held.run(held.names().index("gradcam"))
    assert "c1" not in model.cams and session.cam_caption == ""
    # A request still running for a case gives no caption to the next case, which has no map.
    held.run(held.names().index("predict_iter"))  # the new model's predictions; c1's Grad-CAM is asked
    assert held.names() == ["gradcam"] and session.cam_caption == "Computing Grad-CAM…"
    del model.predictions["c2"]
    model.select_case("c2")
    held.run(held.names().index("gradcam"))
    assert session.cam_caption == "" and model.cams["c1"].class_index == 1


def test_cancel_stops_a_prediction_run_and_a_new_run_replaces_the_old(tmp_path):
    held = Held()
    model, state, session = _session(_dataset(tmp_path), run=held)
    held.run()
    model.use_predictor(FakePredictor(), tmp_path / "fake.pt")
    first = held.jobs.pop(0)
    gen = first.func(*first.args)
    first.on_yield(next(gen))
    assert list(model.predictions) == ["c0"] and session.running("predict") == ["predict"]
    session.predict_all()  # e.g. the dataset changed: the earlier run is cancelled
    assert list(gen) == [] and session.running("predict") == ["predict"]
    first.on_return(None)  # a cancelled run's end is not "predictions done"
    session.cancel()
    assert session.running() == []
    second = held.jobs.pop(-1)
    run_now(second.func, *second.args, on_yield=second.on_yield, on_return=second.on_return)
    assert list(model.predictions) == ["c0"]  # nothing of a cancelled run is applied


def test_shutdown_stops_training_and_drops_late_results(tmp_path, monkeypatch):
    held = Held()
    model, state, session = _session(_dataset(tmp_path), run=held)
    held.jobs.clear()
    events = []

    class FakeTrainer:
        stopped = False

        def stop(self):
            self.stopped = True

        def run(self):
            yield from range(1000)
            return "never"

    trainer = FakeTrainer()

    def start_training(config, loader, out=None):
        model.trainer, model.training = trainer, True
        return trainer

    monkeypatch.setattr(model, "start_training", start_training)
    session.train_event.connect(events.append)
    session.start_training(SimpleNamespace())
    job = held.jobs.pop(0)
    gen = job.func()
    job.on_yield(next(gen))
    assert events == [0]
    ok, why = model.can_assign_modality()
    assert not ok and "training" in why
    with pytest.raises(MriViewerError):
        model.assign_modality("T2w", "T1w")
    assert set(model.case("c0").modalities) == {"FLAIR", "T2w"}
    session.shutdown()
    assert trainer.stopped and session.closed
    assert list(gen) == []  # the run's events are no longer read: it ends at its next one
    job.on_yield(5)
    assert events == [0]  # nothing after quitting reaches the models
    assert session.load_case(model.case("c1"), "FLAIR") is None and held.jobs == []


def test_assign_modality_reloads_the_selected_case(tmp_path):
    model, state, session = _session(_dataset(tmp_path))
    model.select_case("c1")
    assert session.assign_modality("T2w", "T1w") == 3
    assert model.case_id == "c1" and set(state.volumes) == {"FLAIR", "T1w"}


# ---------------------------------------------------------------------------- presenters
def test_presenters_texts():
    case = Case("c9", {"FLAIR": None, "T2w": None})
    items = presenters.modality_items(case)
    assert ("FLAIR", "FLAIR", True) in items and ("T1w (missing)", "T1w", False) in items
    assert presenters.case_title(case) == "Case c9" and presenters.case_title(None) == ""
    result = SimpleNamespace(checkpoint=Path("/r/best.pt"), stopped=True)
    status, lines = presenters.training_outcome(result, "offered")
    assert "loaded model is unchanged" in status and lines == [status]
    assert presenters.training_outcome(SimpleNamespace(checkpoint=None, stopped=False), "none")[0] \
        == "Finished without a checkpoint."
    assert presenters.epoch_text(SimpleNamespace(record={"epoch": 3})) == "Epoch 3 done"  # a dict record
    assert presenters.epoch_text(SimpleNamespace(record=SimpleNamespace(epoch=4))) == "Epoch 4 done"  # typed
    assert presenters.GRID_ITEMS[0] == ("Grid: finest", "auto") and presenters.GRID_ITEMS[-1][1] == "native"
