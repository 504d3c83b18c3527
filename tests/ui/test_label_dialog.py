"""File ▸ Load labels…: a clinical sheet's column chosen in the dialog labels the open dataset."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

SHEET = "PatientID,age,IDH,grade\n" + "".join(f"{n},{40 + n},{'mutant' if n % 3 == 0 else 'wildtype'},{2 + n % 3}\n"
                                              for n in range(11))


def test_load_labels_dialog_previews_and_applies_a_column(qtbot, demo_dir, tmp_path):
    from PySide6 import QtWidgets

    from mriviewer.ui.dialogs.label_table import LabelTableDialog
    from mriviewer.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.volume_shown, timeout=30000):
        win.open_path(demo_dir)
    assert win.actions["load_labels"].isEnabled()
    sheet = tmp_path / "clinical.csv"
    sheet.write_text(SHEET)
    dlg = LabelTableDialog(win.model, win)
    qtbot.addWidget(dlg)
    ok = dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
    dlg.set_path(sheet)
    dlg.label_column.setCurrentIndex(dlg.label_column.findText("IDH"))
    text = dlg.preview.toPlainText()
    assert "11 of 12 cases labelled" in text and "mutant: 4" in text and "1 cases without a row: 00011" in text
    assert "id column 'PatientID' (detected" in text and ok.isEnabled()
    dlg.label_map.setText("2=LGG,3=LGG")  # 4 is left out of the map: said
    dlg.label_column.setCurrentIndex(dlg.label_column.findText("grade"))
    dlg.refresh()
    assert "values not in the mapping: 4 (3)" in dlg.preview.toPlainText()
    dlg.label_map.setText("")
    dlg.label_column.setCurrentIndex(dlg.label_column.findText("IDH"))
    win.model.apply_label_table(dlg.spec())
    assert win.model.dataset.class_names == ["mutant", "wildtype"]
    from mriviewer.app.presenters import CASE_COLUMNS

    labels = [win.case_table.model().index(r, CASE_COLUMNS.index("Label")).data() for r in range(3)]
    assert labels == ["mutant", "wildtype", "wildtype"]
    qtbot.waitUntil(lambda: not win.workers.busy, timeout=60000)
