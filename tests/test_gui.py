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
    assert window.case_table.rowCount() == 12
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


def test_train_predict_gradcam_export(window, qtbot, demo_dir, tmp_path):
    from PySide6 import QtCore

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
    assert window.case_table.item(0, 3).text() in ("MGMT unmethylated", "MGMT methylated")
    # The one case without T1wCE cannot be predicted by a T1wCE model, and says so.
    (missing,) = [c for c in window.dataset.cases if "T1wCE" not in c.modalities]
    assert "T1wCE" in window.prediction_errors[missing.case_id]
    row = window.dataset.cases.index(missing)
    assert window.case_table.item(row, 3).text() == "not predicted"
    assert "probability" in window.pred_label.text()
    assert window.state.overlay.shape == window.state.volume.shape
    assert window.views["axial"].overlay.isVisible()
    window.cam_check.setChecked(False)
    assert not window.views["axial"].overlay.isVisible()
    window.cam_check.setChecked(True)

    pdf = window.export_report(tmp_path / "report.pdf")
    from .test_cli import pdf_text

    text = pdf_text(pdf)
    case_id = window.current_case().case_id
    assert f"case {case_id}" in text and "Research use only" in text and "Grad-CAM" in text
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

    import mriviewer.cli
    from mriviewer.ui.app import create_window

    monkeypatch.setattr(mriviewer.cli, "default_demo_dir", lambda: tmp_path / "demo")
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
