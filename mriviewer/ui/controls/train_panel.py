"""The Train panel: preset picker, an editor for every hyperparameter, Train/Stop, progress with
ETA, live curves, the log with its warnings, and the held-out test results of the last run.

The editors are generated from the :class:`~mriviewer.ml.config.TrainConfig` fields (combo boxes
for :data:`~mriviewer.ml.config.CHOICES`, spin boxes within
:data:`~mriviewer.ml.config.RANGES`, check boxes for flags, JSON text for lists and dicts), so a
new field gets an editor without touching this file. :meth:`TrainPanel.config` starts from the
chosen preset (or the defaults) and applies what the editors hold with
:meth:`~mriviewer.ml.config.TrainConfig.with_overrides`, so the run's ``config.json`` records the
preset, its version and every edited key. Running the engine is the main window's job.
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mriviewer.core.errors import ConfigError
from mriviewer.ml.config import CHOICES, MODEL_NAMES, RANGES, TrainConfig, is_3d_model
from mriviewer.ml.events import EpochEvent, EpochRecord, FoldEvent, LogEvent, ProgressEvent
from mriviewer.ml.presets import Preset, list_presets

__all__ = ["TrainPanel", "GROUPS", "device_description"]

#: The editor groups (tabs of the settings), in order; each lists TrainConfig keys.
#: ``model`` and ``modalities`` sit above the groups; the identity keys (``preset``,
#: ``preset_version``, ``overrides``) are not edited. A field listed nowhere lands in "Runtime".
GROUPS: dict[str, tuple[str, ...]] = {
    "Model": ("pretrained", "stem", "head", "dropout", "modality_fallback"),
    "Input": ("image_size", "depth", "depth_mode", "spacing_mm", "slices_per_case", "slice_range",
              "intensity", "normalise", "color", "per_modality"),
    "Augmentation": ("augment",),
    "Optimisation": ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
                     "scheduler", "step_size", "gamma", "plateau_patience", "loss", "monitor",
                     "early_stopping", "freeze", "finetune_epochs", "finetune_lr",
                     "finetune_batch_size", "finetune_freeze"),
    "Evaluation": ("split", "folds", "seed"),
    "Runtime": ("device", "amp", "num_workers", "num_threads"),
}
#: Tab labels short enough for six tabs in the dock's width (the tooltip has the full name).
_SHORT_GROUP = {"Augmentation": "Augment", "Optimisation": "Optimise", "Evaluation": "Evaluate"}
_TOP = ("model", "modalities")
_IDENTITY = ("preset", "preset_version", "overrides")
#: Float keys whose arrow keys step by a decade-relative amount (1e-4 → 2e-4 → … → 1e-3).
_LOG_STEP = {"lr", "finetune_lr", "weight_decay"}
_LINEAR_STEP = {"dropout": 0.05, "momentum": 0.01, "gamma": 0.01, "spacing_mm": 0.5}
_INT_STEP = {"image_size": 16}
_NO_PRESET = "(none)"
_WARN_COLOUR = "#c25e00"
_INT_MAX = 2**31 - 1


# ---------------------------------------------------------------------------- field editors
def _field_help() -> dict[str, str]:
    """``{key: description}`` read from the TrainConfig docstring (``key: text`` entries and
    their indented continuation lines)."""
    out: dict[str, str] = {}
    current: list[str] = []
    for line in (TrainConfig.__doc__ or "").splitlines():
        m = re.match(r"^ {8}([a-z_]+(?:, [a-z_]+)*): (.+)$", line)
        if m:
            current = m.group(1).split(", ")
            for key in current:
                out[key] = m.group(2).strip()
        elif current and re.match(r"^ {12,}\S", line):
            for key in current:
                out[key] += " " + line.strip()
        else:
            current = []
    return out


class _FloatSpin(QtWidgets.QDoubleSpinBox):
    """A float spin box that shows ``1e-05`` rather than ``0.00001`` and accepts scientific
    notation; learning rates step within their decade (1e-4 → 2e-4, 1e-3 → 9e-4)."""

    def __init__(self, lo: float, hi: float, step: float, log_step: bool) -> None:
        super().__init__()
        self.setDecimals(12)
        self.setRange(lo, hi)
        self.setSingleStep(step)
        self._log = log_step
        self._first = step

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.10g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip()
        state = QtGui.QValidator.State
        try:
            v = float(t)
        except ValueError:
            ok = re.fullmatch(r"[0-9.eE+-]*", t) is not None
            return (state.Intermediate if ok else state.Invalid), text, pos
        inside = self.minimum() <= v <= self.maximum() and math.isfinite(v)
        return (state.Acceptable if inside else state.Intermediate), text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        if not self._log:
            super().stepBy(steps)
            return
        v = self.value()
        for _ in range(abs(steps)):
            if steps > 0:
                v += 10 ** math.floor(math.log10(v)) if v > 0 else self._first
            elif v > 0:
                v -= 10 ** math.floor(math.log10(v * (1 - 1e-9)))
        self.setValue(float(f"{v:.6g}"))


class _Field:
    """One TrainConfig key's editor: ``widget`` (what goes in the form), ``get()`` → the value
    (raises ConfigError for unreadable JSON), ``set(value)`` (raises ValueError for a value the
    editor cannot hold), ``changed`` (a signal-like callable registration)."""

    def __init__(self, key: str, default, help_text: str) -> None:
        self.key = key
        self.kind = type(default)
        self.editor: QtWidgets.QWidget
        self.widget: QtWidgets.QWidget
        if key in CHOICES:
            box = QtWidgets.QComboBox()
            box.addItems(CHOICES[key])
            self.editor, self._signal = box, box.currentTextChanged
        elif key == "device":
            box = QtWidgets.QComboBox()
            box.setEditable(True)
            box.addItems(["auto", "cpu", "cuda"])
            self.editor, self._signal = box, box.currentTextChanged
        elif self.kind is bool:
            box = QtWidgets.QCheckBox()
            self.editor, self._signal = box, box.toggled
        elif self.kind is int:
            lo, hi = RANGES.get(key, (0, _INT_MAX))
            box = QtWidgets.QSpinBox()
            box.setRange(int(lo), int(min(hi, _INT_MAX)))
            box.setSingleStep(_INT_STEP.get(key, 1))
            self.editor, self._signal = box, box.valueChanged
        elif self.kind is float:
            lo, hi = RANGES.get(key, (-1e12, 1e12))
            box = _FloatSpin(lo, hi, _LINEAR_STEP.get(key, max(lo, 1e-5)), key in _LOG_STEP)
            self.editor, self._signal = box, box.valueChanged
        else:  # str, list, dict: text (lists and dicts as JSON)
            box = QtWidgets.QLineEdit()
            if self.kind in (list, dict):
                box.setPlaceholderText("JSON, e.g. " + json.dumps(default if default else
                                                                  ([] if self.kind is list else {})))
            self.editor, self._signal = box, box.textChanged
        for w in (self.editor,):
            if isinstance(w, (QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox)):
                w.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)  # no wheel edits while scrolling
                w.installEventFilter(_WHEEL_GUARD)
        tip = [f"<b>{key}</b> ({self.kind.__name__})"]
        if help_text:
            tip.append(html.escape(help_text))
        if key in CHOICES:
            tip.append("Choices: " + ", ".join(CHOICES[key]))
        if key in RANGES:
            lo, hi = RANGES[key]
            tip.append(f"Range: {lo:g} … {hi:g}")
        tip.append(f"Command line: <tt>--set {key}=…</tt>")
        self.editor.setToolTip("<br>".join(tip))
        self.widget = self.editor
        self.set(default)

    def connect(self, slot: Callable) -> None:
        self._signal.connect(lambda *_: slot(self.key))

    def get(self):
        w = self.editor
        if isinstance(w, QtWidgets.QComboBox):
            return w.currentText().strip()
        if isinstance(w, QtWidgets.QCheckBox):
            return w.isChecked()
        if isinstance(w, (QtWidgets.QSpinBox, QtWidgets.QDoubleSpinBox)):
            return w.value()
        text = w.text().strip()
        if self.kind is str:
            return text
        try:
            return json.loads(text)
        except ValueError as exc:
            example = "[0.7, 0.15, 0.15]" if self.key == "split" else json.dumps(
                [] if self.kind is list else {})
            raise ConfigError(f"{self.key}: not valid JSON ({getattr(exc, 'msg', exc)}): {text!r}; "
                              f"write e.g. {example}") from None

    def set(self, value) -> None:
        w = self.editor
        if isinstance(w, QtWidgets.QComboBox):
            if not isinstance(value, str) or (not w.isEditable() and w.findText(value) < 0):
                raise ValueError(f"{self.key}: unknown value {value!r}")
            w.setCurrentText(value)
        elif isinstance(w, QtWidgets.QCheckBox):
            if not isinstance(value, bool):
                raise ValueError(f"{self.key}: expected true or false, got {value!r}")
            w.setChecked(value)
        elif isinstance(w, (QtWidgets.QSpinBox, QtWidgets.QDoubleSpinBox)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.key}: expected a number, got {value!r}")
            if isinstance(w, QtWidgets.QSpinBox) and not float(value).is_integer():
                raise ValueError(f"{self.key}: expected a whole number, got {value!r}")
            if not w.minimum() <= value <= w.maximum():
                raise ValueError(f"{self.key}: {value!r} is outside {w.minimum():g} … {w.maximum():g}")
            w.setValue(int(value) if isinstance(w, QtWidgets.QSpinBox) else float(value))
        elif self.kind is str:
            if not isinstance(value, str):
                raise ValueError(f"{self.key}: expected text, got {value!r}")
            w.setText(value)
        else:
            w.setText(json.dumps(value))
        self.set_invalid(False)

    def set_invalid(self, bad: bool) -> None:
        self.editor.setStyleSheet("border: 1px solid #d00;" if bad else "")


class _WheelGuard(QtCore.QObject):
    """Wheel events on unfocused spin/combo boxes scroll their settings page instead of changing
    the value under the pointer."""

    def eventFilter(self, obj, event):  # noqa: N802
        if event.type() == QtCore.QEvent.Type.Wheel and not obj.hasFocus():
            area = obj.parentWidget()
            while area is not None and not isinstance(area, QtWidgets.QAbstractScrollArea):
                area = area.parentWidget()
            if area is not None:  # scroll the page instead
                QtWidgets.QApplication.sendEvent(area.verticalScrollBar(), event)
            return True
        return False


_WHEEL_GUARD = None


# ---------------------------------------------------------------------------- small helpers
def device_description(device: str = "auto", threads: int = 0) -> str:
    """What ``device`` resolves to, in words: ``"CPU (8 threads)"`` or
    ``"CUDA 0: NVIDIA H100 (74.2 of 79.1 GiB free)"``; ``threads`` > 0 overrides torch's count."""
    import torch

    cuda = torch.cuda.is_available()
    if device.startswith("cuda") and not cuda:
        return f"{device}: no CUDA GPU available (training would fail; use auto or cpu)"
    if device == "cpu" or not cuda:
        return f"CPU ({threads or torch.get_num_threads()} threads)"
    index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
    name = torch.cuda.get_device_name(index)
    try:
        free, total = torch.cuda.mem_get_info(index)
        mem = f" ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free)"
    except RuntimeError:
        mem = ""
    return f"CUDA {index}: {name}{mem}"


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def _ci(ci) -> str:
    if not ci or len(ci) != 2 or any(c is None or not math.isfinite(c) for c in ci):
        return "CI n/a"
    return f"{ci[0]:.3f}–{ci[1]:.3f}"


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


