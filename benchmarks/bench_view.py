"""Drawing speed of the viewer against bare pyqtgraph, measured in one run on the same slices.

A 240×240×155 volume (BraTS size) with a [0, 1] Grad-CAM map. One "update" moves the crosshair
one voxel along all three axes and repaints: every shown plane gets a new slice and overlay.

* **baseline** — bare pyqtgraph: three ``ImageItem``s for the slices (explicit levels) and three
  for the overlay (a 256-entry RGBA lookup table, explicit levels), in three ``ViewBox``es laid
  out as mriviewer's single layout (axial and coronal above, sagittal below left, the fourth
  cell empty) in a window of the same size, so both paint the same slices at the same size on
  screen; fed the same ``plane_slice`` arrays; nothing else.
* **single** — mriviewer's single layout (three :class:`SliceView`s with crosshair lines and
  orientation letters), driven through :class:`ViewerState.set_cursor`; the whole views area
  with the location panel is printed too.
* **grid** — the modality × plane grid with four modalities (twelve views).

Each figure is the mean of ``--updates`` updates after a warm-up, each update followed by
``QApplication.processEvents()``, which delivers the paint events the changed items posted, so the
time includes the drawing, as in the running app. (``QWidget.repaint()`` paints nothing on the
offscreen platform: timed that way, both sides measured only the Python data path. The benchmark
counts ``ImageItem.paint`` calls and prints the paints per update, so a run that did not draw is
visible.) ``--repeat`` rounds measure the four variants in
turn and the ratios are the medians of the rounds' ratios (a 2-core machine is noisy). Goals (issue 7): single ≤ 1.3× the baseline,
grid ≤ 4× single.

Prints one line per measurement and, last:
``view_vs_pyqtgraph=<single / baseline> grid_vs_single=<grid / single>``

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_view.py [--updates 200]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402

from mriviewer.app.viewer import ViewerState  # noqa: E402
from mriviewer.core.colour import overlay_lut  # noqa: E402
from mriviewer.core.planes import PLANES, plane_slice  # noqa: E402
from mriviewer.core.volume import Volume  # noqa: E402

SHAPE = (240, 240, 155)


def make_case(n_modalities: int = 4) -> tuple[dict[str, Volume], np.ndarray]:
    rng = np.random.default_rng(0)
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in SHAPE), indexing="ij")
    head = (i ** 2 + j ** 2 + k ** 2 < 0.8).astype(np.float32)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    vols = {}
    for n, m in enumerate(("FLAIR", "T1w", "T1wCE", "T2w")[:n_modalities]):
        data = head * (500 + 100 * n) + rng.normal(0, 20, SHAPE).astype(np.float32)
        vols[m] = Volume(data.astype(np.float32), affine, m)
    cam = np.exp(-((i - 0.3) ** 2 + j ** 2 + k ** 2) / 0.1).astype(np.float32)
    return vols, cam


#: Every window measured, kept alive to the end of the run: destroying pyqtgraph views between
#: rounds while their paint events were pending crashed the next ``ViewBox`` (a bus error).
KEEP: list = []

#: ``ImageItem.paint`` calls that drew an image, counted by :func:`count_paints`.
PAINTS = {"n": 0}


def count_paints() -> None:
    """Count the ``ImageItem`` paints that draw an image (every variant alike: one wrapper call)."""
    paint = pg.ImageItem.paint

    def counted(self, *args):
        if self.image is not None:
            PAINTS["n"] += 1
        return paint(self, *args)

    pg.ImageItem.paint = counted


def time_updates(step, app, n: int) -> tuple[float, float]:
    """Mean seconds of ``step(t); app.processEvents()`` over ``n`` updates (after 10 warm-up
    ones), and the images painted per update."""
    for t in range(10):
        step(t)
        app.processEvents()
    PAINTS["n"] = 0
    t0 = time.perf_counter()
    for t in range(n):
        step(10 + t)
        app.processEvents()
    return (time.perf_counter() - t0) / n, PAINTS["n"] / n


def bare_pyqtgraph(vols, cam, n: int, app) -> float:
    data = next(iter(vols.values())).data
    win = pg.GraphicsLayoutWidget()
    win.resize(900, 900)
    items = []
    lut = overlay_lut("inferno", 0.15)
    for p, (row, col) in zip(PLANES, ((0, 0), (0, 1), (1, 0)), strict=True):
        vb = win.addViewBox(row=row, col=col, lockAspect=True, invertY=True)
        img, ov = pg.ImageItem(axisOrder="row-major"), pg.ImageItem(axisOrder="row-major")
        ov.setLookupTable(lut)
        ov.setOpacity(0.5)
        vb.addItem(img)
        vb.addItem(ov)
        items.append((p, img, ov))
    win.show()
    app.processEvents()
    centre = np.array(SHAPE) // 2

    def step(t):
        c = centre + (t % 40) - 20
        for p, img, ov in items:
            s = {"axial": c[2], "coronal": c[1], "sagittal": c[0]}[p]
            img.setImage(plane_slice(data, p, s), autoLevels=False, levels=(0, 800))
            ov.setImage(plane_slice(cam, p, s), autoLevels=False, levels=(0.0, 1.0))

    result = time_updates(step, app, n)
    win.hide()
    KEEP.append(win)
    return result


def mriviewer_layout(vols, cam, n: int, app, layout: str, views_only: bool = False) -> float:
    from mriviewer.ui.views.layout import ViewerLayout

    st = ViewerState()
    view = ViewerLayout(st)
    view.resize(900, 900)
    view.show()
    st.set_case("bench", vols, "FLAIR")
    st.set_overlay(cam)
    st.set_layout(layout)
    app.processEvents()
    centre = np.array(SHAPE) // 2

    def step(t):
        st.set_cursor(centre + (t % 40) - 20)

    if views_only:  # the slice views alone, as the baseline draws only slices
        view.cursor_panel.setVisible(False)
        app.processEvents()
    result = time_updates(step, app, n)
    view.hide()
    KEEP.append((view, st))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5, help="rounds, each measuring all four in turn")
    args = ap.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    pg.setConfigOptions(imageAxisOrder="row-major")
    vols, cam = make_case()
    count_paints()
    rounds, paints = [], {}
    for _ in range(args.repeat):  # interleaved, so a busy moment hits every variant alike
        measured = {
            "base": bare_pyqtgraph(vols, cam, args.updates, app),
            "single": mriviewer_layout(vols, cam, args.updates, app, "single", views_only=True),
            "area": mriviewer_layout(vols, cam, args.updates, app, "single"),
            "grid": mriviewer_layout(vols, cam, args.updates, app, "grid", views_only=True),
        }
        rounds.append({k: v[0] for k, v in measured.items()})
        paints = {k: v[1] for k, v in measured.items()}
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    view_ratio = statistics.median(r["single"] / r["base"] for r in rounds)
    grid_ratio = statistics.median(r["grid"] / r["single"] for r in rounds)
    for key, text in (("base", "bare pyqtgraph, 3 planes + overlay"),
                      ("single", "mriviewer single layout, 3 slice views + overlay + crosshair"),
                      ("area", "mriviewer single layout with the location panel"),
                      ("grid", "mriviewer grid layout, 4 modalities x 3 planes + overlay")):
        print(f"{text}: {med[key] * 1e3:.2f} ms/update ({1 / med[key]:.0f} updates/s), median of {args.repeat}; "
              f"{paints[key]:.1f} images painted per update")
    print(f"view_vs_pyqtgraph={view_ratio:.2f} grid_vs_single={grid_ratio:.2f}")


if __name__ == "__main__":
    main()
