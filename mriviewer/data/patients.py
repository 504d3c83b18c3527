"""Which patient each case belongs to, so that a patient's studies, sessions and time points
never straddle training and test.

A layout that knows the patient sets :attr:`Case.patient_id` itself (RSNA-MICCAI: the case is
the patient; a DICOM tree: the series' PatientID). For the rest, :func:`assign_patients` reads it
from the names the field uses:

* BIDS: the ``sub-<label>`` folder or file-name entity (BIDS specification, "Entities"; as
  pybids' ``subject``); its ``ses-<label>`` is the case's session;
* BraTS 2023: ``BraTS-<cohort>-<patient>-<time point>`` (e.g. ``BraTS-GLI-00000-001``): the case
  id without its three-digit time-point suffix.

Cases of 2D image sets (no patient ids: :attr:`Dataset.patient_ids` false) get none. A case
whose patient is unknown is its own patient (the split groups it by its case id).
"""

from __future__ import annotations

import re
from pathlib import Path

from mriviewer.data.cases import Case, Dataset

_BIDS_SUBJECT = re.compile(r"(?:^|_)(sub-[A-Za-z0-9]+)(?:_|$)")
_BRATS_2023 = re.compile(r"^(BraTS-[A-Za-z]+-\d+)-\d{3}$")


def patient_from_names(case: Case) -> str | None:
    """The patient named by ``case``'s id or files (BIDS ``sub-``, BraTS 2023), or ``None``."""
    last = case.case_id.rstrip("/").split("/")[-1]
    m = _BRATS_2023.match(last)
    if m:
        return m.group(1)
    parts: list[str] = case.case_id.split("/")
    for src in case.modalities.values():
        parts += list(Path(src.path).parts)
    for part in parts:
        m = _BIDS_SUBJECT.search(part)
        if m:
            return m.group(1)
    return None


def assign_patients(ds: Dataset) -> Dataset:
    """Set :attr:`Case.patient_id` where the layout did not and the names tell (see the module
    docstring); 2D image sets are left without. Returns ``ds``."""
    if not ds.patient_ids:
        return ds
    for case in ds.cases:
        if case.patient_id is None and not case.is_2d:
            case.patient_id = patient_from_names(case)
    return ds


def patient_count(ds: Dataset) -> int:
    """How many patients ``ds``'s cases belong to (a case without a patient id counts as one)."""
    return len({c.patient_id or f"case:{c.case_id}" for c in ds.cases})
