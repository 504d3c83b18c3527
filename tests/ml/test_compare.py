"""Paired comparison statistics (mriviewer.ml.compare): DeLong against an O(m n) structural-components
reference and R pROC's published values, the paired bootstrap against a direct loop, McNemar by
hand, Holm, and the verdicts' words."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mriviewer.ml.compare import (
    compare_pair,
    compare_runs,
    delong_covariance,
    delong_test,
    format_p,
    holm,
    mcnemar_exact,
    paired_bootstrap,
)


def _reference_delong(y, scores):
    """DeLong et al. (1988) as written: psi(X, Y) = 1 if X > Y, 1/2 if tied, 0 below, over every
    positive-negative pair (O(m n), no ranks); V10, V01 are psi's means over the other class."""
    y = np.asarray(y)
    v10s, v01s = [], []
    for s in np.atleast_2d(scores):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    v10, v01 = np.array(v10s), np.array(v01s)
    m, n = v10.shape[1], v01.shape[1]
    aucs = v10.mean(axis=1)
    s10 = (v10 - aucs[:, None]) @ (v10 - aucs[:, None]).T / (m - 1)
    s01 = (v01 - aucs[:, None]) @ (v01 - aucs[:, None]).T / (n - 1)
    return aucs, s10 / m + s01 / n


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_delong_matches_the_pairwise_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 60 + 20 * seed
    y = rng.integers(0, 2, n)
    a = np.round(y + rng.normal(0, 1, n), 1)  # rounded: ties within and across classes
    b = np.round(0.5 * a + rng.normal(0, 1, n), 0)
    c = rng.random(n)
    aucs, cov = delong_covariance(y, np.vstack([a, b, c]))
    ref_aucs, ref_cov = _reference_delong(y, np.vstack([a, b, c]))
    np.testing.assert_allclose(aucs, ref_aucs, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-15)
    for k, s in enumerate((a, b, c)):
        assert aucs[k] == pytest.approx(roc_auc_score(y, s), abs=1e-12)


# pROC::aSAH (Turck et al. 2010, Clin Chim Acta 411:1650; shipped with R's pROC, Robin et al. 2011,
# BMC Bioinformatics 12:77): 113 patients after subarachnoid haemorrhage, outcome Poor = 1 (41).
_ASAH_POOR = """
0 0 0 0 1 1 0 1 0 0 1 0 1 1 0 0 1 0 1 1 1 0 1 0 0 0 0 0 0 0 0 0 1 0 0 1 1 0 1 1 0 0 0 0 0 0 0 0 0 1 1 0 0 0 1 0
0 0 1 0 1 0 0 1 1 1 0 1 1 0 1 1 1 1 0 0 0 1 1 0 1 0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 0 0 0 1 0 0
0"""
_ASAH_S100B = """
0.13 0.14 0.1 0.04 0.13 0.1 0.47 0.16 0.18 0.1 0.12 0.1 0.44 0.71 0.04 0.08 0.49 0.04 0.07 0.33 0.09 0.09 0.07
0.11 0.07 0.17 0.07 0.11 0.13 0.19 0.05 0.16 0.41 0.14 0.34 0.35 0.48 0.09 0.96 0.25 0.5 0.46 0.16 0.07 0.43
0.45 0.11 0.08 0.09 0.86 0.52 0.08 0.06 0.13 2.07 0.1 0.14 0.15 0.07 0.06 0.77 0.05 0.09 0.3 0.03 0.09 0.04 0.23
0.7 0.09 0.27 0.71 0.08 0.26 0.08 0.16 0.09 0.13 0.1 0.08 0.11 0.33 0.11 0.28 0.07 0.1 0.32 0.22 0.07 0.05 0.24
0.38 0.1 0.15 0.08 0.14 0.1 0.07 0.04 0.19 0.56 0.14 0.58 0.32 0.82 0.74 0.15 0.47 0.17 0.44 0.15 0.5 0.48"""
_ASAH_WFNS = """
1 1 1 1 3 2 5 4 1 2 5 2 5 5 1 2 5 2 2 5 2 1 1 1 1 2 1 2 1 1 3 4 2 1 4 5 4 1 4 2 5 5 1 1 2 4 1 1 2 5 5 2 1 2 5 1
2 2 2 1 5 1 1 2 5 2 1 4 5 2 4 4 1 4 1 2 1 4 2 1 2 3 2 4 2 1 4 5 1 1 5 4 2 2 1 1 1 3 1 2 5 2 2 5 5 5 2 4 4 5 1 1
1"""
_ASAH_NDKA = """
3.01 8.54 8.09 10.42 17.4 12.75 6.0 13.2 15.54 6.01 15.96 17.86 5.18 8.9 13.41 20.75 11.6 16.11 32.37 54.82
32.41 49.94 40.34 9.47 6.29 12.53 6.54 6.3 80.3 12.8 9.8 9.81 9.85 18.21 5.03 14.04 21.93 8.02 7.42 8.38 6.59
9.63 13.12 7.96 14.34 41.43 7.63 7.06 12.59 13.56 3.87 9.44 7.66 12.98 419.19 27.19 22.27 9.95 21.22 11.73 10.4
58.83 6.39 11.09 12.22 13.67 17.21 22.63 12.9 9.7 21.57 8.23 72.57 15.54 10.51 10.6 14.57 5.19 9.63 4.61 21.48
17.3 12.71 9.44 11.07 19.46 10.83 5.37 11.97 7.75 9.83 10.55 28.49 8.53 12.57 12.9 46.83 11.68 12.67 9.01 9.57
34.06 11.72 14.26 47.61 11.67 24.58 10.33 13.87 15.89 22.43 6.79 13.45"""

