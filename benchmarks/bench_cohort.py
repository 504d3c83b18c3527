"""Opening a researcher's cohort: 10, 100 and 1,000 cases, against bare header reads.

Cohorts are generated in a temporary folder: BraTS-2023-layout NIfTI (each case four symlinks to
the real BraTS-GLI-00001-000 volumes, 240×240×155 int16, from ``$MRIVIEWER_TEST_DATA``; generated
int16 volumes of that size when the real data is absent) and RSNA-MICCAI-layout DICOM (each case
symlinks to the real 143-file FLAIR series of case 00046, or a generated 40-slice series). For
each size, in fresh processes with an empty mriviewer cache:

* ``info``: ``mriviewer info DIR`` (headers only), wall time and the process's peak RSS;
* the baseline, side by side: bare header reads of the same files in one loop (nibabel
  ``load`` + shape + affine for NIfTI, pydicom ``dcmread(stop_before_pixels=True)`` for DICOM):
  ``info_vs_headers`` is info's time over that loop's;
* the GUI: process start → main window shown with the case list filled (``list_s``, imports
  included), then → the first case's image shown (``first_case_s``), offscreen.

Prints one line per cohort, the growth exponent of each time between the two largest sizes
(``log(t_large / t_small) / log(n_large / n_small)``; 1.0 is linear), and, last:
``cohort_1000_list_s=S first_case_s=F growth=G`` (BraTS layout, G of the list time).

Goals (issue 14): 1,000 BraTS-layout cases listed ≤ 5 s from cold, first case ≤ 2 s after,
growth ≤ 1.1, peak RSS of ``info`` independent of N, ``info`` of 1,000 cases ≤ 10 s.

Run: ``python benchmarks/bench_cohort.py [--sizes 10 100 1000] [--dicom-sizes 10 100]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MRIVIEWER_TEST_DATA", ROOT.parent / "shared" / "data"))
BRATS = DATA / "brats2023-glioma" / "BraTS-GLI-00001-000"
RSNA = DATA / "rsna-miccai" / "train" / "00046" / "FLAIR"
SUFFIXES = ("t1n", "t1c", "t2w", "t2f")

# Child process: run mriviewer's CLI and report its own peak RSS (KiB on Linux).
_INFO_CHILD = """
import resource, sys
from mriviewer.cli import main
status = main(["info", sys.argv[1]])
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(status)
"""

# Child process: the GUI opened on a cohort; prints JSON with the times since process start.
_GUI_CHILD = """
import json, os, sys, time
T0 = float(sys.argv[2])
def main():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    from PySide6 import QtCore, QtWidgets
    app = QtWidgets.QApplication(sys.argv[:1])
    pg.setConfigOptions(imageAxisOrder="row-major")
    from mriviewer.ui.app import create_window
    shown = {}
    win = create_window(sys.argv[1])
    win.volume_shown.connect(lambda cid: shown.setdefault("first", time.time()))
    win.resize(1500, 950)
    win.show()
    deadline = time.time() + 120
    while win.browser.table_model.rowCount() == 0 and time.time() < deadline:  # discovery runs in a thread
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
    app.processEvents()
    listed = time.time()
    rows = win.browser.table_model.rowCount()
    while "first" not in shown and time.time() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    print(json.dumps({"list_s": listed - T0, "first_case_s": shown.get("first", float("nan")) - listed,
                      "rows": rows}))
    win.close()
    app.processEvents()
if __name__ == "__main__":
    main()
