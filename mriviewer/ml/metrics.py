"""Classification metrics with bootstrap confidence intervals.

Point estimates
    Every metric comes from scikit-learn (``sklearn.metrics``): ``roc_auc_score``,
    ``roc_curve``, ``accuracy_score``, ``balanced_accuracy_score``, ``f1_score``,
    ``precision_recall_fscore_support`` (``zero_division=0``) and ``confusion_matrix``.
    The predicted class of a case is the arg-max of its probabilities.

    AUC: for binary tasks (``K = 2``) ``roc_auc_score`` of the probability of class 1 (the
    positive class). For multiclass tasks the one-vs-rest AUC of each class ``k`` (score
    ``probs[:, k]``, class ``k`` against all others), averaged without weights (macro) over the
    classes that occur in the evaluated labels. A class absent from the evaluated set has no
    positive case and cannot be scored; it is left out of the average, listed in
    ``classes_absent`` and named in a warning. The AUC equals the Mann-Whitney statistic
    ``U / (n_pos * n_neg)`` with ties counting one half; the bootstrap uses that rank formula,
    vectorised over resamples (checked against scikit-learn in the tests).

    Macro precision, recall and F1 are scikit-learn's: the unweighted mean over the classes
    that occur in the labels or in the predictions. Specificity is ``TN / (TN + FP)``: of the
    positive class (class 1) for binary tasks, the macro mean over the same classes as macro
    recall for multiclass tasks.

Confidence intervals
    Percentile bootstrap (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993,
    ch. 13) with *ordinary case-level resampling*: each resample draws ``N`` case indices
    uniformly, with replacement, from all ``N`` cases (a case, the independent unit, appears
    0, 1, 2, ... times). It is not stratified by class, so the class proportions vary from
    resample to resample as they would between new samples from the same population. AUC,
    accuracy and macro F1 are computed on the same resamples. A resample in which a metric is
    undefined (AUC when the draw holds a single class) is skipped; when more than 10 % of the
    resamples are skipped a warning says so. The interval is the ``alpha / 2`` and
    ``1 - alpha / 2`` percentiles of the resampled values. Resampling uses
    ``numpy.random.default_rng(seed)`` and is reproducible. DeLong's asymptotic AUC variance is
    not used: the bootstrap treats multiclass macro AUC, accuracy and F1 alike.

Why intervals contain 0.5 on chance-level data
    A classifier no better than chance has AUC estimates scattered around 0.5 with a standard
    error of about ``sqrt((N + 1) / (12 * n_pos * n_neg))`` (0.09 for 20 + 20 cases). The
    interval reflects that spread, so it spans 0.5: the data cannot tell the model from a coin
    toss, whatever the point estimate, and a warning says so. A model that gives every case the
    same probabilities has AUC exactly 0.5 in every resample (all ties), so its interval is
    [0.5, 0.5]: degenerate, and flagged by the chance and one-class warnings. Percentile
    intervals also collapse at the bounds (perfect separation gives [1, 1]); with few cases
    that is not certainty, which is what the too-few-cases warning is for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mriviewer.core.files import json_safe  # one home for strict-JSON conversion (re-exported)
from mriviewer.core.text import finite_or_none
from mriviewer.ml.bootstrap import _bootstrap_intervals
from mriviewer.ml.calibration import calibration_metrics
from mriviewer.ml.scores import _point_estimates

SCALAR_METRICS = (
    "auc", "accuracy", "balanced_accuracy", "f1_macro", "f1_weighted",
    "precision_macro", "recall_macro", "specificity",
)
"""Scalar metrics of :func:`classification_metrics` that :func:`summarise_folds` averages."""


#: Fewer cases in all than this: the too-few-cases warning.
_MIN_CASES = 10


#: Fewer cases than this in the smallest class present: the too-few-cases warning.
_MIN_PER_CLASS = 5


#: Class names listed in one warning at most.
_MAX_NAMES = 10


def classification_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Evaluation of class probabilities against labels, with bootstrap intervals and warnings.

    Args:
        labels: ``(N,)`` int class indices into ``class_names``, ``N ≥ 1``.
        probs: ``(N, K)`` class probabilities, ``K = len(class_names) ≥ 2``, rows summing to 1;
            for binary tasks column 1 is the positive class.
        class_names: ``K`` distinct class names.
        n_boot: bootstrap resamples (1000 or more for 95 % intervals; 0 gives no intervals).
        seed: seed of ``numpy.random.default_rng`` for the resampling.
        alpha: intervals are at level ``1 - alpha``.

    Returns:
        A strict-JSON-ready dict (NaN/inf as ``None``) with the keys ``n_cases``,
        ``n_per_class``, ``class_names``, ``auc``, ``auc_ci``, ``auc_classes``, ``accuracy``,
        ``accuracy_ci``, ``accuracy_chance`` (always predicting the most frequent class),
        ``balanced_accuracy``, ``f1_macro``, ``f1_macro_ci``, ``f1_weighted``,
        ``precision_macro``, ``recall_macro``, ``specificity``, ``per_class``,
        ``confusion_matrix`` (``K x K``, rows true, columns predicted), ``roc``,
        ``classes_absent``, calibration (``brier``, ``ece`` with ``_ci``, ``ece_bins``, ``reliability``:
        :mod:`mriviewer.ml.calibration`), ``n_boot``, ``ci_level``, ``warnings`` (module docstring).

    Raises:
        ValueError: inconsistent shapes, labels out of range, non-finite probabilities, no
            cases, fewer than two or duplicate class names.
    """
    labels, probs, names = _validate(labels, probs, class_names)
    n, k_classes = probs.shape
    preds = np.argmax(probs, axis=1)
    counts = np.bincount(labels, minlength=k_classes)
    present = np.flatnonzero(counts)
    absent = [names[k] for k in range(k_classes) if counts[k] == 0]
    auc_defined = present.size >= 2
    point = _point_estimates(labels, probs, preds, names)
    cis, skipped = _bootstrap_intervals(labels, probs, preds, n_boot=n_boot, seed=seed, alpha=alpha,
                                        auc_defined=auc_defined)
    level = 1.0 - alpha
    # Accuracy against always answering the most frequent class of this set (the no-skill rate).
    chance_acc = float(counts.max() / n) if n else None
    warns = (
        _size_warnings(counts, names)
        + _auc_warnings(absent, auc_defined, point["auc"], cis["auc"], level)
        + _accuracy_warnings(point["accuracy"], cis["accuracy"], chance_acc)
        + _prediction_warnings(preds, names)
        + _skipped_warnings(skipped, n_boot)
    )
    return json_safe({
        "n_cases": n,
        "n_per_class": {names[k]: int(counts[k]) for k in range(k_classes)},
        "class_names": names,
        "auc": point["auc"],
        "auc_ci": list(cis["auc"]),
        "auc_classes": [names[k] for k in present] if auc_defined else [],
        "accuracy": point["accuracy"],
        "accuracy_ci": list(cis["accuracy"]),
        "accuracy_chance": chance_acc,
        "balanced_accuracy": point["balanced_accuracy"],
        "f1_macro": point["f1_macro"],
        "f1_macro_ci": list(cis["f1_macro"]),
        "f1_weighted": point["f1_weighted"],
        "precision_macro": point["precision_macro"],
        "recall_macro": point["recall_macro"],
        "specificity": point["specificity"],
        "per_class": point["per_class"],
        "confusion_matrix": point["confusion_matrix"],
        "roc": point["roc"],
        "classes_absent": absent,
        **calibration_metrics(labels, probs, n_boot=n_boot, seed=seed, alpha=alpha),
        "n_boot": int(n_boot),
        "ci_level": round(level, 10),
        "warnings": warns,
    })


