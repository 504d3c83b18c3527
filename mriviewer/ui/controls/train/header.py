"""The top of the Train panel: the preset picker with its summary and notes, the model picker
with "From checkpoint…", the dataset's modalities as check boxes, and the device line."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from mriviewer.app import train_text
from mriviewer.ml.config import MODEL_NAMES

__all__ = ["SetupHeader", "device_description", "fit_combo", "NO_PRESET"]

_NO_PRESET_TIP = "No preset: the values below are recorded as overrides of the defaults."
#: The preset picker's entry for no preset.
NO_PRESET = "(none)"


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


def fit_combo(box: QtWidgets.QComboBox) -> None:
    """Make a combo that does not widen the dock to its longest item; its popup does."""
    box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(12)
    box.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
    view = box.view()
    view.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
    view.setMinimumWidth(min(view.sizeHintForColumn(0) + 30, 900))


def _small_label(text: str, style: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(QtCore.Qt.TextFormat.RichText)
    label.setStyleSheet(style)
    return label


class SetupHeader(QtWidgets.QWidget):
    """Preset, model, modalities and device rows.

    Attributes:
        preset_combo: the presets (item data: the name; ``""`` for none).
        preset_info, preset_notes: the chosen preset's summary line and its notes (hidden
            until the summary's link is clicked).
        model: the model picker; from_checkpoint_button: "From checkpoint…".
        modality_checks: modality → its check box (the open dataset's modalities).
        device_label: what the device setting resolves to.
        top_labels: ``{"model": label, "modalities": label}`` (bold when edited).
    """

    def __init__(self, presets, parent=None) -> None:
        super().__init__(parent)
        form = QtWidgets.QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(3)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._build_presets(presets)
        self.model = QtWidgets.QComboBox()
        self.model.addItems(MODEL_NAMES)
        self.model.setToolTip("2D models (resnet18-2d, efficientnet-b0-2d) take axial slices; 3D models "
                              "(cnn3d, r3d-18, mc3-18, r2plus1d-18) take the slice stack.")
        fit_combo(self.model)
        self.from_checkpoint_button = QtWidgets.QPushButton("From checkpoint…")
        self.from_checkpoint_button.setToolTip(
            "Continue training a saved model: its settings and its weights as the starting point "
            "(the optimiser and schedule start again; the data are split anew)")
        self._build_modalities()
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
        self.top_labels = {"model": form.labelForField(model_row),
                           "modalities": form.labelForField(self.modality_box)}

    def _build_presets(self, presets) -> None:
        self.preset_combo = QtWidgets.QComboBox()
        self.preset_combo.addItem(NO_PRESET, "")
        self.preset_combo.setItemData(0, _NO_PRESET_TIP, QtCore.Qt.ItemDataRole.ToolTipRole)
        for p in presets:
            self.preset_combo.addItem(f"{p.name} — {p.task}", p.name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, train_text.preset_tooltip(p),
                                          QtCore.Qt.ItemDataRole.ToolTipRole)
        fit_combo(self.preset_combo)
        self.preset_info = _small_label("No preset: defaults, plus your edits.", "color: #444; font-size: 8pt;")
        self.preset_info.linkActivated.connect(self._toggle_notes)
        self.preset_notes = _small_label("", "font-size: 8pt;")
        self.preset_notes.setVisible(False)

    def _build_modalities(self) -> None:
        self.modality_box = QtWidgets.QWidget()
        self.modality_layout = QtWidgets.QHBoxLayout(self.modality_box)
        self.modality_layout.setContentsMargins(0, 0, 0, 0)
        self.modality_layout.setSpacing(6)
        self.modality_hint = QtWidgets.QLabel("(open a dataset)")
        self.modality_hint.setStyleSheet("color: #777;")
        self.modality_layout.addWidget(self.modality_hint)
        self.modality_layout.addStretch(1)
        self.modality_checks: dict[str, QtWidgets.QCheckBox] = {}

    # ------------------------------------------------------------------ presets
    def show_preset(self, p) -> None:
        """Show preset ``p`` (``None``: none) in the tooltip, the summary and the notes."""
        self.preset_combo.setToolTip(train_text.preset_tooltip(p) if p else _NO_PRESET_TIP)
        self.preset_info.setText(train_text.preset_info(p))
        if p is not None:
            self.preset_info.setToolTip(train_text.preset_tooltip(p))
        self.preset_notes.setText(train_text.preset_notes_html(p))
        self.preset_notes.setVisible(False)

    def _toggle_notes(self, _link: str) -> None:
        self.preset_notes.setVisible(not self.preset_notes.isVisible())

    # ------------------------------------------------------------------ modalities
    def set_modalities(self, modalities: list[str], on_toggle) -> None:
        """One check box per modality (the first checked); ``on_toggle()`` on every toggle."""
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
            cb.toggled.connect(lambda *_: on_toggle())
            self.modality_layout.insertWidget(self.modality_layout.count() - 1, cb)
            self.modality_checks[m] = cb

    def check_modalities(self, wanted: list[str]) -> str:
        """Check the ``wanted`` modalities the dataset has (else its first); returns a warning
        when none of them is there (``""`` otherwise)."""
        if not self.modality_checks:
            return ""
        warning = ""
        if not any(m in self.modality_checks for m in wanted):
            first = next(iter(self.modality_checks))
            if wanted and wanted != ["image"]:
                warning = f"Modalities {', '.join(wanted)} are not in this dataset; using {first}."
            wanted = [first]
        for m, cb in self.modality_checks.items():
            cb.blockSignals(True)
            cb.setChecked(m in wanted)
            cb.blockSignals(False)
        return warning

    def modalities(self, base: list[str]) -> list[str]:
        """The checked modalities (``base``, in its order, when the same set is checked; ``base``
        with no dataset)."""
        checked = [m for m, cb in self.modality_checks.items() if cb.isChecked()]
        if not self.modality_checks or set(checked) == set(base):
            return list(base)  # the preset's channel order
        return checked

    # ------------------------------------------------------------------ device
    def show_device(self, text: str) -> None:
        """Show the device line (in the warning colour when there is no such device)."""
        self.device_label.setText(text)
        bad = "no CUDA" in text or "cannot query" in text
        self.device_label.setStyleSheet(f"color: {train_text.WARN_COLOUR};" if bad else "")

    def set_edited(self, key: str, edited: bool) -> None:
        """Show the label of ``model`` or ``modalities`` in bold when edited."""
        label = self.top_labels.get(key)
        if label is not None:
            font = label.font()
            font.setBold(edited)
            label.setFont(font)
