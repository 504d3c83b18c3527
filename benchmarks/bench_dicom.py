"""DICOM reading against dcm2niix, measured in one run on the same generated series.

Baseline: dcm2niix (the PyPI wheel ``dcm2niix``, its console script, C++), converting a folder
end to end — ``dcm2niix -o OUT -f %s -z n DIR`` as a subprocess: start-up, header parsing,
sorting, decoding and writing every volume as uncompressed NIfTI. Against it:

* ``read_dicom_series`` in this process (what the viewer and the engine call; the series' files
  are all decoded, one volume is returned), and
* ``mriviewer convert DIR --out x.nii`` as a subprocess (interpreter start-up and imports
  included; a fresh, empty disk cache each run, so nothing is served from a previous one).

Series (:mod:`dicom_gen`, pydicom-written in a temporary folder): a 130-file 3D T1 (256², int16),
a 2,000-file classic DWI (20 volumes × 100 slices of 128² with DiffusionBValue and
DiffusionGradientOrientation) and a 500-frame Enhanced MR file (10 time points × 50 slices of
128²). Each timing is the best of ``--repeat`` runs after a warm-up (the OS file cache is warm for
both tools).

Agreement: every mriviewer volume (``index4d`` 0 … n-1) is compared with dcm2niix's volume of the
same number (its NIfTI files in name order, 4D files cut into volumes), both reoriented to the
closest canonical axes: same shape, affine within 0.01 mm, voxels equal. A mismatch names the
first volume that differs and, where the voxels match another of dcm2niix's volumes, which one
(a volume-order difference).

Prints one line per series —
``<series>: mriviewer <ms> ms, convert <ms> ms, dcm2niix <ms> ms vs_dcm2niix=R convert_vs_dcm2niix=R
agrees=yes|no [why]`` — and, last, ``vs_dcm2niix=R`` over all series (geometric mean of the
in-process ratios).

Run: ``python benchmarks/bench_dicom.py [--repeat 3] [--keep]``
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import dicom_gen  # noqa: E402
from _timing import best_of  # noqa: E402

from mriviewer.io.dicom.series import read_dicom_series  # noqa: E402


def find_dcm2niix() -> str:
    """The dcm2niix console script: on PATH, else beside this interpreter (the wheel's entry point)."""
    exe = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))
    if not Path(exe).is_file():
        sys.exit('dcm2niix not found: pip install "dcm2niix>=1.0.20250506" (the test extra)')
    return exe


def run_dcm2niix(exe: str, folder: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = subprocess.run([exe, "-o", str(out), "-f", "%s", "-z", "n", str(folder)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"dcm2niix failed on {folder}: {run.stdout[-500:]}{run.stderr[-500:]}")


def run_convert(folder: Path, out: Path, work: Path) -> None:
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    env = {**os.environ, "MRIVIEWER_CACHE_DIR": str(cache / "volumes")}
    run = subprocess.run([sys.executable, "-m", "mriviewer", "convert", str(folder), "--out", str(out)],
                         capture_output=True, text=True, env=env)
    shutil.rmtree(cache, ignore_errors=True)
    if run.returncode != 0:
        raise RuntimeError(f"mriviewer convert failed on {folder}: {run.stderr[-500:]}")


def dcm2niix_volumes(out: Path) -> list:
    """dcm2niix's output as a list of 3D images (NIfTI files in name order, 4D files cut)."""
    import nibabel as nib

    volumes = []
    for nii in sorted(out.glob("*.nii")):
        img = nib.load(nii)
        volumes.extend([img.slicer[..., v] for v in range(img.shape[3])] if img.ndim == 4 else [img])
    return volumes


def _canonical(img) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    img = nib.as_closest_canonical(img)
    return img.affine, np.asarray(img.get_fdata(dtype=np.float64))


def agreement(source: Path, theirs: list) -> str:
    """``"yes"``, or ``"no (why)"``: every mriviewer volume against dcm2niix's of the same number;
    when the voxels of each match another of dcm2niix's volumes, the order is given instead."""
    first = read_dicom_series(source)
    n = int(first.meta.get("n_volumes", 1))
    if n != len(theirs):
        return f"no ({n} volumes, dcm2niix {len(theirs)})"
    refs = [_canonical(img) for img in theirs]
    order, first_bad = [], None
    for v in range(n):
        affine, data = _canonical((first if v == 0 else read_dicom_series(source, index4d=v)).to_nifti())
        ref_affine, ref = refs[v]
        if data.shape != ref.shape:
            return f"no (volume {v + 1}: shape {data.shape}, dcm2niix {ref.shape})"
        if not np.allclose(affine, ref_affine, atol=0.01):
            return f"no (volume {v + 1}: affine differs by {np.abs(affine - ref_affine).max():.3g} mm)"
        if np.array_equal(data, ref):
            order.append(v + 1)
            continue
        first_bad = first_bad or f"volume {v + 1}: voxels differ by up to {np.abs(data - ref).max():g}"
        order.append(next((j + 1 for j, (_, r) in enumerate(refs) if r.shape == data.shape
                           and np.array_equal(data, r)), None))
    if first_bad is None:
        return "yes"
    if None not in order:
        shown = ", ".join(map(str, order))
        return f"no (the same volumes in another order: mriviewer's 1–{n} are dcm2niix's {shown})"
    return f"no ({first_bad})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated series (their folder is printed)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the readers' warnings go to meta["warnings"]; not timed output
    exe = find_dcm2niix()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
    print(f"dcm2niix: {exe} ({version[-1] if version else '?'})")
    work = Path(tempfile.mkdtemp(prefix="mriviewer-bench-dicom-"))
    t0 = time.perf_counter()
    series = {
        "3D T1 (130 files, 256x256)": (work / "t1", dicom_gen.write_t1_3d(work / "t1")[0].parent),
        "classic DWI (2000 files, 20x100 of 128x128)": (work / "dwi", dicom_gen.write_dwi(work / "dwi")[0].parent),
        "enhanced multi-frame (500 frames, 10x50 of 128x128)":
            (work / "enh", dicom_gen.write_enhanced_fmri(work / "enh" / "fmri.dcm")),
    }
    print(f"generated in {time.perf_counter() - t0:.1f} s under {work}")
    ratios = []
    for name, (folder, source) in series.items():
        out = work / "out" / folder.name
        theirs_s = best_of(lambda f=folder, o=out: run_dcm2niix(exe, f, o), args.repeat, warm_up=True)
        ours_s = best_of(lambda s=source: read_dicom_series(s), args.repeat, warm_up=True)
        convert_s = best_of(lambda f=folder: run_convert(f, work / f"{f.name}.nii", work), args.repeat, warm_up=True)
        agrees = agreement(source, dcm2niix_volumes(out))
        ratios.append(ours_s / theirs_s)
        print(f"{name}: mriviewer {ours_s * 1000:.0f} ms, convert {convert_s * 1000:.0f} ms, "
              f"dcm2niix {theirs_s * 1000:.0f} ms vs_dcm2niix={ours_s / theirs_s:.2f} "
              f"convert_vs_dcm2niix={convert_s / theirs_s:.2f} agrees={agrees}", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"vs_dcm2niix={float(np.exp(np.mean(np.log(ratios)))):.2f}")


if __name__ == "__main__":
    main()