# ---------------------------------------------------------------------------- warnings
def _size_warnings(counts: np.ndarray, names: list[str]) -> list[str]:
    """Too few cases: fewer than :data:`_MIN_CASES` in all, or fewer than
    :data:`_MIN_PER_CLASS` in the smallest class present."""
    present = np.flatnonzero(counts)
    if not present.size:
        return []
    n = int(counts.sum())
    fewest = int(present[np.argmin(counts[present])])
    if n < _MIN_CASES or counts[fewest] < _MIN_PER_CLASS:
        return [
            f"too few cases for a meaningful estimate ({n} cases; fewest in one class: "
            f"{int(counts[fewest])}, {names[fewest]})."
        ]
    return []


def _auc_warnings(absent: list[str], auc_defined: bool, point_auc: float,
                  auc_ci: tuple[float | None, float | None], level: float) -> list[str]:
    """Classes AUC cannot score (absent; only one present), and an AUC interval that contains
    chance (0.5)."""
    warns = []
    if absent:
        warns.append(f"classes absent from this set, not scored by AUC: {_join_names(absent)}.")
    if not auc_defined:
        warns.append("AUC undefined: only one class present in this set.")
    lo, hi = auc_ci
    if auc_defined and lo is not None and hi is not None and lo <= 0.5 <= hi:
        warns.append(
            f"AUC {point_auc:.3f} ({100 * level:g}% CI {lo:.3f}–{hi:.3f}) is not distinguishable "
            "from chance: the interval contains 0.5."
        )
    return warns


