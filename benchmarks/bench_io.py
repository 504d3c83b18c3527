"""Loading speed against SimpleITK, measured in one run on the same files.

Baselines: SimpleITK's ``ImageSeriesReader`` (ITK + GDCM, C++) for a full read, and our own first
(uncached) load for the cache. "Case load" is how the viewer and the engine load a case: its
series decoded in parallel worker processes (:mod:`mriviewer.cache.pool`, pool already started);
the one-process reader is shown too. Files: the real RSNA-MICCAI FLAIR series (143 × 512², coronal), the
real sagittal MPRAGE (176 × 256²) from ``$MRIVIEWER_TEST_DATA`` (default ``../shared/data``), and a
generated 4-modality case with 150 slices of 240² per series. Each timing is the best of
``--repeat`` runs (after the OS file cache is warm for both readers).

Prints one line per measurement and, last:
``load_vs_simpleitk=<our case time / SimpleITK time> cached_speedup=<first load / cached load>``

Run: ``python benchmarks/bench_io.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import best_of  # noqa: E402

from mriviewer.cache.disk import DiskCache  # noqa: E402
from mriviewer.cache.memory import VolumeCache  # noqa: E402
from mriviewer.data.cases import ModalitySource  # noqa: E402
from mriviewer.data.discover import discover  # noqa: E402
from mriviewer.io.dicom.scan import scan_series  # noqa: E402
from mriviewer.io.dicom.series import read_dicom_series  # noqa: E402


def sitk_read(folder: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    data = Path(os.environ.get("MRIVIEWER_TEST_DATA", ROOT.parent / "shared" / "data"))
    work = Path(tempfile.mkdtemp(prefix="mriviewer-bench-"))

    from mriviewer.demo.dataset import make_demo_dataset

    make_demo_dataset(work / "case", n_cases=1, matrix=240, n_slices=150)
    case = discover(work / "case").cases[0]
    case_folders = [case.modalities[m].path for m in case.modalities]

    series = [("generated 4-modality case", case_folders)]
    for rel in ("rsna-miccai/train/00046/FLAIR", "dicom-mprage-sagittal/t1_MPRAGEcr_noGRAPPA_19"):
        if (data / rel).is_dir():
            series.append((rel, [data / rel]))
        else:
            print(f"skipped {rel}: not found under {data}")

    # Our case load: the four series decoded in parallel worker processes (warm pool).
    from mriviewer.cache.pool import decode_pool, default_processes

    t0 = time.perf_counter()
    decode_pool()
    VolumeCache().get_many(list(case.modalities.values()))
    print(f"worker pool start ({default_processes()} processes) and first case: {(time.perf_counter() - t0) * 1000:.0f} ms (once per session)")
    sources_case = list(case.modalities.values())
    parallel = best_of(lambda: VolumeCache().get_many(sources_case), args.repeat)

    ratios = {}
    for name, folders in series:
        for f in folders:  # warm the OS file cache for both readers
            read_dicom_series(f)
            sitk_read(f)
        ours = best_of(lambda folders=folders: [read_dicom_series(f) for f in folders], args.repeat)
        theirs = best_of(lambda folders=folders: [sitk_read(f) for f in folders], args.repeat)
        ratios[name] = ours / theirs
        print(f"{name}: mriviewer (one process) {ours * 1000:.0f} ms, SimpleITK {theirs * 1000:.0f} ms, ratio {ours / theirs:.2f}")
        if name.startswith("generated"):
            ratios["case"] = parallel / theirs
            print(f"{name}: mriviewer case load (parallel) {parallel * 1000:.0f} ms, SimpleITK {theirs * 1000:.0f} ms, "
                  f"ratio {parallel / theirs:.2f}")

    # Cached re-load: a new session (empty memory) reading the disk cache, vs a first load.
    sources = [ModalitySource(m, case.modalities[m].path, "dicom") for m in case.modalities]
    first_times, cached_times = [], []
    for n in range(args.repeat):
        disk = DiskCache(work / f"cache{n}")
        t0 = time.perf_counter()
        cold = VolumeCache(disk=disk)
        for s in sources:
            cold.get(s)
        first_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        warm = VolumeCache(disk=disk)
        for s in sources:
            warm.get(s)
        cached_times.append(time.perf_counter() - t0)
        assert warm.disk_hits == len(sources)
    first, cached = min(first_times), min(cached_times)
    print(f"case first load (decode + write cache) {first * 1000:.0f} ms, cached re-load {cached * 1000:.1f} ms, "
          f"speed-up {first / cached:.1f}x")

    # Header scan of a folder vs a full read.
    folder = case_folders[0]
    scan = best_of(lambda: scan_series(folder), args.repeat)
    full = best_of(lambda: read_dicom_series(folder), args.repeat)
    print(f"header scan {scan * 1000:.0f} ms vs full read {full * 1000:.0f} ms of one 150-slice series "
          f"({full / scan:.1f}x)")

    print(f"load_vs_simpleitk={ratios['case']:.2f} cached_speedup={first / cached:.1f}")


if __name__ == "__main__":
    main()
