"""Classification metrics with uncertainty.

AUC is scikit-learn's ``roc_auc_score``: the positive-class probability for binary tasks;
for multiclass the macro average of one-vs-rest AUCs over the classes that have both
positive and negative cases in the evaluated set (classes absent from a small validation set
cannot be scored, and are left out instead of failing). Confidence intervals are percentile
bootstrap intervals over cases (Efron & Tibshirani, 1993), resampled within each class so
that every resample keeps both classes.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["auc", "accuracy", "bootstrap_auc_ci"]


def auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Case-level ROC AUC.

    Args:
        labels: ``(N,)`` int class indices.
        probs: ``(N, K)`` class probabilities (rows sum to 1), ``K ≥ 2``.

    Returns:
        AUC in [0, 1], or ``nan`` when it is undefined (a single class present).
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels, dtype=int)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.size == 0 or np.unique(labels).size < 2:
        return math.nan
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    scores = []
    for k in range(probs.shape[1]):
        pos = labels == k
        if pos.any() and (~pos).any():
            scores.append(roc_auc_score(pos.astype(int), probs[:, k]))
    return float(np.mean(scores)) if scores else math.nan


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Share of cases whose arg-max class is the label (``nan`` for no cases)."""
    labels = np.asarray(labels, dtype=int)
    if labels.size == 0:
        return math.nan
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def bootstrap_auc_ci(
    labels: np.ndarray, probs: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` confidence interval of :func:`auc`.

    Returns:
        ``(low, high)``, or ``(nan, nan)`` when the AUC is undefined.
    """
    labels = np.asarray(labels, dtype=int)
    probs = np.asarray(probs, dtype=np.float64)
    if math.isnan(auc(labels, probs)):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=g.size, replace=True) for g in groups])
        v = auc(labels[idx], probs[idx])
        if not math.isnan(v):
            values.append(v)
    if not values:
        return math.nan, math.nan
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)