_PALETTE = ("#4da6ff", "#ff9933", "#66cc66", "#cc66cc", "#e6c84d", "#66cccc", "#ff6666", "#999999")


# ---------------------------------------------------------------------------- the panel
def _loss_title(fold: str) -> str:
    """The loss plot's title with its legend: ``Loss (fold 2) ━ train ━ validation``."""
    return (f"Loss{html.escape(fold)} <span style='color:#4da6ff'>━ train</span> "
            "<span style='color:#ff9933'>━ validation</span>")


class EpochAxis(pg.AxisItem):
    """A pyqtgraph axis for epochs: ticks on whole numbers only (pyqtgraph would also mark 1.5,
    2.5, … on a short run)."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph naming)
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        levels = [lv for lv in levels if lv[1]]
        if levels:
            return levels
        lo, hi = math.ceil(minVal), math.floor(maxVal)
        return [(1.0, [float(v) for v in range(lo, hi + 1)])] if hi >= lo else []


class TrainPanel(QtWidgets.QWidget):
    """Widgets for one training run.

    Signals: ``train_requested``, ``stop_requested``, ``load_run_requested(str)`` (the
    checkpoint of a stopped run the user asked to load).
    """

    train_requested = QtCore.Signal()
    stop_requested = QtCore.Signal()
    load_run_requested = QtCore.Signal(str)

    def __init__(self, parent=None) -> None:
        global _WHEEL_GUARD
        super().__init__(parent)
        if _WHEEL_GUARD is None:
            _WHEEL_GUARD = _WheelGuard(QtWidgets.QApplication.instance())
        self.presets: list[Preset] = list_presets()
        self.history: list[EpochRecord] = []
        self.warnings: list[str] = []
        self.running = False
        self._can_train = False
        self._cannot_train_reason = "Open a labelled dataset first."
        self._loading = False
        self._run_config: TrainConfig | None = None
        self._pending_checkpoint: str | None = None
        self._wanted_modalities: list[str] | None = None
        self._clock: dict = {}

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(self._build_header())
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._build_settings())
        splitter.addWidget(self._build_run_area())
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 5)
        self.splitter = splitter
        layout.addWidget(splitter, 1)

        self._model_changed()
        self._relevance()
        self._refresh_overrides()
        self._update_train_button()
        self.refresh_device()

    # ------------------------------------------------------------------ building
    def _build_header(self) -> QtWidgets.QLayout:
        form = QtWidgets.QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(3)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.preset_combo = QtWidgets.QComboBox()
        self.preset_combo.addItem(_NO_PRESET, "")
        self.preset_combo.setItemData(0, "No preset: the values below are recorded as overrides of the "
                                         "defaults.", QtCore.Qt.ItemDataRole.ToolTipRole)
        for p in self.presets:
            self.preset_combo.addItem(f"{p.name} — {p.task}", p.name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, self._preset_tooltip(p),
                                          QtCore.Qt.ItemDataRole.ToolTipRole)
        self._fit_combo(self.preset_combo)
        self.preset_combo.currentIndexChanged.connect(self._preset_chosen)
        self.preset_info = QtWidgets.QLabel("No preset: defaults, plus your edits.")
        self.preset_info.setWordWrap(True)
        self.preset_info.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.preset_info.setStyleSheet("color: #444; font-size: 8pt;")
        self.preset_info.linkActivated.connect(self._toggle_notes)
        self.preset_notes = QtWidgets.QLabel("")
        self.preset_notes.setWordWrap(True)
        self.preset_notes.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.preset_notes.setStyleSheet("font-size: 8pt;")
        self.preset_notes.setVisible(False)

        self.model = QtWidgets.QComboBox()
        self.model.addItems(MODEL_NAMES)
        self.model.setToolTip("2D models (resnet18-2d, efficientnet-b0-2d) take axial slices; 3D models "
                              "(cnn3d, r3d-18, mc3-18, r2plus1d-18) take the slice stack.")
        self._fit_combo(self.model)
        self.model.currentTextChanged.connect(lambda _: self._edited("model"))
        self.from_checkpoint_button = QtWidgets.QPushButton("From checkpoint…")
        self.from_checkpoint_button.setToolTip(
            "Continue training a saved model: its settings and its weights as the starting point "
            "(the optimiser and schedule start again; the data are split anew)")
        self.from_checkpoint_button.clicked.connect(self._browse_checkpoint)
        self.modality_box = QtWidgets.QWidget()
        self.modality_layout = QtWidgets.QHBoxLayout(self.modality_box)
        self.modality_layout.setContentsMargins(0, 0, 0, 0)
        self.modality_layout.setSpacing(6)
        self.modality_hint = QtWidgets.QLabel("(open a dataset)")
        self.modality_hint.setStyleSheet("color: #777;")
        self.modality_layout.addWidget(self.modality_hint)
        self.modality_layout.addStretch(1)
        self.modality_checks: dict[str, QtWidgets.QCheckBox] = {}
        self.device_label = QtWidgets.QLabel("…")
        self.device_label.setWordWrap(True)
        self.device_label.setToolTip("What the Runtime ▸ device setting resolves to on this computer")

        form.addRow("Preset", self.preset_combo)
        form.addRow(self.preset_info)
        form.addRow(self.preset_notes)
        model_row = QtWidgets.QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.from_checkpoint_button)
        form.addRow("Model", model_row)
        form.addRow("Modalities", self.modality_box)
        form.addRow("Device", self.device_label)
        self._top_labels = {"model": form.labelForField(model_row),
                            "modalities": form.labelForField(self.modality_box)}
        return form

    @staticmethod
    def _fit_combo(box: QtWidgets.QComboBox) -> None:
        """A combo that does not widen the dock to its longest item; its popup does."""
        box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        box.setMinimumContentsLength(12)
        box.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        view = box.view()
        view.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        view.setMinimumWidth(min(view.sizeHintForColumn(0) + 30, 900))

    def _build_settings(self) -> QtWidgets.QWidget:
        defaults = TrainConfig().to_dict()
        helps = _field_help()
        self.fields: dict[str, _Field] = {}
        self.field_labels: dict[str, QtWidgets.QLabel] = {}
        self.field_group: dict[str, int] = {}
        listed = {k for keys in GROUPS.values() for k in keys}
        groups = {name: list(keys) for name, keys in GROUPS.items()}
        for f in fields(TrainConfig):
            if f.name not in listed and f.name not in _TOP and f.name not in _IDENTITY:
                groups["Runtime"].append(f.name)  # a field added later still gets an editor
        # A tab per group: one row of tabs costs far less height than a tool box's six headers.
        self.settings_tabs = QtWidgets.QTabWidget()
        self.settings_tabs.setDocumentMode(True)
        self.settings_tabs.setUsesScrollButtons(True)
        self.settings_tabs.tabBar().setExpanding(False)
        self.settings_tabs.setStyleSheet("QTabBar::tab { padding: 3px 4px; }")
        self.settings_tabs.setMinimumHeight(170)
        for gi, (name, keys) in enumerate(groups.items()):
            page = QtWidgets.QWidget()
            form = QtWidgets.QFormLayout(page)
            form.setContentsMargins(4, 2, 4, 2)
            form.setVerticalSpacing(2)
            form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for key in keys:
                fld = _Field(key, defaults[key], helps.get(key, ""))
                fld.connect(self._edited)
                self.fields[key] = fld
                self.field_group[key] = gi
                label = QtWidgets.QLabel(key)
                label.setToolTip(fld.editor.toolTip())
                self.field_labels[key] = label
                widget = fld.widget
                if key == "pretrained":
                    widget = QtWidgets.QWidget()
                    row = QtWidgets.QHBoxLayout(widget)
                    row.setContentsMargins(0, 0, 0, 0)
                    browse = QtWidgets.QPushButton("…")
                    browse.setFixedWidth(28)
                    browse.setToolTip("Choose a weights file (.pt/.pth)")
                    browse.clicked.connect(self._browse_weights)
                    row.addWidget(fld.editor)
                    row.addWidget(browse)
                form.addRow(label, widget)
            if name == "Augmentation":
                hint = QtWidgets.QLabel(
                    "JSON object with any of: <tt>flip_lr</tt> (probability), <tt>rotate_deg</tt>, "
                    "<tt>scale</tt> [low, high], <tt>shift</tt> (fraction), <tt>brightness</tt> "
                    "[low, high]. <tt>{}</tt> = none.")
                hint.setWordWrap(True)
                hint.setStyleSheet("font-size: 8pt;")
                form.addRow(hint)
            scroll = QtWidgets.QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
            scroll.setWidget(page)
            self.settings_tabs.addTab(scroll, _SHORT_GROUP.get(name, name))
            self.settings_tabs.setTabToolTip(gi, f"{name}: {', '.join(keys)}")
        self.settings_tabs.setCurrentIndex(list(groups).index("Optimisation"))
        self.fields["scheduler"].connect(lambda _: self._relevance())
        self.fields["optimizer"].connect(lambda _: self._relevance())
        self.fields["finetune_epochs"].connect(lambda _: self._relevance())
        self.fields["freeze"].connect(lambda _: self._relevance())
        self.fields["device"].connect(lambda _: self.refresh_device())
        # aliases kept for scripts and tests written against the earlier panel
        self.epochs = self.fields["epochs"].editor
        self.lr = self.fields["lr"].editor
        self.batch = self.fields["batch_size"].editor
        self.image_size = self.fields["image_size"].editor
        self.depth = self.fields["depth"].editor
        self.device = self.fields["device"].editor
        self.pretrained = self.fields["pretrained"].editor
        return self.settings_tabs

    def _build_run_area(self) -> QtWidgets.QWidget:
        area = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(area)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.setSpacing(3)
        self.train_button = QtWidgets.QPushButton("Train")
        self.train_button.setObjectName("trainButton")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("End the run after the current batch; the best checkpoint so far is kept")
        self.load_run_button = QtWidgets.QPushButton("Load this run's model")
        self.load_run_button.setVisible(False)
        self.train_button.clicked.connect(self.train_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.load_run_button.clicked.connect(self._load_run_clicked)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.load_run_button)
        lay.addLayout(buttons)

        self.progress = QtWidgets.QProgressBar()  # this epoch (or the preparation stage)
        self.progress.setFormat("epoch: %p%")
        self.progress.setToolTip("The current epoch's batches (or decoding / preparing the cases)")
        self.overall = QtWidgets.QProgressBar()  # the whole run
        self.overall.setFormat("run: %p%")
        self.overall.setToolTip("The whole run: every epoch of every fold (and modality)")
        for bar in (self.progress, self.overall):
            bar.setMaximumHeight(18)
            bar.setTextVisible(True)
            bar.setValue(0)
        lay.addWidget(self.progress)
        lay.addWidget(self.overall)
        self.status = QtWidgets.QLabel("Idle")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_curves(), "Curves")
        self.tabs.addTab(self._build_results(), "Results")
        self.log = QtWidgets.QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(5000)
        self.log.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.tabs.addTab(self.log, "Log")
        self.warning_list = QtWidgets.QListWidget()
        self.warning_list.setWordWrap(True)
        self.warning_list.setStyleSheet(f"color: {_WARN_COLOUR};")
        self.tabs.addTab(self.warning_list, "Warnings")
        self._warnings_tab = 3
        lay.addWidget(self.tabs, 1)
        return area

    def _build_curves(self) -> QtWidgets.QWidget:
        pg.setConfigOptions(antialias=True)
        self.curves = pg.GraphicsLayoutWidget()
        self.curves.setMinimumHeight(150)
        self.curves.ci.setSpacing(2)
        # One shared epoch axis: whole epochs only, its numbers under the last plot alone, and the
        # loss legend in the title, so three plots stay legible in a short dock.
        self.loss_plot = self.curves.addPlot(row=0, col=0, axisItems={"bottom": EpochAxis("bottom")},
                                             title=_loss_title(""))
        self.train_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#4da6ff", width=2), symbol="o",
                                               symbolSize=4, name="train")
        self.val_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#ff9933", width=2), symbol="o",
                                             symbolSize=4, name="validation")
        self.auc_plot = self.curves.addPlot(row=1, col=0, title="Validation AUC",
                                            axisItems={"bottom": EpochAxis("bottom")})
        self.auc_plot.setYRange(0, 1)
        self.auc_plot.addItem(pg.InfiniteLine(0.5, angle=0, pen=pg.mkPen((150, 150, 150),
                                                                         style=QtCore.Qt.PenStyle.DashLine)))
        self.auc_curve = self.auc_plot.plot([], [], pen=pg.mkPen("#66cc66", width=2), symbol="o",
                                            symbolSize=4)
        self.best_marker = self.auc_plot.plot([], [], pen=None, symbol="star", symbolSize=12,
                                              symbolBrush="#ffd11a")
        self.lr_plot = self.curves.addPlot(row=2, col=0, title="Learning rate",
                                           axisItems={"bottom": EpochAxis("bottom")})
        self.lr_plot.setLogMode(y=True)
        self.lr_plot.setYRange(-5, -2)  # log10 units until the first epoch
        self.lr_plot.setLabel("bottom", "epoch")
        self.lr_curve = self.lr_plot.plot([], [], pen=pg.mkPen("#cc66cc", width=2), symbol="o",
                                          symbolSize=4)
        for p in (self.loss_plot, self.auc_plot, self.lr_plot):
            p.showGrid(x=True, y=True, alpha=0.3)
            p.titleLabel.setMaximumHeight(16)
            p.getAxis("left").setWidth(42)
            p.getAxis("left").setStyle(maxTickLevel=0)  # major ticks only: no crowded labels
        for p in (self.loss_plot, self.auc_plot):
            p.getAxis("bottom").setStyle(showValues=False)
            p.getAxis("bottom").setHeight(4)
        self.auc_plot.setXLink(self.loss_plot)
        self.lr_plot.setXLink(self.loss_plot)
        return self.curves

    def _build_results(self) -> QtWidgets.QWidget:
        inner = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(inner)
        lay.setContentsMargins(4, 4, 4, 4)
        self.results_label = QtWidgets.QLabel("No results yet: train a model. The reported figures are "
                                              "those of the held-out test set, never seen in training "
                                              "or model selection.")
        self.results_label.setWordWrap(True)
        self.results_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.results_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.results_label)
        self.results_warnings = QtWidgets.QLabel("")
        self.results_warnings.setWordWrap(True)
        self.results_warnings.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.results_warnings.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.results_warnings)
        self.confusion_caption = QtWidgets.QLabel("Confusion matrix (test cases; rows: true class, "
                                                  "columns: predicted)")
        self.confusion_caption.setWordWrap(True)
        self.confusion_caption.setVisible(False)
        self.confusion_table = QtWidgets.QTableWidget(0, 0)
        self.confusion_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion_table.setVisible(False)
        self.confusion_table.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                                           QtWidgets.QSizePolicy.Policy.Fixed)
        self.confusion_table.setSizeAdjustPolicy(
            QtWidgets.QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.confusion_table.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay.addWidget(self.confusion_caption)
        lay.addWidget(self.confusion_table)
        self.roc_plot = pg.PlotWidget(title="ROC (test)")
        self.roc_plot.setLabel("bottom", "false positive rate")
        self.roc_plot.setLabel("left", "true positive rate")
        self.roc_plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        self.roc_plot.setMouseEnabled(x=False, y=False)
        self.roc_plot.setFixedHeight(240)
        self.roc_plot.showGrid(x=True, y=True, alpha=0.3)
        self.roc_legend = self.roc_plot.addLegend(offset=(-5, -5), labelTextSize="8pt")
        self.roc_plot.setVisible(False)
        lay.addWidget(self.roc_plot)
        lay.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        return scroll

    # ------------------------------------------------------------------ presets
    @staticmethod
    def _preset_tooltip(p: Preset) -> str:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in p.notes)
        return (f"<b>{html.escape(p.name)}</b> v{p.version}<br>{html.escape(p.task)}<br><i>{html.escape(p.paper)}</i>"
                f"<br><br>{html.escape(p.summary)}"
                + (f"<br><br>Where the values are ours, not the paper's:<ul>{notes}</ul>" if notes else ""))

    def current_preset(self) -> Preset | None:
        name = self.preset_combo.currentData()
        return next((p for p in self.presets if p.name == name), None)

    def select_preset(self, name: str) -> None:
        """Choose preset ``name`` (``""`` for none) and load its values into the editors.

        Raises:
            ConfigError: no such preset.
        """
        index = self.preset_combo.findData(name)
        if index < 0:
            raise ConfigError(f"unknown preset {name!r}; available: {', '.join(p.name for p in self.presets)}")
        if index == self.preset_combo.currentIndex():
            self._preset_chosen(index)
        else:
            self.preset_combo.setCurrentIndex(index)

    def _preset_chosen(self, _index: int) -> None:
        p = self.current_preset()
        self.preset_combo.setToolTip(self._preset_tooltip(p) if p else self.preset_combo.itemData(
            0, QtCore.Qt.ItemDataRole.ToolTipRole))
        if p is None:
            self.preset_info.setText("No preset: defaults, plus your edits (recorded as overrides).")
            self.preset_notes.setText("")
            self.preset_notes.setVisible(False)
        else:
            link = (f" <a href='notes'>{len(p.notes)} note{'s' if len(p.notes) != 1 else ''} on values "
                    f"that are ours ▸</a>" if p.notes else "")
            self.preset_info.setText(f"v{p.version}: {html.escape(p.summary)}.{link}")
            self.preset_info.setToolTip(self._preset_tooltip(p))
            self.preset_notes.setText("<ul style='margin-left:-20px'>" + "".join(
                f"<li>{html.escape(n)}</li>" for n in p.notes) + "</ul>")
            self.preset_notes.setVisible(False)
            self.load_config(p.config())
        self._refresh_overrides()

    def _toggle_notes(self, _link: str) -> None:
        self.preset_notes.setVisible(not self.preset_notes.isVisible())

    def base_config(self) -> TrainConfig:
        """The chosen preset's config, or the defaults."""
        p = self.current_preset()
        return p.config() if p is not None else TrainConfig()

    # ------------------------------------------------------------------ values
    def load_config(self, cfg: TrainConfig) -> None:
        """Show every value of ``cfg`` in the editors (modalities: those the dataset has)."""
        self._loading = True
        try:
            self.model.setCurrentText(cfg.model)
            for key, fld in self.fields.items():
                try:
                    fld.set(getattr(cfg, key))
                except ValueError:  # e.g. a cuda:3 device: the editable combo takes it anyway
                    pass
            self._wanted_modalities = list(cfg.modalities)
            self._check_modalities(cfg.modalities)
        finally:
            self._loading = False
        self._model_changed()
        self._relevance()
        self._refresh_overrides()

    def _check_modalities(self, wanted: list[str]) -> None:
        if not self.modality_checks:
            return
        if not any(m in self.modality_checks for m in wanted):
            if wanted and wanted != ["image"]:
                self.append_log(f"Modalities {', '.join(wanted)} are not in this dataset; using "
                                f"{next(iter(self.modality_checks))}.", "warning")
            wanted = [next(iter(self.modality_checks))]
        for m, cb in self.modality_checks.items():
            cb.blockSignals(True)
            cb.setChecked(m in wanted)
            cb.blockSignals(False)

    def _modalities(self, base: list[str]) -> list[str]:
        checked = [m for m, cb in self.modality_checks.items() if cb.isChecked()]
        if not self.modality_checks:
            return list(base)
        if set(checked) == set(base):
            return list(base)  # the preset's channel order
        return checked

    def values(self) -> dict:
        """Every editable key's value as the editors hold it.

        Raises:
            ConfigError: a JSON field does not parse (the message names the key).
        """
        out = {"model": self.model.currentText(), "modalities": self._modalities(
            self.base_config().modalities)}
        for key, fld in self.fields.items():
            out[key] = fld.get()
        return out

    def config(self) -> TrainConfig:
        """The configuration the widgets describe: the preset (or defaults) with every edited
        value applied as a recorded override, validated.

        Raises:
            ConfigError: an invalid value, naming the key (its editor is outlined in red and its
                group opened).
        """
        for fld in self.fields.values():
            fld.set_invalid(False)
        try:
            if self.modality_checks and not any(cb.isChecked() for cb in self.modality_checks.values()):
                raise ConfigError("modalities: check at least one modality to train on")
            base = self.base_config()
            values = self.values()
            known = base.to_dict()
            overrides = {k: v for k, v in values.items() if v != known.get(k)}
            return base.with_overrides(overrides) if overrides else base
        except ConfigError as exc:
            self._mark_invalid(str(exc))
            raise

    def _mark_invalid(self, message: str) -> None:
        m = re.match(r"^(?:--set )?([a-z_]+)", message)
        key = m.group(1) if m else ""
        if key in self.fields:
            self.fields[key].set_invalid(True)
            self.settings_tabs.setCurrentIndex(self.field_group[key])
            self.fields[key].editor.setFocus()

    def _edited(self, key: str) -> None:
        if key in self.fields:
            self.fields[key].set_invalid(False)
        if key == "model":
            self._model_changed()
        if not self._loading:
            self._refresh_overrides()

    def _refresh_overrides(self) -> None:
        """Mark the keys whose value differs from the preset (or the defaults) in bold."""
        base = self.base_config().to_dict()
        edited = []
        for key in (*_TOP, *self.fields):
            try:
                if key == "model":
                    value = self.model.currentText()
                elif key == "modalities":
                    if not self.modality_checks:
                        continue
                    value = self._modalities(base["modalities"])
                else:
                    value = self.fields[key].get()
            except ConfigError:
                value = object()  # unreadable JSON: certainly edited
            changed = value != base.get(key)
            if changed:
                edited.append(key)
            label = self.field_labels.get(key) or self._top_labels.get(key)
            if label is not None:
                font = label.font()
                font.setBold(changed)
                label.setFont(font)
        self.edited_keys = edited
        what = "the preset" if self.current_preset() else "the defaults"
        self.preset_combo.setStatusTip(f"{len(edited)} value(s) differ from {what}")
        tip = (f"Edited (recorded as overrides of {what}): " + ", ".join(edited)) if edited else \
            f"No value differs from {what}."
        for label in (*self.field_labels.values(), *self._top_labels.values()):
            if label is not None and label.font().bold():
                label.setStatusTip(tip)
        self.settings_tabs.setToolTip(tip + "\nBold labels mark the edited values.")

    def _model_changed(self) -> None:
        is3d = is_3d_model(self.model.currentText())
        for key in ("depth", "depth_mode"):
            self._enable(key, is3d)
        for key in ("slices_per_case", "slice_range", "color"):
            self._enable(key, not is3d)

    def _relevance(self) -> None:
        """Grey out editors the current choices do not use (their values are still recorded)."""
        v = {k: self.fields[k].get() for k in ("optimizer", "scheduler", "finetune_epochs")}
        self._enable("momentum", v["optimizer"] == "sgd")
        self._enable("step_size", v["scheduler"] == "step")
        self._enable("plateau_patience", v["scheduler"] == "plateau")
        self._enable("gamma", v["scheduler"] != "none")
        for key in ("finetune_lr", "finetune_batch_size", "finetune_freeze"):
            self._enable(key, v["finetune_epochs"] > 0)

    def _enable(self, key: str, on: bool) -> None:
        self.fields[key].editor.setEnabled(on)
        self.field_labels[key].setEnabled(on)

    def set_modalities(self, modalities: list[str]) -> None:
        """Offer the dataset's modalities as input channels: the preset's where the dataset has
        them, else the first."""
        for cb in self.modality_checks.values():
            self.modality_layout.removeWidget(cb)
            cb.hide()  # deleteLater acts later: never paint the old box under the new one
            cb.setParent(None)
            cb.deleteLater()
        self.modality_checks = {}
        self.modality_hint.setVisible(not modalities)
        for n, m in enumerate(modalities):
            cb = QtWidgets.QCheckBox(m)
            cb.setChecked(n == 0)
            cb.toggled.connect(lambda *_: self._edited("modalities"))
            self.modality_layout.insertWidget(self.modality_layout.count() - 1, cb)
            self.modality_checks[m] = cb
        if self._wanted_modalities and self.current_preset() is not None:
            self._check_modalities(self._wanted_modalities)
        self._refresh_overrides()

    def apply_settings(self, train: dict) -> None:
        """Start from a dataset's suggested settings (``mriviewer.json``'s ``"train"``): an
        optional ``preset`` first, then any TrainConfig keys. Values an editor cannot take are
        skipped and logged."""
        if isinstance(train.get("preset"), str):
            try:
                self.select_preset(train["preset"])
            except ConfigError as exc:
                self.append_log(f"Suggested preset ignored: {exc}", "warning")
        self._loading = True
        try:
            for key, value in train.items():
                try:
                    if key == "preset":
                        continue
                    if key == "model":
                        if value not in MODEL_NAMES:
                            raise ValueError(f"model: unknown value {value!r}")
                        self.model.setCurrentText(value)
                    elif key == "modalities":
                        mods = [value] if isinstance(value, str) else value
                        if isinstance(mods, list) and any(m in self.modality_checks for m in mods):
                            self._wanted_modalities = list(mods)
                            self._check_modalities(mods)
                    elif key in self.fields:
                        self.fields[key].set(float(value) if self.fields[key].kind is float
                                             and isinstance(value, int) and not isinstance(value, bool)
                                             else value)
                    else:
                        raise ValueError(f"{key}: not a training setting")
                except (ValueError, TypeError) as exc:
                    self.append_log(f"Suggested setting skipped: {exc}", "warning")
        finally:
            self._loading = False
        self._model_changed()
        self._relevance()
        self._refresh_overrides()

    def _browse_checkpoint(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Continue from checkpoint", "", "Checkpoint (*.pt)")
        if path:
            self.start_from_checkpoint(path)

    def start_from_checkpoint(self, path: str | Path) -> bool:
        """Fill every editor from a checkpoint's config and set its weights as ``pretrained``
        (:func:`mriviewer.ml.checkpoint.describe_checkpoint`). Returns False (and says why in the
        log) when the file is not a usable checkpoint."""
        from mriviewer.core.errors import CheckpointError
        from mriviewer.ml.checkpoint import load_checkpoint

        try:
            cfg = load_checkpoint(path, mmap=True)["config"]  # the config only: weights mapped, not read
        except CheckpointError as exc:  # load_checkpoint turns torch's errors for a damaged file into this
            self.append_log(f"Cannot continue from {path}: {exc}", "warning")
            return False
        try:
            self.select_preset(cfg.preset or "")
        except ConfigError:  # a preset this version does not ship: the values below still apply
            self.select_preset("")
        self.load_config(cfg)
        self.pretrained.setText(str(path))
        self.append_log(f"Continuing from {path}: {cfg.model} on {', '.join(cfg.modalities)}, its weights as the "
                        f"starting point; the optimiser and schedule start again and the data are split anew "
                        f"(cases it was trained on may now be validation or test: use a new dataset or the "
                        f"same seed and split to keep the roles).")
        return True

    def _browse_weights(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Pretrained weights", "", "Weights (*.pt *.pth)")
        if path:
            self.pretrained.setText(path)

    # ------------------------------------------------------------------ device line
    def refresh_device(self) -> None:
        """Describe what the device setting resolves to. torch is imported and queried in a
        thread (the window opens without waiting for it); a timer owned by the panel picks the
        answer up on the GUI thread, so nothing reaches a panel that was closed meanwhile."""
        device = self.fields["device"].get() or "auto"
        threads = self.fields["num_threads"].get()
        self._device_token = token = getattr(self, "_device_token", 0) + 1
        box: dict = {}

        def work():
            try:
                box["text"] = device_description(device, threads)
            except Exception as exc:  # noqa: BLE001 - a broken CUDA driver must not break the panel
                box["text"] = f"{device}: cannot query ({type(exc).__name__}: {exc})"

        def poll():
            if token != self._device_token:
                return  # a newer query replaced this one
            if "text" not in box:
                QtCore.QTimer.singleShot(50, self, poll)
                return
            self._show_device(f"{device} → {box['text']}" if device == "auto" else box["text"])

        threading.Thread(target=work, name="mriviewer-device", daemon=True).start()
        QtCore.QTimer.singleShot(0, self, poll)

    def _show_device(self, text: str) -> None:
        self.device_label.setText(text)
        bad = "no CUDA" in text or "cannot query" in text
        self.device_label.setStyleSheet(f"color: {_WARN_COLOUR};" if bad else "")

    # ------------------------------------------------------------------ train button
    def set_can_train(self, ok: bool, reason: str = "") -> None:
        """Whether a labelled dataset is open; the Train button is enabled only then (and when
        no run is in progress)."""
        self._can_train = ok
        self._cannot_train_reason = reason or "Open a labelled dataset first."
        self._update_train_button()

    def _update_train_button(self) -> None:
        self.train_button.setEnabled(self._can_train and not self.running)
        self.train_button.setToolTip("" if self._can_train else self._cannot_train_reason)

    # ------------------------------------------------------------------ run display
    def set_running(self, running: bool, config: TrainConfig | None = None) -> None:
        """Enter or leave the running state; entering clears the curves, results and warnings
        (``config``: the run's config, for fold counts and the ETA)."""
        self.running = running
        self._update_train_button()
        self.stop_button.setEnabled(running)
        if running:
            self._run_config = config
            self.history = []
            self.warnings = []
            self.warning_list.clear()
            self._update_warnings_tab()
            for c in (self.train_curve, self.val_curve, self.auc_curve, self.best_marker, self.lr_curve):
                c.setData([], [])
            self.progress.setValue(0)
            self.overall.setValue(0)
            self.overall.setFormat("run: %p%")
            self.offer_checkpoint(None)
            self.clear_results()
            self._clock = {"start": time.monotonic(), "train": 0.0, "last": None, "epoch_key": None,
                           "epoch_t0": None, "frac": 0.0}
            self.tabs.setCurrentIndex(0)
        else:
            self.progress.setValue(self.progress.maximum() if self.history else self.progress.value())
            if self._clock.get("start"):
                self.overall.setFormat(f"run: %p% · {_duration(time.monotonic() - self._clock['start'])} "
                                       "elapsed")
            self.refresh_device()

    def append_log(self, text: str, level: str = "info") -> None:
        """Add a line to the log (warnings in colour, and to the Warnings list); the log
        follows new lines unless the user has scrolled up."""
        bar = self.log.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        fmt = QtGui.QTextCharFormat()
        if level == "warning":
            fmt.setForeground(QtGui.QColor(_WARN_COLOUR))
            fmt.setFontWeight(QtGui.QFont.Weight.Bold)
            text = f"⚠ {text}"
        cursor = QtGui.QTextCursor(self.log.document())
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
        if not self.log.document().isEmpty():
            cursor.insertBlock(QtGui.QTextBlockFormat(), QtGui.QTextCharFormat())
        cursor.insertText(text, fmt)
        if at_end:
            bar.setValue(bar.maximum())
        if level == "warning":
            self.add_warning(text[2:])

    def add_warning(self, text: str) -> None:
        """Collect a warning in the Warnings list (once)."""
        if text in self.warnings:
            return
        self.warnings.append(text)
        self.warning_list.addItem(text)
        self._update_warnings_tab()

    def _update_warnings_tab(self) -> None:
        n = len(self.warnings)
        self.tabs.setTabText(self._warnings_tab, f"Warnings ({n})" if n else "Warnings")
        self.tabs.tabBar().setTabTextColor(self._warnings_tab, QtGui.QColor(_WARN_COLOUR) if n else
                                           self.tabs.palette().color(QtGui.QPalette.ColorRole.WindowText))

    def show_event(self, event) -> None:
        """Display one engine event."""
        if isinstance(event, LogEvent):
            self.append_log(event.message, event.level)
        elif isinstance(event, ProgressEvent):
            self._show_progress(event)
        elif isinstance(event, EpochEvent):
            self._show_epoch(event.record)
        elif isinstance(event, FoldEvent):
            t = event.test or {}
            self.append_log(f"{event.name} done ({event.index} of {event.total}): test AUC {_num(t.get('auc'))} "
                            f"({_ci(t.get('auc_ci'))}) on {t.get('n_cases', '?')} cases.")

    def _units(self, fold_tag: str, fold_index: int | None = None) -> tuple[int, int, str]:
        """``(unit index, unit count, label)`` of a fold (tag ``"holdout"``, ``"fold 2"``,
        ``"FLAIR fold 2"``; ``fold_index`` the event's fold number) under the running config."""
        cfg = self._run_config
        n_folds = cfg.folds if cfg is not None and cfg.folds >= 2 else 1
        mods = cfg.modalities if cfg is not None and cfg.per_modality and len(cfg.modalities) > 1 else []
        fold_i = fold_index or 1
        first = fold_tag.split(" ")[0] if fold_tag else ""
        m_i = mods.index(first) if first in mods else 0
        parts = []
        if mods:
            parts.append(f"{mods[m_i]} ({m_i + 1} of {len(mods)})")
        if n_folds > 1:
            parts.append(f"fold {fold_i} of {n_folds}")
        n_units = max(len(mods), 1) * n_folds
        return min(m_i * n_folds + fold_i - 1, n_units - 1), n_units, ", ".join(parts)

    def _show_progress(self, ev: ProgressEvent) -> None:
        now = time.monotonic()
        clock = self._clock or {"start": now, "train": 0.0, "last": None, "epoch_key": None,
                                "epoch_t0": None, "frac": 0.0}
        self._clock = clock
        total = max(ev.total, 1)
        self.progress.setMaximum(total)
        self.progress.setValue(min(ev.step, total))
        unit, n_units, where = self._units(ev.fold, ev.fold_index)
        where_txt = f"{where}: " if where else ""
        if ev.stage in ("decode", "prepare"):
            clock["last"] = None
            what = "Decoding series (parallel)" if ev.stage == "decode" else "Preparing cases"
            self.progress.setFormat(f"{what} {ev.step}/{total}")
            self.status.setText(f"{where_txt}{what} {ev.step}/{total}")
            frac = unit / n_units
        else:
            if clock["last"] is not None:
                clock["train"] += now - clock["last"]
            clock["last"] = now
            key = (ev.fold, ev.epoch)
            if clock["epoch_key"] != key:
                clock["epoch_key"], clock["epoch_t0"], clock["epoch_step0"] = key, now, ev.step
            epochs = max(ev.epochs, ev.epoch, 1)
            within = ((ev.epoch - 1) + ev.step / total) / epochs
            frac = (unit + within) / n_units
            done_steps = ev.step - clock.get("epoch_step0", 1)
            epoch_eta = ""
            if done_steps > 0:
                per_step = (now - clock["epoch_t0"]) / done_steps
                epoch_eta = f" · {_duration(per_step * (total - ev.step))} left"
            self.progress.setFormat(f"epoch {ev.epoch}/{epochs} · batch {ev.step}/{total}{epoch_eta}")
            loss = f", running loss {ev.loss:.4f}" if ev.loss is not None else ""
            self.status.setText(f"{where_txt}epoch {ev.epoch} of {epochs}, batch {ev.step}/{total}{loss}")
        clock["frac"] = frac
        self.overall.setMaximum(1000)
        self.overall.setValue(int(round(1000 * frac)))
        elapsed = now - clock["start"]
        eta = ""
        if clock["train"] > 1.0 and frac > 0.005:
            remaining = clock["train"] * (1 - frac) / frac
            eta = f" · ETA {_duration(remaining)}"
        prefix = f"{where} · " if where else ""
        self.overall.setFormat(f"run: {prefix}{100 * frac:.0f}% · {_duration(elapsed)} elapsed{eta}")

    def _show_epoch(self, r: EpochRecord) -> None:
        self.history.append(r)
        run = [h for h in self.history if h.fold == r.fold]  # the current fold's curves
        ep = [h.epoch for h in run]
        self.train_curve.setData(ep, [h.train_loss for h in run])
        self.val_curve.setData(ep, [_nan(h.val_loss) for h in run])
        pts = [(h.epoch, h.val_auc) for h in run if _finite(h.val_auc)]
        self.auc_curve.setData([p[0] for p in pts], [p[1] for p in pts])
        best = [(h.epoch, h.val_auc) for h in run if h.is_best and _finite(h.val_auc)]
        self.best_marker.setData([b[0] for b in best[-1:]], [b[1] for b in best[-1:]])
        lrs = [(h.epoch, h.lr) for h in run if _finite(h.lr) and h.lr > 0]
        self.lr_curve.setData([p[0] for p in lrs], [p[1] for p in lrs])
        if lrs:  # half a decade above and below: one tick per decade, none crowding a constant rate
            logs = [math.log10(p[1]) for p in lrs]
            self.lr_plot.setYRange(min(logs) - 0.5, max(logs) + 0.5, padding=0)
        fold = f" ({r.fold})" if r.fold and r.fold != "holdout" else ""
        self.loss_plot.setTitle(_loss_title(fold))
        self.append_log(f"epoch {r.epoch}{fold}: train loss {r.train_loss:.4f}, val loss "
                        f"{_num(r.val_loss, 4)}, val AUC {_num(r.val_auc)}, lr {r.lr:.3g}"
                        f"{' (best)' if r.is_best else ''}, {r.seconds:.1f}s")

    # ------------------------------------------------------------------ results
    def offer_checkpoint(self, path: str | Path | None) -> None:
        """Show (``path``) or hide (``None``) the "Load this run's model" button."""
        self._pending_checkpoint = str(path) if path else None
        self.load_run_button.setVisible(path is not None)
        self.load_run_button.setToolTip(f"Load {path} (replacing the loaded model)" if path else "")

    @property
    def pending_checkpoint(self) -> str | None:
        """The stopped run's checkpoint offered by "Load this run's model" (``None``: none)."""
        return self._pending_checkpoint

    def _load_run_clicked(self) -> None:
        if self._pending_checkpoint:
            path = self._pending_checkpoint
            self.offer_checkpoint(None)
            self.load_run_requested.emit(path)

    def clear_results(self) -> None:
        self.results_label.setText("Running… the held-out test results appear here when the run ends.")
        self.results_warnings.setText("")
        self.roc_plot.setVisible(False)
        self.confusion_table.setVisible(False)
        self.confusion_caption.setVisible(False)

    def show_results(self, metrics: dict, stopped: bool = False, source: str = "") -> None:
        """Show a run's ``metrics.json`` content (or a checkpoint's metrics in that shape): the
        test metrics with intervals, the CV summary or each modality's test AUC, the ROC curve
        and the confusion matrix, and the warnings; switches to the Results tab."""
        lines: list[str] = []
        if source:
            lines.append(f"<i>{html.escape(source)}</i>")
        if stopped:
            lines.append(f"<span style='color:{_WARN_COLOUR}'><b>Stopped run</b>: the figures are those of "
                         "the best epoch before the stop.</span>")
        warns: list[str] = []
        test = metrics.get("test")
        if metrics.get("per_modality"):
            per = metrics["per_modality"]
            chosen = metrics.get("chosen_on_validation")
            lines.append("<b>Test (held-out) per modality</b> — one model each:")
            rows = []
            for m, entry in per.items():
                t = (entry or {}).get("test") or {}
                mark = " ← chosen on validation" if m == chosen else ""
                rows.append(f"<li><b>{html.escape(m)}</b>: AUC {_num(t.get('auc'))} (95 % CI {_ci(t.get('auc_ci'))}), "
                            f"{t.get('n_cases', '?')} cases{mark}</li>")
                warns += [f"{m}: {w}" for w in t.get("warnings", [])]
            lines.append("<ul style='margin-left:-20px'>" + "".join(rows) + "</ul>")
            test = ((per.get(chosen) or {}).get("test")) if chosen else None
            if test:
                lines.append(f"Details below: {html.escape(chosen)} (the model offered to the viewer).")
        if test:
            n = test.get("n_cases", "?")
            pooled = "folds" in metrics or "summary" in metrics
            kind = "held-out, pooled out-of-fold" if pooled else "held-out"
            level = round(100 * (test.get("ci_level") or 0.95))
            lines.append(f"<b>Test ({kind}, {n} cases)</b>")
            lines.append(f"AUC <b>{_num(test.get('auc'))}</b> ({level} % CI {_ci(test.get('auc_ci'))})<br>"
                         f"accuracy {_num(test.get('accuracy'))} ({level} % CI {_ci(test.get('accuracy_ci'))})"
                         + (f"; always the most frequent class: {_num(test['accuracy_chance'])}"
                            if test.get("accuracy_chance") is not None else "") + "<br>"
                         f"balanced accuracy {_num(test.get('balanced_accuracy'))}<br>"
                         f"macro F1 {_num(test.get('f1_macro'))} ({level} % CI {_ci(test.get('f1_macro_ci'))})")
            summary = metrics.get("summary")
            if summary:
                a = summary.get("auc") or {}
                k = summary.get("n_folds", len(metrics.get("folds", [])))
                sd = a.get("sd")
                lines.append(f"AUC mean ± sd over {k} folds: <b>{_num(a.get('mean'))} ± "
                             f"{_num(sd) if sd is not None else 'n/a'}</b> ({a.get('n', 0)} folds with a "
                             "defined AUC)")
                warns += summary.get("warnings", [])
            if metrics.get("warnings_cv"):
                warns.append(metrics["warnings_cv"])
            warns = list(test.get("warnings", [])) + warns
            self._show_roc(test)
            self._show_confusion(test)
        elif not metrics.get("per_modality"):
            lines.append("No test metrics: the run ended before an epoch finished.")
            self.roc_plot.setVisible(False)
            self.confusion_table.setVisible(False)
            self.confusion_caption.setVisible(False)
        self.results_label.setText("<br>".join(lines))
        warns = list(dict.fromkeys(warns))
        for w in metrics.get("warnings", []):
            self.add_warning(w)
        others = len([w for w in self.warnings if w not in warns])
        text = ""
        if warns:
            text = (f"<b style='color:{_WARN_COLOUR}'>Warnings on these figures</b><ul style='margin-left:-20px'>"
                    + "".join(f"<li style='color:{_WARN_COLOUR}'>{html.escape(w)}</li>" for w in warns) + "</ul>")
        if others:
            text += f"{others} more warning(s) about the run in the Warnings tab."
        self.results_warnings.setText(text)
        self.tabs.setCurrentIndex(1)

    def _show_roc(self, test: dict) -> None:
        plot = self.roc_plot
        plot.clear()
        self.roc_legend.clear()
        plot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), style=QtCore.Qt.PenStyle.DashLine))
        roc = test.get("roc") or {}
        curves = []
        if "fpr" in roc:
            if roc.get("fpr"):
                curves.append((f"AUC {_num(test.get('auc'))}", roc["fpr"], roc["tpr"]))
        else:
            per = test.get("per_class") or {}
            for name, r in roc.items():
                if isinstance(r, dict) and r.get("fpr"):
                    curves.append((f"{name} (AUC {_num((per.get(name) or {}).get('auc'))})", r["fpr"], r["tpr"]))
        for i, (name, fpr, tpr) in enumerate(curves):
            plot.plot(fpr, tpr, pen=pg.mkPen(_PALETTE[i % len(_PALETTE)], width=2), name=name)
        plot.setTitle("ROC (test)" if curves else "ROC (test): undefined, one class only")
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        plot.setVisible(True)

    def _show_confusion(self, test: dict) -> None:
        cm = test.get("confusion_matrix") or []
        names = test.get("class_names") or [str(i) for i in range(len(cm))]
        t = self.confusion_table
        t.clear()
        t.setRowCount(len(cm))
        t.setColumnCount(len(cm))
        t.setVerticalHeaderLabels(list(names))
        t.setHorizontalHeaderLabels([n.replace(" ", "\n") for n in names])  # narrow columns
        for i, row in enumerate(cm):
            total = max(sum(row), 1)
            for j, count in enumerate(row):
                item = QtWidgets.QTableWidgetItem(str(int(count)))
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                share = count / total
                good = (90, 170, 90) if i == j else (220, 110, 80)
                alpha = int(40 + 160 * share) if count else 0
                item.setBackground(QtGui.QColor(*good, alpha))
                item.setToolTip(f"{count} of {sum(row)} cases of {names[i]} predicted {names[j]}")
                t.setItem(i, j, item)
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


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _nan(v) -> float:
    return float(v) if _finite(v) else math.nan
