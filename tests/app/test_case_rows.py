"""The case browser's rows, without a window: the patient column (empty when a case is its own
patient), a patient's cases kept together and counted in its tooltip, and ids shortened for a
narrow column by what they all share, so the part that tells them apart stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from mriviewer.app import presenters
from mriviewer.app.model import AppModel
from mriviewer.data.cases import Case, Dataset


def _brats_ids(n: int) -> list[str]:
    return [f"BraTS-GLI-{i:05d}-000" for i in range(1, n + 1)]


# ---------------------------------------------------------------------------- patients
def _cases() -> list[Case]:
    return [Case("BraTS-GLI-00001-000", patient_id="BraTS-GLI-00001"),
            Case("BraTS-GLI-00002-000", patient_id="BraTS-GLI-00002"),
            Case("BraTS-GLI-00001-001", patient_id="BraTS-GLI-00001"),  # a later time point, listed apart
            Case("solo"), Case("self", patient_id="self")]


def test_patient_column_and_a_patients_cases_together():
    cases = _cases()
    assert [presenters.patient_of(c) for c in cases] == ["BraTS-GLI-00001", "BraTS-GLI-00002", "BraTS-GLI-00001",
                                                         "", ""]  # its own patient: empty
    groups = presenters.patient_cases(cases)
    assert groups["BraTS-GLI-00001"] == ["BraTS-GLI-00001-000", "BraTS-GLI-00001-001"]
    assert groups["solo"] == ["solo"] and groups["self"] == ["self"]
    ordered = [c.case_id for c in presenters.patient_order(cases)]
    assert ordered == ["BraTS-GLI-00001-000", "BraTS-GLI-00001-001", "BraTS-GLI-00002-000", "solo", "self"]
    in_order = presenters.patient_order(presenters.patient_order(cases))
    assert [c.case_id for c in in_order] == ordered  # a listing that keeps them together is unchanged
    tip = presenters.patient_tooltip("BraTS-GLI-00001", groups["BraTS-GLI-00001"])
    assert tip.startswith("Patient BraTS-GLI-00001: 2 cases (studies, sessions or time points)")
    assert "BraTS-GLI-00001-001" in tip
    assert "1 case (study, session or time point)" in presenters.patient_tooltip("p", ["a"])
    many = presenters.patient_tooltip("p", [f"s{i}" for i in range(12)])
    assert "12 cases" in many and "s7" in many and "s8" not in many and "(4 more)" in many


def test_case_rows_carry_the_patient_and_sort_by_it():
    model = AppModel()
    model.open_dataset(Dataset(Path("/data"), "brats", _cases()))
    rows = [presenters.case_row(model, c) for c in model.cases]
    assert presenters.CASE_COLUMNS[:3] == ("Case", "Patient", "Label")
    assert rows[0].values()[:2] == ("BraTS-GLI-00001-000", "BraTS-GLI-00001")
    assert len(rows[0].values()) == len(presenters.CASE_COLUMNS)
    assert "2 cases" in rows[2].patient_tip and rows[3].patient == "" and rows[3].patient_tip == ""
    keys = sorted(rows, key=presenters.patient_sort_key)
    assert [r.case_id for r in keys][:3] == ["BraTS-GLI-00001-000", "BraTS-GLI-00001-001", "BraTS-GLI-00002-000"]
    assert [r.case_id for r in sorted(rows, key=presenters.patient_sort_key, reverse=True)][-3:] \
        == ["BraTS-GLI-00002-000", "BraTS-GLI-00001-001", "BraTS-GLI-00001-000"]  # together either way


# ---------------------------------------------------------------------------- ids that tell cases apart
@pytest.mark.parametrize("ids, affixes", [
    (_brats_ids(1000), ("BraTS-GLI-", "-000")),
    (["BraTS-GLI-00001", "BraTS-GLI-00002"], ("BraTS-GLI-", "")),
    (["BraTS-GLI-00001-000", "BraTS-MEN-00001-000"], ("BraTS-", "-00001-000")),
    (["case0001", "case1000"], ("case", "")),  # letters then digits: a boundary
    (["sub-01_ses-1", "sub-01_ses-2", "sub-02_ses-1"], ("sub-", "")),
    (["00000", "00001", "00011"], ("", "")),  # no boundary inside a number
    (["x/abc_t1", "x/abd_t1"], ("", "_t1")),  # "x/" is too short to be worth an ellipsis
    (["only-one-id"], ("", "")),
    (["same", "same"], ("", "")),
])
def test_id_affixes_are_cut_at_token_boundaries(ids, affixes):
    assert presenters.id_affixes(ids) == affixes


def test_short_ids_keep_what_tells_them_apart():
    ids = _brats_ids(1000)
    affixes = presenters.id_affixes(ids)
    assert presenters.short_ids(ids[0], affixes) == ["…00001-000", "…00001…"]
    shortest = {presenters.short_ids(i, affixes)[-1] for i in ids}
    assert len(shortest) == len(ids)  # still one text per case
    mixed = ["BraTS-GLI-00001-000", "BraTS-MEN-00001-000"]
    assert presenters.short_ids(mixed[1], presenters.id_affixes(mixed)) == ["…MEN-00001-000", "…MEN…"]
    assert presenters.short_ids("00001", presenters.id_affixes(["00001", "00002"])) == []  # nothing shared
    assert presenters.short_ids("other", ("BraTS-GLI-", "-000")) == []  # an id without them stays whole



def test_prediction_text_names_another_study_of_a_trained_patient():
    from types import SimpleNamespace

    import numpy as np

    from mriviewer.app import presenters
    from mriviewer.data.cases import Case

    case = Case("BraTS-GLI-00001-001", patient_id="BraTS-GLI-00001")
    pred = SimpleNamespace(probs=np.array([0.3, 0.7]), class_name="b", probability=0.7)
    model = SimpleNamespace(predictor=SimpleNamespace(class_names=["a", "b"], config=SimpleNamespace(model="m")),
                            predictions={case.case_id: pred}, prediction_errors={}, dataset=None,
                            split_of=lambda _c: "train-patient")
    _, detail = presenters.prediction_text(model, case)
    assert "another study of a patient the model was trained on" in detail and "train-patient set" not in detail