# R pROC's own tests (tests/testthat/test-roc.test.R): roc.test(a, b) with its defaults (DeLong,
# paired, two-sided) gives Z, p and the 95 % interval of AUC_a - AUC_b; pROC's documentation
# gives the AUCs (s100b 0.7314, wfns 0.8237, ndka 0.6120).
_PROC = [  # (a, b, Z, p, ci)
    ("wfns", "s100b", 2.20898359144091, 0.0271757822291882, (0.0104061769564846, 0.174214419249478)),
    ("wfns", "ndka", 2.79777591868904, 0.00514557970691098, (0.0634011709339876, 0.3600405634833566)),
    ("ndka", "s100b", -1.39077002573558, 0.164295175223054, (-0.2876917446341914, 0.0488706064228094)),
]


def _asah():
    y = np.array(_ASAH_POOR.split(), dtype=int)
    markers = {name: np.array(text.split(), dtype=float)
               for name, text in (("s100b", _ASAH_S100B), ("wfns", _ASAH_WFNS), ("ndka", _ASAH_NDKA))}
    return y, markers


@pytest.mark.parametrize("a, b, z, p, ci", _PROC)
def test_delong_reproduces_proc_on_its_published_example(a, b, z, p, ci):
    y, markers = _asah()
    assert (y.size, int(y.sum())) == (113, 41) and all(v.size == 113 for v in markers.values())
    aucs = {k: roc_auc_score(y, v) for k, v in markers.items()}
    assert [round(aucs[k], 4) for k in ("s100b", "wfns", "ndka")] == [0.7314, 0.8237, 0.6120]
    t = delong_test(y, markers[a], markers[b])
    assert t["z"] == pytest.approx(z, rel=1e-9)
    assert t["p"] == pytest.approx(p, rel=1e-9)
    assert t["ci"] == pytest.approx(ci, rel=1e-9)
    assert t["delta"] == pytest.approx(aucs[a] - aucs[b], abs=1e-12)


def test_delong_is_symmetric_and_identical_curves_give_p_1():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 80)
    a, b = y + rng.normal(0, 1, 80), rng.normal(0, 1, 80)
    ab, ba = delong_test(y, a, b), delong_test(y, b, a)
    assert ab["z"] == pytest.approx(-ba["z"]) and ab["p"] == pytest.approx(ba["p"])
    assert ab["delta"] == pytest.approx(-ba["delta"])
    same = delong_test(y, a, a.copy())
    assert same["p"] == 1.0 and same["z"] == 0.0 and same["delta"] == 0.0
    # Same ranking, other values (a monotone transform): the same curve.
    assert delong_test(y, a, np.exp(a))["p"] == 1.0


def test_delong_separated_against_random_is_tiny_and_few_cases_are_undefined():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    perfect = y + rng.uniform(0, 0.5, 200)
    t = delong_test(y, perfect, rng.random(200))
    assert t["auc_a"] == 1.0 and t["p"] < 1e-20
    few = delong_test(np.array([0, 1, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1]))
    assert few["p"] is None and "2 positive and 2 negative" in few["reason"]
    with pytest.raises(ValueError, match="0/1"):
        delong_covariance(np.array([0, 2, 1, 0]), np.zeros(4))


def test_mcnemar_exact_by_hand():
    # Run A alone right on 1 case, run B alone right on 6: two-sided binomial p = 2 (C(7,0) + C(7,1)) / 2^7.
    a = np.array([1] * 1 + [0] * 6 + [1] * 10 + [0] * 3, dtype=bool)
    b = np.array([0] * 1 + [1] * 6 + [1] * 10 + [0] * 3, dtype=bool)
    r = mcnemar_exact(a, b)
    assert (r["a_only"], r["b_only"], r["both"], r["neither"], r["discordant"]) == (1, 6, 10, 3, 7)
    assert r["p"] == pytest.approx(2 * (1 + 7) / 128)
    assert mcnemar_exact([0] * 5, [1] * 5)["p"] == pytest.approx(2 / 32)  # 0 of 5 discordant: 2 / 2^5
    assert mcnemar_exact([1, 0, 1], [1, 0, 1])["p"] == 1.0  # nothing discordant
    assert mcnemar_exact([1, 0], [0, 1])["p"] == 1.0


