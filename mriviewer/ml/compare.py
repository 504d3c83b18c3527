"""Paired comparison of classifiers scored on the same cases: "is run A better than run B here?"

Two AUC intervals read side by side are the wrong test: the runs predicted the same patients, so
their errors are correlated and the difference has a much smaller spread than either interval
suggests. Everything here pairs the cases.

ΔAUC with a paired bootstrap interval
    ``ΔAUC = AUC_A − AUC_B``. Percentile bootstrap (Efron & Tibshirani 1993) with ordinary
    case-level resampling as :mod:`mriviewer.ml.bootstrap`: each resample draws ``N`` cases with
    replacement and *both* runs are scored on that same draw, so the interval is the one of the
    difference. ``numpy.random.default_rng(seed)`` with :data:`SEED` and :data:`N_BOOT`
    resamples by default (the same draws as each run's own AUC interval); a resample holding one
    class is skipped for both. Binary tasks: the AUC of the positive class (class 1).
    Multiclass tasks: the one-vs-rest macro AUC of :mod:`mriviewer.ml.metrics` (the classes
    present, unweighted), paired bootstrap only.

DeLong's test (binary tasks only)
    DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more correlated
    receiver operating characteristic curves: a nonparametric approach", *Biometrics* 44:837–845.
    The AUC is the Mann-Whitney statistic; its structural components ``V10`` (per positive case:
    the share of negatives it outranks, ties one half) and ``V01`` (per negative case) give the
    covariance ``S = S10 / m + S01 / n`` of the runs' AUCs (``S10``, ``S01`` their sample
    covariances, ``ddof = 1``; ``m`` positives, ``n`` negatives), and
    ``z = ΔAUC / sqrt(S_AA + S_BB − 2 S_AB)``, two-sided normal p-value. The components come from
    midranks as in Sun & Xu (2014), "Fast implementation of DeLong's algorithm for comparing the
    areas under correlated receiver operating characteristic curves", *IEEE Signal Processing
    Letters* 21:1389–1393: ``V10_i = (T_Z(i) − T_X(i)) / n``, ``V01_j = 1 − (T_Z(j) − T_Y(j)) / m``
    with ``T_Z``, ``T_X``, ``T_Y`` the midranks among all, positive and negative cases —
    ``O(N log N)`` instead of ``O(m n)``. Identical curves (zero variance, ΔAUC 0) give ``z = 0``,
    ``p = 1``, as R's pROC does. Needs 2 positive and 2 negative cases at least.

McNemar's exact test (accuracy)
    McNemar (1947), "Note on the sampling error of the difference between correlated proportions
    or percentages", *Psychometrika* 12:153–157, in its exact conditional form (Fagerland,
    Lydersen & Laake 2013, *BMC Medical Research Methodology* 13:91): of the cases exactly one
    run gets right, the count run A alone gets right is Binomial(discordant, 1/2) under no
    difference; the two-sided p-value is ``scipy.stats.binomtest``'s. Each run's decision is its
    arg-max class (binary: the positive class when its probability is above 0.5), as in its
    metrics.

Several runs
    Every pair is compared. P-values are given as computed and Holm-adjusted over the pairs,
    each test apart (Holm 1979, "A simple sequentially rejective multiple test procedure",
    *Scandinavian Journal of Statistics* 6:65–70); the plain-language lines use the adjusted
    ones when there is more than one pair. Bootstrap intervals are 95 % for each pair, not
    simultaneous.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from mriviewer.core.files import json_safe
from mriviewer.ml.bootstrap import (
    _CHUNK_ELEMENTS,
    _percentile_ci,
    _resample_stats,
    bootstrap_auc_ci,
)
from mriviewer.ml.scores import accuracy, auc

__all__ = ["N_BOOT", "SEED", "ALPHA", "delong_covariance", "delong_test", "mcnemar_exact", "paired_bootstrap",
           "holm", "compare_pair", "compare_runs", "verdict_lines", "format_p", "signed", "METHOD"]

#: Bootstrap resamples and seed (as :func:`mriviewer.ml.metrics.classification_metrics`).
N_BOOT = 1000
SEED = 0
#: Tests at level ``ALPHA``; intervals at ``1 − ALPHA``.
ALPHA = 0.05
#: Fewer positive or negative paired cases than this: the comparison has little power (said).
FEW_PER_CLASS = 20
#: A ΔAUC interval wider than this is called wide.
WIDE_INTERVAL = 0.2

#: How the figures were computed, in words (for the text and the JSON).
METHOD = {
    "delta_auc": "paired percentile bootstrap: cases resampled jointly, the same draws for every run "
                 "(Efron & Tibshirani 1993)",
    "delong": "DeLong, DeLong & Clarke-Pearson 1988 (Biometrics 44:837), fast algorithm of Sun & Xu 2014 "
              "(IEEE SPL 21:1389); binary tasks only",
    "mcnemar": "McNemar 1947 (Psychometrika 12:153), exact binomial test on the discordant cases "
               "(scipy.stats.binomtest), each run's arg-max decision",
    "multiplicity": "with several pairs, p-values are also Holm-adjusted (Holm 1979); the verdicts use the "
                    "adjusted ones; intervals are per pair, not simultaneous",
    "multiclass": "multiclass: ΔAUC is the one-vs-rest macro AUC with the paired bootstrap; DeLong's test is "
                  "binary-only and not reported",
}


# ---------------------------------------------------------------------------- DeLong
def delong_covariance(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of ``R`` score rows on the same cases and their DeLong covariance (Sun & Xu's midranks).

    Args:
        labels: ``(N,)`` 0/1 outcomes (1 = positive), at least 2 of each.
        scores: ``(R, N)`` or ``(N,)`` scores, higher meaning more likely positive.

    Returns:
        ``(aucs (R,), cov (R, R))``.

    Raises:
        ValueError: shapes that do not fit, labels other than 0/1, fewer than 2 positive or
            negative cases, non-finite scores.
    """
    from scipy.stats import rankdata

    y = np.asarray(labels)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if y.ndim != 1 or scores.shape[1] != y.size:
        raise ValueError(f"scores of shape {scores.shape} do not fit {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's test needs at least 2 positive and 2 negative cases ({m} and {n} here)")
    t_x = rankdata(pos, axis=1)
    t_y = rankdata(neg, axis=1)
    t_z = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (t_z[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / n
    v10 = (t_z[:, :m] - t_x) / n
    v01 = 1.0 - (t_z[:, m:] - t_y) / m
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def delong_test(labels, scores_a, scores_b, alpha: float = ALPHA) -> dict:
    """DeLong's test of ``AUC_A = AUC_B`` for two correlated ROC curves (module docstring).

    Returns:
        ``{"auc_a", "auc_b", "delta", "se", "z", "p", "ci"}`` (``ci``: the ``1 − alpha`` normal
        interval of ΔAUC from DeLong's variance), or ``{"p": None, "reason": …}`` when undefined
        (too few cases of a class; zero variance with a nonzero difference).
    """
    from scipy.stats import norm

    try:
        aucs, cov = delong_covariance(labels, np.vstack([scores_a, scores_b]))
    except ValueError as exc:
        return {"p": None, "reason": str(exc)}
    delta = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    out = {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "delta": delta}
    if var <= 1e-15:
        if abs(delta) > 1e-12:
            return {**out, "p": None, "reason": "DeLong's variance of ΔAUC is zero; the test is undefined"}
        return {**out, "se": 0.0, "z": 0.0, "p": 1.0, "ci": [0.0, 0.0]}
    se = math.sqrt(var)
    z = delta / se
    half = float(norm.ppf(1.0 - alpha / 2.0)) * se
    return {**out, "se": se, "z": z, "p": float(2.0 * norm.sf(abs(z))), "ci": [delta - half, delta + half]}


# ---------------------------------------------------------------------------- McNemar
def mcnemar_exact(correct_a, correct_b) -> dict:
    """McNemar's exact test on paired right/wrong outcomes (module docstring).

    Args:
        correct_a, correct_b: ``(N,)`` booleans, whether each run got each case right.

    Returns:
        ``{"a_only", "b_only", "both", "neither", "discordant", "p"}``; ``p = 1`` when no case is
        discordant (nothing to compare).
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes of different shapes: {a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    disc = a_only + b_only
    p = 1.0 if disc == 0 else float(binomtest(a_only, disc, 0.5, alternative="two-sided").pvalue)
    return {"a_only": a_only, "b_only": b_only, "both": int(np.sum(a & b)), "neither": int(np.sum(~a & ~b)),
            "discordant": disc, "p": min(1.0, p)}


# ---------------------------------------------------------------------------- paired bootstrap
def paired_bootstrap(labels, probs_a, probs_b, *, n_boot: int = N_BOOT, seed: int = SEED,
                     alpha: float = ALPHA) -> dict:
    """Percentile intervals of ΔAUC and Δaccuracy over case resamples drawn once for both runs.

    Args:
        labels: ``(N,)`` int class indices.
        probs_a, probs_b: ``(N, K)`` class probabilities of the two runs on the same cases.
        n_boot: resamples (0: no intervals).
        seed: seed of ``numpy.random.default_rng``.
        alpha: intervals at level ``1 − alpha``.

    Returns:
        ``{"delta_auc_ci", "delta_accuracy_ci", "n_boot", "seed", "skipped"}`` (``skipped``:
        resamples in which the AUC was undefined, one class drawn; ``None`` ends where not
        computed).
    """
    labels = np.asarray(labels, dtype=int).ravel()
    pa, pb = np.asarray(probs_a, dtype=np.float64), np.asarray(probs_b, dtype=np.float64)
    if pa.shape != pb.shape or pa.shape[0] != labels.size:
        raise ValueError(f"probabilities of shapes {pa.shape} and {pb.shape} do not fit {labels.size} labels")
    out = {"delta_auc_ci": [None, None], "delta_accuracy_ci": [None, None], "n_boot": int(n_boot),
           "seed": int(seed), "skipped": 0}
    n, k = pa.shape
    if n_boot <= 0 or n == 0:
        return out
    chunk = max(1, _CHUNK_ELEMENTS // (6 * n + k * k))  # as mriviewer.ml.bootstrap: the same draws
    rng = np.random.default_rng(seed)
    pred_a, pred_b = np.argmax(pa, axis=1), np.argmax(pb, axis=1)
    d_auc, d_acc = [], []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        sa = _resample_stats(labels, pa, pred_a, idx)
        sb = _resample_stats(labels, pb, pred_b, idx)
        d_auc.append(sa["auc"] - sb["auc"])
        d_acc.append(sa["accuracy"] - sb["accuracy"])
    d_auc_all = np.concatenate(d_auc)
    out["skipped"] = int(np.count_nonzero(~np.isfinite(d_auc_all)))
    if np.unique(labels).size >= 2:
        out["delta_auc_ci"] = list(_percentile_ci(d_auc_all, alpha))
    out["delta_accuracy_ci"] = list(_percentile_ci(np.concatenate(d_acc), alpha))
    return out


def holm(pvalues: list) -> list:
    """Holm's step-down adjusted p-values (``None`` entries are left out and kept as ``None``)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


# ---------------------------------------------------------------------------- one pair, all pairs
def compare_pair(labels, probs_a, probs_b, *, n_boot: int = N_BOOT, seed: int = SEED, alpha: float = ALPHA) -> dict:
    """Every paired statistic of two runs on the same cases.

    Args:
        labels: ``(N,)`` int class indices (class 1 is the positive class of a binary task).
        probs_a, probs_b: ``(N, K)`` probabilities, columns in the same class order.

    Returns:
        ``{"n_cases", "n_positive", "n_negative", "auc_a", "auc_b", "delta_auc", "delta_auc_ci",
        "delong", "accuracy_a", "accuracy_b", "delta_accuracy", "delta_accuracy_ci", "mcnemar",
        "bootstrap"}`` (``n_positive``/``n_negative`` and ``delong`` binary only, else ``None``).
    """
    labels = np.asarray(labels, dtype=int).ravel()
    pa, pb = np.asarray(probs_a, dtype=np.float64), np.asarray(probs_b, dtype=np.float64)
    binary = pa.shape[1] == 2
    auc_a, auc_b = auc(labels, pa), auc(labels, pb)
    acc_a, acc_b = accuracy(labels, pa), accuracy(labels, pb)
    boot = paired_bootstrap(labels, pa, pb, n_boot=n_boot, seed=seed, alpha=alpha)
    delong = (delong_test((labels == 1).astype(int), pa[:, 1], pb[:, 1], alpha) if binary
              else {"p": None, "reason": "DeLong's test is for binary tasks"})
    return {
        "n_cases": int(labels.size),
        "n_positive": int(np.sum(labels == 1)) if binary else None,
        "n_negative": int(np.sum(labels == 0)) if binary else None,
        "auc_a": auc_a, "auc_b": auc_b,
        "delta_auc": auc_a - auc_b if math.isfinite(auc_a - auc_b) else None,
        "delta_auc_ci": boot["delta_auc_ci"], "delong": delong,
        "accuracy_a": acc_a, "accuracy_b": acc_b, "delta_accuracy": acc_a - acc_b,
        "delta_accuracy_ci": boot["delta_accuracy_ci"],
        "mcnemar": mcnemar_exact(np.argmax(pa, axis=1) == labels, np.argmax(pb, axis=1) == labels),
        "bootstrap": {"n_boot": boot["n_boot"], "seed": boot["seed"], "skipped": boot["skipped"]},
    }


def compare_runs(labels, probs: list, names: list[str], class_names: list[str], *, n_boot: int = N_BOOT,
                 seed: int = SEED, alpha: float = ALPHA) -> dict:
    """Each run's AUC and accuracy and every pair's paired statistics, with Holm-adjusted
    p-values and plain-language verdicts (module docstring).

    Args:
        labels: ``(N,)`` int class indices into ``class_names`` of the paired cases.
        probs: one ``(N, K)`` array per run, rows aligned with ``labels``, columns in
            ``class_names``' order.
        names: one display name per run (distinct).
        class_names: ``K ≥ 2`` class names; for binary tasks the second is the positive class.

    Returns:
        A strict-JSON-ready dict: ``n_cases``, ``n_per_class``, ``class_names``, ``positive``
        (binary) , ``runs`` (``name``, ``auc``, ``auc_ci``, ``accuracy``), ``pairs`` (``a``,
        ``b`` and :func:`compare_pair`'s figures, with ``delong.p_holm``, ``mcnemar.p_holm`` and
        ``verdict``: lines of text), ``notes`` and ``method``.
    """
    labels = np.asarray(labels, dtype=int).ravel()
    if len(probs) < 2 or len(probs) != len(names) or len(set(names)) != len(names):
        raise ValueError("need two or more runs with distinct names")
    k = len(class_names)
    runs = []
    for name, p in zip(names, probs, strict=True):
        lo, hi = bootstrap_auc_ci(labels, p, n_boot=n_boot, seed=seed, alpha=alpha)
        runs.append({"name": name, "auc": auc(labels, p), "auc_ci": [lo, hi], "accuracy": accuracy(labels, p)})
    pairs = []
    for i, j in combinations(range(len(names)), 2):
        pairs.append({"a": names[i], "b": names[j],
                      **compare_pair(labels, probs[i], probs[j], n_boot=n_boot, seed=seed, alpha=alpha)})
    for key in ("delong", "mcnemar"):
        for pair, adj in zip(pairs, holm([pr[key].get("p") for pr in pairs]), strict=True):
            pair[key]["p_holm"] = adj
    for pair in pairs:
        pair["verdict"] = verdict_lines(pair, adjusted=len(pairs) > 1, alpha=alpha)
    counts = np.bincount(labels, minlength=k)
    notes = [METHOD["multiclass"]] if k > 2 else []
    for name, p in zip(names, probs, strict=True):
        if np.unique(np.argmax(p, axis=1)).size == 1:
            notes.append(f"{name} predicts one class ({class_names[int(np.argmax(p[0]))]}) for every paired case.")
    if len(pairs) > 1:
        notes.append(f"{len(pairs)} pairs: the verdicts use Holm-adjusted p-values (both are given); "
                     "the intervals are 95% for each pair, not simultaneous.")
    return json_safe({
        "n_cases": int(labels.size), "n_per_class": {class_names[c]: int(counts[c]) for c in range(k)},
        "class_names": list(class_names), "positive": class_names[1] if k == 2 else None,
        "runs": runs, "pairs": pairs, "notes": notes, "method": METHOD, "ci_level": round(1 - alpha, 10),
        "n_boot": int(n_boot), "seed": int(seed),
    })


# ---------------------------------------------------------------------------- words
def format_p(p) -> str:
    """``p = 0.41``, ``p = 0.054``, ``p = 0.004``, ``p < 0.001``, or ``p n/a`` (three decimals below
    0.1, so a p-value just above 0.05 never reads "0.05")."""
    if p is None or not math.isfinite(p):
        return "p n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def signed(v: float, digits: int = 2) -> str:
    """A signed figure with a true minus sign (``−0.08``, ``0.12``; never ``−0.00``)."""
    if round(v, digits) == 0:
        v = 0.0
    return f"{v:.{digits}f}".replace("-", "−")


def verdict_lines(pair: dict, *, adjusted: bool = False, alpha: float = ALPHA) -> list[str]:
    """Plain-language lines for one pair that never claim more than the figures show: the AUC
    verdict (DeLong and the bootstrap interval), the accuracy verdict (McNemar), and a line on
    power when the cases are few or the interval is wide."""
    lines = [_auc_verdict(pair, adjusted, alpha), _accuracy_verdict(pair, adjusted, alpha)]
    lo, hi = pair["delta_auc_ci"]
    n_pos, n_neg = pair["n_positive"], pair["n_negative"]
    if n_pos is not None and min(n_pos, n_neg) < FEW_PER_CLASS:
        lines.append(f"with {pair['n_cases']} paired cases ({n_pos} positive, {n_neg} negative) the comparison has "
                     "little power: a real difference could easily go undetected, so 'no evidence of a difference' "
                     "does not mean the runs are equally good.")
    elif lo is not None and hi - lo > WIDE_INTERVAL:
        lines.append(f"the interval for ΔAUC is wide ({signed(lo)} to {signed(hi)}): differences that large are not ruled "
                     "out; more cases would narrow it.")
    return lines


def _auc_verdict(pair: dict, adjusted: bool, alpha: float) -> str:
    a, b, delta = pair["a"], pair["b"], pair["delta_auc"]
    lo, hi = pair["delta_auc_ci"]
    if delta is None or lo is None:
        return "ΔAUC undefined: the paired cases hold a single class."
    p = pair["delong"].get("p_holm" if adjusted else "p")
    p_text = ("Holm-adjusted DeLong " if adjusted else "DeLong ") + format_p(p)
    interval = f"the interval for ΔAUC, {signed(lo)} to {signed(hi)}, {'includes' if lo <= 0 <= hi else 'excludes'} 0"
    higher = a if delta > 0 else b
    if p is None:  # multiclass, or DeLong undefined: the bootstrap alone
        why = pair["delong"].get("reason", "DeLong's test is undefined")
        if lo <= 0 <= hi:
            return f"no evidence of a difference in AUC: {interval} ({why})."
        return f"{higher} has the higher AUC on these cases: {interval} ({why}; bootstrap only)."
    if p >= alpha and lo <= 0 <= hi:
        return f"no evidence of a difference in AUC ({p_text}); {interval}."
    if p < alpha and not lo <= 0 <= hi:
        return (f"evidence that {higher} has the higher AUC on these cases (ΔAUC {signed(delta, 3)}, 95% CI "
                f"{signed(lo)} to {signed(hi)}; {p_text}).")
    return (f"inconclusive: {p_text} but {interval}; the two methods disagree, as they can when the evidence "
            "is borderline.")


def _accuracy_verdict(pair: dict, adjusted: bool, alpha: float) -> str:
    mc = pair["mcnemar"]
    if mc["discordant"] == 0:
        return "both runs are right and wrong on the same cases: no difference in accuracy to test (McNemar p = 1)."
    p = mc.get("p_holm" if adjusted else "p")
    p_text = ("Holm-adjusted McNemar " if adjusted else "McNemar exact ") + format_p(p)
    if p is None or p >= alpha:
        return f"no evidence of a difference in accuracy ({p_text} on {mc['discordant']} discordant case(s))."
    better, n_better, n_other = ((pair["a"], mc["a_only"], mc["b_only"]) if mc["a_only"] > mc["b_only"]
                                 else (pair["b"], mc["b_only"], mc["a_only"]))
    return (f"evidence that {better} is right more often on these cases ({p_text}; alone right on {n_better} "
            f"case(s) against {n_other}).")
