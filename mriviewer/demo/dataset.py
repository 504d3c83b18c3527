"""The synthetic demo data set on disk, in the RSNA-MICCAI 2021 layout::

    out_dir/train_labels.csv                       BraTS21ID,MGMT_value (unpadded ids)
    out_dir/train/00000/{FLAIR,T1w,T1wCE,T2w}/Image-N.dcm

Everything it writes is synthetic (see :mod:`mriviewer.demo.phantom`). Research use only — not
for diagnosis.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mriviewer.data.cases import DATASET_SETTINGS
from mriviewer.demo.dicom_writer import _write_series
from mriviewer.demo.phantom import _NOISE_SIGMA, _bias_field, _contrast, _geometry
from mriviewer.demo.plan import SeriesGrid, plan_dataset, series_grid


def make_demo_dataset(
    out_dir: str | Path,
    n_cases: int = 32,
    seed: int = 0,
    matrix: int = 96,
    n_slices: int = 40,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a synthetic brain-MRI data set (DICOM, RSNA-MICCAI 2021 layout).

    See the module docstring for what the phantoms contain. Series are sampled on grids of
    ``matrix`` × ``matrix`` pixels (:data:`FOV_MM` field of view) and ``n_slices`` slices;
    the pixel array of each file is indexed ``[row, column]``; values are uint16 scanner
    units (RescaleSlope 1, RescaleIntercept 0), 0 outside the head.

    Args:
        out_dir: output folder; created if needed. It must not already hold ``train/`` or
            ``train_labels.csv``.
        n_cases: number of cases (≥ 1); case folders ``00000`` … and ids 0 … ``n_cases - 1``.
        seed: random seed; the output (pixels, labels, geometry, UIDs) depends only on the
            arguments, not on ``out_dir``.
        matrix: in-plane pixels per row and per column (≥ 8).
        n_slices: slices per series (≥ 2).
        progress: called as ``progress(cases_done, n_cases)`` after each case.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: a size argument is out of range.
        FileExistsError: ``out_dir`` already holds ``train/`` or ``train_labels.csv``.
    """
    if n_cases < 1:
        raise ValueError(f"n_cases must be at least 1, got {n_cases}")
    if matrix < 8:
        raise ValueError(f"matrix must be at least 8, got {matrix}")
    if n_slices < 2:
        raise ValueError(f"n_slices must be at least 2, got {n_slices}")
    out = Path(out_dir).expanduser()
    train, labels_csv = out / "train", out / "train_labels.csv"
    for p in (train, labels_csv):
        if p.exists():
            raise FileExistsError(f"{p}: already exists; choose an empty output folder")
    train.mkdir(parents=True)

    plans = plan_dataset(n_cases, seed)
    for done, case in enumerate(plans, start=1):
        case_dir = train / f"{case.case_id:05d}"
        rng = np.random.default_rng(case.noise_seed)
        cache: dict[str, tuple[SeriesGrid, dict[str, np.ndarray], np.ndarray]] = {}
        for number, sp in enumerate(case.series, start=1):
            if sp.plane not in cache:
                grid = series_grid(sp.plane, matrix, n_slices, sp.centre_ras_mm)
                x, y, z = grid.ras_points()
                cache[sp.plane] = (grid, _geometry(x, y, z, case.params),
                                   _bias_field(x, y, z, case.params))
            grid, geo, bias = cache[sp.plane]
            clean = _contrast(geo, bias, sp.modality)
            clean *= np.float32(sp.gain)
            noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(_NOISE_SIGMA)
            noisy = np.where(clean > 0, np.abs(noisy), np.float32(0))
            pixels = np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)
            header = {"seed": seed, "case_id": case.case_id, "modality": sp.modality,
                      "series_number": number}
            _write_series(case_dir / sp.modality, pixels, grid, sp.numbering, rng, header)
        if progress is not None:
            progress(done, n_cases)

    with open(labels_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["BraTS21ID", "MGMT_value"])
        for case in plans:
            writer.writerow([case.case_id, case.label])
    # Suggested training settings, read by the GUI's Train panel (see datasets.DATASET_SETTINGS):
    # the label shows most on T1wCE (ring enhancement), so that is the suggested input.
    (out / DATASET_SETTINGS).write_text(json.dumps({
        "description": "mriviewer synthetic demo (phantoms; research use only)",
        "train": {"model": "resnet18-2d", "modalities": ["T1wCE"], "epochs": 10, "image_size": 128},
    }, indent=2) + "\n")
    return out


def default_demo_dir() -> Path:
    """Where ``mriviewer view --demo`` keeps its generated demo (``~/.cache/mriviewer/demo``)."""
    return Path.home() / ".cache" / "mriviewer" / "demo"


def ensure_demo(path: Path | None = None) -> Path:
    """The demo dataset at ``path`` (default :func:`default_demo_dir`), generated if absent."""
    path = path or default_demo_dir()
    if not (path / "train_labels.csv").is_file():
        make_demo_dataset(path)
    return path
