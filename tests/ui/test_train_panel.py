"""The Train panel's parts (offscreen): the form generated from the config's field metadata, the
invalid key outlined from ConfigError.key, the view of the TrainingRun model, the offered
checkpoint read from the app model, and the curves' value labels that never overlap (at the
default window size 1500 x 950 the loss plot's labels did)."""

from __future__ import annotations

import html
import itertools
from pathlib import Path

import pytest

from tests.ui.conftest import settled

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

REC = {"epoch": 1, "phase": "train", "fold": "holdout", "lr": 1e-3, "train_loss": 0.93, "val_loss": 0.8,
       "val_auc": 0.6, "val_accuracy": 0.5, "seconds": 1.0, "is_best": True}


# (the ``panel`` fixture is in tests/ui/conftest.py)


def _labels(axis) -> list[tuple]:
    """``(rect, text)`` of the tick labels an axis draws now."""
    from PySide6 import QtGui

    image = QtGui.QImage(8, 8, QtGui.QImage.Format.Format_ARGB32)
    painter = QtGui.QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [] if specs is None else [(rect, text) for rect, _flags, text in specs[2]]


def _assert_no_overlap(plot, name: str) -> list[str]:
    labels = _labels(plot.getAxis("left"))
    for (a, ta), (b, tb) in itertools.combinations(labels, 2):
        assert not a.intersects(b), f"{name}: labels {ta!r} and {tb!r} overlap ({a}, {b})"
    return [t for _, t in labels]


def _feed(panel, losses, lrs=None, val=None) -> None:
    from mriviewer.ml.config import TrainConfig
    from mriviewer.ml.events import EpochEvent

    panel.set_running(True, TrainConfig(epochs=len(losses)))
    for i, loss in enumerate(losses):
        panel.show_event(EpochEvent({**REC, "epoch": i + 1, "train_loss": loss,
                                     "val_loss": (val or losses)[i] * 1.1, "lr": (lrs or [1e-3] * len(losses))[i],
                                     "val_auc": 0.5 + 0.05 * i, "is_best": i == 0}))
    panel.set_running(False)


# ---------------------------------------------------------------------------- the defect
def test_loss_axis_labels_do_not_overlap_at_the_default_window_size(qtbot, demo_dir):
    """At 1500 x 950 the loss plot's value axis had four overlapping labels in 25 px."""
    from PySide6 import QtWidgets

    from mriviewer.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.resize(1500, 950)  # the default size (an earlier test's window may have saved another one)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == (1500, 950), timeout=5000)
    with qtbot.waitSignal(win.volume_shown, timeout=30000):
        win.open_path(demo_dir)
    panel = win.train_panel
    _feed(panel, [0.93, 0.85, 0.7], val=[0.78, 0.8, 1.02])
    panel.tabs.setCurrentIndex(0)
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    curves = panel.curves
    assert curves.height() < 300  # the short dock the defect needs
    for plot, name in ((curves.loss_plot, "loss"), (curves.auc_plot, "AUC"), (curves.lr_plot, "learning rate")):
        texts = _assert_no_overlap(plot, name)
        assert texts, f"{name}: no value label at all"
    assert curves.loss_plot.vb.height() >= 30  # the titles no longer take a fixed 30 px row each
    qtbot.waitUntil(lambda: not win.workers.busy, timeout=60000)


@pytest.mark.parametrize("height", [150, 200, 235, 280, 350, 500])
def test_value_labels_never_overlap_at_any_height(qtbot, height):
    from PySide6 import QtWidgets

    from mriviewer.ml.events import EpochRecord
    from mriviewer.ui.controls.train.curves import FittingAxis, TrainingCurves

    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.resize(392, height)
    curves.show()
    cases = [([0.9, 0.8, 0.7], [1e-3] * 3), ([2.5, 0.4, 0.05], [1e-3, 1e-4, 1e-5]), ([0.69] * 4, [1e-2] * 4),
             ([1e3, 2e3], [0.5, 0.1])]
    for losses, lrs in cases:
        curves.show_epochs([EpochRecord.from_dict({**REC, "epoch": i + 1, "train_loss": v, "val_loss": v * 1.2,
                                                   "lr": lr}) for i, (v, lr) in enumerate(zip(losses, lrs, strict=True))])
        for _ in range(3):
            QtWidgets.QApplication.processEvents()
        for plot in (curves.loss_plot, curves.auc_plot, curves.lr_plot):
            assert isinstance(plot.getAxis("left"), FittingAxis)
            _assert_no_overlap(plot, f"{losses} at {height} px")


