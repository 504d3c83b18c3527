"""File ▸ Load labels… on a BIDS dataset offers its own participants.tsv first."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui


def test_load_labels_offers_participants_tsv(qtbot, tmp_path):
    from mriviewer.app.model import AppModel
    from mriviewer.ui.dialogs.label_table import LabelTableDialog
    from tests.data.test_bids import make_bids

    root = make_bids(tmp_path / "ds")
    model = AppModel()
    model.open_path(root)
    assert model.dataset.layout == "bids"
    dlg = LabelTableDialog(model)
    qtbot.addWidget(dlg)
    assert dlg.path.text() == str(root / "participants.tsv")
    dlg.label_column.setCurrentIndex(dlg.label_column.findText("sex"))
    text = dlg.preview.toPlainText()
    assert "8 of 8 cases labelled" in text, text
    assert "participant_id" in text