def _probs(p1):
    return np.stack([1 - p1, p1], axis=1)


def test_paired_bootstrap_uses_the_same_draws_for_both_runs():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40)
    pa, pb = _probs(1 / (1 + np.exp(-(y + rng.normal(0, 1, 40))))), _probs(rng.random(40))
    out = paired_bootstrap(y, pa, pb, n_boot=200, seed=3)
    # The same resamples, drawn and scored directly with scikit-learn.
    idx = np.random.default_rng(3).integers(0, 40, size=(200, 40))
    deltas = [roc_auc_score(y[i], pa[i, 1]) - roc_auc_score(y[i], pb[i, 1]) for i in idx if np.unique(y[i]).size == 2]
    assert out["delta_auc_ci"] == pytest.approx(list(np.percentile(deltas, [2.5, 97.5])), abs=1e-12)
    pair = compare_pair(y, pa, pb, n_boot=200, seed=3)
    lo, hi = pair["delta_auc_ci"]
    assert lo <= pair["delta_auc"] <= hi
    assert pair["delta_auc"] == pytest.approx(roc_auc_score(y, pa[:, 1]) - roc_auc_score(y, pb[:, 1]))
    same = compare_pair(y, pa, pa.copy(), n_boot=200)
    assert same["delta_auc"] == 0.0 and same["delta_auc_ci"] == [0.0, 0.0] and same["delong"]["p"] == 1.0
    assert same["mcnemar"]["discordant"] == 0 and same["delta_accuracy_ci"] == [0.0, 0.0]


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, None, 0.9]) == [0.4, None, 0.9]
    assert holm([0.6, 0.7]) == [1.0, 1.0]


def test_compare_runs_all_pairs_holm_and_words():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 60)
    good = _probs(1 / (1 + np.exp(-(4 * (y - 0.5) + rng.normal(0, 1, 120)))))
    noise = _probs(rng.random(120))
    noise2 = _probs(noise[:, 1] ** 2)  # the same ranking: the same ROC curve
    r = compare_runs(y, [good, noise, noise2], ["good", "noise", "noise2"], ["neg", "pos"], n_boot=300)
    json.dumps(r, allow_nan=False)
    assert [(p["a"], p["b"]) for p in r["pairs"]] == [("good", "noise"), ("good", "noise2"), ("noise", "noise2")]
    for p in r["pairs"]:
        assert p["delong"]["p_holm"] >= p["delong"]["p"] and p["mcnemar"]["p_holm"] >= p["mcnemar"]["p"]
    first, last = r["pairs"][0]["verdict"], r["pairs"][2]["verdict"]
    assert first[0].startswith("evidence that good has the higher AUC") and "Holm-adjusted DeLong p" in first[0]
    assert last[0].startswith("no evidence of a difference in AUC") and "includes 0" in last[0]
    assert not any("little power" in v for v in first)  # 60 per class
    assert any("Holm-adjusted" in n for n in r["notes"]) and r["positive"] == "pos"
    assert r["n_per_class"] == {"neg": 60, "pos": 60} and r["runs"][0]["auc"] > 0.9


def test_few_cases_say_little_power_and_multiclass_is_bootstrap_only():
    y = np.array([0, 1, 0, 1, 1, 0])
    pa, pb = _probs(np.array([0.2, 0.9, 0.4, 0.6, 0.3, 0.1])), _probs(np.array([0.5, 0.4, 0.6, 0.7, 0.2, 0.3]))
    r = compare_runs(y, [pa, pb], ["a", "b"], ["0", "1"], n_boot=200)
    words = " ".join(r["pairs"][0]["verdict"])
    assert "little power" in words and "equal" not in words.replace("equally good", "")
    rng = np.random.default_rng(0)
    y3 = np.arange(30) % 3
    p3a, p3b = rng.dirichlet(np.ones(3), 30), rng.dirichlet(np.ones(3), 30)
    r3 = compare_runs(y3, [p3a, p3b], ["a", "b"], ["x", "y", "z"], n_boot=200)
    pair = r3["pairs"][0]
    assert pair["delong"]["p"] is None and "binary" in pair["delong"]["reason"]
    assert pair["delta_auc_ci"][0] is not None and any("one-vs-rest macro" in n for n in r3["notes"])
    assert pair["n_positive"] is None and r3["positive"] is None
    assert "DeLong's test is for binary tasks" in pair["verdict"][0]


def test_format_p():
    assert [format_p(p) for p in (0.41, 0.0536, 0.004, 1e-5, None, math.nan)] == [
        "p = 0.41", "p = 0.054", "p = 0.004", "p < 0.001", "p n/a", "p n/a"]
