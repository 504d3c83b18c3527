"""Calibration: Brier score as scikit-learn's, ECE from its definition, intervals, reliability bins."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss

from mriviewer.ml.calibration import ECE_BINS, calibration_metrics
from mriviewer.ml.metrics import classification_metrics


def test_binary_brier_is_sklearns_and_ece_matches_its_definition():
    rng = np.random.default_rng(3)
    p1 = rng.uniform(0, 1, 400)
    labels = (rng.uniform(0, 1, 400) < p1 ** 2).astype(int)  # over-confident for class 1
    probs = np.stack([1 - p1, p1], axis=1)
    c = calibration_metrics(labels, probs, n_boot=200)
    assert np.isclose(c["brier"], brier_score_loss(labels, p1))
    conf, pred = probs.max(1), probs.argmax(1)
    bins = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    ece = sum((bins == b).sum() / 400 * abs((pred == labels)[bins == b].mean() - conf[bins == b].mean())
              for b in range(ECE_BINS) if (bins == b).any())
    assert np.isclose(c["ece"], ece) and c["ece"] > 0.02
    assert c["brier_ci"][0] <= c["brier"] <= c["brier_ci"][1] and c["ece_ci"][0] <= c["ece"] <= c["ece_ci"][1]
    assert sum(r["n"] for r in c["reliability"]) == 400 and c["ece_bins"] == ECE_BINS


def test_calibrated_probabilities_have_small_ece_and_perfect_ones_zero_brier():
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0, 1, 5000)
    labels = (rng.uniform(0, 1, 5000) < p1).astype(int)
    assert calibration_metrics(labels, np.stack([1 - p1, p1], 1), n_boot=0)["ece"] < 0.03
    exact = np.eye(3)[[0, 1, 2, 1]]
    c = calibration_metrics(np.array([0, 1, 2, 1]), exact, n_boot=50)
    assert c["brier"] == 0.0 and c["ece"] == 0.0


def test_classification_metrics_report_calibration():
    labels = np.array([0, 1] * 10)
    probs = np.tile([[0.3, 0.7]], (20, 1))
    m = classification_metrics(labels, probs, ["a", "b"], n_boot=100)
    assert np.isclose(m["brier"], np.mean((0.7 - labels) ** 2)) and m["ece_bins"] == 10
    assert len(m["brier_ci"]) == 2 and m["reliability"][0]["n"] == 20
