"""The main window driven with qtbot (offscreen): open, navigate, train, predict, Grad-CAM, export."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot):
    from mriviewer.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield win
    if win.trainer is not None:
        win.trainer.stop()
    qtbot.waitUntil(lambda: not win.workers.busy, timeout=60000)


def test_open_navigate_and_window(window, qtbot, demo_dir):
    from PySide6 import QtCore

    with qtbot.waitSignal(window.volume_shown, timeout=30000):
        assert window.open_path(demo_dir)
    assert window.case_table.model().rowCount() == 12
    st = window.state
    assert st.volume is not None and "".join(st.volume.axcodes) == "RAS"
    # Clicking the axial view moves the crosshair in i and j, not k.
    view = window.views["axial"]
    k_before = st.cursor[2]
    vb = view.viewbox
    dx = st.volume.spacing[0]
    target = vb.mapViewToScene(QtCore.QPointF(1.5 * dx, 1.5 * dx)).toPoint()  # inside screen column 1
    qtbot.mouseClick(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=target)
    assert st.cursor[2] == k_before
    assert st.cursor[0] == st.volume.shape[0] - 1 - 1  # radiological: screen column 0 is the rightmost voxel
    # Keys step slices in the focused view.
    view.setFocus()
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Up)
    assert st.cursor[2] == k_before + 1
    # Window/level edits change the displayed levels.
    window.width_spin.setValue(50)
    assert view.image.levels[1] - view.image.levels[0] == pytest.approx(50, rel=1e-3)
    # Orientation letters are on the views.
    assert view.letters["left"].text() == "R" and window.views["sagittal"].letters["left"].text() == "A"


def test_bad_folder_shows_message_and_keeps_running(window, qtbot, tmp_path):
    with qtbot.waitSignal(window.error_shown, timeout=5000) as sig:
        assert not window.open_path(tmp_path)
    assert str(tmp_path) in sig.args[0]
    assert window.isVisible()
    # A damaged checkpoint, read in a worker: one message naming it, no model, nothing busy.
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    with qtbot.waitSignal(window.error_shown, timeout=30000) as sig:
        window.load_checkpoint(bad)
    assert "broken.pt" in sig.args[0] and window.model.predictor is None
    qtbot.waitUntil(lambda: not window.busy.isVisible(), timeout=5000)


def test_train_predict_gradcam_export(window, qtbot, demo_dir, tmp_path):
    from PySide6 import QtCore

    from tests.cli.test_cli import pdf_text

    with qtbot.waitSignal(window.volume_shown, timeout=30000):
        window.open_path(demo_dir)
    panel = window.train_panel
    # The demo's mriviewer.json suggests T1wCE as input.
    assert panel.modality_checks["T1wCE"].isChecked() and not panel.modality_checks["FLAIR"].isChecked()
    panel.epochs.setValue(2)
    panel.image_size.setValue(32)
    panel.batch.setValue(8)
    panel.device.setCurrentText("cpu")
    panel.pretrained.setText("none")
    with qtbot.waitSignal(window.training_finished, timeout=300000) as finished:
        qtbot.mouseClick(panel.train_button, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.stop_button.isEnabled(), timeout=5000)
    result = finished.args[0]
    assert result.checkpoint is not None
    # Curves hold one point per epoch.
    x, y = panel.train_curve.getData()
    assert list(x) == [1, 2] and np.all(np.isfinite(y))
    assert len(panel.val_curve.getData()[0]) == 2
    # Predictions for all cases, and the Grad-CAM overlay of the selected case.
    qtbot.waitUntil(lambda: len(window.predictions) + len(window.prediction_errors) == 12, timeout=60000)
    qtbot.waitUntil(lambda: window.state.overlay is not None, timeout=60000)
    from mriviewer.app.presenters import CASE_COLUMNS

    prediction = CASE_COLUMNS.index("Prediction")
    assert window.case_table.model().index(0, prediction).data() in ("unmethylated", "methylated")
    # The one case without T1wCE cannot be predicted by a T1wCE model, and says so.
    (missing,) = [c for c in window.dataset.cases if "T1wCE" not in c.modalities]
    assert "T1wCE" in window.prediction_errors[missing.case_id]
    row = window.browser.table_model.row_of(missing.case_id)
    assert window.browser.table_model.index(row, prediction).data() == "not predicted"
    assert "probability" in window.pred_label.text()
    assert window.state.overlay.shape == window.state.volume.shape
    assert window.views["axial"].overlay.isVisible()
    window.cam_check.setChecked(False)
    assert not window.views["axial"].overlay.isVisible()
    window.cam_check.setChecked(True)
    # The caption names the class, the layer read and the grid; it follows the case shown, also
    # when a case's map comes from the model's cache (it kept the previous case's caption).
    first = window.current_case().case_id
    cam = window.model.cams[first]
    assert window.cam_status.text() == cam.describe(window.model.predictor.class_names[cam.class_index])
    assert cam.layer and f"({cam.layer}, T1wCE grid)" in window.cam_status.text()
    window.cam_status.setText("stale")
    window.select_case(window.dataset.cases[1].case_id)
    window.select_case(first)
    qtbot.waitUntil(lambda: window.cam_status.text().startswith("Grad-CAM for"), timeout=60000)
    qtbot.waitUntil(lambda: window.state.overlay is not None, timeout=60000)
    # Grad-CAM of the other class, on request; the report says which class its map explains.
    predicted = window.model.predictions[first].predicted
    other = 1 - predicted
    window.cam_class.setCurrentIndex(window.cam_class.findData(other))
    qtbot.waitUntil(lambda: window.model.cams.get(first) is not None
                    and window.model.cams[first].class_index == other, timeout=60000)
    other_name = window.model.predictor.class_names[other]
    assert f"Grad-CAM for '{other_name}'" in window.cam_status.text()
    text = pdf_text(window.export_report(tmp_path / "other.pdf"))
    assert "not the predicted class" in " ".join(text.split())
    window.cam_class.setCurrentIndex(0)
    qtbot.waitUntil(lambda: window.model.cams.get(first) is not None
                    and window.model.cams[first].class_index == predicted, timeout=60000)

    window.state.set_overlay_options(threshold=0.6)  # the PDF uses the user's threshold, as the screen does
    pdf = window.export_report(tmp_path / "report.pdf")

    text = pdf_text(pdf)
    case_id = window.current_case().case_id
    assert f"case {case_id}" in text and "Research use only" in text and "Grad-CAM" in text
    assert "transparent at or below 0.60" in " ".join(text.split())
    csv_path = window.export_predictions(tmp_path / "preds.csv")
    assert len(csv_path.read_text().strip().splitlines()) == 12  # header + 11 predicted cases


def test_assign_modality_and_grid_choice(window, qtbot, demo_dir):
    with qtbot.waitSignal(window.volume_shown, timeout=30000):
        window.open_path(demo_dir)
    assert window.assign_modality("T2w", "FLAIR") is False  # every case already has FLAIR: refused, said why
    # Native grid shows the series' own canonical grid; the finest grid is shared by all modalities.
    window.select_case("00001")
    qtbot.waitUntil(lambda: window.state.case_id == "00001", timeout=30000)
    assert window.state.modality == "FLAIR"
    shapes = {window.state.volume.shape}
    for m in ("T1w", "T2w"):
        idx = window.modality_combo.findData(m)
        with qtbot.waitSignal(window.volume_shown, timeout=30000):
            window.modality_combo.setCurrentIndex(idx)
        shapes.add(window.state.volume.shape)
    assert len(shapes) == 1  # one world: same grid for coronal FLAIR, sagittal T1w, axial T2w
    with qtbot.waitSignal(window.volume_shown, timeout=30000):
        window.grid_combo.setCurrentIndex(window.grid_combo.findData("native"))
    assert window.state.modality == "T2w"


def test_stop_button_keeps_best_checkpoint(window, qtbot, demo_dir):
    from PySide6 import QtCore

    with qtbot.waitSignal(window.volume_shown, timeout=30000):
        window.open_path(demo_dir)
    panel = window.train_panel
    panel.epochs.setValue(50)
    panel.image_size.setValue(32)
    panel.device.setCurrentText("cpu")
    panel.pretrained.setText("none")
    qtbot.mouseClick(panel.train_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.history) >= 1, timeout=120000)  # one epoch done
    with qtbot.waitSignal(window.training_finished, timeout=60000) as finished:
        qtbot.mouseClick(panel.stop_button, QtCore.Qt.MouseButton.LeftButton)
    result = finished.args[0]
    assert result.stopped and result.checkpoint is not None and result.checkpoint.is_file()
    assert len(result.history) < 50
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()


def test_no_path_offers_the_demo(qtbot, tmp_path, monkeypatch):
    from PySide6 import QtCore, QtWidgets

    import mriviewer.demo.dataset
    from mriviewer.ui.app import create_window

    monkeypatch.setattr(mriviewer.demo.dataset, "default_demo_dir", lambda: tmp_path / "demo")
    win = create_window()
    qtbot.addWidget(win)
    win.show()
    button = win.findChild(QtWidgets.QPushButton, "openDemoButton")
    assert button is not None and button.isVisible()
    with qtbot.waitSignal(win.volume_shown, timeout=60000):
        qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    assert win.dataset.layout == "rsna-miccai" and len(win.dataset.cases) == 32
    assert not button.isVisible()
    qtbot.waitUntil(lambda: not win.workers.busy, timeout=60000)


# ---------------------------------------------------------------------------- the Train panel
# (the ``panel`` fixture is in tests/ui/conftest.py)


def test_every_config_field_has_an_editor(panel):
    from dataclasses import fields

    from mriviewer.ml.config import CHOICES, MODEL_NAMES, TrainConfig

    keys = {f.name for f in fields(TrainConfig)} - {"preset", "preset_version", "overrides", "model", "modalities"}
    assert keys == set(panel.fields)
    assert [panel.model.itemText(i) for i in range(panel.model.count())] == list(MODEL_NAMES)
    for key, allowed in CHOICES.items():
        if key != "model":
            box = panel.fields[key].editor
            assert [box.itemText(i) for i in range(box.count())] == list(allowed)
    assert panel.fields["per_modality"].editor.__class__.__name__ == "QCheckBox"
    assert panel.fields["split"].editor.text() == "[0.7, 0.15, 0.15]"
    # The preset picker offers "(none)" and every preset, "name — task", with notes on hover.
    from mriviewer.ml.presets import list_presets

    names = [panel.preset_combo.itemData(i) for i in range(panel.preset_combo.count())]
    assert names == [""] + [p.name for p in list_presets()]
    assert " — " in panel.preset_combo.itemText(1)
    # The wheel over an unfocused spin box scrolls the page; it does not change the value.
    from PySide6 import QtCore, QtGui, QtWidgets

    panel.epochs.clearFocus()
    before = panel.epochs.value()
    wheel = QtGui.QWheelEvent(QtCore.QPointF(5, 5), QtCore.QPointF(5, 5), QtCore.QPoint(0, 0),
                              QtCore.QPoint(0, 120), QtCore.Qt.MouseButton.NoButton,
                              QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(panel.epochs, wheel)
    assert panel.epochs.value() == before


def test_preset_fills_editors_and_config_records_overrides(panel, qtbot):
    from mriviewer.ml.presets import get_preset

    panel.set_modalities(["FLAIR", "T1w", "T1wCE", "T2w"])
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("mgmt-cnn3d-flair"))
    assert panel.model.currentText() == "cnn3d"
    assert panel.depth.value() == 32 and panel.depth.isEnabled()
    assert panel.fields["loss"].editor.currentText() == "bce"
    assert panel.fields["scheduler"].editor.currentText() == "exponential"
    assert panel.fields["augment"].editor.text() == "{}"
    assert not panel.fields["slices_per_case"].editor.isEnabled()  # a 2D-only setting, greyed for cnn3d
    assert [m for m, cb in panel.modality_checks.items() if cb.isChecked()] == ["FLAIR"]
    preset = get_preset("mgmt-cnn3d-flair")
    assert preset.summary in panel.preset_info.text() and "notes" in panel.preset_info.text()
    assert preset.notes[0][:30] in panel.preset_combo.toolTip()
    cfg = panel.config()
    assert (cfg.preset, cfg.preset_version, cfg.overrides) == ("mgmt-cnn3d-flair", preset.version, {})
    assert cfg.to_dict() == preset.config().to_dict()
    # An edit is recorded as an override of the preset, and its label turns bold.
    panel.epochs.setValue(3)
    panel.fields["split"].editor.setText("[0.5, 0.25, 0.25]")
    cfg = panel.config()
    assert cfg.preset == "mgmt-cnn3d-flair" and cfg.epochs == 3
    assert cfg.overrides == {"epochs": 3, "split": [0.5, 0.25, 0.25]}
    assert panel.field_labels["epochs"].font().bold() and not panel.field_labels["lr"].font().bold()
    # Learning rates are shown and stepped in scientific terms.
    assert panel.lr.text() == "0.0001"
    panel.lr.stepBy(1)
    assert panel.config().lr == pytest.approx(2e-4)
    # Another preset loads all of its values.
    panel.select_preset("grading-r3d-18")
    cfg = panel.config()
    assert cfg.model == "r3d-18" and cfg.folds == 3 and cfg.modality_fallback == {"T1wCE": ["T1w"]}
    assert cfg.overrides == {} and cfg.epochs == 30


def test_invalid_edit_is_a_config_error_naming_the_key(panel):
    from mriviewer.core.errors import ConfigError

    panel.set_modalities(["FLAIR"])
    panel.fields["split"].editor.setText("[0.7, 0.15")
    with pytest.raises(ConfigError, match="split"):
        panel.config()
    assert "d00" in panel.fields["split"].editor.styleSheet()  # outlined
    panel.fields["split"].editor.setText("[0.7, 0.2, 0.2]")  # valid JSON, invalid value
    with pytest.raises(ConfigError, match="split"):
        panel.config()
    panel.fields["split"].editor.setText("[0.7, 0.15, 0.15]")
    panel.fields["augment"].editor.setText('{"flip_lr": 2}')
    with pytest.raises(ConfigError, match="augment.flip_lr"):
        panel.config()
    panel.fields["augment"].editor.setText('{"flip_lr": 0.5}')
    panel.modality_checks["FLAIR"].setChecked(False)
    with pytest.raises(ConfigError, match="modalities"):
        panel.config()


def test_apply_settings_and_device_line(panel, qtbot):
    panel.set_modalities(["FLAIR", "T1wCE"])
    panel.apply_settings({"model": "resnet18-2d", "modalities": ["T1wCE"], "epochs": 10, "image_size": 128,
                          "lr": 1, "split": [0.6, 0.2, 0.2], "image_size_typo": 3, "depth": "deep"})
    assert panel.modality_checks["T1wCE"].isChecked() and not panel.modality_checks["FLAIR"].isChecked()
    cfg = panel.config()
    assert (cfg.epochs, cfg.image_size, cfg.lr, cfg.split) == (10, 128, 1.0, [0.6, 0.2, 0.2])
    assert "image_size_typo" in panel.log.toPlainText() and "depth" in panel.log.toPlainText()
    qtbot.waitUntil(lambda: "CPU" in panel.device_label.text() or "CUDA" in panel.device_label.text(),
                    timeout=60000)


def test_epoch_axes_tick_whole_epochs_only(panel):
    from mriviewer.ui.controls.train import EpochAxis

    for lo, hi in ((1, 2), (1, 4), (1, 30), (0.8, 1.2)):
        ticks = [v for _, values in EpochAxis("bottom").tickValues(lo, hi, 300) for v in values]
        assert all(float(v).is_integer() for v in ticks) and (ticks or hi - lo < 1), (lo, hi, ticks)
    assert isinstance(panel.loss_plot.getAxis("bottom"), EpochAxis)


def test_progress_eta_folds_log_and_warnings(panel):
    from mriviewer.ml.config import TrainConfig
    from mriviewer.ml.events import EpochEvent, LogEvent, ProgressEvent

    panel.set_running(True, TrainConfig(folds=3, epochs=4))
    assert not panel.train_button.isEnabled() and panel.stop_button.isEnabled()
    for step in range(1, 5):
        panel.show_event(ProgressEvent("train", 2, step, 8, 0.7, "fold 2", 4))
        panel.run.clock.train += 2.0  # pretend batches take time
    assert "fold 2 of 3" in panel.overall.format() and "ETA" in panel.overall.format()
    # fold 2 of 3, epoch 2 of 4, half of its batches: (1 + (1 + 4/8) / 4) / 3
    assert panel.overall.value() == pytest.approx(1000 * (1 + 1.5 / 4) / 3, abs=1)
    assert "epoch 2/4" in panel.progress.format() and panel.progress.value() == 4
    rec = {"epoch": 1, "phase": "train", "fold": "fold 2", "lr": 1e-3, "train_loss": 0.7, "val_loss": 0.69,
           "val_auc": 0.6, "val_accuracy": 0.5, "seconds": 1.0, "is_best": True}
    panel.show_event(EpochEvent(rec))
    panel.show_event(EpochEvent({**rec, "epoch": 2, "lr": 1e-4, "val_auc": float("nan"), "is_best": False}))
    assert list(panel.lr_curve.yData) == pytest.approx([1e-3, 1e-4])  # getData() is log10-mapped
    assert list(panel.auc_curve.getData()[0]) == [1]
    for i in range(200):
        panel.show_event(LogEvent(f"line {i}"))
    panel.show_event(LogEvent("too few cases", "warning"))
    bar = panel.log.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()  # follows new lines
    assert panel.warnings == ["too few cases"] and panel.warning_list.count() == 1
    assert "Warnings (1)" in panel.tabs.tabText(panel._warnings_tab)
    last = panel.log.document().lastBlock()
    colour = last.begin().fragment().charFormat().foreground().color().name()
    assert colour != "#000000" and "too few cases" in last.text()
    panel.set_running(False)
    assert panel.warnings == ["too few cases"]  # still there after the run


def test_results_for_cv_per_modality_and_multiclass(panel):
    import numpy as np

    from mriviewer.ml.metrics import classification_metrics, summarise_folds

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 20)
    probs = np.clip(labels * 0.3 + rng.random(20) * 0.7, 0, 1)
    pooled = classification_metrics(labels, np.stack([1 - probs, probs], 1), ["a", "b"], n_boot=50)
    folds = [classification_metrics(labels[i::2], np.stack([1 - probs[i::2], probs[i::2]], 1), ["a", "b"],
                                     n_boot=50) for i in range(2)]
    panel.show_results({"test": pooled, "folds": [{"test": f} for f in folds], "summary": summarise_folds(folds),
                        "warnings": ["Split: something"]})
    text = panel.results_label.text()
    assert "Test (held-out, pooled out-of-fold, 20 cases)" in text and "mean ± sd over 2 folds" in text
    assert "95 % CI" in text and "balanced accuracy" in text and "macro F1" in text
    assert sum(map(sum, panel.confusion_counts())) == 20
    assert panel.roc_plot.isVisible() and "Split: something" in panel.warnings
    # Per-modality runs list each modality's test AUC.
    panel.show_results({"per_modality": {"FLAIR": {"test": folds[0]}, "T2w": {"test": folds[1]}},
                        "chosen_on_validation": "T2w", "warnings": []})
    text = panel.results_label.text()
    assert "FLAIR" in text and "T2w" in text and "chosen on validation" in text
    assert sum(map(sum, panel.confusion_counts())) == folds[1]["n_cases"]
    # Multiclass: one ROC curve per class, a 3 x 3 matrix.
    lab3 = rng.integers(0, 3, 30)
    p3 = rng.dirichlet(np.ones(3), 30)
    panel.show_results({"test": classification_metrics(lab3, p3, ["x", "y", "z"], n_boot=50)})
    assert len(panel.confusion_counts()) == 3 and sum(map(sum, panel.confusion_counts())) == 30
    assert len(panel.roc_plot.listDataItems()) == 4  # diagonal + 3 classes


def test_preset_training_results_and_stopped_run_keeps_model(window, qtbot, demo_dir):
    import json

    from PySide6 import QtCore

    panel = window.train_panel
    assert not panel.train_button.isEnabled()  # no dataset yet
    with qtbot.waitSignal(window.volume_shown, timeout=30000):
        window.open_path(demo_dir)
    assert panel.train_button.isEnabled()
    panel.select_preset("mgmt-resnet18-2d")
    assert panel.fields["optimizer"].editor.currentText() == "sgd"
    panel.fields["split"].editor.setText("[0.5, 0.25, 0.25")  # a typo: refused, naming the key
    with qtbot.waitSignal(window.error_shown, timeout=5000) as err:
        qtbot.mouseClick(panel.train_button, QtCore.Qt.MouseButton.LeftButton)
    assert "split" in err.args[0] and not panel.running
    panel.fields["split"].editor.setText("[0.5, 0.25, 0.25]")
    panel.image_size.setValue(32)
    panel.fields["slices_per_case"].editor.setValue(2)
    panel.epochs.setValue(2)
    panel.batch.setValue(8)
    panel.pretrained.setText("none")
    panel.device.setCurrentText("cpu")
    with qtbot.waitSignal(window.training_finished, timeout=300000) as finished:
        qtbot.mouseClick(panel.train_button, QtCore.Qt.MouseButton.LeftButton)
    result = finished.args[0]
    assert not result.stopped and result.checkpoint is not None
    saved = json.loads((result.out_dir / "config.json").read_text())
    assert saved["preset"] == "mgmt-resnet18-2d" and saved["preset_version"] == 1
    assert saved["overrides"]["image_size"] == 32 and saved["overrides"]["split"] == [0.5, 0.25, 0.25]
    n_test = result.metrics["test"]["n_cases"]
    assert f"Test (held-out, {n_test} cases)" in panel.results_label.text()
    assert "AUC" in panel.results_label.text() and "95 % CI" in panel.results_label.text()
    assert sum(map(sum, panel.confusion_counts())) == n_test
    assert panel.tabs.currentIndex() == 1 and panel.roc_plot.isVisible()
    assert len(panel.lr_curve.xData) == 2
    assert window.predictor is not None and window.predictor.path == result.checkpoint
    qtbot.waitUntil(lambda: not window.workers.busy, timeout=120000)  # predictions and Grad-CAM done

    # A stopped second run keeps the loaded model and offers its own.
    loaded = window.predictor
    panel.epochs.setValue(50)
    qtbot.mouseClick(panel.train_button, QtCore.Qt.MouseButton.LeftButton)
    assert not panel.train_button.isEnabled()
    qtbot.waitUntil(lambda: len(panel.history) >= 1, timeout=120000)
    with qtbot.waitSignal(window.training_finished, timeout=120000) as finished:
        qtbot.mouseClick(panel.stop_button, QtCore.Qt.MouseButton.LeftButton)
    stopped = finished.args[0]
    assert stopped.stopped and stopped.checkpoint is not None and stopped.checkpoint.is_file()
    assert window.predictor is loaded and window.predictor.path == result.checkpoint
    assert "the loaded model is unchanged" in panel.status.text()
    assert panel.load_run_button.isVisible() and panel.pending_checkpoint == str(stopped.checkpoint)
    assert "Stopped run" in panel.results_label.text()
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
    qtbot.mouseClick(panel.load_run_button, QtCore.Qt.MouseButton.LeftButton)
    assert window.busy.isVisible()  # the checkpoint is read in a worker, the window keeps working
    qtbot.waitUntil(lambda: window.predictor is not loaded, timeout=60000)
    assert window.predictor.path == stopped.checkpoint
    assert not panel.load_run_button.isVisible()
    # Continue from a checkpoint: its settings, its weights as the starting point.
    panel.select_preset("mgmt-cnn3d-flair")
    assert panel.start_from_checkpoint(stopped.checkpoint)
    cfg = panel.config()
    assert cfg.model == "resnet18-2d" and cfg.pretrained == str(stopped.checkpoint) and cfg.image_size == 32
    assert not panel.start_from_checkpoint(stopped.checkpoint.parent / "missing.pt")
    assert "Cannot continue" in panel.log.toPlainText()


def test_labelled_folders_open_as_one_dataset(qtbot, tmp_path):
    """The GUI's --data LABEL=PATH: two folders, a class each, one dataset that can be trained."""
    from mriviewer.ui.dialogs import LabelledFoldersDialog
    from mriviewer.ui.main_window import MainWindow
    from tests.phantoms import make_lesion_phantoms

    a = make_lesion_phantoms(tmp_path / "site-a", n_cases=4, seed=1)
    b = make_lesion_phantoms(tmp_path / "site-b", n_cases=4, seed=2)
    win = MainWindow()
    qtbot.addWidget(win)
    dlg = LabelledFoldersDialog(win)
    dlg.add_row("HGG", str(a))
    dlg.add_row("healthy", str(b))
    assert win.open_labelled_folders(dlg.sources())
    ds = win.dataset
    assert ds.layout == "assembled" and ds.class_names == ["HGG", "healthy"] and len(ds.cases) == 8
    assert win.case_table.model().rowCount() == 8
