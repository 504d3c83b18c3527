"""Checkpoint manager: the runs under the runs folder (or any folder) with each checkpoint's
metadata (model, preset, data source, date, test metrics, software version) from
:func:`mriviewer.ml.checkpoint.describe_checkpoint`; one that does not fit the open dataset's
modalities is marked and refused on load with the reason."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

__all__ = ["CheckpointDialog", "COLUMNS"]

COLUMNS = ("Checkpoint", "Model", "Preset", "Modalities", "Data", "Date", "Test AUC (95 % CI)", "Version")


class CheckpointDialog(QtWidgets.QDialog):
    """Lists checkpoints found under ``root``; ``chosen`` is the path the user loads."""

    def __init__(self, root: str | Path, dataset=None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Checkpoints")
        self.dataset = dataset
        self.chosen: str | None = None
        self.root_edit = QtWidgets.QLineEdit(str(root))
        browse = QtWidgets.QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        rescan = QtWidgets.QPushButton("Rescan")
        rescan.clicked.connect(self.scan)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda *_: self._load())
        self.note = QtWidgets.QLabel("")
        self.note.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox()
        self.load_button = buttons.addButton("Load", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self._load)
        buttons.rejected.connect(self.reject)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Folder"))
        top.addWidget(self.root_edit, 1)
        top.addWidget(browse)
        top.addWidget(rescan)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.note)
        lay.addWidget(buttons)
        self.resize(1000, 420)
        self.scan()

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder with runs", self.root_edit.text())
        if folder:
            self.root_edit.setText(folder)
            self.scan()

    def scan(self) -> None:
        """Fill the table from the checkpoints under the folder (three levels deep at most)."""
        from mriviewer.ml.checkpoint import find_checkpoints

        root = Path(self.root_edit.text()).expanduser()
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            rows = find_checkpoints(root)
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        have = set(self.dataset.modalities) if self.dataset is not None else None
        for r, info in enumerate(rows):
            auc, ci = info.get("test_auc"), info.get("test_auc_ci") or [None, None]
            auc_text = "—" if auc is None else f"{auc:.3f}" + (
                f" ({ci[0]:.2f}–{ci[1]:.2f})" if None not in ci else "")
            if info.get("cv_auc") is not None:
                auc_text += f"; CV pooled {info['cv_auc']:.3f}"
            mods = info.get("modalities") or []
            values = (str(info["path"]), info.get("model", "?"), info.get("preset") or "—", ", ".join(mods),
                      info.get("dataset_root") or "—", info.get("created") or "—", auc_text,
                      info.get("software_version") or "?")
            problem = info.get("error")
            if not problem and have is not None and mods and not info.get("is_2d") and not set(mods) <= have:
                problem = f"needs {', '.join(sorted(set(mods) - have))}, not in the open dataset"
            for c, v in enumerate(values):
                item = QtWidgets.QTableWidgetItem(v)
                if problem:
                    item.setForeground(QtGui.QColor(150, 150, 150))
                    item.setToolTip(problem)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), 360))
        self.note.setText(f"{len(rows)} checkpoint(s) under {root}" if rows else
                          f"No checkpoints under {root}. Train a model, or choose another folder.")

    def _load(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        self.chosen = self.table.item(rows[0].row(), 0).text()
        self.accept()
