"""The case browser: a sortable, filterable table of the open dataset's cases (id, patient,
label, prediction, probability, split, modalities, errors) bound to the
:class:`~mriviewer.app.model.AppModel`, with a search box (case or patient id) and a filter
(labelled, predicted, misclassified, with errors, by split). A patient's cases (studies,
sessions, time points) are listed together; the Patient column shows only when some case
belongs to another patient id than its own. Errors, and a patient's cases, show on hover."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from mriviewer.app import presenters
from mriviewer.app.model import AppModel
from mriviewer.app.presenters import CASE_COLUMNS

__all__ = ["CaseBrowser", "CaseTableModel", "CaseFilter", "FILTERS", "fit_widths"]

#: Filter choices: label → predicate name (see :meth:`CaseFilter.filterAcceptsRow`).
FILTERS = {
    "All cases": "all", "Labelled": "labelled", "Predicted": "predicted",
    "Misclassified": "wrong", "With errors": "errors", "Split: train": "split:train",
    "Split: validation": "split:validation", "Split: test": "split:test",
    "Split: external": "split:external",
}

_ERROR_BG = QtGui.QColor(255, 210, 210)

#: Column index by name (:data:`~mriviewer.app.presenters.CASE_COLUMNS`).
_COL = {name: i for i, name in enumerate(CASE_COLUMNS)}

#: Columns giving up room when the table is narrower than its contents, first to last: errors,
#: split and P, the modalities (their tooltip lists them), the patient and the case ids (what
#: every id shares gives way first), then the class names, which are what a row is read for.
#: A column without any text (no model yet: Prediction, P, Split) goes before all of them, down
#: to an elided header, full in its tooltip.
_SHRINK_ORDER = tuple(_COL[n] for n in ("Errors", "Split", "P", "Modalities", "Patient", "Case", "Prediction", "Label"))
#: The columns of ids, shortened by :class:`_DistinctIds`.
_ID_COLUMNS = (_COL["Case"], _COL["Patient"])
#: A cell's padding around its text (the item view's margins and focus frame).
_CELL_PAD = 14


def fit_widths(wanted: list[int], floors: list[int], order: tuple[int, ...], room: int,
               least: int = 28, grow: int = 0) -> list[int]:
    """Column widths adding up to ``room``: ``wanted`` when they all fit (what is left goes to
    column ``grow``); else the columns shrink one after another in ``order``, first down to
    their ``floors``, then (still too wide) down to ``least``."""
    widths = list(wanted)
    excess = sum(widths) - room
    if excess <= 0:
        widths[grow] -= excess
        return widths
    for bounds in (floors, [least] * len(widths)):
        for c in order:
            give = min(excess, max(0, widths[c] - max(bounds[c], least)))
            widths[c] -= give
            excess -= give
            if excess <= 0:
                return widths
    return widths


class _ElideRight(QtWidgets.QStyledItemDelegate):
    """Class names elide at the end ("MGMT unme…" and "MGMT meth…" stay distinct); case ids
    keep the view's middle elision (file names differ at their ends)."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802 (Qt naming)
        super().initStyleOption(option, index)
        option.textElideMode = QtCore.Qt.TextElideMode.ElideRight


class _DistinctIds(QtWidgets.QStyledItemDelegate):
    """Case and patient ids that do not fit their cell: what every id of the column shares gives
    way first (``…00001-000``, then ``…00001…``: :func:`~mriviewer.app.presenters.short_ids`),
    then the start of what is left (``…001``), so the part that tells them apart stays as long
    as it can; the full id stays in the tooltip, search and sort."""

    def __init__(self, table_model: CaseTableModel, parent=None) -> None:
        super().__init__(parent)
        self.table_model = table_model

    def initStyleOption(self, option, index) -> None:  # noqa: N802 (Qt naming)
        super().initStyleOption(option, index)
        text, fm = option.text, option.fontMetrics
        style = option.widget.style() if option.widget is not None else QtWidgets.QApplication.style()
        margin = style.pixelMetric(QtWidgets.QStyle.PixelMetric.PM_FocusFrameHMargin, option, option.widget) + 1
        room = option.rect.width() - 2 * margin  # the text's room, as the style draws it
        if not text or fm.horizontalAdvance(text) <= room:
            return
        forms = presenters.short_ids(text, self.table_model.affixes.get(index.column(), ("", "")))
        if forms:  # narrower than every form: the distinct part's end ("…001"), where ids differ most
            option.text = next((f for f in forms if fm.horizontalAdvance(f) <= room), None) or \
                fm.elidedText(forms[-1].strip("…"), QtCore.Qt.TextElideMode.ElideLeft, room)


