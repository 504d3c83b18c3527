"""Point estimates: ROC AUC (one-vs-rest macro for several classes, scikit-learn) and accuracy.
"""

from __future__ import annotations

import math

import numpy as np


def auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Case-level ROC AUC (scikit-learn ``roc_auc_score``).

    Args:
        labels: ``(N,)`` int class indices.
        probs: ``(N, K)`` class probabilities (rows sum to 1), ``K ≥ 2``.

    Returns:
        Binary (``K = 2``): AUC of ``probs[:, 1]``. Multiclass: macro mean of the one-vs-rest
        AUCs of the classes present in ``labels``. ``nan`` when fewer than two classes are
        present.
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels, dtype=int).ravel()
    probs = np.asarray(probs, dtype=np.float64)
    present = np.unique(labels)
    if present.size < 2:
        return math.nan
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(np.mean([roc_auc_score(labels == k, probs[:, k]) for k in present]))


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Share of cases whose arg-max class is the label.

    Args:
        labels: ``(N,)`` int class indices.
        probs: ``(N, K)`` class probabilities.

    Returns:
        Accuracy in [0, 1], ``nan`` for no cases.
    """
    labels = np.asarray(labels, dtype=int).ravel()
    if labels.size == 0:
        return math.nan
    return float(np.mean(np.argmax(probs, axis=1) == labels))
