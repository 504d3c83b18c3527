"""The lower half of the Train panel, a view of a :class:`~mriviewer.app.training.TrainingRun`:
Train / Stop / "Load this run's model", the epoch's and the run's progress bars with ETAs, the
status line, and the tabs Curves, Results, Log and Warnings."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from mriviewer.app.train_text import WARN_COLOUR, duration
from mriviewer.app.training import RunProgress, RunResults, TrainingRun
from mriviewer.ui.controls.train.curves import TrainingCurves
from mriviewer.ui.controls.train.results import ResultsView

__all__ = ["RunView", "RunLog"]

_CURVES_TAB, _RESULTS_TAB, _LOG_TAB, _WARNINGS_TAB = range(4)


class RunLog(QtWidgets.QPlainTextEdit):
    """The run's log: warnings in colour and bold, following new lines unless the user has
    scrolled up."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        self.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)

    def add_line(self, text: str, level: str = "info") -> None:
        """Append ``text`` (``level`` ``"warning"``: ⚠, coloured)."""
        bar = self.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        fmt = QtGui.QTextCharFormat()
        if level == "warning":
            fmt.setForeground(QtGui.QColor(WARN_COLOUR))
            fmt.setFontWeight(QtGui.QFont.Weight.Bold)
            text = f"⚠ {text}"
        cursor = QtGui.QTextCursor(self.document())
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
        if not self.document().isEmpty():
            cursor.insertBlock(QtGui.QTextBlockFormat(), QtGui.QTextCharFormat())
        cursor.insertText(text, fmt)
        if at_end:
            bar.setValue(bar.maximum())


def _bar(fmt: str, tip: str) -> QtWidgets.QProgressBar:
    bar = QtWidgets.QProgressBar()
    bar.setFormat(fmt)
    bar.setToolTip(tip)
    bar.setMaximumHeight(18)
    bar.setTextVisible(True)
    bar.setValue(0)
    return bar


class RunView(QtWidgets.QWidget):
    """Buttons, progress, status and the run's tabs, observing ``run``.

    Attributes:
        train_button, stop_button, load_run_button: the buttons (the panel connects them).
        progress: the current epoch's (or stage's) bar; overall: the whole run's.
        status: the status line.
        tabs: Curves, Results, Log, Warnings; curves, results, log, warning_list: their widgets.
    """

    def __init__(self, run: TrainingRun, parent=None) -> None:
        super().__init__(parent)
        self.run = run
        self._can_train = False
        self._cannot_train_reason = "Open a labelled dataset first."
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.setSpacing(3)
        lay.addLayout(self._build_buttons())
        self.progress = _bar("epoch: %p%", "The current epoch's batches (or decoding / preparing the cases)")
        self.overall = _bar("run: %p%", "The whole run: every epoch of every fold (and modality)")
        lay.addWidget(self.progress)
        lay.addWidget(self.overall)
        self.status = QtWidgets.QLabel(run.status)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addWidget(self._build_tabs(), 1)
        run.started.connect(self._started)
        run.ended.connect(self._ended)
        run.epoch_added.connect(self._epoch_added)
        run.progress_changed.connect(self._show_progress)
        run.log_added.connect(self.log.add_line)
        run.warning_added.connect(self._warning_added)
        run.status_changed.connect(self._status_changed)
        run.results_changed.connect(self._show_results)
        self.update_train_button()

    def _build_buttons(self) -> QtWidgets.QLayout:
        self.train_button = QtWidgets.QPushButton("Train")
        self.train_button.setObjectName("trainButton")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("End the run after the current batch; the best checkpoint so far is kept")
        self.load_run_button = QtWidgets.QPushButton("Load this run's model")
        self.load_run_button.setVisible(False)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.train_button, self.stop_button, self.load_run_button):
            buttons.addWidget(b)
        return buttons

    def _build_tabs(self) -> QtWidgets.QTabWidget:
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.curves = TrainingCurves()
        self.results = ResultsView()
        self.log = RunLog()
        self.warning_list = QtWidgets.QListWidget()
        self.warning_list.setWordWrap(True)
        self.warning_list.setStyleSheet(f"color: {WARN_COLOUR};")
        for widget, name in ((self.curves, "Curves"), (self.results, "Results"), (self.log, "Log"),
                             (self.warning_list, "Warnings")):
            self.tabs.addTab(widget, name)
        self.warnings_tab = _WARNINGS_TAB
        return self.tabs

    # ------------------------------------------------------------------ train button
    def set_can_train(self, ok: bool, reason: str = "") -> None:
        """Whether a labelled dataset is open; Train is enabled only then (and when no run is
        in progress)."""
        self._can_train = ok
        self._cannot_train_reason = reason or "Open a labelled dataset first."
        self.update_train_button()

    def update_train_button(self) -> None:
        """Enable Train and Stop by the run's state; Train's tooltip says why it is disabled."""
        self.train_button.setEnabled(self._can_train and not self.run.running)
        self.train_button.setToolTip("" if self._can_train else self._cannot_train_reason)
        self.stop_button.setEnabled(self.run.running)

    # ------------------------------------------------------------------ the run's signals
    def _started(self) -> None:
        self.update_train_button()
        self.warning_list.clear()
        self._update_warnings_tab()
        self.curves.clear_curves()
        self.progress.setValue(0)
        self.overall.setValue(0)
        self.overall.setFormat("run: %p%")
        self.tabs.setCurrentIndex(_CURVES_TAB)

    def _ended(self) -> None:
        self.update_train_button()
        self.progress.setValue(self.progress.maximum() if self.run.history else self.progress.value())
        elapsed = self.run.elapsed()
        if elapsed is not None:
            self.overall.setFormat(f"run: %p% · {duration(elapsed)} elapsed")

    def _status_changed(self, text: str) -> None:
        self.status.setText(text)

    def _epoch_added(self, _record) -> None:
        self.curves.show_epochs(self.run.fold_epochs())

    def _show_progress(self, p: RunProgress) -> None:
        self.progress.setMaximum(p.total)
        self.progress.setValue(p.step)
        self.progress.setFormat(p.bar_text)
        self.overall.setMaximum(1000)
        self.overall.setValue(int(round(1000 * p.fraction)))
        self.overall.setFormat(p.overall_text)

    def _warning_added(self, text: str) -> None:
        self.warning_list.addItem(text)
        self._update_warnings_tab()

    def _update_warnings_tab(self) -> None:
        n = len(self.run.warnings)
        self.tabs.setTabText(_WARNINGS_TAB, f"Warnings ({n})" if n else "Warnings")
        self.tabs.tabBar().setTabTextColor(_WARNINGS_TAB, QtGui.QColor(WARN_COLOUR) if n else
                                           self.tabs.palette().color(QtGui.QPalette.ColorRole.WindowText))

    def _show_results(self, results: RunResults | None) -> None:
        if results is None:
            self.results.show_running()
            return
        self.results.show_results(results, self.run.warnings)
        self.tabs.setCurrentIndex(_RESULTS_TAB)
