"""Calibration of predicted probabilities: does "0.57" mean 57 %?

Brier score
    The mean squared difference between the predicted probabilities and the outcome, summed
    over the classes (Brier 1950, *Monthly Weather Review* 78:1): ``mean_i Σ_k (p_ik − y_ik)²``,
    0 for perfect predictions; for binary tasks reported on the positive class alone,
    ``mean_i (p_i1 − y_i)²``, as scikit-learn's ``brier_score_loss`` (half the two-class sum).

Expected calibration error (ECE)
    Top-label ECE with :data:`ECE_BINS` equal-width confidence bins (Guo et al. 2017, "On
    calibration of modern neural networks", ICML): each case's confidence is its largest
    probability; ``ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b|``. The bins are stated with
    the value (``ece_bins``), and the reliability diagram's points (per bin: mean confidence,
    accuracy, cases) come with it.

Both get percentile-bootstrap 95 % intervals over the same kind of case resamples as the other
metrics (:mod:`mriviewer.ml.bootstrap`), vectorised.
"""

from __future__ import annotations

import numpy as np

#: Equal-width confidence bins of the ECE and the reliability diagram.
ECE_BINS = 10


def _per_case(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(brier_i, confidence_i, correct_i, bin_i)`` for each case."""
    n, k = probs.shape
    onehot = np.zeros_like(probs, dtype=np.float64)
    onehot[np.arange(n), labels] = 1.0
    if k == 2:
        brier = (probs[:, 1].astype(np.float64) - onehot[:, 1]) ** 2
    else:
        brier = ((probs.astype(np.float64) - onehot) ** 2).sum(axis=1)
    conf = probs.max(axis=1).astype(np.float64)
    correct = (np.argmax(probs, axis=1) == labels).astype(np.float64)
    bins = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    return brier, conf, correct, bins


def _ece(conf: np.ndarray, correct: np.ndarray, bins: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ECE for each row of ``weights`` ``(R, N)`` (how often each case is drawn)."""
    total = weights.sum(axis=1)
    out = np.zeros(weights.shape[0])
    for b in range(ECE_BINS):
        in_bin = bins == b
        if not in_bin.any():
            continue
        w = weights[:, in_bin]
        n_b = w.sum(axis=1)
        gap = np.abs(w @ correct[in_bin] - w @ conf[in_bin])  # n_b · |acc_b − conf_b|
        out += np.where(n_b > 0, gap, 0.0)
    return out / np.maximum(total, 1)


def calibration_metrics(labels: np.ndarray, probs: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
                        alpha: float = 0.05) -> dict:
    """Brier score and ECE with bootstrap intervals, and the reliability diagram's bins.

    Args:
        labels: ``(N,)`` int class indices.
        probs: ``(N, K)`` class probabilities (rows summing to 1), ``K ≥ 2``.
        n_boot: bootstrap resamples (0: no intervals).
        seed: seed of ``numpy.random.default_rng``.
        alpha: intervals at level ``1 − alpha``.

    Returns:
        ``{"brier", "brier_ci", "ece", "ece_ci", "ece_bins", "reliability": [{"bin": [lo, hi],
        "confidence", "accuracy", "n"}, ...]}`` (only bins holding cases).
    """
    labels = np.asarray(labels, dtype=int)
    probs = np.asarray(probs, dtype=np.float64)
    brier, conf, correct, bins = _per_case(labels, probs)
    n = len(labels)
    ece = float(_ece(conf, correct, bins, np.ones((1, n)))[0])
    out = {"brier": float(brier.mean()), "ece": ece, "ece_bins": ECE_BINS, "brier_ci": [None, None],
           "ece_ci": [None, None]}
    if n_boot > 0 and n > 1:
        rng = np.random.default_rng(seed)
        weights = np.zeros((n_boot, n))
        draws = rng.integers(0, n, size=(n_boot, n))
        np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)
        lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
        out["brier_ci"] = [float(v) for v in np.percentile(weights @ brier / n, [lo, hi])]
        out["ece_ci"] = [float(v) for v in np.percentile(_ece(conf, correct, bins, weights), [lo, hi])]
    out["reliability"] = [
        {"bin": [b / ECE_BINS, (b + 1) / ECE_BINS], "confidence": float(conf[bins == b].mean()),
         "accuracy": float(correct[bins == b].mean()), "n": int((bins == b).sum())}
        for b in range(ECE_BINS) if (bins == b).any()
    ]
    return out