"""


def make_brats(root: Path, n: int) -> list[Path]:
    """``n`` BraTS-2023-layout cases under ``root``; returns every image file."""
    files = []
    sources = {s: BRATS / f"BraTS-GLI-00001-000-{s}.nii.gz" for s in SUFFIXES}
    if not all(p.exists() for p in sources.values()):
        sources = _generated_nifti(root.parent / "generated-nifti")
    for i in range(n):
        cid = f"BraTS-GLI-{i + 1:05d}-000"
        d = root / cid
        d.mkdir(parents=True)
        for s, src in sources.items():
            link = d / f"{cid}-{s}.nii.gz"
            link.symlink_to(src)
            files.append(link)
    return files


def _generated_nifti(folder: Path) -> dict[str, Path]:
    import nibabel as nib
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for s in SUFFIXES:
        out[s] = folder / f"{s}.nii.gz"
        if not out[s].exists():
            data = rng.integers(0, 1200, (240, 240, 155)).astype(np.int16)
            nib.save(nib.Nifti1Image(data, np.diag([-1.0, -1.0, 1.0, 1.0])), str(out[s]))
    return out


def make_rsna(root: Path, n: int) -> list[Path]:
    """``n`` RSNA-MICCAI-layout cases (FLAIR and T2w series) with a label CSV; returns every file."""
    series = sorted(RSNA.glob("*.dcm")) if RSNA.exists() else _generated_dicom(root.parent / "generated-dicom")
    files = []
    lines = ["BraTS21ID,MGMT_value"]
    for i in range(n):
        for modality in ("FLAIR", "T2w"):
            d = root / "train" / f"{i:05d}" / modality
            d.mkdir(parents=True)
            for f in series:
                (d / f.name).symlink_to(f)
                files.append(d / f.name)
        lines.append(f"{i},{i % 2}")
    (root / "train_labels.csv").write_text("\n".join(lines) + "\n")
    return files


def _generated_dicom(folder: Path) -> list[Path]:
    from mriviewer.demo.dataset import make_demo_dataset

    if not folder.exists():
        make_demo_dataset(folder, n_cases=1, seed=0, matrix=256, n_slices=40)
    return sorted((folder / "train" / "00000" / "FLAIR").glob("*.dcm"))


def header_loop(files: list[Path]) -> float:
    """The baseline: every file's header read once, in one process (seconds)."""
    t0 = time.perf_counter()
    if files and files[0].name.endswith(".nii.gz"):
        import nibabel as nib

        for f in files:
            img = nib.load(str(f))
            img.shape, img.affine  # noqa: B018 (the read is the point)
    else:
        import pydicom

        for f in files:
            pydicom.dcmread(f, stop_before_pixels=True)
    return time.perf_counter() - t0


def run_info(folder: Path, env: dict) -> tuple[float, int]:
    """``mriviewer info`` in a fresh process: ``(wall seconds, peak RSS MiB)``."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _INFO_CHILD, str(folder)], env=env, capture_output=True,
                          text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"info failed on {folder}: {proc.stderr[-2000:]}")
    rss = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS"))
    return wall, rss // 1024


def run_gui(folder: Path, env: dict) -> dict:
    """The GUI in a fresh process (offscreen): list and first-case times."""
    script = folder.parent / "gui_child.py"
    script.write_text(_GUI_CHILD)
    proc = subprocess.run([sys.executable, str(script), str(folder), repr(time.time())], env=env,
                          capture_output=True, text=True, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise SystemExit(f"GUI run failed on {folder}: {proc.stderr[-2000:]}")
    return json.loads(line)


def growth(small: tuple[int, float], large: tuple[int, float]) -> float:
    """Exponent ``g`` of ``t ∝ n**g`` between two sizes."""
    (n0, t0), (n1, t1) = small, large
    return math.log(max(t1, 1e-9) / max(t0, 1e-9)) / math.log(n1 / n0)


def measure(layout: str, sizes: list[int], work: Path, gui: bool) -> dict[int, dict]:
    results: dict[int, dict] = {}
    for n in sizes:
        folder = work / f"{layout}-{n}"
        files = (make_brats if layout == "brats" else make_rsna)(folder, n)
        cache = work / f"cache-{layout}-{n}"
        env = {**os.environ, "MRIVIEWER_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
        base = header_loop(files)
        info_s, rss = run_info(folder, env)
        row = {"info_s": info_s, "rss_mib": rss, "headers_s": base, "files": len(files)}
        if gui:
            row.update(run_gui(folder, env))
        shutil.rmtree(cache, ignore_errors=True)
        results[n] = row
        extra = (f" list_s={row['list_s']:.2f} first_case_s={row['first_case_s']:.2f} rows={row['rows']}"
                 if gui else "")
        print(f"{layout} cases={n} files={len(files)} info_s={info_s:.2f} peak_rss_mib={rss} "
              f"headers_s={base:.2f} info_vs_headers={info_s / max(base, 1e-9):.2f}{extra}", flush=True)
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        keys = ["info_s"] + (["list_s"] if gui else [])
        print(f"{layout} growth {a}->{b}: " + " ".join(
            f"{k}={growth((a, results[a][k]), (b, results[b][k])):.2f}" for k in keys), flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--dicom-sizes", type=int, nargs="*", default=[10, 100])
    ap.add_argument("--no-gui", action="store_true", help="skip the GUI measurements")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mriviewer-bench-cohort-"))
    try:
        brats = measure("brats", args.sizes, work, not args.no_gui)
        if args.dicom_sizes:
            measure("rsna", args.dicom_sizes, work, not args.no_gui)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    big = max(brats)
    if args.no_gui:
        return
    g = growth((sorted(brats)[-2], brats[sorted(brats)[-2]]["list_s"]), (big, brats[big]["list_s"])) \
        if len(brats) >= 2 else float("nan")
    print(f"cohort_{big}_list_s={brats[big]['list_s']:.2f} first_case_s={brats[big]['first_case_s']:.2f} "
          f"growth={g:.2f}")


if __name__ == "__main__":
    main()
