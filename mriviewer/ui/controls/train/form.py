"""The Train panel's settings form, generated from the
:class:`~mriviewer.ml.config.TrainConfig` fields' metadata
(:func:`~mriviewer.ml.config_fields.config_fields`): a tab per group, a labelled editor per key —
combo boxes for choices, spin boxes within the range and step (learning rates stepping within
their decade), check boxes for flags, JSON text for lists and dicts — with the help as tooltip,
the unit as suffix, and editors greyed out while their ``when`` does not hold. A new field gets
an editor without touching this file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping

from PySide6 import QtCore, QtGui, QtWidgets

from mriviewer.app import train_text
from mriviewer.core.errors import ConfigError
from mriviewer.ml.config_fields import ConfigField, config_fields

__all__ = ["ConfigForm", "FieldEditor", "TOP_KEYS", "wheel_guard"]

#: Keys the panel edits above the form (the model picker and the modality check boxes).
TOP_KEYS = ("model", "modalities")
#: Tab labels short enough for six tabs in the dock's width (the tooltip has the full name).
_SHORT_GROUP = {"Augmentation": "Augment", "Optimisation": "Optimise", "Evaluation": "Evaluate"}
_FIRST_TAB = "Optimisation"
_INT_MAX = 2**31 - 1


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

    def _number(self, text: str) -> str:
        """``text`` without the suffix (the unit) and spaces."""
        t = text.strip()
        suffix = self.suffix().strip()
        return t[: -len(suffix)].strip() if suffix and t.endswith(suffix) else t

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        """The value as ``%.10g``."""
        return f"{value:.10g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        """The typed number (the current value while it does not parse)."""
        try:
            return float(self._number(text))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        """Acceptable: a finite number within the range; Intermediate: on the way to one."""
        t = self._number(text)
        state = QtGui.QValidator.State
        try:
            v = float(t)
        except ValueError:
            ok = re.fullmatch(r"[0-9.eE+-]*", t) is not None
            return (state.Intermediate if ok else state.Invalid), text, pos
        inside = self.minimum() <= v <= self.maximum() and math.isfinite(v)
        return (state.Acceptable if inside else state.Intermediate), text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        """Linear steps, or steps of the value's decade for a log-stepped field."""
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


class _WheelGuard(QtCore.QObject):
    """Wheel events on unfocused spin/combo boxes scroll their settings page instead of changing
    the value under the pointer."""

    def eventFilter(self, obj, event):  # noqa: N802
        """Send an unfocused editor's wheel event to its scroll area instead."""
        if event.type() == QtCore.QEvent.Type.Wheel and not obj.hasFocus():
            area = obj.parentWidget()
            while area is not None and not isinstance(area, QtWidgets.QAbstractScrollArea):
                area = area.parentWidget()
            if area is not None:  # scroll the page instead
                QtWidgets.QApplication.sendEvent(area.verticalScrollBar(), event)
            return True
        return False


_WHEEL_GUARD: _WheelGuard | None = None


def wheel_guard() -> _WheelGuard:
    """The application's one wheel guard (an event filter owned by the QApplication)."""
    global _WHEEL_GUARD
    if _WHEEL_GUARD is None:
        _WHEEL_GUARD = _WheelGuard(QtWidgets.QApplication.instance())
    return _WHEEL_GUARD


def _editor_for(spec: ConfigField) -> tuple[QtWidgets.QWidget, object]:
    """The editor widget of ``spec`` and its change signal."""
    if spec.choices or spec.suggestions:
        box = QtWidgets.QComboBox()
        box.setEditable(not spec.choices)  # suggestions (device): any text, e.g. cuda:3
        box.addItems(spec.choices or spec.suggestions)
        return box, box.currentTextChanged
    if spec.kind is bool:
        box = QtWidgets.QCheckBox()
        return box, box.toggled
    if spec.kind is int:
        box = QtWidgets.QSpinBox()
        lo, hi = (spec.minimum, spec.maximum) if spec.minimum is not None else (0, _INT_MAX)
        box.setRange(int(lo), int(min(hi, _INT_MAX)))
        box.setSingleStep(int(spec.step or 1))
        return box, box.valueChanged
    if spec.kind is float:
        lo, hi = (spec.minimum, spec.maximum) if spec.minimum is not None else (-1e12, 1e12)
        box = _FloatSpin(lo, hi, spec.step or max(lo, 1e-5), spec.log_step)
        return box, box.valueChanged
    box = QtWidgets.QLineEdit()  # str, list, dict: text (lists and dicts as JSON)
    if spec.kind in (list, dict):
        box.setPlaceholderText(train_text.json_placeholder(spec))
    return box, box.textChanged


