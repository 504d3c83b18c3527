"""The live curves of a run: training and validation loss, validation AUC (with the best
epoch's star) and the learning rate, over one shared epoch axis.

The Train dock is short at the default window size (1500 × 950: about 25 px for each plot's
values), so the value axes label only as many ticks as their text fits (:class:`FittingAxis`):
pyqtgraph's own spacing put four overlapping labels on the loss plot's 25 px.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from mriviewer.app.train_text import loss_title
from mriviewer.core.text import finite_or_none

__all__ = ["EpochAxis", "FittingAxis", "TrainingCurves"]

_TICK_PT = 8
_TITLE_PT = 9
#: Labelled ticks stand at least this many text heights apart.
_GAP = 1.15


class EpochAxis(pg.AxisItem):
    """A pyqtgraph axis for epochs: ticks on whole numbers only (pyqtgraph would also mark 1.5,
    2.5, … on a short run)."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph naming)
        """pyqtgraph's tick levels, keeping whole epochs only."""
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        levels = [lv for lv in levels if lv[1]]
        if levels:
            return levels
        lo, hi = math.ceil(minVal), math.floor(maxVal)
        return [(1.0, [float(v) for v in range(lo, hi + 1)])] if hi >= lo else []


def _nice_steps(start: float):
    """1, 2, 5, 10, 20, 50, … times the power of ten at or below ``start``, from ``start`` on."""
    p10 = 10.0 ** math.floor(math.log10(start))
    while True:
        for m in (1.0, 2.0, 5.0):
            if m * p10 >= start * (1 - 1e-9):
                yield m * p10
        p10 *= 10.0


class FittingAxis(pg.AxisItem):
    """A value axis (left) whose tick labels never overlap: major ticks only, spaced so that a
    text line (times :data:`_GAP`) separates two labels, counting only ticks whose label lies
    inside the axis (pyqtgraph hides the others); where not even two fit, one tick at a round
    value (a whole decade on a log axis)."""

    def text_height(self) -> float:
        """The height of a tick label in pixels."""
        font = self.style.get("tickFont") or self.font()
        return QtGui.QFontMetricsF(font).height()

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph naming)
        """pyqtgraph's major spacing, made coarser (1-2-5 steps) until the labels fit ``size``
        pixels; a single tick when not even two fit."""
        levels = super().tickSpacing(minVal, maxVal, size)
        dif = abs(maxVal - minVal)
        if not levels or dif == 0 or not math.isfinite(dif) or size <= 0:
            return levels
        per_px = dif / size
        pad = 0.5 * self.text_height() * per_px  # a label centred nearer the edge is not drawn
        lo, hi = sorted((minVal, maxVal))
        lo, hi = lo + pad, hi - pad
        first = max(levels[0][0], 1.0) if self.logMode else levels[0][0]  # log: whole decades
        for spacing in _nice_steps(first):
            n = math.floor(hi / spacing + 1e-9) - math.ceil(lo / spacing - 1e-9) + 1 if hi > lo else 0
            if n < 1:
                break
            if n == 1 or spacing / per_px >= _GAP * self.text_height():
                return [(spacing, 0)]
        one = _round_inside(lo, hi, whole=self.logMode) if hi > lo else None
        return [(2 * dif, one)] if one is not None else levels[:1]

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph naming)
        """pyqtgraph's tick values (on :meth:`tickSpacing`), without those of any level (a log
        axis' 2, 3, … 9 × 10ᵏ) closer than a label's spacing to a tick kept before."""
        levels = super().tickValues(minVal, maxVal, size)
        dif = abs(maxVal - minVal)
        if dif == 0 or size <= 0:
            return levels
        min_gap = _GAP * self.text_height() * dif / size
        kept: list[float] = []
        out = []
        for spacing, values in levels:
            level = []
            for v in values:
                if all(abs(v - k) >= min_gap for k in kept):
                    level.append(v)
                    kept.append(v)
            out.append((spacing, level))
        return out


def _round_inside(lo: float, hi: float, whole: bool = False) -> float | None:
    """The roundest number in ``[lo, hi]`` (fewest significant digits) nearest the middle; an
    integer when ``whole`` (``None`` when there is none)."""
    if whole:
        v = round((lo + hi) / 2)
        return float(v) if lo <= v <= hi else (math.ceil(lo) if math.ceil(lo) <= hi else None)
    mid = (lo + hi) / 2
    step = 10.0 ** math.ceil(math.log10(hi - lo))
    for _ in range(30):
        v = round(mid / step) * step
        if lo <= v <= hi:
            return v
        step /= 10.0
    return mid


