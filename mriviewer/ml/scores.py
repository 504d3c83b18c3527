"""Point estimates: ROC AUC (one-vs-rest macro for several classes, scikit-learn), accuracy, and
the full set of point estimates of :func:`mriviewer.ml.metrics.classification_metrics`.
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


def _point_estimates(labels: np.ndarray, probs: np.ndarray, preds: np.ndarray,
                     names: list[str]) -> dict:
    """Every point estimate of :func:`~mriviewer.ml.metrics.classification_metrics`, from
    scikit-learn (see that module's docstring), with its warnings silenced.

    Args:
        labels: ``(N,)`` validated int class indices.
        probs: ``(N, K)`` probabilities.
        preds: ``(N,)`` arg-max classes.
        names: the ``K`` class names.

    Returns:
        ``{"auc", "accuracy", "balanced_accuracy", "f1_macro", "f1_weighted",
        "precision_macro", "recall_macro", "specificity", "per_class", "confusion_matrix",
        "roc"}`` (numpy values; ``nan`` where undefined).
    """
    import warnings

    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    all_k = np.arange(probs.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's UndefinedMetricWarning / absent-class notes
        out = {"auc": auc(labels, probs), "accuracy": accuracy_score(labels, preds),
               "balanced_accuracy": balanced_accuracy_score(labels, preds),
               "f1_macro": f1_score(labels, preds, average="macro", zero_division=0),
               "f1_weighted": f1_score(labels, preds, average="weighted", zero_division=0)}
        out["precision_macro"], out["recall_macro"], _, _ = precision_recall_fscore_support(
            labels, preds, average="macro", zero_division=0
        )
        cm = confusion_matrix(labels, preds, labels=all_k)
        spec_k, out["specificity"] = _specificity(cm)
        out["per_class"] = _per_class(labels, probs, preds, names, spec_k)
        out["confusion_matrix"] = cm
        out["roc"] = _roc_curves(labels, probs, names)
    return out


def _specificity(cm: np.ndarray) -> tuple[np.ndarray, float]:
    """``(per class, summary)`` specificity ``TN / (TN + FP)`` from a ``K x K`` confusion
    matrix (rows true): the summary is class 1's for ``K = 2``, else the macro mean over the
    classes that occur in the labels or the predictions (``nan`` if none is defined)."""
    k_classes = cm.shape[0]
    tp = np.diag(cm).astype(float)
    negatives = cm.sum() - cm.sum(axis=1)
    true_neg = negatives - (cm.sum(axis=0) - tp)
    spec_k = np.divide(true_neg, negatives, out=np.full(k_classes, np.nan), where=negatives > 0)
    if k_classes == 2:
        return spec_k, spec_k[1]
    scored = (cm.sum(axis=1) + cm.sum(axis=0)) > 0  # classes of macro recall
    vals = spec_k[scored & np.isfinite(spec_k)]
    return spec_k, float(np.mean(vals)) if vals.size else math.nan


def _per_class(labels: np.ndarray, probs: np.ndarray, preds: np.ndarray, names: list[str],
               spec_k: np.ndarray) -> dict[str, dict]:
    """Precision, recall, F1, specificity, support and one-vs-rest AUC (``None`` for a class
    absent from, or the only class of, ``labels``) of each class, by name."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    n, k_classes = probs.shape
    all_k = np.arange(k_classes)
    counts = np.bincount(labels, minlength=k_classes)
    prec, rec, f1s, support = precision_recall_fscore_support(
        labels, preds, labels=all_k, average=None, zero_division=0
    )
    per_class = {}
    for k in all_k:
        k_auc = None
        if 0 < counts[k] < n:
            k_auc = roc_auc_score(labels == k, probs[:, k])
        per_class[names[k]] = {
            "precision": prec[k], "recall": rec[k], "f1": f1s[k],
            "specificity": spec_k[k], "support": int(support[k]), "auc": k_auc,
        }
    return per_class


def _roc_curves(labels: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    """ROC curve points: binary ``{"fpr", "tpr", "thresholds"}`` of class 1; multiclass
    ``{name: {"fpr", "tpr"}}`` one-vs-rest for each class present. Empty (binary: empty lists)
    when fewer than two classes are present."""
    from sklearn.metrics import roc_curve

    k_classes = probs.shape[1]
    present = np.flatnonzero(np.bincount(labels, minlength=k_classes))
    if k_classes == 2:
        if present.size < 2:
            return {"fpr": [], "tpr": [], "thresholds": []}
        fpr, tpr, thr = roc_curve(labels, probs[:, 1])
        return {"fpr": fpr, "tpr": tpr, "thresholds": thr}
    roc = {}
    if present.size >= 2:
        for k in present:
            fpr, tpr, _ = roc_curve(labels == k, probs[:, k])
            roc[names[k]] = {"fpr": fpr, "tpr": tpr}
    return roc