class FieldEditor:
    """One TrainConfig key's editor, made from its :class:`~mriviewer.ml.config_fields.ConfigField`:
    ``editor`` (the input widget), ``widget`` (what goes in the form: the editor, with a "…"
    button for a path), ``label``, ``get()`` → the value (raises ConfigError for unreadable
    JSON), ``set(value)`` (raises ValueError for a value the editor cannot hold) and
    ``connect(slot)`` (``slot(key)`` on every change)."""

    def __init__(self, spec: ConfigField) -> None:
        self.spec = spec
        self.key = spec.key
        self.kind = spec.kind
        self.editor, self._signal = _editor_for(spec)
        if isinstance(self.editor, QtWidgets.QAbstractSpinBox) and spec.unit:
            self.editor.setSuffix(f" {spec.unit}")
        if isinstance(self.editor, (QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox)):
            self.editor.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)  # no wheel edits while scrolling
            self.editor.installEventFilter(wheel_guard())
        self.editor.setToolTip(train_text.field_tooltip(spec))
        self.label = QtWidgets.QLabel(spec.label)
        self.label.setToolTip(self.editor.toolTip())
        self.widget = self.editor if not spec.browse else self._with_browse()
        self.set(spec.default)

    def _with_browse(self) -> QtWidgets.QWidget:
        """The editor with a "…" button choosing a file (``spec.browse`` the filter)."""
        widget = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.browse_button = QtWidgets.QPushButton("…")
        self.browse_button.setFixedWidth(28)
        self.browse_button.setToolTip(f"Choose a file ({self.spec.browse})")
        self.browse_button.clicked.connect(self._browse)
        row.addWidget(self.editor)
        row.addWidget(self.browse_button)
        return widget

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.editor, self.spec.label, "", self.spec.browse)
        if path:
            self.editor.setText(path)

    def connect(self, slot: Callable[[str], None]) -> None:
        """Call ``slot(key)`` whenever the value changes."""
        self._signal.connect(lambda *_: slot(self.key))

    def get(self):
        """The value the editor holds.

        Raises:
            ConfigError: a list or dict editor's text is not valid JSON (``key`` set).
        """
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
            raise ConfigError(train_text.json_error(self.key, self.kind, text, getattr(exc, "msg", str(exc))),
                              key=self.key) from None

    def set(self, value) -> None:
        """Show ``value``.

        Raises:
            ValueError: a value this editor cannot hold (unknown choice, not a number, out of
                range, wrong type).
        """
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
            self._set_number(w, value)
        elif self.kind is str:
            if not isinstance(value, str):
                raise ValueError(f"{self.key}: expected text, got {value!r}")
            w.setText(value)
        else:
            w.setText(json.dumps(value))
        self.set_invalid(False)

    def _set_number(self, w: QtWidgets.QAbstractSpinBox, value) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self.key}: expected a number, got {value!r}")
        if isinstance(w, QtWidgets.QSpinBox) and not float(value).is_integer():
            raise ValueError(f"{self.key}: expected a whole number, got {value!r}")
        if not w.minimum() <= value <= w.maximum():
            raise ValueError(f"{self.key}: {value!r} is outside {w.minimum():g} … {w.maximum():g}")
        w.setValue(int(value) if isinstance(w, QtWidgets.QSpinBox) else float(value))

    def set_invalid(self, bad: bool) -> None:
        """Outline the editor in red (``bad``) or not."""
        self.editor.setStyleSheet("border: 1px solid #d00;" if bad else "")

    def set_enabled(self, on: bool) -> None:
        """Enable or grey out the editor and its label (the value is still recorded)."""
        self.editor.setEnabled(on)
        self.label.setEnabled(on)

    def set_edited(self, edited: bool) -> None:
        """Show the label in bold when the value differs from the preset (or the defaults)."""
        font = self.label.font()
        font.setBold(edited)
        self.label.setFont(font)


