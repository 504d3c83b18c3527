"""Fixtures of the GUI tests."""

from __future__ import annotations

import pytest


def settled(qtbot, panel) -> None:
    """Wait for the train panel's device line (a thread importing torch) before the panel goes."""
    qtbot.waitUntil(lambda: panel.device_label.text() != "…", timeout=60000)


@pytest.fixture
def panel(qtbot):
    """A TrainPanel alone (420 × 800), shown; removed once its device line has settled."""
    from mriviewer.ui.controls.train import TrainPanel

    p = TrainPanel()
    qtbot.addWidget(p)
    p.resize(420, 800)
    p.show()
    yield p
    settled(qtbot, p)
