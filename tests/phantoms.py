"""Test fixtures: small NIfTI datasets whose label is visible in the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_lesion_phantoms(out: str | Path, n_cases: int = 40, shape: tuple[int, int, int] = (32, 32, 24),
                         seed: int = 0, spacing_mm: float = 2.0) -> Path:
    """A small NIfTI dataset whose label is visible in the image, for model and benchmark checks.

    Layout (BraTS 2018): ``<out>/case_NNN/{FLAIR.nii.gz, GT_W.nii.gz}`` and ``<out>/labels.csv``
    (``case,label``). Each volume ``(I, J, K)`` float32 on an RAS grid of ``spacing_mm`` voxels
    holds a noisy ellipsoidal "head" with a bright scalp; cases with label 1 carry a bright sphere (radius ≈ 3.5
    voxels) at a random position in the central part of the head, which ``GT_W`` marks; label-0
    cases have none (empty mask). Balanced labels, deterministic for a ``seed``.

    Returns:
        ``out``.
    """
    import nibabel as nib

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ii, jj, kk = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    centre = (np.array(shape, dtype=np.float32) - 1) / 2
    radius = ((ii - centre[0]) / (shape[0] * 0.42)) ** 2 + ((jj - centre[1]) / (shape[1] * 0.45)) ** 2 \
        + ((kk - centre[2]) / (shape[2] * 0.42)) ** 2
    head = radius <= 1.0
    # A bright scalp in every case, as bright as a lesion: per-case intensity scaling (percentiles,
    # min-max) then sees the same range in both classes, and only the lesion tells them apart.
    scalp = head & (radius > 0.78)
    affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    rows = ["case,label"]
    for n in range(n_cases):
        label = n % 2
        img = np.where(head, 100.0 + rng.normal(0, 8, shape), rng.normal(0, 2, shape)).astype(np.float32)
        img[scalp] += 120.0
        mask = np.zeros(shape, dtype=np.uint8)
        if label:
            c = centre + rng.uniform(-0.14, 0.14, 3) * np.array(shape)
            c[2] = centre[2] + rng.uniform(-0.08, 0.08) * shape[2]
            lesion = (ii - c[0]) ** 2 + (jj - c[1]) ** 2 + (kk - c[2]) ** 2 <= 3.5 ** 2
            img[lesion] += 120.0
            mask[lesion] = 1
        case = out / f"case_{n:03d}"
        case.mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(img, affine), str(case / "FLAIR.nii.gz"))
        nib.save(nib.Nifti1Image(mask, affine), str(case / "GT_W.nii.gz"))
        rows.append(f"case_{n:03d},{label}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")
    return out
