"""The case browser alone (offscreen, no window, nothing loaded): the Patient column after Case
with a tooltip counting the patient's cases, a patient's cases together by default and when
sorted by patient, search by case or patient id, and BraTS ids that still tell the cases apart
in a narrow column ("…00001-000", not "Bra…000")."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui


def _brats(n_patients: int = 40, later: tuple[int, ...] = (2,)):
    """BraTS 2023 ids: one time point per patient, a second one (``-001``) for ``later``,
    listed at the end as a folder listing of other names might."""
    from mriviewer.data.cases import Case, Dataset, ModalitySource

    def case(p: int, t: int) -> Case:
        cid = f"BraTS-GLI-{p:05d}-{t:03d}"
        mods = {m: ModalitySource(m, Path(f"/nowhere/{cid}-{m}.nii.gz"), "nifti")
                for m in ("FLAIR", "T1w", "T1wCE", "T2w")}
        return Case(cid, mods, patient_id=f"BraTS-GLI-{p:05d}")

    cases = [case(p, 0) for p in range(1, n_patients + 1)] + [case(p, 1) for p in later]
    return Dataset(Path("/nowhere"), "brats", cases)


@pytest.fixture
def browser(qtbot):
    from mriviewer.app.model import AppModel
    from mriviewer.ui.controls.case_browser import CaseBrowser

    model = AppModel()
    b = CaseBrowser(model)
    qtbot.addWidget(b)
    b.resize(460, 700)
    b.show()
    model.open_dataset(_brats())
    qtbot.waitUntil(lambda: b.table_model.rowCount() == 41, timeout=5000)
    return b


def _cell(b, row: int, name: str, role=None):
    from PySide6 import QtCore

    from mriviewer.app.presenters import CASE_COLUMNS

    return b.proxy.index(row, CASE_COLUMNS.index(name)).data(role or QtCore.Qt.ItemDataRole.DisplayRole)


def test_patient_column_keeps_a_patients_cases_together(browser):
    from PySide6 import QtCore

    from mriviewer.app.presenters import CASE_COLUMNS

    b, patient = browser, CASE_COLUMNS.index("Patient")
    assert CASE_COLUMNS.index("Case") + 1 == patient and not b.table.isColumnHidden(patient)
    ids = b.visible_case_ids()
    assert ids[:3] == ["BraTS-GLI-00001-000", "BraTS-GLI-00002-000", "BraTS-GLI-00002-001"]  # together
    assert _cell(b, 1, "Patient") == "BraTS-GLI-00002"
    tip = _cell(b, 1, "Patient", QtCore.Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Patient BraTS-GLI-00002: 2 cases (studies, sessions or time points)")
    assert "1 case (study" in _cell(b, 0, "Patient", QtCore.Qt.ItemDataRole.ToolTipRole)
    assert _cell(b, 1, "Case", QtCore.Qt.ItemDataRole.ToolTipRole).splitlines()[0] == "BraTS-GLI-00002-000"
    # Sorted by patient, either way, the two time points stay next to each other.
    for order in (QtCore.Qt.SortOrder.DescendingOrder, QtCore.Qt.SortOrder.AscendingOrder):
        b.table.sortByColumn(patient, order)
        ids = b.visible_case_ids()
        i = ids.index("BraTS-GLI-00002-000")
        assert {ids[i - 1], ids[i + 1]} & {"BraTS-GLI-00002-001"}, ids[i - 1:i + 2]
    # The search box finds a patient's cases by the patient id, and cases by their own.
    b.search.setText("gli-00002")
    assert b.visible_case_ids() == ["BraTS-GLI-00002-000", "BraTS-GLI-00002-001"]
    b.search.setText("00002-001")
    assert b.visible_case_ids() == ["BraTS-GLI-00002-001"]
    b.search.clear()


def test_the_patient_column_hides_when_every_case_is_its_own_patient(browser, qtbot):
    from mriviewer.app.presenters import CASE_COLUMNS
    from mriviewer.data.cases import Case, Dataset

    browser.app.open_dataset(Dataset(Path("/x"), "nifti", [Case("00001"), Case("00002", patient_id="00002")]))
    assert browser.table.isColumnHidden(CASE_COLUMNS.index("Patient"))
    header = browser.table.horizontalHeader()
    shown = [c for c in range(len(CASE_COLUMNS)) if not browser.table.isColumnHidden(c)]
    assert sum(header.sectionSize(c) for c in shown) <= browser.table.viewport().width()


def test_narrow_id_columns_show_what_tells_the_cases_apart(browser, qtbot):
    from PySide6 import QtWidgets

    from mriviewer.app.presenters import CASE_COLUMNS

    b = browser
    case_col = CASE_COLUMNS.index("Case")
    delegate = b.table.itemDelegateForColumn(case_col)
    fm = b.table.fontMetrics()
    header = b.table.horizontalHeader()

    def shown_text(row: int, width: int) -> str:
        header.resizeSection(case_col, width)
        option = QtWidgets.QStyleOptionViewItem()
        option.initFrom(b.table.viewport())
        option.rect.setWidth(width)
        index = b.proxy.index(row, case_col)
        delegate.initStyleOption(option, index)
        return option.text

    full = "BraTS-GLI-00001-000"
    assert b.table_model.affixes[case_col] == ("BraTS-GLI-", "")  # "-000" is not shared by -001
    assert shown_text(0, fm.horizontalAdvance(full) + 40) == full
    narrow = fm.horizontalAdvance("…00001-000") + 16
    assert shown_text(0, narrow) == "…00001-000"
    texts = {shown_text(r, narrow) for r in range(b.proxy.rowCount())}
    assert len(texts) == b.proxy.rowCount()  # one text per case, none "Bra…000"
    assert b.proxy.index(0, case_col).data() == full  # the model keeps the whole id (sort, search)
    # Without the later time point every id ends in "-000": that goes too when narrower still.
    b.app.open_dataset(_brats(later=()))
    assert b.table_model.affixes[case_col] == ("BraTS-GLI-", "-000")
    assert shown_text(0, fm.horizontalAdvance("…00001…") + 16) == "…00001…"
    tiny = fm.horizontalAdvance("…001") + 8  # narrower still: the end of the part that differs
    assert shown_text(0, tiny).endswith("001") and shown_text(1, tiny).endswith("002")
    # At the dock's width every column shows, the Case and Patient columns at least as wide as
    # their shortest distinct forms.
    b.fit_columns()
    assert header.sectionSize(case_col) >= fm.horizontalAdvance("…00001…")
    assert header.sectionSize(CASE_COLUMNS.index("Patient")) >= fm.horizontalAdvance("…00001")
    assert sum(header.sectionSize(c) for c in range(len(CASE_COLUMNS))) <= b.table.viewport().width()
