"""Soak: thousands of slice changes, overlay toggles, layout and modality switches and case
switches in the real main window, without a crash or growing memory.

The window opens a generated demo dataset, a fake Grad-CAM map (a smooth blob) is laid over
every case shown, and ``--ops`` operations are drawn at random (seeded): 80 % slice steps along
a random axis, 8 % overlay toggles (Grad-CAM, segmentation, opacity, threshold), 4 % layout or
modality switches, 8 % case switches (each waits for the case to load, as a user would). After
every operation the event loop runs once, so every change is painted, as on a user's screen. The
resident set size (RSS, ``/proc/self/statm``) is sampled after the warm-up (first 10 % of the
operations) and at the end.

Prints one line per phase and, last: ``ops=N rss_growth_mb=G seconds=S``

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/soak_view.py [--ops 10000]``
(``tests/test_soak.py`` runs it with fewer operations.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux ``/proc``; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def soak(win, app, ops: int, seed: int = 0, timeout_s: float = 60.0) -> dict:
    """Run ``ops`` random operations on ``win`` (a MainWindow with a dataset open). Returns
    ``{"ops", "rss_start_mb", "rss_end_mb", "rss_growth_mb", "seconds", "case_switches"}``.

    Raises:
        TimeoutError: a case did not load within ``timeout_s``.
    """
    rng = np.random.default_rng(seed)
    st, model = win.state, win.model
    ids = [c.case_id for c in model.cases if c.modalities]

    def wait_shown(case_id: str) -> None:
        t0 = time.time()
        while st.case_id != case_id or st.volume is None:
            app.processEvents()
            if time.time() - t0 > timeout_s:
                raise TimeoutError(f"case {case_id} not shown after {timeout_s} s")
            time.sleep(0.001)

    def lay_cam() -> None:
        shape = np.array(st.volume.shape)
        grid = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), -1)
        centre = shape * rng.uniform(0.3, 0.7, 3)
        cam = np.exp(-(((grid - centre) / (shape / 5)) ** 2).sum(-1)).astype(np.float32)
        st.set_overlay(cam)

    warm = max(1, ops // 10)
    rss_start = rss_mb()
    t_start = time.perf_counter()
    switches = 0
    for n in range(ops):
        if n == warm:
            app.processEvents()
            rss_start, t_start = rss_mb(), time.perf_counter()
        r = rng.random()
        if r < 0.80:
            st.step(int(rng.integers(3)), int(rng.choice([-1, 1])))
        elif r < 0.88:
            which = rng.integers(4)
            if which == 0:
                st.set_overlay_options(visible=not st.overlay_visible)
            elif which == 1:
                st.set_segmentation_options(visible=not st.segmentation_visible)
            elif which == 2:
                st.set_overlay_options(opacity=float(rng.random()))
            else:
                st.set_overlay_options(threshold=float(rng.uniform(0, 0.5)))
        elif r < 0.92:
            if rng.random() < 0.5:
                st.set_layout("grid" if st.layout == "single" else "single")
            else:
                win.cycle_modality()
        else:
            case_id = ids[int(rng.integers(len(ids)))]
            if case_id != st.case_id:
                model.select_case(case_id)
                wait_shown(case_id)
                lay_cam()
                switches += 1
        app.processEvents()  # paint this change (and deliver the readout's throttled refresh)
    app.processEvents()
    rss_end = rss_mb()
    return {"ops": ops, "rss_start_mb": rss_start, "rss_end_mb": rss_end,
            "rss_growth_mb": rss_end - rss_start, "seconds": time.perf_counter() - t_start,
            "case_switches": switches}


def isolated_env(prefix: str) -> Path:
    """A temporary folder for runs, caches and settings (never the user's); returns it."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.setdefault("MRIVIEWER_RUNS_DIR", str(tmp / "runs"))
    os.environ.setdefault("MRIVIEWER_CACHE_DIR", str(tmp / "cache" / "volumes"))
    os.environ.setdefault("MRIVIEWER_SETTINGS", str(tmp / "settings.ini"))
    return tmp


def open_window(tmp: Path, n_cases: int = 12, matrix: int = 64, n_slices: int = 32):
    """A shown MainWindow on a generated demo dataset, its first case loaded (also used by
    ``bench_responsiveness.py``)."""
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    from mriviewer.demo.dataset import make_demo_dataset
    from mriviewer.ui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    pg.setConfigOptions(imageAxisOrder="row-major")
    demo = make_demo_dataset(tmp / "demo", n_cases=n_cases, seed=1, matrix=matrix, n_slices=n_slices)
    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    win.open_path(demo)
    t0 = time.time()
    while win.state.volume is None and time.time() - t0 < 120:
        app.processEvents()
        time.sleep(0.01)
    return win, app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    win, app = open_window(isolated_env("mriviewer-soak-"))
    print(f"window open, RSS {rss_mb():.0f} MiB")
    r = soak(win, app, args.ops, args.seed)
    print(f"{r['ops']} operations ({r['case_switches']} case switches) in {r['seconds']:.1f} s; "
          f"RSS after warm-up {r['rss_start_mb']:.0f} MiB, at the end {r['rss_end_mb']:.0f} MiB")
    win.close()
    print(f"ops={r['ops']} rss_growth_mb={r['rss_growth_mb']:.1f} seconds={r['seconds']:.1f}")


if __name__ == "__main__":
    main()
