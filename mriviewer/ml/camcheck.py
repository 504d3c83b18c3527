"""Grad-CAM you can check: scores of saliency maps against tumour masks.

Two scores per case, each next to the value a map with no information would get:

* **Pointing game** (Zhang et al., 2018, "Top-down neural attention by excitation backprop"):
  a hit when the map's maximum lies inside the mask. Baseline: a point drawn uniformly inside
  the brain hits with probability |mask ∩ brain| / |brain|.
* **Energy in mask** (Wang et al., 2020, "Score-CAM", the energy-based pointing game): the share
  of the map's total inside the mask. Baseline: a map uniform inside the brain puts
  |mask ∩ brain| / |brain| of its energy there.

Across cases the hit rate carries a Wilson 95 % interval (``statsmodels``-free closed form,
Wilson 1927); the energies carry a percentile bootstrap interval over cases.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["score_case", "summarise", "wilson_interval"]


def score_case(cam: np.ndarray, mask: np.ndarray, brain: np.ndarray) -> dict:
    """Score one map.

    Args:
        cam: ``(I, J, K)`` Grad-CAM, non-negative, on the same grid as ``mask``.
        mask: ``(I, J, K)`` bool tumour mask.
        brain: ``(I, J, K)`` bool brain (or head) mask; the baseline's support.

    Returns:
        ``{"hit", "energy_in_mask", "baseline_hit", "baseline_energy", "mask_voxels", "empty"}``.
        An all-zero map (Grad-CAM found no positive evidence) points nowhere: it scores as a miss
        with no energy in the mask (``hit`` 0, ``energy_in_mask`` 0) and ``empty`` is True, so
        empty maps lower the score instead of leaving the average.

    Raises:
        ValueError: the arrays' shapes differ or the mask is empty.
    """
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float64))
    mask = np.asarray(mask, dtype=bool)
    brain = np.asarray(brain, dtype=bool) | mask
    if cam.shape != mask.shape or mask.shape != brain.shape:
        raise ValueError(f"shapes differ: cam {cam.shape}, mask {mask.shape}, brain {brain.shape}")
    if not mask.any():
        raise ValueError("the tumour mask is empty")
    share = float(mask.sum() / brain.sum())
    total = float(cam.sum())
    hit = 0.0
    if total > 0:
        peak = cam.max()
        # Ties at the maximum (a flat plateau) count the share of tied voxels inside the mask.
        tied = cam >= peak - 1e-12 * max(peak, 1.0)
        hit = float(mask[tied].mean())
    return {"hit": hit, "energy_in_mask": float(cam[mask].sum() / total) if total > 0 else 0.0,
            "baseline_hit": share, "baseline_energy": share, "mask_voxels": int(mask.sum()), "empty": total <= 0}


def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (``(nan, nan)`` for ``n == 0``)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(scores: list[dict], n_boot: int = 1000, seed: int = 0) -> dict:
    """Aggregate :func:`score_case` results: ``pointing_game`` (mean hit) with its Wilson
    interval, ``baseline`` (mean chance of a hit), ``energy_in_mask`` and ``baseline_energy``
    with bootstrap intervals, ``n_cases``, ``empty_maps`` (cases whose map is all zero, counted as
    misses) and ``beats_chance`` (the hit-rate interval lies above the baseline)."""
    hits = [s["hit"] for s in scores]
    energy = np.array([s["energy_in_mask"] for s in scores])
    base = np.array([s["baseline_hit"] for s in scores])
    n = len(hits)
    rate = float(np.mean(hits)) if n else math.nan
    lo, hi = wilson_interval(sum(hits), n)
    rng = np.random.default_rng(seed)

    def boot(x):
        if x.size < 2:
            return [math.nan, math.nan]
        means = x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
        return [float(v) for v in np.percentile(means, [2.5, 97.5])]

    baseline = float(base.mean()) if base.size else math.nan
    return {
        "n_cases": len(scores), "pointing_game": rate, "pointing_game_ci": [lo, hi], "baseline": baseline,
        "energy_in_mask": float(energy.mean()) if energy.size else math.nan, "energy_in_mask_ci": boot(energy),
        "baseline_energy": baseline, "empty_maps": int(sum(bool(s.get("empty")) for s in scores)),
        "beats_chance": bool(n and lo > baseline),
    }
