"""The main window's binding, driven with qtbot (offscreen): File ▸ Export predictions writes
each case's split, Case ▸ Assign modality is off while a run trains, quitting during a run
stops it and waits for the workers (quickly, without a warning), and at the default size
1500×950 the case line, the view captions and the case table's class names are not cut."""

from __future__ import annotations

import csv
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from tests.app.test_session import FakePredictor  # noqa: E402

ABORTED = "RuntimeError in aborted thread"


@pytest.fixture
def win(qtbot, demo_dir):
    from mriviewer.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1500, 950)
    w.show()
    with qtbot.waitSignal(w.volume_shown, timeout=30000):
        assert w.open_path(demo_dir)
    yield w
    if w.trainer is not None:
        w.trainer.stop()
    qtbot.waitUntil(lambda: not w.workers.busy, timeout=60000)


def _with_fake_model(win, qtbot, tmp_path) -> FakePredictor:
    fake = FakePredictor()
    with qtbot.waitSignal(win.predictions_ready, timeout=60000):
        win.model.use_predictor(fake, tmp_path / "fake.pt")
    qtbot.waitUntil(lambda: not win.workers.busy, timeout=60000)
    return fake


def _tiny_run(panel, epochs: int = 50) -> None:
    panel.epochs.setValue(epochs)
    panel.image_size.setValue(32)
    panel.batch.setValue(8)
    panel.device.setCurrentText("cpu")
    panel.pretrained.setText("none")


# ---------------------------------------------------------------------------- a. the CSV's split
def test_export_predictions_menu_writes_each_cases_split(win, qtbot, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    fake = _with_fake_model(win, qtbot, tmp_path)
    action = win.actions["export_csv"]
    assert action.isEnabled()
    out = tmp_path / "predictions.csv"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "CSV (*.csv)"))
    action.trigger()  # File ▸ Export predictions (CSV)…
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(win.model.predictions) == 12
    assert all(r["split"] == fake.role_of(r["case_id"]) for r in rows)
    assert {r["split"] for r in rows} == {"train", "test"}


# ---------------------------------------------------------------------------- b. no renaming while training
class _SlowTrainer:
    """A run that ends only when stopped (no torch): enough to hold the window in training."""

    def __init__(self, out):
        self.out_dir = out
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self):
        from mriviewer.ml.events import LogEvent, TrainResult

        yield LogEvent("started", "info")
        while not self._stop.wait(0.02):
            pass
        return TrainResult(self.out_dir, None, [], {}, True, [], {})


def test_assign_modality_is_off_while_a_run_trains(win, qtbot, tmp_path, monkeypatch):
    from PySide6 import QtCore

    model, assign = win.model, win.actions["assign"]
    assert assign.isEnabled()

    def start_training(config, loader, out=None):
        model.trainer, model.training = _SlowTrainer(tmp_path), True
        model.training_changed.emit()
        model.state_changed.emit()
        return model.trainer

    monkeypatch.setattr(model, "start_training", start_training)
    qtbot.mouseClick(win.train_panel.train_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.train_panel.stop_button.isEnabled(), timeout=5000)
    assert not assign.isEnabled() and "training run is in progress" in assign.toolTip()
    before = {c.case_id: list(c.modalities) for c in model.cases}
    with qtbot.waitSignal(win.error_shown, timeout=5000) as err:
        assert win.assign_modality("T2w", "T1w") is False  # refused by the model too
    assert "training run" in err.args[0]
    assert {c.case_id: list(c.modalities) for c in model.cases} == before
    with qtbot.waitSignal(win.training_finished, timeout=10000):
        win.stop_training()
    assert assign.isEnabled()


# ---------------------------------------------------------------------------- c. quitting while training
def test_close_during_training_stops_the_run_and_waits_for_the_workers(win, qtbot, recwarn, capfd):
    from PySide6 import QtCore

    from mriviewer.ui.main_window import CLOSE_TIMEOUT_S

    panel = win.train_panel
    _tiny_run(panel)
    events: list = []
    win.session.train_event.connect(events.append)
    qtbot.mouseClick(panel.train_button, QtCore.Qt.MouseButton.LeftButton)
    from mriviewer.ml.events import ProgressEvent

    batches = lambda: [e for e in events if isinstance(e, ProgressEvent) and e.stage == "train"]  # noqa: E731
    qtbot.waitUntil(lambda: len(batches()) >= 2, timeout=120000)  # the run is in its epochs
    trainer = win.trainer
    t0 = time.monotonic()
    win.close()
    elapsed = time.monotonic() - t0
    assert elapsed < CLOSE_TIMEOUT_S, elapsed
    assert trainer.stopping  # Trainer.stop() was called
    assert QtCore.QThreadPool.globalInstance().activeThreadCount() == 0  # no thread left to emit
    n_events = len(events)
    qtbot.wait(200)  # what the workers emitted before ending is delivered, and dropped
    assert len(events) == n_events
    qtbot.waitUntil(lambda: not win.workers.busy, timeout=5000)
    gc.collect()  # the finished workers and their signal objects go
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    out, err = capfd.readouterr()
    assert ABORTED not in out + err and "Signal source has been deleted" not in out + err


