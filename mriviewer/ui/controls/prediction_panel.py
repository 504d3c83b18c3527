"""The Prediction dock: the selected case's predicted class and probabilities, the class
Grad-CAM explains, the Grad-CAM caption, the loaded model's line and the report buttons. It
shows the texts of :mod:`mriviewer.app.presenters` and binds the class box to
:attr:`AppModel.cam_class <mriviewer.app.predictions.PredictionsMixin.cam_class>`."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from mriviewer.app import presenters

__all__ = ["PredictionPanel"]


class _NarrowScroll(QtWidgets.QScrollArea):
    """A scroll area that does not ask for its content's unwrapped width (long lines wrap)."""

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt naming)
        return QtCore.QSize(380, 220)


class PredictionPanel(_NarrowScroll):
    """Scrolls rather than squeezing word-wrapped lines on top of each other in a short dock.

    Widgets: ``pred_label`` (headline), ``pred_detail``, ``cam_class`` (which class Grad-CAM
    explains, as pytorch-grad-cam's targets: the predicted one, or any other, e.g. to see the
    evidence against the prediction), ``cam_status`` (caption), ``model_label``,
    ``report_button`` and ``batch_button`` (their actions are set by the window).
    """

    def __init__(self, model, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(box)
        lay.setContentsMargins(4, 4, 4, 4)
        self.pred_label = self._label(presenters.NO_MODEL, "font-size: 12pt;")
        self.pred_detail = self._label("")
        self.model_label = self._label("", "color: #555;")
        self.cam_status = self._label("")
        self.cam_class = QtWidgets.QComboBox()
        self.cam_class.setToolTip("The class whose evidence Grad-CAM shows")
        self.cam_class.currentIndexChanged.connect(lambda _: model.set_cam_class(self.cam_class.currentData()))
        self.report_button = QtWidgets.QToolButton()
        self.batch_button = QtWidgets.QToolButton()
        row = QtWidgets.QVBoxLayout()  # stacked: side by side they would widen the dock
        for b in (self.report_button, self.batch_button):
            b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            row.addWidget(b)
        for w in (self.pred_label, self.pred_detail, self.cam_class, self.cam_status, self.model_label):
            lay.addWidget(w)
        lay.addLayout(row)
        lay.addStretch(1)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(box)
        self.setMinimumHeight(200)
        self.fill_classes()
        model.cam_class_changed.connect(self._sync_class)

    @staticmethod
    def _label(text: str, style: str = "") -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        label.setWordWrap(True)
        if style:
            label.setStyleSheet(style)
        return label

    def fill_classes(self) -> None:
        """The class box's entries for the loaded model (disabled with none)."""
        p = self.model.predictor
        self.cam_class.blockSignals(True)
        self.cam_class.clear()
        for text, k in presenters.cam_class_items(p):
            self.cam_class.addItem(text, k)
        k = self.model.cam_class
        self.cam_class.setCurrentIndex(0 if k is None else max(0, self.cam_class.findData(k)))
        self.cam_class.setEnabled(p is not None)
        self.cam_class.blockSignals(False)

    def _sync_class(self) -> None:
        k = self.model.cam_class
        i = 0 if k is None else self.cam_class.findData(k)
        if i >= 0 and i != self.cam_class.currentIndex():
            self.cam_class.blockSignals(True)
            self.cam_class.setCurrentIndex(i)
            self.cam_class.blockSignals(False)

    def show_case(self, case) -> None:
        """The prediction of ``case`` (or why there is none)."""
        head, detail = presenters.prediction_text(self.model, case)
        self.pred_label.setText(head)
        self.pred_detail.setText(detail)
