"""The app model and the viewer state without a window: open → select → train → load → predict →
Grad-CAM → report, the stopped-run rule, the browser rows and the actions' enabled state."""

from __future__ import annotations

import numpy as np
import pytest

from mriviewer.app import presenters
from mriviewer.app.model import AppModel
from mriviewer.app.viewer import ViewerState
from mriviewer.core.errors import MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.ml.config import TrainConfig

TINY_3D = dict(image_size=32, depth=8, batch_size=4, pretrained="none", device="cpu", augment={})


def _events(model: AppModel) -> list[str]:
    seen: list[str] = []
    for name in ("dataset_changed", "case_selected", "checkpoint_changed", "prediction_added", "cam_added",
                 "training_changed", "error"):
        getattr(model, name).connect(lambda *a, n=name: seen.append(n))
    return seen


def test_open_select_step_and_rows(demo_dir, tmp_path):
    m = AppModel()
    seen = _events(m)
    assert m.can_train() == (False, "Open a labelled dataset first.")
    assert not m.open_path(tmp_path / "nothing-here")
    assert seen == ["error"]
    assert m.open_path(demo_dir)
    assert "dataset_changed" in seen and m.can_train()[0]
    ids = [c.case_id for c in m.cases]
    m.select_case(ids[0])
    assert m.current_case.case_id == ids[0] and seen[-1] == "case_selected"
    assert m.step_case(1) == ids[1] and m.step_case(-5) == ids[0]
    assert m.step_case(1, visible=[ids[3], ids[0], ids[7]]) == ids[7]
    with pytest.raises(KeyError):
        m.select_case("no-such-case")
    row = presenters.case_row(m, m.case(ids[0]))
    # The classes' shared first word ("MGMT") is left out of the narrow column, kept in the tooltip.
    assert presenters.class_prefix(m) == "MGMT " and row.label in ("methylated", "unmethylated") and row.split == ""
    assert "label: MGMT" in row.tooltip
    assert row.modalities == "all 4" or row.modalities.startswith("FL")
    assert m.can_report() == (False, "Load or train a model first.")
    assert m.can_export_predictions()[0] is False


def test_train_load_predict_cam_and_report_without_a_window(phantom_dir, tmp_path):
    from mriviewer.cache.memory import VolumeCache
    from mriviewer.reporting.batch import export_reports

    m = AppModel()
    seen = _events(m)
    assert m.open_path(phantom_dir)
    loader = VolumeCache().get
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], epochs=1, loss="bce", split=[0.6, 0.2, 0.2], **TINY_3D)
    trainer = m.start_training(cfg, loader, out=tmp_path / "run")
    assert m.training and not m.can_train()[0] and "in progress" in m.can_train()[1]
    gen = trainer.run()
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        result = stop.value
    assert m.training_finished(result) == "load" and not m.training
    assert m.load_checkpoint(result.checkpoint)
    assert "checkpoint_changed" in seen and "test AUC" in presenters.checkpoint_summary(m)
    for item in m.predict_iter(loader):
        m.add_prediction(item)
    assert len(m.predictions) == len(m.cases) and not m.prediction_errors
    splits = {presenters.case_row(m, c).split for c in m.cases}
    assert splits == {"train", "validation", "test"}
    # The predictions CSV the GUI writes carries the same roles in its split column (as the CLI's).
    from mriviewer.reporting.predictions_csv import write_predictions_csv

    csv_path = write_predictions_csv(m.predictions_in_order(), m.predictor.class_names, tmp_path / "p.csv",
                                     m.dataset, role=m.role_of_id)
    assert {line.split(",")[2] for line in csv_path.read_text().splitlines()[1:]} == splits
    case = m.cases[0]
    m.select_case(case.case_id)
    assert m.can_report()[0]
    head, detail = presenters.prediction_text(m, case)
    assert "probability" in head and "Known label" in detail
    cam = m.predictor.gradcam(case, loader)
    m.add_cam(case.case_id, cam)
    assert seen[-1] == "cam_added" and cam.cam.max() <= 1.0
    progress = list(export_reports(m.predictor, m.dataset, tmp_path / "reports", [case.case_id], loader=loader,
                                   predictions=m.predictions, gradcams=m.cams))
    assert progress[-1].ok and progress[-1].result.is_file()

    # A stopped run with a model loaded is offered, never loaded.
    class Stopped:
        checkpoint = result.checkpoint
        stopped = True

    assert m.training_finished(Stopped()) == "offered" and m.pending_checkpoint == result.checkpoint
    assert m.load_checkpoint(result.checkpoint) and m.pending_checkpoint is None

    # Another model loaded while the previous one is still predicting: what the old run still
    # yields is dropped (it would pass for the new model's), and the old run stops.
    old_run = m.predict_iter(loader)
    first = next(old_run)
    m.use_predictor(m.open_predictor(result.checkpoint, "cpu", m.dataset_modalities()), result.checkpoint)
    m.add_prediction(first)
    assert not m.predictions and list(old_run) == []

    class Empty:
        checkpoint = None
        stopped = True

    assert m.training_finished(Empty()) == "none"