class ConfigForm(QtWidgets.QTabWidget):
    """The generated settings: a tab per group of
    :data:`~mriviewer.ml.config.GROUP_NAMES` (not "Identity"), a row per editable key (not
    :data:`TOP_KEYS`).

    Signals: ``edited(str)``: a key's value changed.

    Attributes:
        fields: key → :class:`FieldEditor`.
        field_labels: key → its label.
        field_group: key → its tab's index.
        depends_on: the keys some editor's relevance depends on (``model``, ``optimizer``, …).
    """

    edited = QtCore.Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.fields: dict[str, FieldEditor] = {}
        self.field_labels: dict[str, QtWidgets.QLabel] = {}
        self.field_group: dict[str, int] = {}
        # A tab per group: one row of tabs costs far less height than a tool box's six headers.
        self.setDocumentMode(True)
        self.setUsesScrollButtons(True)
        self.tabBar().setExpanding(False)
        self.setStyleSheet("QTabBar::tab { padding: 3px 4px; }")
        self.setMinimumHeight(170)
        groups: dict[str, list[ConfigField]] = {}
        for spec in config_fields():
            if spec.editable and spec.key not in TOP_KEYS:
                groups.setdefault(spec.group, []).append(spec)
        for name, specs in groups.items():
            self._add_page(name, specs)
        self.setCurrentIndex(list(groups).index(_FIRST_TAB))
        self.depends_on = {s.when[0] for s in config_fields() if s.when is not None}

    def _add_page(self, name: str, specs: list[ConfigField]) -> None:
        """A scrolled page of ``specs``' editors (and their notes) as tab ``name``."""
        index = self.count()
        page = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(page)
        form.setContentsMargins(4, 2, 4, 2)
        form.setVerticalSpacing(2)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in specs:
            fld = FieldEditor(spec)
            fld.connect(self._changed)
            self.fields[spec.key] = fld
            self.field_labels[spec.key] = fld.label
            self.field_group[spec.key] = index
            form.addRow(fld.label, fld.widget)
            if spec.note:
                note = QtWidgets.QLabel(spec.note)
                note.setWordWrap(True)
                note.setStyleSheet("font-size: 8pt;")
                form.addRow(note)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(page)
        self.addTab(scroll, _SHORT_GROUP.get(name, name))
        self.setTabToolTip(index, f"{name}: {', '.join(s.key for s in specs)}")

    def _changed(self, key: str) -> None:
        self.fields[key].set_invalid(False)
        self.edited.emit(key)

    def values(self) -> dict:
        """Every key's value as the editors hold it.

        Raises:
            ConfigError: a JSON field does not parse (``key`` set).
        """
        return {key: fld.get() for key, fld in self.fields.items()}

    def load(self, values: Mapping) -> None:
        """Show ``values`` (``{key: value}``); a value an editor cannot hold is skipped (e.g. a
        device the editable box takes anyway)."""
        for key, fld in self.fields.items():
            if key in values:
                try:
                    fld.set(values[key])
                except ValueError:
                    pass

    def clear_invalid(self) -> None:
        """Remove every red outline."""
        for fld in self.fields.values():
            fld.set_invalid(False)

    def mark_invalid(self, key: str | None) -> bool:
        """Outline the editor of ``key`` (a :attr:`ConfigError.key`, dotted keys by their
        group: ``augment.flip_lr`` → ``augment``), open its tab and focus it. Returns whether
        ``key`` has an editor here."""
        top = (key or "").partition(".")[0]
        if top not in self.fields:
            return False
        self.fields[top].set_invalid(True)
        self.setCurrentIndex(self.field_group[top])
        self.fields[top].editor.setFocus()
        return True

    def update_relevance(self, values: Mapping) -> None:
        """Grey out the editors whose ``when`` does not hold under ``values`` (the form's own
        values plus the keys above it, e.g. ``model``)."""
        for fld in self.fields.values():
            fld.set_enabled(fld.spec.applies(values))
