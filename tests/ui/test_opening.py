"""Opening a folder in the background: the case list fills when discovery ends, a failure is
reported, a cancelled open changes nothing."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui


@pytest.fixture
def win(qtbot):
    from mriviewer.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    yield w
    qtbot.waitUntil(lambda: not w.workers.busy, timeout=60000)


def test_open_in_background_fills_the_case_list(qtbot, win, demo_dir):
    with qtbot.waitSignal(win.volume_shown, timeout=60000):
        opener = win.open_path_in_background(demo_dir)
        assert opener.dialog is not None
    assert win.browser.table_model.rowCount() == 12
    assert win.opener is None


def test_cancelled_open_changes_nothing(qtbot, win, demo_dir, tmp_path):
    from mriviewer.ui.opening import FolderOpener

    ended = []
    op = FolderOpener(win, demo_dir, lambda ds: ended.append(ds), lambda exc: ended.append(exc))
    op.finished.connect(lambda opened: ended.append(opened))
    op.cancel()  # before the first folder is read
    op.start()
    qtbot.waitUntil(lambda: bool(ended), timeout=10000)
    assert ended == [False] and win.model.dataset is None


def test_failed_open_is_reported(qtbot, win, tmp_path):
    with qtbot.waitSignal(win.error_shown, timeout=10000) as sig:
        win.open_path_in_background(tmp_path / "missing")
    assert "no such file or folder" in sig.args[0]
    assert win.model.dataset is None