def test_fitting_axis_spacing(qtbot):
    from mriviewer.ui.controls.train.curves import FittingAxis

    axis = FittingAxis("left")
    h = axis.text_height()
    for lo, hi, size in ((0.75, 1.25, 25), (0.0, 1.0, 40), (0.55, 0.95, 20), (-5, -2, 30), (0, 1000, 300)):
        values = [v for _, vs in axis.tickValues(lo, hi, size) for v in vs]
        assert values, (lo, hi, size)
        px = sorted(v * size / (hi - lo) for v in values)
        assert all(b - a >= h for a, b in itertools.pairwise(px)), (lo, hi, size, values)
    one = [v for _, vs in axis.tickValues(0.55, 0.95, 20) for v in vs]
    assert len(one) == 1 and 0.55 < one[0] < 0.95  # one round tick where two do not fit
    log = FittingAxis("left")
    log.setLogMode(y=True)
    levels = log.tickValues(-3.5, -2.5, 40)  # a constant learning rate of 1e-3, half a decade around it
    assert levels[0][1] == [-3.0]  # its decade, not a crowd of 2e-3, 3e-3, …
    values = sorted(v for _, vs in levels for v in vs)
    assert all((b - a) * 40 >= h for a, b in itertools.pairwise(values))


# ---------------------------------------------------------------------------- the generated form
def test_form_is_generated_from_the_field_metadata(panel):
    from mriviewer.ml.config_fields import config_field, config_fields

    tabs = [panel.settings_tabs.tabText(i) for i in range(panel.settings_tabs.count())]
    assert tabs == ["Model", "Input", "Augment", "Optimise", "Evaluate", "Runtime"]
    groups = ["Model", "Input", "Augmentation", "Optimisation", "Evaluation", "Runtime"]
    for spec in config_fields():
        if not spec.editable or spec.key in ("model", "modalities"):
            assert spec.key not in panel.fields
            continue
        fld = panel.fields[spec.key]
        assert panel.field_labels[spec.key].text() == spec.label
        assert panel.field_group[spec.key] == groups.index(spec.group), spec.key
        assert f"<tt>{spec.key}</tt>" in fld.editor.toolTip() and html.escape(spec.help) in fld.editor.toolTip()
        assert fld.get() == spec.default, spec.key
    assert panel.image_size.suffix() == " px" and panel.fields["spacing_mm"].editor.suffix() == " mm"
    spacing = panel.fields["spacing_mm"].editor
    assert spacing.validate("2.5 mm", 0)[0].name == "Acceptable" and spacing.valueFromText("2.5 mm") == 2.5
    assert panel.fields["pretrained"].browse_button.toolTip().startswith("Choose a file")
    assert config_field("augment").note and config_field("augment").note[:20] in " ".join(
        w.text() for w in panel.settings_tabs.widget(2).findChildren(type(panel.status)))


def test_editors_follow_their_when(panel):
    momentum = panel.fields["momentum"].editor
    assert not momentum.isEnabled() and not panel.field_labels["momentum"].isEnabled()
    panel.fields["optimizer"].editor.setCurrentText("sgd")
    assert momentum.isEnabled() and panel.field_labels["momentum"].isEnabled()
    assert not panel.depth.isEnabled() and panel.fields["slices_per_case"].editor.isEnabled()
    panel.model.setCurrentText("r3d-18")
    assert panel.depth.isEnabled() and not panel.fields["color"].editor.isEnabled()
    assert not panel.fields["finetune_lr"].editor.isEnabled()
    panel.fields["finetune_epochs"].editor.setValue(3)
    assert panel.fields["finetune_lr"].editor.isEnabled() and panel.fields["finetune_freeze"].editor.isEnabled()
    panel.fields["scheduler"].editor.setCurrentText("plateau")
    assert panel.fields["gamma"].editor.isEnabled() and panel.fields["plateau_patience"].editor.isEnabled()
    assert not panel.fields["step_size"].editor.isEnabled()


# ---------------------------------------------------------------------------- ConfigError.key
def test_invalid_field_is_found_from_the_error_key(panel, monkeypatch):
    from mriviewer.core.errors import ConfigError
    from mriviewer.ml.config import TrainConfig

    panel.settings_tabs.setCurrentIndex(5)  # Runtime
    panel.fields["augment"].editor.setText('{"scale": [2, 1]}')
    with pytest.raises(ConfigError) as err:
        panel.config()
    assert err.value.key == "augment.scale"
    assert "d00" in panel.fields["augment"].editor.styleSheet()
    assert panel.settings_tabs.currentIndex() == panel.field_group["augment"]
    panel.fields["augment"].editor.setText("{}")

    # The key, not the message, decides: a message naming nothing still outlines the right editor.
    def refuse(self, values):
        raise ConfigError("this value is absurd", key="weight_decay")

    monkeypatch.setattr(TrainConfig, "with_overrides", refuse)
    panel.epochs.setValue(7)  # an override, so with_overrides is called
    with pytest.raises(ConfigError, match="absurd"):
        panel.config()
    assert "d00" in panel.fields["weight_decay"].editor.styleSheet()
    assert "d00" not in panel.fields["augment"].editor.styleSheet()
    assert panel.settings_tabs.currentIndex() == panel.field_group["weight_decay"]

    def refuse_all(self, values):
        raise ConfigError("config must be a JSON object")

    monkeypatch.setattr(TrainConfig, "with_overrides", refuse_all)
    with pytest.raises(ConfigError):
        panel.config()
    assert not any("d00" in f.editor.styleSheet() for f in panel.fields.values())


