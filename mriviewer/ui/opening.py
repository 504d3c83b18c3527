"""Opening a folder in the background: discovery runs in a worker thread while a progress dialog
(shown after half a second) counts the folders read and offers Cancel; the window stays
responsive and a cancelled open changes nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from mriviewer.core.errors import Cancelled

__all__ = ["FolderOpener"]


class FolderOpener(QtCore.QObject):
    """Discover ``path`` (:func:`~mriviewer.data.discover.discover`) in a thread; on success
    ``on_done(dataset)`` runs on the GUI thread, on failure ``on_error(exc)``; a cancelled open
    calls neither. ``finished(opened)`` is emitted last."""

    finished = QtCore.Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget, path: str | Path, on_done, on_error) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self._on_done, self._on_error = on_done, on_error
        self._folders, self._folder = 0, self.path
        self._cancelled = False
        self._result = None
        self._thread = threading.Thread(target=self._run, name="mriviewer-discover", daemon=True)
        self.dialog = QtWidgets.QProgressDialog(f"Reading {self.path}…", "Cancel", 0, 0, parent)
        self.dialog.setWindowTitle("Opening")
        self.dialog.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(500)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self.cancel)
        self._timer = QtCore.QTimer(self, interval=100)
        self._timer.timeout.connect(self._poll)

    def start(self) -> None:
        """Start discovering (returns at once)."""
        self._thread.start()
        self._timer.start()

    def cancel(self) -> None:
        """Stop at the next folder; nothing is opened."""
        self._cancelled = True

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout_s: float) -> bool:
        """Wait for the thread (e.g. when the window closes); True when it has ended."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        from mriviewer.data.discover import discover

        try:
            self._result = discover(self.path, progress=self._progress)
        except BaseException as exc:  # noqa: BLE001 — handed to the GUI thread, reported there
            self._result = exc

    def _progress(self, folders: int, folder: Path) -> None:
        self._folders, self._folder = folders, folder
        if self._cancelled:
            raise Cancelled

    def _poll(self) -> None:
        if self._thread.is_alive():
            self.dialog.setLabelText(f"Reading {self.path}\n{self._folders} folder(s) read: {self._folder.name}")
            return
        self._timer.stop()
        result, opened, cancelled = self._result, False, self._cancelled
        self.dialog.canceled.disconnect(self.cancel)  # closing a progress dialog emits canceled
        self.dialog.close()
        if isinstance(result, Cancelled) or cancelled:
            pass
        elif isinstance(result, BaseException):
            self._on_error(result)
        else:
            self._on_done(result)
            opened = True
        self.finished.emit(opened)
        self.deleteLater()
