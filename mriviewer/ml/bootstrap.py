"""Bootstrap 95 % intervals (percentile method; Efron & Tibshirani 1993), resampling cases with
replacement, in chunks so memory stays bounded.
"""

from __future__ import annotations

import math

import numpy as np

_CHUNK_ELEMENTS = 2_000_000  # array elements per bootstrap chunk (bounds memory)

_MAX_SKIPPED = 0.10  # share of resamples in which a metric may be undefined before a warning


def bootstrap_auc_ci(
    labels: np.ndarray, probs: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` interval of :func:`auc` (ordinary case resampling).

    Args:
        labels: ``(N,)`` int class indices.
        probs: ``(N, K)`` class probabilities.
        n_boot: number of resamples.
        alpha: 1 - confidence level.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``(low, high)``, or ``(nan, nan)`` when the AUC is undefined.
    """
    labels = np.asarray(labels, dtype=int).ravel()
    probs = np.asarray(probs, dtype=np.float64)
    if labels.size == 0 or np.unique(labels).size < 2:
        return math.nan, math.nan
    boot = _bootstrap(labels, probs, np.argmax(probs, axis=1), n_boot, seed)
    lo, hi = _percentile_ci(boot["auc"], alpha)
    return (math.nan if lo is None else lo), (math.nan if hi is None else hi)



def _bootstrap_intervals(
    labels: np.ndarray, probs: np.ndarray, preds: np.ndarray, *, n_boot: int, seed: int,
    alpha: float, auc_defined: bool,
) -> tuple[dict[str, tuple[float | None, float | None]], dict[str, int]]:
    """Percentile bootstrap ``(1 - alpha)`` intervals of AUC, accuracy and macro F1 on the same
    ``n_boot`` ordinary case-level resamples (:func:`_bootstrap`).

    Args:
        labels: ``(N,)`` int class indices.
        probs: ``(N, K)`` probabilities.
        preds: ``(N,)`` arg-max classes.
        n_boot: resamples; 0 gives no intervals.
        seed: seed of ``numpy.random.default_rng``.
        alpha: 1 - confidence level.
        auc_defined: whether the AUC is defined on all cases (no AUC interval otherwise).

    Returns:
        ``(intervals, skipped)``: ``{"auc", "accuracy", "f1_macro"}`` → ``(low, high)``
        (``(None, None)`` where not computed), and ``{"AUC" | "accuracy" | "macro F1": count}``
        of the metrics undefined in more than :data:`_MAX_SKIPPED` of the resamples.
    """
    cis: dict[str, tuple[float | None, float | None]] = dict.fromkeys(
        ("auc", "accuracy", "f1_macro"), (None, None))
    skipped: dict[str, int] = {}
    if n_boot <= 0:
        return cis, skipped
    boot = _bootstrap(labels, probs, preds, n_boot, seed)
    cis["accuracy"] = _percentile_ci(boot["accuracy"], alpha)
    cis["f1_macro"] = _percentile_ci(boot["f1_macro"], alpha)
    if auc_defined:
        cis["auc"] = _percentile_ci(boot["auc"], alpha)
    for key, label in (("auc", "AUC"), ("accuracy", "accuracy"), ("f1_macro", "macro F1")):
        if key == "auc" and not auc_defined:
            continue
        n_skip = int(np.count_nonzero(~np.isfinite(boot[key])))
        if n_skip > _MAX_SKIPPED * n_boot:
            skipped[label] = n_skip
    return cis, skipped

def _bootstrap(
    labels: np.ndarray, probs: np.ndarray, preds: np.ndarray, n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    """AUC, accuracy and macro F1 on ``n_boot`` ordinary case-level resamples.

    Returns:
        ``{"auc", "accuracy", "f1_macro"}``, each ``(n_boot,)`` with ``nan`` where undefined.
    """
    n, k_classes = probs.shape
    chunk = max(1, _CHUNK_ELEMENTS // (6 * n + k_classes * k_classes))
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        parts.append(_resample_stats(labels, probs, preds, idx))
    if not parts:
        return {key: np.empty(0) for key in ("auc", "accuracy", "f1_macro")}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _resample_stats(
    labels: np.ndarray, probs: np.ndarray, preds: np.ndarray, idx: np.ndarray
) -> dict[str, np.ndarray]:
    """AUC, accuracy and macro F1 of each resample, vectorised.

    Matches :func:`auc`, :func:`accuracy` and ``f1_score(average="macro", zero_division=0)``
    applied to ``labels[idx[b]], probs[idx[b]]``.

    Args:
        labels: ``(N,)`` int class indices.
        probs: ``(N, K)`` probabilities.
        preds: ``(N,)`` arg-max classes.
        idx: ``(B, N)`` case indices of ``B`` resamples.

    Returns:
        ``{"auc", "accuracy", "f1_macro"}``, each ``(B,)``; ``nan`` where undefined.
    """
    n_res, n = idx.shape
    k_classes = probs.shape[1]
    y_true = labels[idx]
    y_pred = preds[idx]
    acc = np.mean(y_true == y_pred, axis=1)

    # Macro F1 from per-resample confusion matrices (sklearn averages over the classes present
    # in the labels or the predictions; F1_k = 2 TP / (2 TP + FP + FN) = 2 TP / (support + pred)).
    codes = (np.arange(n_res)[:, None] * k_classes + y_true) * k_classes + y_pred
    cm = np.bincount(codes.ravel(), minlength=n_res * k_classes * k_classes)
    cm = cm.reshape(n_res, k_classes, k_classes)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denom = cm.sum(axis=2) + cm.sum(axis=1)
    scored = denom > 0
    f1_k = np.divide(2.0 * tp, denom, out=np.zeros(denom.shape), where=scored)
    f1 = f1_k.sum(axis=1) / scored.sum(axis=1)

    # AUC by ranks, as the Mann-Whitney statistic with ties counting one half:
    # AUC_k = sum over tie groups g of pos_g * (neg_below_g + neg_g / 2) / (n_pos n_neg), where
    # pos_g, neg_g are the resample's counts of positive and negative cases in group g (the
    # original cases sorted by score once, weighted by how often each was drawn).
    weights = np.bincount(
        (np.arange(n_res)[:, None] * n + idx).ravel(), minlength=n_res * n
    ).reshape(n_res, n).astype(np.float64)
    cols = np.array([1]) if k_classes == 2 else np.unique(labels)
    auc_sum = np.zeros(n_res)
    n_valid = np.zeros(n_res, dtype=np.int64)
    for k in cols:
        scores = probs[:, k]
        order = np.argsort(scores, kind="stable")
        ordered = scores[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        w = weights[:, order]
        is_pos = labels[order] == k
        pos_g = np.add.reduceat(np.where(is_pos, w, 0.0), starts, axis=1)
        neg_g = np.add.reduceat(np.where(is_pos, 0.0, w), starts, axis=1)
        below = np.cumsum(neg_g, axis=1) - neg_g
        n_pos = pos_g.sum(axis=1)
        n_neg = neg_g.sum(axis=1)
        valid = (n_pos > 0) & (n_neg > 0)
        num = np.sum(pos_g * (below + 0.5 * neg_g), axis=1)
        auc_sum += np.divide(num, n_pos * n_neg, out=np.zeros(n_res), where=valid)
        n_valid += valid
    auc_b = np.full(n_res, np.nan)
    ok = n_valid > 0
    auc_b[ok] = auc_sum[ok] / n_valid[ok]
    return {"auc": auc_b, "accuracy": acc, "f1_macro": f1}


def _percentile_ci(values: np.ndarray, alpha: float) -> tuple[float | None, float | None]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)
