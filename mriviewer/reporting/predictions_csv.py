"""The predictions table (one row per case: id, split role, label, predicted class, probabilities).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from mriviewer.data.cases import Dataset


def write_predictions_csv(predictions: Iterable, class_names: list[str], out: str | Path,
                          dataset: Dataset | None = None, role=None) -> Path:
    """Write ``case_id, patient_id, split, true_label, predicted_class, predicted_label,
    probability, p_<class>…`` rows, atomically.

    ``patient_id`` is the case's patient (:attr:`Case.patient_id`, from ``dataset``), empty when
    unknown or the case is its own patient; analyses that pool a patient's studies group by it.

    ``split`` is ``role(case_id)`` — train / validation / test from the checkpoint's recorded
    split; train-patient / validation-patient for another study of a patient in train /
    validation (:data:`mriviewer.ml.seen.PATIENT_ROLES`: new files, but no new patient); or
    external — so nobody mixes training cases, or their patients, into an evaluation by accident.
    ``true_label`` is the class name when known, else empty. Text cells starting with
    ``= + - @`` are escaped (:func:`~mriviewer.core.files.csv_text`). Returns ``out``.

    Raises:
        MriViewerError: ``out`` cannot be written (nothing is left under that name).
    """
    from mriviewer.core.files import atomic_path, csv_text

    out = Path(out)
    role = role or (lambda _cid: "")
    patients = {c.case_id: c.patient_id for c in dataset.cases} if dataset is not None else {}
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", "patient_id", "split", "true_label", "predicted_class", "predicted_label", "probability"]
                   + [f"p_{csv_text(n)}" for n in class_names])
        for p in predictions:
            truth = class_names[p.label] if p.label is not None and 0 <= p.label < len(class_names) else ""
            w.writerow([csv_text(p.case_id), csv_text(patients.get(p.case_id) or ""), role(p.case_id), csv_text(truth), p.predicted, csv_text(p.class_name),
                        f"{p.probability:.6f}"] + [f"{float(v):.6f}" for v in p.probs])
    return out