def _set_title(plot: pg.PlotItem, title: str) -> None:
    """Set ``plot``'s title in a row as high as its text (pyqtgraph fixes the row at 30 px,
    which took a third of each plot's height in the dock)."""
    plot.setTitle(title, size=f"{_TITLE_PT}pt")
    font = QtGui.QFont()
    font.setPointSize(_TITLE_PT)
    height = math.ceil(QtGui.QFontMetricsF(font).height()) + 2
    plot.layout.setRowFixedHeight(0, height)
    plot.titleLabel.setMaximumHeight(height)


def _style_value_axis(axis: pg.AxisItem) -> None:
    font = QtGui.QFont()
    font.setPointSize(_TICK_PT)
    axis.setStyle(tickFont=font, maxTickLevel=0)  # major ticks only: no crowded labels
    axis.setWidth(42)


class TrainingCurves(pg.GraphicsLayoutWidget):
    """Loss, validation AUC and learning rate over epochs (one fold at a time).

    Attributes:
        loss_plot, auc_plot, lr_plot: the plots.
        train_curve, val_curve: the losses; auc_curve, best_marker: validation AUC and the
            best epoch; lr_curve: the learning rate (log scale).
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.setMinimumHeight(150)
        self.ci.setSpacing(2)
        # One shared epoch axis: whole epochs only, its numbers under the last plot alone, and the
        # loss legend in the title, so three plots stay legible in a short dock.
        self.loss_plot = self._plot(0, loss_title(""))
        self.train_curve = self._curve(self.loss_plot, "#4da6ff", name="train")
        self.val_curve = self._curve(self.loss_plot, "#ff9933", name="validation")
        self.auc_plot = self._plot(1, "Validation AUC")
        self.auc_plot.setYRange(0, 1)
        self.auc_plot.addItem(pg.InfiniteLine(0.5, angle=0, pen=pg.mkPen((150, 150, 150),
                                                                         style=QtCore.Qt.PenStyle.DashLine)))
        self.auc_curve = self._curve(self.auc_plot, "#66cc66")
        self.best_marker = self.auc_plot.plot([], [], pen=None, symbol="star", symbolSize=12, symbolBrush="#ffd11a")
        self.lr_plot = self._plot(2, "Learning rate")
        self.lr_plot.setLogMode(y=True)
        self.lr_plot.setYRange(-5, -2)  # log10 units until the first epoch
        self.lr_plot.setLabel("bottom", "epoch")
        self.lr_curve = self._curve(self.lr_plot, "#cc66cc")
        for p in (self.loss_plot, self.auc_plot):
            p.getAxis("bottom").setStyle(showValues=False)
            p.getAxis("bottom").setHeight(4)
        self.auc_plot.setXLink(self.loss_plot)
        self.lr_plot.setXLink(self.loss_plot)

    def _plot(self, row: int, title: str) -> pg.PlotItem:
        plot = self.addPlot(row=row, col=0, axisItems={"bottom": EpochAxis("bottom"), "left": FittingAxis("left")})
        _set_title(plot, title)
        plot.showGrid(x=True, y=True, alpha=0.3)
        _style_value_axis(plot.getAxis("left"))
        return plot

    @staticmethod
    def _curve(plot: pg.PlotItem, colour: str, name: str | None = None):
        return plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4, name=name)

    def clear_curves(self) -> None:
        """Empty every curve (a run starts)."""
        for c in (self.train_curve, self.val_curve, self.auc_curve, self.best_marker, self.lr_curve):
            c.setData([], [])

    def show_epochs(self, run: list) -> None:
        """Draw the epochs ``run`` (:class:`~mriviewer.ml.events.EpochRecord`\\ s of one fold)."""
        if not run:
            self.clear_curves()
            return
        ep = [h.epoch for h in run]
        self.train_curve.setData(ep, [_nan(h.train_loss) for h in run])
        self.val_curve.setData(ep, [_nan(h.val_loss) for h in run])
        pts = [(h.epoch, h.val_auc) for h in run if finite_or_none(h.val_auc) is not None]
        self.auc_curve.setData([p[0] for p in pts], [p[1] for p in pts])
        best = [(h.epoch, h.val_auc) for h in run if h.is_best and finite_or_none(h.val_auc) is not None]
        self.best_marker.setData([b[0] for b in best[-1:]], [b[1] for b in best[-1:]])
        lrs = [(h.epoch, h.lr) for h in run if (finite_or_none(h.lr) or 0) > 0]
        self.lr_curve.setData([p[0] for p in lrs], [p[1] for p in lrs])
        if lrs:  # half a decade above and below: one tick per decade, none crowding a constant rate
            logs = [math.log10(p[1]) for p in lrs]
            self.lr_plot.setYRange(min(logs) - 0.5, max(logs) + 0.5, padding=0)
        _set_title(self.loss_plot, loss_title(run[-1].fold))


def _nan(v) -> float:
    """``v`` as a float, NaN (a gap in the curve) when it is not a finite number."""
    f = finite_or_none(v)
    return math.nan if f is None else f