class CaseTableModel(QtCore.QAbstractTableModel):
    """Qt table model over :func:`~mriviewer.app.presenters.case_row`, a patient's cases
    together (:func:`~mriviewer.app.presenters.patient_order`); refreshed from the app model's
    signals.

    Attributes:
        affixes: column → the ``(prefix, suffix)`` its ids share
            (:func:`~mriviewer.app.presenters.id_affixes`).
        has_patients: some case belongs to a patient id other than its own.
    """

    def __init__(self, model: AppModel, parent=None) -> None:
        super().__init__(parent)
        self.app = model
        self._rows = []
        self._index: dict[str, int] = {}
        self._patients: dict[str, list[str]] = {}
        self.affixes: dict[int, tuple[str, str]] = {}
        self.has_patients = False
        model.dataset_changed.connect(self.reset)
        model.checkpoint_changed.connect(self.reset)
        model.prediction_added.connect(self.update_case)

    def reset(self) -> None:
        """Rebuild every row (a new dataset or checkpoint)."""
        cases = presenters.patient_order(self.app.cases)
        self.beginResetModel()
        self._patients = presenters.patient_cases(cases)
        self._rows = [presenters.case_row(self.app, c, self._patients) for c in cases]
        self._index = {r.case_id: i for i, r in enumerate(self._rows)}
        self.has_patients = any(r.patient for r in self._rows)
        self.affixes = {c: presenters.id_affixes(r.values()[c] for r in self._rows) for c in _ID_COLUMNS}
        self.endResetModel()

    def update_case(self, case_id: str) -> None:
        """Rebuild the row of ``case_id`` (its prediction or errors changed)."""
        i = self._index.get(case_id)
        case = self.app.case(case_id)
        if i is None or case is None:
            return
        self._rows[i] = presenters.case_row(self.app, case, self._patients)
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(CASE_COLUMNS) - 1))

    def case_id(self, row: int) -> str:
        """The case id of source row ``row``."""
        return self._rows[row].case_id

    def row_of(self, case_id: str) -> int | None:
        """The source row of ``case_id`` or ``None``."""
        return self._index.get(case_id)

    def row_data(self, row: int):
        """The :class:`~mriviewer.app.presenters.CaseRow` of source row ``row``."""
        return self._rows[row]

    # Qt API
    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: N802, B008
        return len(CASE_COLUMNS)

    def headerData(self, section, orientation, role=QtCore.Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == QtCore.Qt.Orientation.Horizontal and role in (
                QtCore.Qt.ItemDataRole.DisplayRole, QtCore.Qt.ItemDataRole.ToolTipRole):
            return CASE_COLUMNS[section]
        return None

    def data(self, index, role=QtCore.Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r = self._rows[index.row()]
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return r.values()[index.column()]
        col = index.column()
        if role == QtCore.Qt.ItemDataRole.UserRole:  # sort key
            if col == _COL["P"]:
                return -1.0 if r.probability is None else r.probability
            if col == _COL["Patient"]:
                return presenters.patient_sort_key(r)
            return r.values()[col]
        if role == QtCore.Qt.ItemDataRole.ToolTipRole:
            if col == _COL["Patient"] and r.patient_tip:
                return r.patient_tip
            if col == _COL["Case"]:
                return "\n".join(t for t in (r.case_id, r.tooltip) if t)
            return r.tooltip or None
        if role == QtCore.Qt.ItemDataRole.BackgroundRole and r.errors:
            return _ERROR_BG
        if role == QtCore.Qt.ItemDataRole.TextAlignmentRole and col == _COL["P"]:
            return int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        return None


class CaseFilter(QtCore.QSortFilterProxyModel):
    """Search by case or patient id (substring, case-insensitive) and one of :data:`FILTERS`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.search = ""
        self.kind = "all"
        self.setSortRole(QtCore.Qt.ItemDataRole.UserRole)

    def set_search(self, text: str) -> None:
        """Show only the cases whose id or patient id contains ``text`` (case-insensitive)."""
        self.search = text.strip().lower()
        self.invalidateFilter()

    def set_kind(self, kind: str) -> None:
        """Show only the rows of one of :data:`FILTERS`' kinds."""
        self.kind = kind
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:  # noqa: N802
        r = self.sourceModel().row_data(source_row)
        if self.search and self.search not in r.case_id.lower() and self.search not in r.patient.lower():
            return False
        k = self.kind
        if k == "labelled":
            return r.label != "—"
        if k == "predicted":
            return r.probability is not None
        if k == "wrong":
            return r.probability is not None and r.label != "—" and r.prediction != r.label
        if k == "errors":
            return bool(r.errors)
        if k.startswith("split:"):
            return r.split == k.split(":", 1)[1]
        return True


class CaseBrowser(QtWidgets.QWidget):
    """Dataset line, search box, filter and the case table. Selecting a row selects the case in
    the app model; the app model's selection selects the row."""

    def __init__(self, model: AppModel, parent=None) -> None:
        super().__init__(parent)
        self.app = model
        self.table_model = CaseTableModel(model, self)
        self.proxy = CaseFilter(self)
        self.proxy.setSourceModel(self.table_model)
        self.dataset_label = QtWidgets.QLabel(presenters.dataset_summary(model))
        self.dataset_label.setWordWrap(True)
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText("Search case or patient id…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_search)
        self.filter = QtWidgets.QComboBox()
        for label, kind in FILTERS.items():
            self.filter.addItem(label, kind)
        self.filter.currentIndexChanged.connect(lambda _: self.proxy.set_kind(self.filter.currentData()))
        self.count = QtWidgets.QLabel("")
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, QtCore.Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self._elide_right = _ElideRight(self.table)
        for col in (_COL["Label"], _COL["Prediction"]):
            self.table.setItemDelegateForColumn(col, self._elide_right)
        self._distinct_ids = _DistinctIds(self.table_model, self.table)
        for col in _ID_COLUMNS:
            self.table.setItemDelegateForColumn(col, self._distinct_ids)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(28)
        header.setStretchLastSection(False)
        header.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._wanted: tuple[list[int], list[int]] | None = None
        self.table.viewport().installEventFilter(self)  # refit when the dock or scroll bar resizes it
        self.table_model.dataChanged.connect(self._contents_changed)
        self.table_model.modelReset.connect(self._refit)
        self.fit_columns()
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.search, 1)
        row.addWidget(self.filter)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.dataset_label)
        lay.addLayout(row)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.count)
        model.dataset_changed.connect(self._dataset_changed)
        model.case_selected.connect(self._select_row)
        model.prediction_added.connect(lambda _: self._update_count())
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)

    # ------------------------------------------------------------------ binding
    def _dataset_changed(self) -> None:
        self.dataset_label.setText(presenters.dataset_summary(self.app))
        self.fit_columns()  # measured already: the table model's reset came first
        self._update_count()

    def _contents_changed(self, *_) -> None:
        self._wanted = None

    def _refit(self) -> None:
        self._wanted = None
        self.fit_columns()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt naming)
        """Refit the columns when the table's viewport changes width."""
        if obj is self.table.viewport() and event.type() == QtCore.QEvent.Type.Resize \
                and event.size().width() != event.oldSize().width():
            self.fit_columns()
        return super().eventFilter(obj, event)

    def _measure(self) -> tuple[list[int], list[int]]:
        """Each column's ``(wanted, floor)`` widths: its header's and widest cell's, and the
        least it keeps readable (its widest cell; "all 4" for modalities; for ids, the widest
        without what they all share). A hidden column wants nothing."""
        header, fm, tm = self.table.horizontalHeader(), self.table.fontMetrics(), self.table_model
        n = len(CASE_COLUMNS)
        texts = [{str(t) for t in column if t} for column in zip(*(tm.row_data(r).values()
                                                                   for r in range(tm.rowCount())), strict=True)]
        texts = texts or [set() for _ in range(n)]

        def widest(items) -> int:
            return max((fm.horizontalAdvance(t) + _CELL_PAD for t in items), default=0)

        cells = [widest(t) for t in texts]
        wanted = [max(header.sectionSizeHint(c), cells[c]) for c in range(n)]
        floors = list(cells)
        for c in _ID_COLUMNS:
            short = (presenters.short_ids(t, tm.affixes.get(c, ("", ""))) for t in texts[c])
            floors[c] = min(cells[c], widest(f[-1] for f in short if f) or fm.horizontalAdvance("0000…0000") + _CELL_PAD)
        floors[_COL["Modalities"]] = min(cells[_COL["Modalities"]], fm.horizontalAdvance("all 4") + _CELL_PAD)
        for c in (_COL["Label"], _COL["Prediction"]):
            floors[c] = wanted[c] if cells[c] else 0
        for c in range(n):
            if self.table.isColumnHidden(c):
                wanted[c] = floors[c] = 0
        return wanted, floors

    def fit_columns(self) -> None:
        """Every column visible at the table's width: each as wide as its header and cells
        when they all fit (the case id gets what is left); else the columns give up room in
        :data:`_SHRINK_ORDER`, the class names last, so "unmethylated" stays whole."""
        patient = _COL["Patient"]
        if self.table.isColumnHidden(patient) == self.table_model.has_patients:
            self.table.setColumnHidden(patient, not self.table_model.has_patients)
            self._wanted = None
        if self._wanted is None:
            self._wanted = self._measure()
        wanted, floors = self._wanted
        header = self.table.horizontalHeader()
        shown = [c for c in range(len(wanted)) if not self.table.isColumnHidden(c)]
        order = sorted((c for c in _SHRINK_ORDER if c in shown), key=lambda c: floors[c] > 0)  # empty first
        widths = fit_widths([wanted[c] for c in shown], [floors[c] for c in shown],
                            tuple(shown.index(c) for c in order),
                            self.table.viewport().width(), least=header.minimumSectionSize())
        for col, w in zip(shown, widths, strict=True):
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, w)

    def _update_count(self, *_) -> None:
        n, total = self.proxy.rowCount(), self.table_model.rowCount()
        self.count.setText(f"{n} of {total} cases shown" if n != total else f"{total} cases")

    def visible_case_ids(self) -> list[str]:
        """Case ids in the browser's current (sorted, filtered) order."""
        return [self.table_model.case_id(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
                for r in range(self.proxy.rowCount())]

    def _selection_changed(self, *_) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        case_id = self.table_model.case_id(self.proxy.mapToSource(rows[0]).row())
        if case_id != self.app.case_id:
            self.app.select_case(case_id)

    def _select_row(self, case_id: str) -> None:
        src = self.table_model.row_of(case_id)
        if src is None:
            return
        idx = self.proxy.mapFromSource(self.table_model.index(src, 0))
        if not idx.isValid():  # filtered out: show it anyway by clearing the search
            self.search.clear()
            self.filter.setCurrentIndex(0)
            idx = self.proxy.mapFromSource(self.table_model.index(src, 0))
        current = self.table.selectionModel().selectedRows()
        if current and current[0].row() == idx.row():
            return
        self.table.selectRow(idx.row())
        self.table.scrollTo(idx)
