"""The Train panel's Results tab: the held-out test figures with their intervals (or the CV
summary, or each modality's AUC), the warnings on them, the confusion matrix and the ROC
curves. The text comes from :mod:`mriviewer.app.train_text`."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mriviewer.app import train_text
from mriviewer.app.training import RunResults

__all__ = ["ResultsView"]

_PALETTE = ("#4da6ff", "#ff9933", "#66cc66", "#cc66cc", "#e6c84d", "#66cccc", "#ff6666", "#999999")
_NO_RESULTS = ("No results yet: train a model. The reported figures are those of the held-out test set, never "
               "seen in training or model selection.")
_RUNNING = "Running… the held-out test results appear here when the run ends."


def _rich_label(text: str = "") -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(QtCore.Qt.TextFormat.RichText)
    label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ResultsView(QtWidgets.QScrollArea):
    """The results of a run (scrolled).

    Attributes:
        results_label: the figures (HTML); results_warnings: the warnings on them.
        confusion_caption, confusion_table: the confusion matrix (rows true, columns predicted).
        roc_plot, roc_legend: the ROC curves.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        inner = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(inner)
        lay.setContentsMargins(4, 4, 4, 4)
        self.results_label = _rich_label(_NO_RESULTS)
        self.results_warnings = _rich_label()
        lay.addWidget(self.results_label)
        lay.addWidget(self.results_warnings)
        self.confusion_caption = QtWidgets.QLabel("Confusion matrix (test cases; rows: true class, columns: predicted)")
        self.confusion_caption.setWordWrap(True)
        self.confusion_caption.setVisible(False)
        self.confusion_table = self._build_table()
        lay.addWidget(self.confusion_caption)
        lay.addWidget(self.confusion_table)
        self.roc_plot = self._build_roc()
        lay.addWidget(self.roc_plot)
        lay.addStretch(1)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setWidget(inner)

    @staticmethod
    def _build_table() -> QtWidgets.QTableWidget:
        t = QtWidgets.QTableWidget(0, 0)
        t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setVisible(False)
        t.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Fixed)
        t.setSizeAdjustPolicy(QtWidgets.QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        t.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return t

    def _build_roc(self) -> pg.PlotWidget:
        plot = pg.PlotWidget(title="ROC (test)")
        plot.setLabel("bottom", "false positive rate")
        plot.setLabel("left", "true positive rate")
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        plot.setMouseEnabled(x=False, y=False)
        plot.setFixedHeight(240)
        plot.showGrid(x=True, y=True, alpha=0.3)
        self.roc_legend = plot.addLegend(offset=(-5, -5), labelTextSize="8pt")
        plot.setVisible(False)
        return plot

    # ------------------------------------------------------------------ showing
    def show_running(self) -> None:
        """No results while a run is under way."""
        self.results_label.setText(_RUNNING)
        self.results_warnings.setText("")
        self._hide_figures()

    def _hide_figures(self) -> None:
        self.roc_plot.setVisible(False)
        self.confusion_table.setVisible(False)
        self.confusion_caption.setVisible(False)

    def show_results(self, results: RunResults, run_warnings: list[str]) -> None:
        """Show ``results`` (the figures, their warnings, the ROC curves and the confusion
        matrix); ``run_warnings`` are all of the run's, those not on the figures are counted."""
        text = train_text.results_text(results.metrics, results.stopped, results.source)
        if text.test:
            self._show_roc(text.test)
            self._show_confusion(text.test)
        elif not results.metrics.get("per_modality"):
            self._hide_figures()
        self.results_label.setText(text.html)
        others = len([w for w in run_warnings if w not in text.warnings])
        self.results_warnings.setText(train_text.warnings_html(text.warnings, others))

    def _show_roc(self, test: dict) -> None:
        plot = self.roc_plot
        plot.clear()
        self.roc_legend.clear()
        plot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), style=QtCore.Qt.PenStyle.DashLine))
        curves = train_text.roc_curves(test)
        for i, (name, fpr, tpr) in enumerate(curves):
            plot.plot(fpr, tpr, pen=pg.mkPen(_PALETTE[i % len(_PALETTE)], width=2), name=name)
        plot.setTitle("ROC (test)" if curves else "ROC (test): undefined, one class only")
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        plot.setVisible(True)

    def _show_confusion(self, test: dict) -> None:
        names, cells = train_text.confusion_cells(test)
        n = len(test.get("confusion_matrix") or [])
        t = self.confusion_table
        t.clear()
        t.setRowCount(n)
        t.setColumnCount(n)
        t.setVerticalHeaderLabels(names)
        t.setHorizontalHeaderLabels([n.replace(" ", "\n") for n in names])  # narrow columns
        for c in cells:
            item = QtWidgets.QTableWidgetItem(str(c.count))
            item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            good = (90, 170, 90) if c.correct else (220, 110, 80)
            item.setBackground(QtGui.QColor(*good, int(40 + 160 * c.share) if c.count else 0))
            item.setToolTip(c.tooltip)
            t.setItem(c.row, c.column, item)
        t.resizeColumnsToContents()
        t.resizeRowsToContents()
        t.horizontalHeader().setMinimumSectionSize(40)
        t.updateGeometry()
        t.setVisible(True)
        self.confusion_caption.setVisible(True)

    def confusion_counts(self) -> list[list[int]]:
        """The confusion matrix shown (rows true, columns predicted)."""
        t = self.confusion_table
        return [[int(t.item(i, j).text()) for j in range(t.columnCount())] for i in range(t.rowCount())]
