"""File ▸ Load labels…: a researcher's own label table (CSV, TSV, Excel), its columns picked,
the matches previewed with the value counts and doubts, values mapped to classes — the GUI of
``--labels`` / ``mriviewer labels``."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

from mriviewer.app import presenters
from mriviewer.core.errors import MriViewerError

_DETECT = "(detect)"
_NONE = "(none)"


def _picked(combo: QtWidgets.QComboBox) -> str | None:
    """The column a combo names, ``None`` for (detect) / (none)."""
    text = combo.currentText()
    return text if text not in (_DETECT, _NONE, "") else None


class LabelTableDialog(QtWidgets.QDialog):
    """Pick a table and its columns; the preview updates as they change; OK when some case gets a
    label. :meth:`spec` is the choice as a :class:`~mriviewer.data.label_table.LabelSpec`."""

    def __init__(self, model, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Load labels")
        self.model = model
        self._table = None  # (path, DataFrame) of the file read last
        self.path = QtWidgets.QLineEdit()
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.label_column, self.id_column, self.patient_column = (QtWidgets.QComboBox() for _ in range(3))
        self.label_map = QtWidgets.QLineEdit(placeholderText="e.g. 2=LGG,3=LGG,4=HGG (optional)")
        self.exclude = QtWidgets.QLineEdit(placeholderText="values to leave out, comma-separated (optional)")
        self.preview = QtWidgets.QTextBrowser()
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                                  | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Table", row)
        form.addRow("Label column", self.label_column)
        form.addRow("Id column", self.id_column)
        form.addRow("Patient column", self.patient_column)
        form.addRow("Map values", self.label_map)
        form.addRow("Exclude values", self.exclude)
        form.addRow(self.preview)
        form.addRow(self.buttons)
        self.resize(560, 520)
        self.path.editingFinished.connect(self._read)
        for combo in (self.label_column, self.id_column, self.patient_column):
            combo.currentIndexChanged.connect(self.refresh)
        for edit in (self.label_map, self.exclude):
            edit.editingFinished.connect(self.refresh)
        own = self._own_table()
        if own is not None:
            self.set_path(own)
        else:
            self.refresh()

    def _own_table(self) -> Path | None:
        """A BIDS dataset's ``participants.tsv``, offered first (its columns are the labels)."""
        ds = self.model.dataset
        if ds is not None and ds.layout == "bids" and (ds.root / "participants.tsv").is_file():
            return ds.root / "participants.tsv"
        return None

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Label table", "", "Tables (*.csv *.tsv *.txt *.tab *.xlsx *.xlsm);;All files (*)")
        if path:
            self.set_path(path)

    def set_path(self, path: str | Path) -> None:
        """Read the table at ``path`` and offer its columns."""
        self.path.setText(str(path))
        self._read()

    def _read(self) -> None:
        from mriviewer.data.label_table import read_table

        path = self.path.text().strip()
        self._table = None
        if path:
            try:
                self._table = (Path(path), read_table(path))
            except MriViewerError as exc:
                self.preview.setText(str(exc))
        cols = list(self._table[1].columns) if self._table else []
        for combo, first in ((self.label_column, None), (self.id_column, _DETECT), (self.patient_column, _NONE)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(([first] if first else []) + cols)
            combo.blockSignals(False)
        self.refresh()

    def spec(self):
        """The chosen :class:`~mriviewer.data.label_table.LabelSpec`, or ``None`` without a table.

        Raises:
            LabelFileError: the mapping is not ``VALUE=CLASS,…``.
        """
        from mriviewer.data.label_table import LabelSpec, parse_label_map

        if self._table is None:
            return None
        exclude = tuple(v.strip() for v in self.exclude.text().split(",") if v.strip())
        return LabelSpec(self._table[0], _picked(self.label_column), _picked(self.id_column),
                         _picked(self.patient_column),
                         parse_label_map(self.label_map.text()), exclude)

    def refresh(self) -> None:
        """Match the current choice against the open dataset and show the preview."""
        from mriviewer.data.label_table import describe_columns, match_labels

        ok_button = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        ok_button.setEnabled(False)
        if self._table is None or self.model.dataset is None:
            if self._table is None and not self.path.text().strip():
                self.preview.setText("Choose a CSV, TSV or Excel table with an id column and a label column.")
            return
        try:
            spec = self.spec()
            match = match_labels(self.model.dataset, spec, self._table[1])
        except MriViewerError as exc:
            self.preview.setText(str(exc))
            return
        self.preview.setHtml(presenters.label_match_html(match, describe_columns(self._table[1]),
                                                         len(self.model.dataset.cases)))
        ok_button.setEnabled(bool(match.labels))