def _accuracy_warnings(acc: float, acc_ci: tuple[float | None, float | None],
                       chance_acc: float | None) -> list[str]:
    """An accuracy interval that does not rise above always predicting the most frequent class."""
    if chance_acc is not None and acc_ci[0] is not None and acc_ci[0] <= chance_acc:
        return [
            f"accuracy {acc:.3f} (CI {acc_ci[0]:.3f}–{acc_ci[1]:.3f}) is not above always predicting the "
            f"most frequent class ({chance_acc:.3f})."
        ]
    return []


def _prediction_warnings(preds: np.ndarray, names: list[str]) -> list[str]:
    """A model that predicts one class for every case."""
    if np.unique(preds).size == 1:
        return [f"the model predicts one class ({names[int(preds[0])]}) for every case."]
    return []


def _skipped_warnings(skipped: dict[str, int], n_boot: int) -> list[str]:
    """Metrics undefined in too many bootstrap resamples (``skipped``: metric → count)."""
    return [
        f"{label} undefined in {n_skip} of {n_boot} bootstrap resamples "
        f"({100 * n_skip / n_boot:.0f} %, a single class drawn); they were skipped and the "
        "interval is less reliable."
        for label, n_skip in skipped.items()
    ]

def summarise_folds(folds: list[dict]) -> dict:
    """Mean and spread of the scalar metrics over cross-validation folds.

    Args:
        folds: one :func:`classification_metrics` result per fold.

    Returns:
        ``{"n_folds": F, "warnings": [...], <metric>: {"mean", "sd", "n", "values"}}`` for each
        metric in :data:`SCALAR_METRICS`: ``values`` holds the ``F`` per-fold values (``None``
        where undefined), ``n`` the number defined, ``mean`` their mean, ``sd`` their standard
        deviation (``ddof=1``; ``None`` below two defined folds). ``warnings`` holds each fold's
        warnings prefixed ``"fold k: "`` (``k`` from 1), and a chance warning when the mean AUC
        is within 0.05 of 0.5.
    """
    out: dict = {"n_folds": len(folds)}
    for name in SCALAR_METRICS:
        values = [finite_or_none(f.get(name)) for f in folds]
        defined = [v for v in values if v is not None]
        out[name] = {
            "mean": float(np.mean(defined)) if defined else None,
            "sd": float(np.std(defined, ddof=1)) if len(defined) >= 2 else None,
            "n": len(defined),
            "values": values,
        }
    warns = [f"fold {i}: {w}" for i, f in enumerate(folds, start=1) for w in f.get("warnings", [])]
    mean_auc = out["auc"]["mean"]
    if mean_auc is not None and abs(mean_auc - 0.5) < 0.05:
        warns.append(
            f"mean AUC across folds is within 0.05 of chance ({mean_auc:.3f} over "
            f"{out['auc']['n']} folds)."
        )
    out["warnings"] = warns
    return json_safe(out)


def _validate(labels, probs, class_names) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(labels int64 (N,), probs float64 (N, K), names)`` checked; ValueError names the fault."""
    names = [str(c) for c in class_names]
    k_classes = len(names)
    if k_classes < 2:
        raise ValueError(f"need at least two class names, got {k_classes}")
    if len(set(names)) != k_classes:
        raise ValueError(f"class names must be distinct: {names}")
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty (N,) array, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind not in "fb" or not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("labels must be integer class indices")
    labels = labels.astype(np.int64)
    if probs.shape != (labels.size, k_classes):
        raise ValueError(
            f"probs must have shape (N, K) = ({labels.size}, {k_classes}), got {probs.shape}"
        )
    if labels.min() < 0 or labels.max() >= k_classes:
        raise ValueError(f"labels must lie in [0, {k_classes}), got {labels.min()}..{labels.max()}")
    if not np.all(np.isfinite(probs)):
        raise ValueError("probs contain NaN or inf")
    return labels, probs, names


def _join_names(names: list[str]) -> str:
    text = ", ".join(names[:_MAX_NAMES])
    if len(names) > _MAX_NAMES:
        text += f"… (+{len(names) - _MAX_NAMES} more)"
    return text
