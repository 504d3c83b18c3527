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

Where an id came from decides how far it can be trusted (:func:`patient_id_source`): a DICOM
PatientID names a person in any dataset, whereas an id read from a layout's folders or names
(RSNA case numbers, BraTS and BIDS labels, a sheet's patient column) only means something inside
its own dataset — every such dataset starts at ``00001``.
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


#: Where a :attr:`Case.patient_id` came from (:func:`patient_id_source`).
PATIENT_ID_SOURCES = ("dicom", "layout", "name", "table")

#: PatientID values anonymisers write for everybody (compared case-insensitively): they name no one.
PLACEHOLDER_PATIENT_IDS = frozenset({"", "0", "-", "none", "null", "n/a", "na", "unknown", "anon", "anonymous",
                                     "anonymized", "anonymised", "removed", "patient", "x", "xxx"})


def patient_id_source(case: Case, ds: Dataset | None = None) -> str | None:
    """Where ``case.patient_id`` came from, or ``None`` when it has none:

    * ``"table"``: ``ds`` was labelled from a sheet with a patient column
      (:func:`mriviewer.data.label_table.apply_labels`); its values only mean something for this
      dataset (cases the sheet has no row for keep their layout's id and are counted here too);
    * ``"name"``: read from the names (BIDS ``sub-``, BraTS 2023; :func:`patient_from_names`);
    * ``"layout"``: the layout's case folder (RSNA-MICCAI: the case is the patient), or anything
      else that is not plainly a DICOM PatientID;
    * ``"dicom"``: the PatientID (0010,0020) the DICOM layout read from the series' headers — the
      case's sources are all DICOM and the id is neither its folder's name nor read from names.
      Only this one may be matched across datasets. A DICOM folder named after its PatientID
      counts as ``"layout"`` (the cautious side: matched only within its dataset).

    Decided from the case and ``ds`` alone (no file is read); ``ds=None`` skips the sheet check.
    Raises nothing.
    """
    pid = case.patient_id
    if not pid:
        return None
    if ds is not None and (ds.label_record or {}).get("patient_column"):
        return "table"
    if pid == patient_from_names(case):
        return "name"
    last = case.case_id.rstrip("/").rsplit("/", 1)[-1]
    sources = list(case.modalities.values())
    if pid == last or any("RSNA-MICCAI" in (s.reason or "") for s in sources):
        return "layout"
    if sources and all(s.kind == "dicom" for s in sources):
        return "dicom"
    return "layout"


def is_placeholder_patient_id(pid: str | None) -> bool:
    """Whether ``pid`` is empty or one of :data:`PLACEHOLDER_PATIENT_IDS` (``ANONYMOUS``, ``0``, …),
    which anonymisers write for every patient. Raises nothing."""
    return pid is None or str(pid).strip().lower() in PLACEHOLDER_PATIENT_IDS
