"""Caveats: typed records with a scope, and older metrics.json strings still read."""

from __future__ import annotations

import pytest

from mriviewer.ml.caveats import Caveat, caveats_of, from_json, reported


def test_caveats_round_trip_and_scope():
    c = Caveat("confound", "Confound: class 'tumour' comes only from source site-a.")
    assert from_json(c.to_json()) == c and c.scope == "result" and str(c) == c.message
    assert Caveat("case", "Case 7 skipped: unreadable").scope == "case"
    with pytest.raises(ValueError, match="unknown caveat kind"):
        Caveat("typo", "x")


def test_reported_keeps_caveats_on_the_figures_only():
    metrics = {"caveats": [Caveat("case", "Case 3 skipped: x").to_json(),
                           Caveat("near-duplicate", "2 near-duplicate pairs across roles").to_json(),
                           Caveat("precision", "fp16 autocast needs CUDA; training in fp32.").to_json(),
                           Caveat("near-duplicate", "2 near-duplicate pairs across roles").to_json()]}
    assert [c.message for c in reported(caveats_of(metrics))] == ["2 near-duplicate pairs across roles"]


def test_warning_strings_of_older_runs_are_classified_by_their_wording():
    old = {"warnings": ["Case 0003 skipped: cannot read its files", "Cannot decode: a.dcm",
                        "fp16 autocast needs CUDA; training in fp32.", "No patient IDs: split by case."]}
    assert [c.kind for c in caveats_of(old)] == ["case", "case", "precision", "other"]
    assert [c.message for c in reported(caveats_of(old))] == ["No patient IDs: split by case."]