def test_checkpoint_with_a_modality_the_data_lacks_is_refused(phantom_dir, demo_dir, tmp_path):
    from mriviewer.cache.memory import VolumeCache
    from mriviewer.ml.engine import Trainer

    m = AppModel()
    assert m.open_path(demo_dir)
    cfg = TrainConfig(model="cnn3d", modalities=["T2w"], epochs=1, loss="bce", split=[0.5, 0.25, 0.25], **TINY_3D)
    gen = Trainer(cfg, m.dataset, tmp_path / "run", loader=VolumeCache().get).run()
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        ckpt = stop.value.checkpoint
    errors: list[str] = []
    m.error.connect(errors.append)
    assert m.open_path(phantom_dir)  # FLAIR only
    assert not m.load_checkpoint(ckpt) and m.predictor is None
    assert "T2w" in errors[-1] and str(ckpt) in errors[-1]
    with pytest.raises(MriViewerError):
        m.training = True
        m.start_training(cfg, VolumeCache().get)


def _vol(shape=(10, 12, 8), spacing=(1.0, 1.0, 2.0), value=None, modality="FLAIR", origin=(0, 0, 0)):
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) if value is None else \
        np.full(shape, value, np.float32)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return Volume(data, affine, modality)


def test_viewer_state_modalities_windows_layout_and_readout():
    st = ViewerState()
    fired: list[str] = []
    for ev in ("volume", "cursor", "window", "overlay", "segmentation", "layout"):
        st.on(ev, lambda ev=ev: fired.append(ev))
    flair, t2 = _vol(), _vol(value=7.0, modality="T2w")
    # The file's own grid is LPS-ish (flipped i): the readout index is in that grid.
    native_affine = np.diag([-1.0, 1.0, 2.0, 1.0])
    native_affine[0, 3] = 9.0
    st.set_case("c1", {"FLAIR": flair, "T2w": t2}, "FLAIR", native={"FLAIR": (native_affine, (10, 12, 8))})
    assert st.cursor == (5, 6, 4) and set(st.windows) == {"FLAIR", "T2w"}
    st.set_cursor((2, 3, 1))
    assert st.values_at_cursor() == {"FLAIR": float(flair.data[2, 3, 1]), "T2w": 7.0}
    assert st.native_index("FLAIR") == (7, 3, 1) and st.native_index("T2w") is None
    st.set_modality("T2w")
    assert st.volume is st.volumes["T2w"] and st.cursor == (2, 3, 1)  # same millimetre
    assert list(st.grid_volumes()) == ["FLAIR", "T2w"]
    st.set_level_width(100, 40, "FLAIR")
    assert st.window_of("FLAIR") == (80.0, 120.0)
    st.apply_window_preset("Full range", "FLAIR")
    assert st.window_of("FLAIR") == (0.0, float(flair.data.max())) and st.default_window == "Full range"
    st.set_window(float("nan"), 3)  # ignored, never a NaN window
    assert np.isfinite(st.window).all()
    st.set_layout("grid")
    assert st.layout == "grid" and "layout" in fired
    with pytest.raises(ValueError):
        st.set_layout("mosaic")
    st.set_overlay_options(threshold=2.0, opacity=-1)
    assert st.threshold == 1.0 and st.opacity == 0.0
    seg = np.zeros(flair.shape)
    seg[1:3, 1:3, 1] = 4
    st.set_segmentation(seg)
    assert st.segmentation.dtype == np.uint8 and st.segmentation_labels() == [4]
    with pytest.raises(ValueError):
        st.set_segmentation(np.zeros((2, 2, 2)))


def test_display_lookup_tables():
    from mriviewer.core.colour import LABEL_COLOURS, label_lut, overlay_lut

    lut = overlay_lut("inferno", threshold=0.5)
    assert lut.shape == (256, 4) and lut.dtype == np.uint8
    assert (lut[:127, 3] == 0).all() and (lut[128:, 3] == 255).all()
    labels = label_lut()
    assert labels[0, 3] == 0 and tuple(labels[2, :3]) == LABEL_COLOURS[2] and labels[9, 3] == 255
