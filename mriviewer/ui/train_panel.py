"""The Train panel: configuration widgets, Train/Stop, progress, live curves and the log.

It turns its widgets into a :class:`~mriviewer.ml.config.TrainConfig` and displays engine
events; running the engine is the main window's job.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from ..ml.config import MODEL_NAMES, TrainConfig
from ..ml.engine import EpochEvent, LogEvent, ProgressEvent

__all__ = ["TrainPanel"]


class TrainPanel(QtWidgets.QWidget):
    """Widgets for one training run. Signals: ``train_requested``, ``stop_requested``."""

    train_requested = QtCore.Signal()
    stop_requested = QtCore.Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        form = QtWidgets.QFormLayout()
        self.model = QtWidgets.QComboBox()
        self.model.addItems(MODEL_NAMES)
        self.model.setToolTip("resnet18-2d: ResNet18 on axial slices; r3d-18: video R3D-18 on the slice stack")
        self.model.currentTextChanged.connect(self._model_changed)
        self.modality_box = QtWidgets.QWidget()
        self.modality_layout = QtWidgets.QHBoxLayout(self.modality_box)
        self.modality_layout.setContentsMargins(0, 0, 0, 0)
        self.modality_checks: dict[str, QtWidgets.QCheckBox] = {}
        self.epochs = QtWidgets.QSpinBox(minimum=1, maximum=1000, value=5)
        self.lr = QtWidgets.QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=0.5, singleStep=1e-4, value=1e-3)
        self.batch = QtWidgets.QSpinBox(minimum=1, maximum=512, value=16)
        self.image_size = QtWidgets.QSpinBox(minimum=16, maximum=512, singleStep=16, value=128)
        self.depth = QtWidgets.QSpinBox(minimum=4, maximum=256, value=32)
        self.device = QtWidgets.QComboBox()
        self.device.addItems(["auto", "cuda", "cpu"])
        self.pretrained = QtWidgets.QLineEdit("auto")
        self.pretrained.setToolTip("auto: torchvision weights from the torch hub cache if present; none; or a file")
        browse = QtWidgets.QPushButton("…")
        browse.setFixedWidth(28)
        browse.clicked.connect(self._browse_weights)
        pre_row = QtWidgets.QHBoxLayout()
        pre_row.addWidget(self.pretrained)
        pre_row.addWidget(browse)
        form.addRow("Model", self.model)
        form.addRow("Modalities", self.modality_box)
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.lr)
        form.addRow("Batch size", self.batch)
        form.addRow("Image size", self.image_size)
        form.addRow("Depth (3D)", self.depth)
        form.addRow("Device", self.device)
        form.addRow("Pretrained", pre_row)

        self.train_button = QtWidgets.QPushButton("Train")
        self.train_button.setObjectName("trainButton")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.train_button.clicked.connect(self.train_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.stop_button)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setFormat("%p%")
        self.status = QtWidgets.QLabel("Idle")
        self.status.setWordWrap(True)

        pg.setConfigOptions(antialias=True)
        self.loss_plot = pg.PlotWidget(title="Loss")
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_plot.addLegend(offset=(-5, 5))
        self.train_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#4da6ff", width=2), symbol="o", symbolSize=5, name="train")
        self.val_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#ff9933", width=2), symbol="o", symbolSize=5, name="validation")
        self.auc_plot = pg.PlotWidget(title="Validation AUC")
        self.auc_plot.setLabel("bottom", "epoch")
        self.auc_plot.setYRange(0, 1)
        self.auc_plot.addItem(pg.InfiniteLine(0.5, angle=0, pen=pg.mkPen((150, 150, 150), style=QtCore.Qt.PenStyle.DashLine)))
        self.auc_curve = self.auc_plot.plot([], [], pen=pg.mkPen("#66cc66", width=2), symbol="o", symbolSize=5)
        policy = QtWidgets.QSizePolicy.Policy
        for p in (self.loss_plot, self.auc_plot):
            p.setMinimumHeight(150)
            p.setSizePolicy(policy.Expanding, policy.Ignored)  # share the dock's height
            p.showGrid(x=True, y=True, alpha=0.3)
        self.log = QtWidgets.QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMinimumHeight(70)
        self.log.setSizePolicy(policy.Expanding, policy.Ignored)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.loss_plot, 3)
        layout.addWidget(self.auc_plot, 3)
        layout.addWidget(self.log, 2)
        self.history: list[dict] = []
        self._model_changed(self.model.currentText())

    # ------------------------------------------------------------------ config
    def set_modalities(self, modalities: list[str]) -> None:
        """Offer the dataset's modalities as input channels (the first checked)."""
        for cb in self.modality_checks.values():
            cb.deleteLater()
        self.modality_checks = {}
        for n, m in enumerate(modalities):
            cb = QtWidgets.QCheckBox(m)
            cb.setChecked(n == 0)
            self.modality_layout.addWidget(cb)
            self.modality_checks[m] = cb

    def apply_settings(self, train: dict) -> None:
        """Start from a dataset's suggested settings (``mriviewer.json``'s ``"train"``)."""
        if train.get("model") in MODEL_NAMES:
            self.model.setCurrentText(train["model"])
        mods = train.get("modalities")
        if mods and any(m in self.modality_checks for m in mods):
            for m, cb in self.modality_checks.items():
                cb.setChecked(m in mods)
        for key, widget in (("epochs", self.epochs), ("batch_size", self.batch),
                            ("image_size", self.image_size), ("depth", self.depth)):
            if isinstance(train.get(key), int):
                widget.setValue(train[key])
        if isinstance(train.get("lr"), (int, float)):
            self.lr.setValue(float(train["lr"]))

    def _model_changed(self, name: str) -> None:
        is3d = name == "r3d-18"
        self.depth.setEnabled(is3d)
        if is3d and self.batch.value() > 4:
            self.batch.setValue(2)
        elif not is3d and self.batch.value() < 8:
            self.batch.setValue(16)

    def _browse_weights(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Pretrained weights", "", "Weights (*.pt *.pth)")
        if path:
            self.pretrained.setText(path)

    def config(self) -> TrainConfig:
        """The configuration the widgets describe (validated).

        Raises:
            ConfigError: invalid values (e.g. no modality checked).
        """
        from ..errors import ConfigError

        mods = [m for m, cb in self.modality_checks.items() if cb.isChecked()]
        if not mods:
            raise ConfigError("check at least one modality to train on")
        return TrainConfig(
            model=self.model.currentText(), modalities=mods, epochs=self.epochs.value(),
            lr=self.lr.value(), batch_size=self.batch.value(), device=self.device.currentText(),
            image_size=self.image_size.value(), depth=self.depth.value(),
            pretrained=self.pretrained.text().strip() or "auto",
        ).validate()

    # ------------------------------------------------------------------ run display
    def set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        if running:
            self.history = []
            for c in (self.train_curve, self.val_curve, self.auc_curve):
                c.setData([], [])
            self.progress.setValue(0)

    def append_log(self, text: str) -> None:
        self.log.appendPlainText(text)

    def show_event(self, event) -> None:
        """Display one engine event."""
        if isinstance(event, LogEvent):
            self.append_log(event.message)
        elif isinstance(event, ProgressEvent):
            total = max(event.total, 1)
            self.progress.setMaximum(total)
            self.progress.setValue(event.step)
            if event.stage == "decode":
                self.status.setText(f"Decoding series {event.step}/{total} (parallel)")
            elif event.stage == "prepare":
                self.status.setText(f"Preparing cases {event.step}/{total}")
            else:
                loss = f", loss {event.loss:.4f}" if event.loss is not None else ""
                self.status.setText(f"Epoch {event.epoch}: batch {event.step}/{total}{loss}")
        elif isinstance(event, EpochEvent):
            r = event.record
            self.history.append(r)
            ep = [h["epoch"] for h in self.history]
            self.train_curve.setData(ep, [h["train_loss"] for h in self.history])
            self.val_curve.setData(ep, [h["val_loss"] for h in self.history])
            pts = [(h["epoch"], h["val_auc"]) for h in self.history if not math.isnan(h["val_auc"])]
            self.auc_curve.setData([p[0] for p in pts], [p[1] for p in pts])
            auc = "n/a" if math.isnan(r["val_auc"]) else f"{r['val_auc']:.3f}"
            self.append_log(f"epoch {r['epoch']}: train loss {r['train_loss']:.4f}, val loss {r['val_loss']:.4f}, "
                            f"val AUC {auc}{' (best)' if r['is_best'] else ''}, {r['seconds']:.1f}s")
