"""Shared fixtures.

Real MRI comes from ``$MRIVIEWER_TEST_DATA`` (default ``../shared/data`` next to the project);
tests that need it skip with the reason when it is absent. Everything else runs on data the
tests generate.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Everything the suite writes to the temporary directory goes into one folder of this session,
# removed when the session ends (pytest_unconfigure): pytest's tmp_path folders, the caches
# below, Hypothesis' database, and what subprocesses (torchrun, torch's compiler) put in $TMPDIR.
# MRIVIEWER_KEEP_TEST_TMP=1 keeps it (its path is printed).
SESSION_TMP = tempfile.mkdtemp(prefix="mriviewer-tests-")
tempfile.tempdir = SESSION_TMP
os.environ["TMPDIR"] = SESSION_TMP
# The process-wide disk cache of decoded volumes goes to a temporary folder, never ~/.cache.
# (a folder inside a fresh one: the training samples go next to it, so they are private too)
os.environ["MRIVIEWER_CACHE_DIR"] = os.path.join(tempfile.mkdtemp(prefix="mriviewer-cache-"), "volumes")
# The GUI's QSettings go to a temporary INI file, never the user's settings.
os.environ["MRIVIEWER_SETTINGS"] = os.path.join(tempfile.mkdtemp(prefix="mriviewer-settings-"), "settings.ini")


def pytest_unconfigure(config):
    if os.environ.get("MRIVIEWER_KEEP_TEST_TMP") == "1":
        print(f"\ntest temporary files kept in {SESSION_TMP}")
        return
    shutil.rmtree(SESSION_TMP, ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MRIVIEWER_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()


def real_data(rel: str) -> Path:
    """Path of ``rel`` under the real-data folder, or skip the test saying what is missing."""
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"real data not found: {path} (set MRIVIEWER_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo dataset (12 cases, 40×40 in-plane, 20 slices), made once per session."""
    from mriviewer.demo.dataset import make_demo_dataset

    out = tmp_path_factory.mktemp("demo")
    return make_demo_dataset(out, n_cases=12, seed=1, matrix=40, n_slices=20)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Runs and caches of the GUI go to a temporary folder, never the user's home."""
    monkeypatch.setenv("MRIVIEWER_RUNS_DIR", str(tmp_path / "runs"))


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory) -> Path:
    """40 NIfTI phantoms (32×32×24 at 2 mm, BraTS 2018 layout): label 1 = a bright lesion that
    ``GT_W`` marks, label 0 = none. The label is visible, so a model must separate them."""
    from tests.phantoms import make_lesion_phantoms

    return make_lesion_phantoms(tmp_path_factory.mktemp("phantoms"), n_cases=40, seed=0)
