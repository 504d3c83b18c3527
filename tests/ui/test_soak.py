"""A short soak of the real window (benchmarks/soak_view.py with 1,500 operations): slice steps,
overlay toggles, layout/modality and case switches end without an error and without memory
growing by more than the volumes of a few cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "soak_view.py"


def test_soak_without_errors_or_growing_memory(qtbot, tmp_path):
    spec = importlib.util.spec_from_file_location("soak_view", BENCH)
    soak_view = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak_view)
    win, app = soak_view.open_window(tmp_path, n_cases=6)
    qtbot.addWidget(win)
    errors: list[str] = []
    win.model.error.connect(errors.append)
    result = soak_view.soak(win, app, ops=1500, seed=3)
    assert errors == []
    assert result["case_switches"] >= 20
    # Six 4-modality cases of 64×64×32 float32 are ~1.5 MiB each; the caches are bounded.
    assert result["rss_growth_mb"] < 60, result
    qtbot.waitUntil(lambda: not win.workers.busy, timeout=60000)