_APP = textwrap.dedent('''
    import sys
    from PySide6 import QtCore

    def main():
        from mriviewer.ui import app as uiapp

        make = uiapp.create_window

        def create(*a, **k):
            win = make(*a, **k)
            p = win.train_panel

            def train():
                p.epochs.setValue(50); p.image_size.setValue(32); p.batch.setValue(8)
                p.device.setCurrentText("cpu"); p.pretrained.setText("none")
                win.session.train_event.connect(lambda e: print("TRAINING", flush=True))
                win.start_training()

            win.volume_shown.connect(lambda *_: QtCore.QTimer.singleShot(0, train) if win.trainer is None else None)
            return win

        uiapp.create_window = create
        sys.exit(uiapp.run_app(sys.argv[1]))

    if __name__ == "__main__":
        main()
''')


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_sigterm_while_training_exits_promptly_without_a_warning(demo_dir, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1", MRIVIEWER_RUNS_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", _APP, str(demo_dir)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "TRAINING" in line:
                break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert ABORTED not in err and "RuntimeWarning" not in err, err
    # Closing takes well under 2 s (the test above); the rest is the interpreter unloading Qt and torch.
    assert elapsed < 8, elapsed


# ---------------------------------------------------------------------------- d. the default size
def test_texts_fit_at_the_default_size(win, qtbot, tmp_path):
    from PySide6 import QtWidgets

    from mriviewer import RESEARCH_ONLY

    _with_fake_model(win, qtbot, tmp_path)
    win.resize(1500, 950)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == (1500, 950), timeout=5000)
    qtbot.wait(50)
    # The case line and the disclaimer, whole.
    title = win.case_title
    assert title.text() == "Case 00000"
    assert title.fontMetrics().horizontalAdvance(title.text()) <= title.contentsRect().width()
    banner = win.disclaimer
    assert banner.isVisible() and banner.text() == RESEARCH_ONLY
    assert banner.fontMetrics().horizontalAdvance(RESEARCH_ONLY) <= banner.contentsRect().width()
    # Each view's caption names its plane and ends left of the top letter.
    st = win.state
    for plane, view in win.views.items():
        n = st.volume.shape[view.slice_axis]
        assert view.title.text() == f"{plane} {view.slice_index() + 1}/{n}"
        right = view.title.pos().x() + view.title.boundingRect().width()
        assert right < view.letters["top"].pos().x(), plane
    # Every column shows (Patient only with patients: not here), the class names and splits
    # whole (no "unmet…").
    from mriviewer.app.presenters import CASE_COLUMNS

    table, tm = win.case_table, win.browser.table_model
    header = table.horizontalHeader()
    shown = [c for c in range(tm.columnCount()) if not table.isColumnHidden(c)]
    assert [CASE_COLUMNS[c] for c in range(tm.columnCount()) if c not in shown] == ["Patient"]
    widths = [header.sectionSize(c) for c in range(tm.columnCount())]
    assert sum(widths) <= table.viewport().width() and min(widths[c] for c in shown) >= header.minimumSectionSize()
    fm = table.fontMetrics()
    for col in (CASE_COLUMNS.index(n) for n in ("Label", "Prediction", "Split")):
        texts = {str(tm.row_data(r).values()[col]) for r in range(tm.rowCount())}
        assert "unmethylated" in texts or CASE_COLUMNS[col] != "Label"
        for text in texts:
            assert fm.horizontalAdvance(text) + 8 <= widths[col], (col, text, widths[col])
    # The grid box follows the viewer state's grid (the state holds the choice).
    st.set_grid("T2w")
    assert win.grid_combo.currentData() == "T2w"
    qtbot.waitUntil(lambda: not win.workers.busy, timeout=30000)
    assert isinstance(win.prediction.cam_class, QtWidgets.QComboBox)


# ---------------------------------------------------------------------------- e. quick presses of N
def test_ten_quick_presses_of_n_end_showing_the_tenth_case(win, qtbot):
    from PySide6 import QtCore

    qtbot.waitUntil(lambda: not win.workers.busy, timeout=30000)  # the first case and its prefetch
    ids = win.browser.visible_case_ids()
    assert win.model.case_id == ids[0]
    shown: list[str] = []
    win.volume_shown.connect(shown.append)
    win.activateWindow()
    win.case_table.setFocus()
    for _ in range(10):
        qtbot.keyClick(win.case_table, QtCore.Qt.Key.Key_N)
    target = ids[10]
    assert win.model.case_id == target
    qtbot.waitUntil(lambda: win.state.case_id == target and not win.workers.busy, timeout=30000)
    assert shown[-1] == target and len(shown) <= 3, shown  # the cases passed by were (mostly) never shown
    assert win.case_title.text() == f"Case {target}"
    assert win.session.running("load") == []