def test_unreadable_json_and_unknown_preset_carry_their_key(panel):
    from mriviewer.core.errors import ConfigError

    panel.fields["split"].editor.setText("[0.7, 0.15")
    with pytest.raises(ConfigError) as err:
        panel.fields["split"].get()
    assert err.value.key == "split"
    with pytest.raises(ConfigError) as err:
        panel.select_preset("no-such-preset")
    assert err.value.key == "preset"
    panel.set_modalities(["FLAIR"])
    panel.modality_checks["FLAIR"].setChecked(False)
    panel.fields["split"].editor.setText("[0.7, 0.15, 0.15]")
    with pytest.raises(ConfigError) as err:
        panel.config()
    assert err.value.key == "modalities"


# ---------------------------------------------------------------------------- the run model
def test_panel_observes_the_training_run(panel):
    from mriviewer.app.training import TrainingRun

    run = panel.run
    assert isinstance(run, TrainingRun) and panel.history is run.history and panel.warnings is run.warnings
    run.add_log("disk almost full", "warning")
    assert "⚠ disk almost full" in panel.log.toPlainText() and panel.warning_list.count() == 1
    assert panel.tabs.tabText(panel._warnings_tab) == "Warnings (1)"
    panel.set_can_train(True)
    run.start()
    assert panel.running and panel.stop_button.isEnabled() and not panel.train_button.isEnabled()
    assert panel.warning_list.count() == 0 and panel.tabs.tabText(panel._warnings_tab) == "Warnings"
    assert "Running…" in panel.results_label.text()
    run.set_status("Preparing")
    assert panel.status.text() == "Preparing"
    _feed(panel, [0.9, 0.8])
    assert list(panel.train_curve.getData()[0]) == [1, 2] and len(panel.history) == 2
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
    run.set_results({"warnings": ["w1"]})
    assert panel.tabs.currentIndex() == 1 and "No test metrics" in panel.results_label.text()
    assert panel.warnings == ["w1"] and panel.warning_list.count() == 1


# ---------------------------------------------------------------------------- the offered checkpoint
def test_offered_checkpoint_is_the_app_models(qtbot, tmp_path):
    from mriviewer.app.model import AppModel
    from mriviewer.ui.controls.train import TrainPanel

    model = AppModel()
    panel = TrainPanel(app_model=model)
    qtbot.addWidget(panel)
    panel.show()
    assert not hasattr(panel, "_pending_checkpoint")
    ckpt = tmp_path / "best.pt"
    panel.offer_checkpoint(ckpt)
    assert panel.pending_checkpoint is None and not panel.load_run_button.isVisible()  # the model has none
    model.pending_checkpoint = ckpt
    model.state_changed.emit()
    assert panel.pending_checkpoint == str(ckpt) and panel.load_run_button.isVisible()
    assert str(ckpt) in panel.load_run_button.toolTip()
    model.pending_checkpoint = None  # loaded elsewhere (AppModel.use_predictor clears it)
    model.state_changed.emit()
    assert panel.pending_checkpoint is None and not panel.load_run_button.isVisible()
    model.pending_checkpoint = ckpt
    panel.offer_checkpoint(ckpt)
    with qtbot.waitSignal(panel.load_run_requested) as sig:
        panel.load_run_button.click()
    assert sig.args == [str(ckpt)] and not panel.load_run_button.isVisible()
    panel.offer_checkpoint(ckpt)
    panel.set_running(True)  # a new run withdraws the offer
    assert panel.pending_checkpoint is None and not panel.load_run_button.isVisible()
    settled(qtbot, panel)


def test_panel_finds_the_app_model_of_its_window(qtbot):
    from PySide6 import QtWidgets

    from mriviewer.app.model import AppModel
    from mriviewer.ui.controls.train import TrainPanel

    window = QtWidgets.QMainWindow()
    window.model = AppModel()
    qtbot.addWidget(window)
    dock = QtWidgets.QDockWidget("Train", window)
    panel = TrainPanel()
    dock.setWidget(panel)
    assert panel.app_model() is window.model
    window.model.pending_checkpoint = Path("run/best.pt")
    panel.offer_checkpoint("run/best.pt")
    assert panel.pending_checkpoint == str(Path("run/best.pt"))
    alone = TrainPanel()
    qtbot.addWidget(alone)
    assert alone.app_model() is None and alone.pending_checkpoint is None
    settled(qtbot, panel)
    settled(qtbot, alone)
