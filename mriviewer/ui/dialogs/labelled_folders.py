"""File ▸ Open labelled folders: rows of (class, folder) assembled into one labelled dataset."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

__all__ = ["LabelledFoldersDialog"]


class LabelledFoldersDialog(QtWidgets.QDialog):
    """Rows of (class, folder): several folders assembled into one labelled dataset, e.g. HGG,
    LGG and healthy brains from three archives (the GUI's ``--data LABEL=PATH``)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open labelled folders")
        self.table = QtWidgets.QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Class", "Folder"])
        self.table.horizontalHeader().setStretchLastSection(True)
        add = QtWidgets.QPushButton("Add folder…")
        add.clicked.connect(self._add)
        remove = QtWidgets.QPushButton("Remove")
        remove.clicked.connect(lambda: self.table.removeRow(self.table.currentRow()))
        note = QtWidgets.QLabel("Each folder's cases get its class. If a class comes from one source only, "
                                "the run warns that the model may learn the source, not the disease.")
        note.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.resize(640, 320)

    def add_row(self, label: str, folder: str) -> None:
        """Add a (class, folder) row."""
        n = self.table.rowCount()
        self.table.insertRow(n)
        self.table.setItem(n, 0, QtWidgets.QTableWidgetItem(label))
        self.table.setItem(n, 1, QtWidgets.QTableWidgetItem(folder))

    def _add(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of one class")
        if folder:
            self.add_row(Path(folder).name, folder)

    def sources(self) -> list[tuple[str, str]]:
        """The ``(class, folder)`` rows with both filled in."""
        out = []
        for r in range(self.table.rowCount()):
            label, folder = (self.table.item(r, c) for c in (0, 1))
            if label and folder and label.text().strip() and folder.text().strip():
                out.append((label.text().strip(), folder.text().strip()))
        return out
