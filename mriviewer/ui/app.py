"""Start the GUI."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["run_app", "create_window", "app_icon_path", "EXIT_WAIT_S"]

#: Seconds the process waits, once its window is closed, for a worker still ending (closing
#: the window waits :data:`~mriviewer.ui.main_window.CLOSE_TIMEOUT_S`; a training step or a
#: decode on a loaded machine can take longer). Its results are dropped; the wait keeps it from
#: emitting into Qt objects deleted at exit.
EXIT_WAIT_S = 10.0


def create_window(path: str | None = None, checkpoint: str | None = None):
    """Create the main window; opens ``path`` and ``checkpoint`` if given, otherwise offers the
    built-in demo."""
    from PySide6 import QtWidgets

    from mriviewer.cache.pool import warm_up
    from mriviewer.ui.main_window import MainWindow

    win = MainWindow()
    warm_up()  # the decode workers spawn while the window and the case list come up
    if path:
        # Discovery in the background: the window shows at once, a large cohort shows progress.
        opener = win.open_path_in_background(path)
        if checkpoint:
            opener.finished.connect(lambda _opened: win.load_checkpoint(checkpoint))
    else:
        offer = QtWidgets.QPushButton("Open the built-in demo dataset")
        offer.setObjectName("openDemoButton")
        offer.clicked.connect(lambda: (offer.hide(), win.open_demo()))
        win.dataset_opened.connect(offer.hide)
        win.case_table.parentWidget().layout().insertWidget(1, offer)
    return win


def app_icon_path() -> Path | None:
    """The application icon shipped inside the package (``mriviewer/resources/mriviewer.svg``;
    also inside a PyInstaller bundle), or ``None`` when it is missing."""
    from importlib import resources

    try:
        icon = Path(str(resources.files("mriviewer") / "resources" / "mriviewer.svg"))
    except (ModuleNotFoundError, TypeError):
        return None
    return icon if icon.is_file() else None


def run_app(path: str | None = None, checkpoint: str | None = None) -> int:
    """Run the application until its window closes; returns the exit status."""
    import pyqtgraph as pg
    from PySide6 import QtCore, QtGui, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("mriviewer")
    app.setDesktopFileName("mriviewer")  # resources/mriviewer.desktop (window → launcher icon)
    icon = app_icon_path()
    if icon is not None:
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    pg.setConfigOptions(imageAxisOrder="row-major")
    win = create_window(path, checkpoint)
    win.show()
    _close_on_signals(app, win)
    status = app.exec()
    if not QtCore.QThreadPool.globalInstance().waitForDone(int(EXIT_WAIT_S * 1000)):
        print(f"mriviewer: a worker was still running {EXIT_WAIT_S:.0f} s after quitting", file=sys.stderr)
    return status


def _close_on_signals(app, win) -> None:
    """SIGTERM and Ctrl-C close the window as File ▸ Quit does (a run is stopped, the other
    work cancelled and the workers waited for, settings are saved, the decoding worker processes
    are shut down) instead of killing the process and leaving its workers behind. Python runs signal handlers only when it has control, so a timer
    hands it control a few times a second while Qt's event loop runs."""
    import signal

    from PySide6 import QtCore

    def close(*_):
        win.close()
        app.quit()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(sig, close)
        except ValueError:  # not the main thread (embedded use): leave the defaults
            return
    timer = QtCore.QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)
