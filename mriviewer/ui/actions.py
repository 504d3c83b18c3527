"""User commands as ``QAction`` s that enable themselves from the app model's state (FSLeyes'
``actions/``): each has a callback, an optional shortcut, and a predicate returning
``(enabled, why not)``; a disabled action's tooltip and status tip say why. The Help ▸
Shortcuts dialog lists them from this registry."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets

__all__ = ["ModelAction", "ActionRegistry", "ShortcutsDialog"]


class ModelAction(QtGui.QAction):
    """A ``QAction`` whose enabled state follows ``enabled_when()`` → ``(bool, reason)``."""

    def __init__(self, text: str, parent, callback: Callable, enabled_when=None, shortcut=None,
                 tip: str = "", checkable: bool = False) -> None:
        super().__init__(text, parent)
        self.tip = tip
        self.enabled_when = enabled_when
        self.setCheckable(checkable)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            self.setShortcuts([QtGui.QKeySequence(k) for k in keys])
            self.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        if checkable:
            self.toggled.connect(callback)
        else:
            self.triggered.connect(lambda *_: callback())
        self.update_enabled()

    def update_enabled(self) -> None:
        """Enable or disable from ``enabled_when``; a disabled action's tips say why."""
        ok, why = (True, "") if self.enabled_when is None else self.enabled_when()
        self.setEnabled(ok)
        text = self.tip if ok else (why or self.tip)
        self.setToolTip(text)
        self.setStatusTip(text)


class ActionRegistry:
    """Name → :class:`ModelAction`; :meth:`update` re-evaluates every predicate."""

    def __init__(self, parent) -> None:
        self.parent = parent
        self.actions: dict[str, ModelAction] = {}

    def add(self, name: str, text: str, callback: Callable, **kwargs) -> ModelAction:
        """Register a :class:`ModelAction` called ``name`` (its ``kwargs`` as ModelAction's)."""
        action = ModelAction(text, self.parent, callback, **kwargs)
        action.setObjectName(name)
        self.actions[name] = action
        return action

    def __getitem__(self, name: str) -> ModelAction:
        return self.actions[name]

    def update(self, *_) -> None:
        """Re-evaluate every action's predicate (connected to the models' state signals)."""
        for a in self.actions.values():
            a.update_enabled()

    def shortcuts(self) -> list[tuple[str, str]]:
        """``(keys, command)`` for every action with a shortcut."""
        out = []
        for a in self.actions.values():
            keys = ", ".join(k.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts())
            if keys:
                out.append((keys, a.text().replace("&", "").rstrip("…")))
        return out


#: Mouse and view keys that are not actions (they act on the view under the mouse / focus).
VIEW_BINDINGS = [
    ("Up / Page Up", "next slice in the focused view (towards S, A or R)"),
    ("Down / Page Down", "previous slice in the focused view"),
    ("Wheel", "step slices"),
    ("Ctrl+wheel", "zoom"),
    ("Left click / drag", "move the crosshair"),
    ("Right drag", "window/level: horizontal = width, vertical = level"),
    ("Middle drag", "pan"),
    ("Double click", "reset zoom and pan of that view"),
]


class ShortcutsDialog(QtWidgets.QDialog):
    """Help ▸ Shortcuts: every keyboard shortcut and mouse binding."""

    def __init__(self, registry: ActionRegistry, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        rows = registry.shortcuts() + VIEW_BINDINGS
        self.table = QtWidgets.QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Does"])
        for r, (keys, what) in enumerate(rows):
            self.table.setItem(r, 0, QtWidgets.QTableWidgetItem(keys))
            self.table.setItem(r, 1, QtWidgets.QTableWidgetItem(what))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.resizeColumnsToContents()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        self.resize(560, 520)
