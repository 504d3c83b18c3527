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

import math
import warnings as _warnings
from collections.abc import Sequence

import numpy as np

from mriviewer.core.files import json_safe  # one home for strict-JSON conversion (re-exported)
from mriviewer.ml.bootstrap import _bootstrap, _percentile_ci
from mriviewer.ml.scores import auc

SCALAR_METRICS = (
    "auc", "accuracy", "balanced_accuracy", "f1_macro", "f1_weighted",
    "precision_macro", "recall_macro", "specificity",
)
"""Scalar metrics of :func:`classification_metrics` that :func:`summarise_folds` averages."""


_MIN_CASES = 10


_MIN_PER_CLASS = 5


_MAX_SKIPPED = 0.10


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
        ``accuracy_ci``, ``balanced_accuracy``, ``f1_macro``, ``f1_macro_ci``, ``f1_weighted``,
        ``precision_macro``, ``recall_macro``, ``specificity``, ``per_class``,
        ``confusion_matrix`` (``K x K``, rows true, columns predicted), ``roc``,
        ``classes_absent``, ``n_boot``, ``ci_level``, ``warnings``. See the module docstring for
        the definitions.

    Raises:
        ValueError: inconsistent shapes, labels out of range, non-finite probabilities, no
            cases, fewer than two or duplicate class names.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
        roc_curve,
    )

    labels, probs, names = _validate(labels, probs, class_names)
    n, k_classes = probs.shape
    binary = k_classes == 2
    preds = np.argmax(probs, axis=1)
    all_k = np.arange(k_classes)
    counts = np.bincount(labels, minlength=k_classes)
    present = np.flatnonzero(counts)
    absent = [names[k] for k in all_k if counts[k] == 0]
    auc_defined = present.size >= 2

    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")  # sklearn's UndefinedMetricWarning / absent-class notes
        point_auc = auc(labels, probs)
        acc = accuracy_score(labels, preds)
        bacc = balanced_accuracy_score(labels, preds)
        f1_macro = f1_score(labels, preds, average="macro", zero_division=0)
        f1_weighted = f1_score(labels, preds, average="weighted", zero_division=0)
        p_macro, r_macro, _, _ = precision_recall_fscore_support(
            labels, preds, average="macro", zero_division=0
        )
        prec, rec, f1s, support = precision_recall_fscore_support(
            labels, preds, labels=all_k, average=None, zero_division=0
        )
        cm = confusion_matrix(labels, preds, labels=all_k)

        tp = np.diag(cm).astype(float)
        negatives = n - cm.sum(axis=1)
        true_neg = negatives - (cm.sum(axis=0) - tp)
        spec_k = np.divide(true_neg, negatives, out=np.full(k_classes, np.nan), where=negatives > 0)
        if binary:
            specificity = spec_k[1]
        else:
            scored = (cm.sum(axis=1) + cm.sum(axis=0)) > 0  # classes of macro recall
            vals = spec_k[scored & np.isfinite(spec_k)]
            specificity = float(np.mean(vals)) if vals.size else math.nan

        per_class = {}
        for k in all_k:
            k_auc = None
            if 0 < counts[k] < n:
                k_auc = roc_auc_score(labels == k, probs[:, k])
            per_class[names[k]] = {
                "precision": prec[k], "recall": rec[k], "f1": f1s[k],
                "specificity": spec_k[k], "support": int(support[k]), "auc": k_auc,
            }

        if binary:
            if auc_defined:
                fpr, tpr, thr = roc_curve(labels, probs[:, 1])
                roc = {"fpr": fpr, "tpr": tpr, "thresholds": thr}
            else:
                roc = {"fpr": [], "tpr": [], "thresholds": []}
        else:
            roc = {}
            if auc_defined:
                for k in present:
                    fpr, tpr, _ = roc_curve(labels == k, probs[:, k])
                    roc[names[k]] = {"fpr": fpr, "tpr": tpr}

    level = 1.0 - alpha
    auc_ci = acc_ci = f1_ci = (None, None)
    skipped: dict[str, int] = {}
    if n_boot > 0:
        boot = _bootstrap(labels, probs, preds, n_boot, seed)
        acc_ci = _percentile_ci(boot["accuracy"], alpha)
        f1_ci = _percentile_ci(boot["f1_macro"], alpha)
        if auc_defined:
            auc_ci = _percentile_ci(boot["auc"], alpha)
        for key, label in (("auc", "AUC"), ("accuracy", "accuracy"), ("f1_macro", "macro F1")):
            if key == "auc" and not auc_defined:
                continue
            n_skip = int(np.count_nonzero(~np.isfinite(boot[key])))
            if n_skip > _MAX_SKIPPED * n_boot:
                skipped[label] = n_skip

    warns = []
    if present.size:
        fewest = int(present[np.argmin(counts[present])])
        if n < _MIN_CASES or counts[fewest] < _MIN_PER_CLASS:
            warns.append(
                f"too few cases for a meaningful estimate ({n} cases; fewest in one class: "
                f"{int(counts[fewest])}, {names[fewest]})."
            )
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
    # Accuracy against always answering the most frequent class of this set (the no-skill rate).
    chance_acc = float(counts.max() / n) if n else None
    if chance_acc is not None and acc_ci[0] is not None and acc_ci[0] <= chance_acc:
        warns.append(
            f"accuracy {acc:.3f} (CI {acc_ci[0]:.3f}–{acc_ci[1]:.3f}) is not above always predicting the "
            f"most frequent class ({chance_acc:.3f})."
        )
    if np.unique(preds).size == 1:
        warns.append(f"the model predicts one class ({names[int(preds[0])]}) for every case.")
    for label, n_skip in skipped.items():
        warns.append(
            f"{label} undefined in {n_skip} of {n_boot} bootstrap resamples "
            f"({100 * n_skip / n_boot:.0f} %, a single class drawn); they were skipped and the "
            "interval is less reliable."
        )

    return json_safe({
        "n_cases": n,
        "n_per_class": {names[k]: int(counts[k]) for k in all_k},
        "class_names": names,
        "auc": point_auc,
        "auc_ci": list(auc_ci),
        "auc_classes": [names[k] for k in present] if auc_defined else [],
        "accuracy": acc,
        "accuracy_ci": list(acc_ci),
        "accuracy_chance": chance_acc,
        "balanced_accuracy": bacc,
        "f1_macro": f1_macro,
        "f1_macro_ci": list(f1_ci),
        "f1_weighted": f1_weighted,
        "precision_macro": p_macro,
        "recall_macro": r_macro,
        "specificity": specificity,
        "per_class": per_class,
        "confusion_matrix": cm,
        "roc": roc,
        "classes_absent": absent,
        "n_boot": int(n_boot),
        "ci_level": round(level, 10),
        "warnings": warns,
    })


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
        values = [_finite_or_none(f.get(name)) for f in folds]
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


def _finite_or_none(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None
