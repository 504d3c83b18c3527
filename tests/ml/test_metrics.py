"""Tests of mriviewer.ml.metrics on synthetic numpy data (no torch, no Qt)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from mriviewer.core.files import json_safe
from mriviewer.ml import bootstrap as B
from mriviewer.ml.bootstrap import bootstrap_auc_ci
from mriviewer.ml.metrics import classification_metrics, summarise_folds
from mriviewer.ml.metrics_text import format_metrics
from mriviewer.ml.scores import auc

KEYS = [
    "n_cases", "n_per_class", "class_names", "auc", "auc_ci", "auc_classes", "accuracy",
    "accuracy_ci", "accuracy_chance", "balanced_accuracy", "f1_macro", "f1_macro_ci", "f1_weighted",
    "precision_macro", "recall_macro", "specificity", "per_class", "confusion_matrix", "roc",
    "classes_absent", "brier", "ece", "ece_bins", "brier_ci", "ece_ci", "reliability", "n_boot", "ci_level",
    "warnings",
]


def _binary(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` cases, half positive; positive scores shifted by ``shift`` SDs."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    z = rng.normal(size=n) + shift * labels
    p1 = 1 / (1 + np.exp(-z))
    return labels, np.column_stack([1 - p1, p1])


def _softmax_probs(labels: np.ndarray, k: int, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(labels.size, k))
    logits[np.arange(labels.size), labels] += shift
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _has(warnings: list[str], phrase: str) -> bool:
    return any(phrase in w for w in warnings)


# --------------------------------------------------------------------------- point values


def test_binary_values_match_sklearn():
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.7, 0.45, 0.3, 0.55, 0.95])
    probs = np.column_stack([1 - p1, p1])
    preds = probs.argmax(axis=1)
    m = classification_metrics(labels, probs, ["neg", "pos"], n_boot=200)

    assert list(m) == KEYS
    assert m["n_cases"] == 12 and m["n_per_class"] == {"neg": 5, "pos": 7}
    assert m["auc"] == pytest.approx(roc_auc_score(labels, p1))
    assert m["auc"] == pytest.approx(auc(labels, probs))
    assert m["auc_classes"] == ["neg", "pos"]
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, preds))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert m["f1_macro"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert m["f1_weighted"] == pytest.approx(f1_score(labels, preds, average="weighted"))
    p, r, _, _ = precision_recall_fscore_support(labels, preds, average="macro", zero_division=0)
    assert m["precision_macro"] == pytest.approx(p) and m["recall_macro"] == pytest.approx(r)
    tn = np.sum((labels == 0) & (preds == 0))
    fp = np.sum((labels == 0) & (preds == 1))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["per_class"]["pos"]["recall"] == pytest.approx(np.mean(preds[labels == 1] == 1))
    assert m["per_class"]["pos"]["specificity"] == pytest.approx(m["specificity"])
    assert m["per_class"]["neg"]["auc"] == pytest.approx(m["auc"])

    # Confusion matrix: rows true class, columns predicted class.
    cm = np.zeros((2, 2), dtype=int)
    for t, q in zip(labels, preds, strict=True):
        cm[t, q] += 1
    assert m["confusion_matrix"] == cm.tolist()

    fpr, tpr, thr = roc_curve(labels, p1)
    assert m["roc"]["fpr"] == pytest.approx(fpr.tolist())
    assert m["roc"]["tpr"] == pytest.approx(tpr.tolist())
    assert m["roc"]["thresholds"][0] is None  # sklearn's leading inf
    assert m["roc"]["thresholds"][1:] == pytest.approx(thr[1:].tolist())
    assert m["ci_level"] == 0.95 and m["n_boot"] == 200


def test_confusion_matrix_orientation():
    labels = np.array([0, 0, 0, 1])
    probs = np.array([[0.2, 0.8], [0.2, 0.8], [0.9, 0.1], [0.1, 0.9]])  # two 0s called 1
    m = classification_metrics(labels, probs, ["a", "b"], n_boot=50)
    assert m["confusion_matrix"] == [[1, 2], [0, 1]]


def test_multiclass_values_match_sklearn():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 0, 1])
    probs = _softmax_probs(labels, 3, shift=1.0, seed=3)
    preds = probs.argmax(axis=1)
    names = ["x", "y", "z"]
    m = classification_metrics(labels, probs, names, n_boot=200)

    ovr = [roc_auc_score(labels == k, probs[:, k]) for k in range(3)]
    assert m["auc"] == pytest.approx(np.mean(ovr))
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    for k, name in enumerate(names):
        assert m["per_class"][name]["auc"] == pytest.approx(ovr[k])
        fpr, tpr, _ = roc_curve(labels == k, probs[:, k])
        assert m["roc"][name]["fpr"] == pytest.approx(fpr.tolist())
        assert m["roc"][name]["tpr"] == pytest.approx(tpr.tolist())
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, preds))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert m["f1_macro"] == pytest.approx(f1_score(labels, preds, average="macro", zero_division=0))
    prec, rec, f1s, sup = precision_recall_fscore_support(labels, preds, zero_division=0)
    for k, name in enumerate(names):
        pc = m["per_class"][name]
        assert (pc["precision"], pc["recall"], pc["f1"]) == pytest.approx((prec[k], rec[k], f1s[k]))
        assert pc["support"] == sup[k]
        neg = labels != k
        assert pc["specificity"] == pytest.approx(np.mean(preds[neg] != k))
    assert m["specificity"] == pytest.approx(np.mean([m["per_class"][n]["specificity"] for n in names]))
    assert np.array(m["confusion_matrix"]).sum(axis=1).tolist() == [4, 4, 4]


def test_multiclass_absent_class():
    labels = np.array([0, 1, 3] * 8)  # class 2 ("c") never occurs
    probs = _softmax_probs(labels, 4, shift=2.0, seed=1)
    names = ["a", "b", "c", "d"]
    m = classification_metrics(labels, probs, names, n_boot=200)
    assert m["classes_absent"] == ["c"]
    assert m["auc_classes"] == ["a", "b", "d"]
    assert m["auc"] == pytest.approx(np.mean([roc_auc_score(labels == k, probs[:, k]) for k in (0, 1, 3)]))
    assert set(m["per_class"]) == set(names)
    assert m["per_class"]["c"]["support"] == 0 and m["per_class"]["c"]["auc"] is None
    assert m["n_per_class"]["c"] == 0
    assert set(m["roc"]) == {"a", "b", "d"}
    assert "classes absent from this set, not scored by AUC: c." in m["warnings"]
    assert len(m["confusion_matrix"]) == 4 and all(len(row) == 4 for row in m["confusion_matrix"])
    assert [row[2] for row in m["confusion_matrix"]] == [
        int(np.sum((labels == t) & (probs.argmax(1) == 2))) for t in range(4)
    ]


def test_absent_names_are_truncated():
    names = [f"class{i:02d}" for i in range(14)]
    labels = np.array([0, 1] * 10)
    probs = _softmax_probs(labels, 14, shift=2.0, seed=0)
    m = classification_metrics(labels, probs, names, n_boot=100)
    msg = next(w for w in m["warnings"] if w.startswith("classes absent"))
    assert "class02, class03" in msg and "class11" in msg and "class12" not in msg
    assert msg.endswith("… (+2 more).")


# --------------------------------------------------------------------------- intervals, warnings


def test_perfect_separation():
    labels = np.arange(40) % 2
    p1 = np.where(labels == 1, 0.9, 0.1) + np.linspace(0, 0.05, 40)
    probs = np.column_stack([1 - p1, p1])
    m = classification_metrics(labels, probs, ["a", "b"])
    assert m["auc"] == 1.0 and m["auc_ci"] == [1.0, 1.0]
    assert m["accuracy"] == 1.0 and m["accuracy_ci"] == [1.0, 1.0]
    assert not _has(m["warnings"], "not distinguishable from chance")
    assert not _has(m["warnings"], "too few cases")
    assert m["warnings"] == []


def test_degenerate_constant_classifier():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.tile([0.55, 0.45], (6, 1))
    m = classification_metrics(labels, probs, ["control", "tumour"])
    assert m["auc"] == 0.5
    assert m["auc_ci"] == [0.5, 0.5]
    w = m["warnings"]
    assert _has(w, "not distinguishable from chance")
    assert _has(w, "too few cases for a meaningful estimate")
    assert "too few cases for a meaningful estimate (6 cases; fewest in one class: 3, control)." in w
    assert "the model predicts one class (control) for every case." in w
    assert not _has(w, "AUC 1.000")
    assert "AUC 0.500 (95% CI 0.500–0.500) is not distinguishable from chance: the interval contains 0.5." in w


def test_random_predictions_interval_contains_chance():
    rng = np.random.default_rng(42)
    labels = rng.integers(0, 2, 200)
    p1 = rng.uniform(size=200)
    m = classification_metrics(labels, np.column_stack([1 - p1, p1]), ["a", "b"], seed=7)
    lo, hi = m["auc_ci"]
    assert lo <= 0.5 <= hi
    assert _has(m["warnings"], "not distinguishable from chance")
    assert not _has(m["warnings"], "too few cases")


def test_single_class_auc_undefined():
    labels = np.array([1] * 12)
    probs = _binary(12, 1.0, 0)[1]
    m = classification_metrics(labels, probs, ["a", "b"], n_boot=100)
    assert m["auc"] is None and m["auc_ci"] == [None, None] and m["auc_classes"] == []
    assert "AUC undefined: only one class present in this set." in m["warnings"]
    assert _has(m["warnings"], "classes absent from this set, not scored by AUC: a.")
    assert m["roc"] == {"fpr": [], "tpr": [], "thresholds": []}
    assert m["accuracy_ci"][0] is not None
    json.dumps(m, allow_nan=False)


def test_ordinary_resampling_skips_single_class_draws():
    # One positive in 10 cases: a resample misses it with probability 0.9**10 = 35 %, which
    # ordinary (unstratified) resampling must report rather than hide.
    labels = np.array([1] + [0] * 9)
    p1 = np.linspace(0.1, 0.9, 10)[::-1]
    m = classification_metrics(labels, np.column_stack([1 - p1, p1]), ["a", "b"], n_boot=1000)
    msg = [w for w in m["warnings"] if "bootstrap resamples" in w]
    assert len(msg) == 1 and msg[0].startswith("AUC undefined in ")
    n_skip = int(msg[0].split()[3])
    assert 250 < n_skip < 450


def test_ci_width_shrinks_with_n():
    small = classification_metrics(*_binary(40, 1.0, 0), ["a", "b"])
    large = classification_metrics(*_binary(400, 1.0, 0), ["a", "b"])
    for key in ("auc_ci", "accuracy_ci", "f1_macro_ci"):
        w_small = small[key][1] - small[key][0]
        w_large = large[key][1] - large[key][0]
        assert w_large < 0.6 * w_small, key
    for m in (small, large):
        for key, point in (("auc_ci", "auc"), ("accuracy_ci", "accuracy"), ("f1_macro_ci", "f1_macro")):
            assert m[key][0] <= m[point] <= m[key][1]


def test_reproducible_and_json_serialisable():
    labels = np.array([0, 1, 2] * 10)
    probs = _softmax_probs(labels, 3, shift=0.8, seed=5)
    a = classification_metrics(labels, probs, ["a", "b", "c"], seed=3)
    b = classification_metrics(labels, probs, ["a", "b", "c"], seed=3)
    c = classification_metrics(labels, probs, ["a", "b", "c"], seed=4)
    assert a == b
    assert a["auc_ci"] != c["auc_ci"]
    text = json.dumps(a, allow_nan=False)
    assert json.loads(text) == a


def test_alpha_sets_level():
    labels, probs = _binary(60, 1.0, 2)
    m90 = classification_metrics(labels, probs, ["a", "b"], alpha=0.1)
    m95 = classification_metrics(labels, probs, ["a", "b"])
    assert m90["ci_level"] == 0.9
    assert m95["auc_ci"][0] <= m90["auc_ci"][0] <= m90["auc_ci"][1] <= m95["auc_ci"][1]


def test_bootstrap_auc_ci_wrapper_matches():
    labels, probs = _binary(30, 1.0, 4)
    m = classification_metrics(labels, probs, ["a", "b"], seed=9)
    assert list(bootstrap_auc_ci(labels, probs, seed=9)) == m["auc_ci"]
    assert all(math.isnan(v) for v in bootstrap_auc_ci(np.array([1, 1]), probs[:2]))


@pytest.mark.parametrize("k", [2, 3, 6])
def test_vectorised_resample_stats_match_sklearn(k):
    rng = np.random.default_rng(k)
    n = 37
    labels = rng.integers(0, k, n)
    probs = _softmax_probs(labels, k, shift=0.7, seed=k)
    probs = np.round(probs, 1)  # ties within and across classes
    probs[:, -1] = 1 - probs[:, :-1].sum(axis=1)
    preds = probs.argmax(axis=1)
    idx = rng.integers(0, n, size=(60, n))
    idx[0] = np.flatnonzero(labels == labels[0])[0]  # one class only: AUC undefined
    got = B._resample_stats(labels, probs, preds, idx)
    for b in range(idx.shape[0]):
        yl, pb = labels[idx[b]], probs[idx[b]]
        expected = auc(yl, pb)
        if math.isnan(expected):
            assert math.isnan(got["auc"][b])
        else:
            assert abs(got["auc"][b] - expected) < 1e-9
        assert abs(got["accuracy"][b] - accuracy_score(yl, preds[idx[b]])) < 1e-12
        f1 = f1_score(yl, preds[idx[b]], average="macro", zero_division=0)
        assert abs(got["f1_macro"][b] - f1) < 1e-9
    assert math.isnan(got["auc"][0])


def test_many_classes_interval_brackets_the_estimate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 44, 500)
    probs = _softmax_probs(labels, 44, shift=1.5, seed=0)
    names = [f"c{i}" for i in range(44)]
    m = classification_metrics(labels, probs, names, n_boot=1000)
    assert m["auc_ci"][0] < m["auc"] < m["auc_ci"][1]


def test_input_validation():
    probs = np.array([[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 2]), probs, ["a", "b"])
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), probs, ["a", "b", "c"])
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), probs, ["a", "a"])
    with pytest.raises(ValueError):
        classification_metrics(np.array([], dtype=int), np.empty((0, 2)), ["a", "b"])
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), np.array([[np.nan, 1], [0, 1]]), ["a", "b"])


# --------------------------------------------------------------------------- folds, formatting


def test_summarise_folds():
    folds = [
        {"auc": 0.6, "accuracy": 0.5, "specificity": None, "warnings": ["w1"]},
        {"auc": 0.8, "accuracy": 0.7, "specificity": 0.9, "warnings": []},
        {"auc": 0.7, "accuracy": 0.6, "specificity": float("nan"), "warnings": ["w3", "w4"]},
    ]
    s = summarise_folds(folds)
    assert s["n_folds"] == 3
    assert s["auc"]["mean"] == pytest.approx(0.7)
    assert s["auc"]["sd"] == pytest.approx(np.std([0.6, 0.8, 0.7], ddof=1))
    assert s["auc"]["n"] == 3 and s["auc"]["values"] == [0.6, 0.8, 0.7]
    assert s["specificity"] == {"mean": 0.9, "sd": None, "n": 1, "values": [None, 0.9, None]}
    assert s["f1_macro"]["mean"] is None and s["f1_macro"]["n"] == 0
    assert s["warnings"] == ["fold 1: w1", "fold 3: w3", "fold 3: w4"]
    json.dumps(s, allow_nan=False)

    chance = summarise_folds([{"auc": 0.52, "warnings": []}, {"auc": 0.5, "warnings": []}])
    assert _has(chance["warnings"], "mean AUC across folds is within 0.05 of chance")
    assert summarise_folds([{"auc": 0.7}])["auc"]["sd"] is None


def test_summarise_real_folds():
    folds = [
        classification_metrics(*_binary(40, 1.0, seed), ["a", "b"], n_boot=200, seed=seed)
        for seed in range(3)
    ]
    s = summarise_folds(folds)
    assert s["auc"]["values"] == [f["auc"] for f in folds]
    assert s["auc"]["mean"] == pytest.approx(np.mean([f["auc"] for f in folds]))
    text = format_metrics(s, "Cross-validation")
    assert text.startswith("Cross-validation (3 folds")


def test_format_metrics():
    labels, probs = _binary(40, 1.0, 1)
    m = classification_metrics(labels, probs, ["a", "b"])
    text = format_metrics(m)
    first = text.splitlines()[0]
    assert first.startswith("Test (40 cases): AUC ")
    assert f"AUC {m['auc']:.3f} (95% CI {m['auc_ci'][0]:.2f}–{m['auc_ci'][1]:.2f})" in first
    assert "balanced accuracy" in first and "macro F1" in first

    undefined = classification_metrics(np.array([1] * 6), probs[:6], ["a", "b"], n_boot=50)
    text = format_metrics(undefined, title="Validation")
    assert "AUC n/a (95% CI n/a)" in text
    assert "Warning: AUC undefined: only one class present in this set." in text.splitlines()
    assert "n/a" in format_metrics({"auc": None, "warnings": []})


def test_json_safe():
    obj = {1: np.float32(0.5), "a": [np.inf, np.nan, np.int64(3)], "b": np.array([1.0, np.nan])}
    assert json_safe(obj) == {"1": 0.5, "a": [None, None, 3], "b": [1.0, None]}
    assert json_safe(np.bool_(True)) is True


def test_accuracy_is_compared_with_the_most_frequent_class():
    labels = np.array([0] * 18 + [1] * 2)
    probs = np.tile([0.9, 0.1], (20, 1))  # always the majority class: 90 % accuracy, no skill
    m = classification_metrics(labels, probs, ["a", "b"])
    assert m["accuracy"] == pytest.approx(0.9) and m["accuracy_chance"] == pytest.approx(0.9)
    assert any("not above always predicting the most frequent class" in w for w in m["warnings"])


def test_cam_check_counts_an_empty_map_as_a_miss_and_says_so():
    """An all-zero Grad-CAM (no positive evidence) points nowhere: it lowers the pointing game
    instead of leaving the average, and the summary counts it."""
    from mriviewer.ml.camcheck import score_case, summarise

    mask = np.zeros((8, 8, 8), bool)
    mask[2:4, 2:4, 2:4] = True
    brain = np.ones_like(mask)
    good = np.zeros((8, 8, 8))
    good[3, 3, 3] = 1.0
    empty = score_case(np.zeros((8, 8, 8)), mask, brain)
    assert empty["empty"] and empty["hit"] == 0.0 and empty["energy_in_mask"] == 0.0
    s = summarise([score_case(good, mask, brain), empty])
    assert s["pointing_game"] == 0.5 and s["empty_maps"] == 1 and s["n_cases"] == 2


def test_gradcam_result_names_its_layer_and_an_empty_map():
    from mriviewer.core.volume import Volume
    from mriviewer.ml.predict import GradCamResult

    ref = Volume(np.ones((4, 4, 4), np.float32), np.eye(4), "T1wCE")
    full = GradCamResult(np.full((4, 4, 4), 0.5, np.float32), ref, 1, "layer4")
    assert not full.empty and full.describe("LGG") == "Grad-CAM for 'LGG' (layer4, T1wCE grid)"
    none = GradCamResult(np.zeros((4, 4, 4), np.float32), ref, 1, "layer2")
    assert none.empty and "is empty (layer2, T1wCE grid)" in none.describe("LGG")
