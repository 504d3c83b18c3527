"""Whether a checkpoint's run saw a case: by its files, by its content, or by its patient.

A checkpoint records its split (``checkpoint["split"]``, written by :mod:`.fit` and
:class:`~.engine.Trainer`): per role (train / validation / test) the case ids, their
``"identities"`` (:func:`~mriviewer.data.cases.case_identity`: the files), their
``"fingerprints"`` (:func:`~mriviewer.data.cases.content_fingerprint`: the content) and their
``"patients"`` (:func:`record_patients`): one entry per case, aligned with the role's case ids,
keyed by where the patient id came from (:func:`~mriviewer.data.patients.patient_id_source`):

* ``"dicom:<h>"``: a DICOM PatientID, which names a person in any dataset, so it is matched in
  any dataset;
* ``"<kind>:<s>:<h>"`` (kind ``layout``, ``name`` or ``table``): an id read from the layout's
  folders, the names (BIDS ``sub-``, BraTS 2023) or a sheet, ``<s>`` the folder it was read in
  (:func:`patient_scope`). Such ids collide across datasets (RSNA case numbers, BraTS prefixes
  and hospital numbers all start at ``00001``), so they are matched only in the same folder, or
  in a copy of it: a folder in which a case seen by its files or content still carries the
  patient id it carried in training;
* ``None``: no patient id (2D image sets), or a placeholder PatientID (``ANONYMOUS``).

``<h>`` and ``<s>`` are SHA-256 digests of namespaced strings, truncated to 16 and 12 hex digits,
so no patient id or path is stored in clear. They are pseudonyms, not anonymisation: a short id
can be found again by hashing candidates.

:meth:`SeenIndex.seen_by` gives a case's role: ``train`` / ``validation`` / ``test`` when the
case itself is in the split (by files, then content; by id only for checkpoints without
fingerprints), ``train-patient`` / ``validation-patient`` (:data:`PATIENT_ROLES`) when only its
patient is (another study, session or time point of a patient the model was fitted or selected
on: no external test of the model), else ``external``. The patient of a *test* case has not been
seen by the model, so its other studies are ``external``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from mriviewer.data.cases import Case, Dataset, case_identity, content_fingerprint
from mriviewer.data.patients import is_placeholder_patient_id, patient_id_source

__all__ = ["Seen", "SeenIndex", "PATIENT_ROLES", "SEEN_ROLES", "TRAINED_ROLES", "ROLE_TEXT", "patient_entry",
           "patient_scope", "record_patients", "left_out_messages", "warm_start_overlap"]

#: The roles of a checkpoint's split.
ROLES = ("train", "validation", "test")
#: Roles of cases the model was fitted (train) or selected (validation) on.
SEEN_ROLES = ("train", "validation")
#: The role of a case whose files and content are new but whose patient was in a seen role.
PATIENT_ROLES = {"train": "train-patient", "validation": "validation-patient"}
#: Every role whose figures flatter the model.
TRAINED_ROLES = SEEN_ROLES + tuple(PATIENT_ROLES.values())
#: The patient roles in words (for tables, tooltips and reports).
ROLE_TEXT = {
    "train-patient": "another study of a patient the model was trained on",
    "validation-patient": "another study of a patient the model was selected on (validation)",
}


class Seen(NamedTuple):
    """A case's role for a checkpoint and how it was found: ``how`` is ``"files"``,
    ``"content"``, ``"id"``, ``"DICOM PatientID"``, ``"patient id, same folder"``,
    ``"patient id, copy of the trained folder"``, or ``""`` (external)."""

    role: str
    how: str = ""

    @property
    def trained(self) -> bool:
        """Whether the case or its patient was fitted or selected on."""
        return self.role in TRAINED_ROLES

    @property
    def other_study(self) -> bool:
        """Whether only the case's patient (not the case) was fitted or selected on."""
        return self.role in PATIENT_ROLES.values()


EXTERNAL = Seen("external")


def _digest(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("\x1f".join(("mriviewer", *parts)).encode("utf-8")).hexdigest()[:n]


def patient_scope(case: Case, ds: Dataset) -> str:
    """The folder ``case``'s layout-derived patient id is read in: the source folder of an
    assembled case (:attr:`Case.source`), else ``ds.root`` joined with the folders of the case id
    (``rsna-a/00001`` → ``<root>/rsna-a``), resolved; a dataset that is one case's folder gives
    its parent. The same folder opened alone or inside a collection gives the same scope.
    Raises nothing (an unresolvable path is taken as written)."""
    if case.source:
        base = Path(case.source).expanduser()
    else:
        parent = case.case_id.rstrip("/").rpartition("/")[0]
        root = Path(ds.root).expanduser()
        base = root / parent if parent else (root.parent if root.name == case.case_id else root)
    try:
        return str(base.resolve())
    except (OSError, RuntimeError):
        return str(base)


def patient_entry(case: Case, ds: Dataset | None = None) -> str | None:
    """``case``'s patient as recorded in a checkpoint (see the module docstring), or ``None``
    when it has no usable patient id. Without ``ds`` only a DICOM PatientID gives one (the
    folder of other ids is unknown). Raises nothing."""
    kind = patient_id_source(case, ds)
    pid = (case.patient_id or "").strip()
    if kind == "dicom":
        return None if is_placeholder_patient_id(pid) else f"dicom:{_digest('patient', 'dicom', pid)}"
    if kind is None or ds is None:
        return None
    return f"{kind}:{_digest('scope', patient_scope(case, ds), n=12)}:{_digest('patient', kind, pid)}"


def _parse(entry) -> tuple[str, str | None, str] | None:
    parts = str(entry).split(":") if entry else []
    if len(parts) == 2 and parts[0] == "dicom":
        return "dicom", None, parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return None


def _same_patient(recorded, entry) -> bool:
    a, b = _parse(recorded), _parse(entry)
    return a is not None and b is not None and (a[0], a[2]) == (b[0], b[2])


def record_patients(split: dict, cases: list[Case], ds: Dataset) -> dict:
    """Add ``split["patients"]``: per role, :func:`patient_entry` of each case, aligned with
    ``split[role]`` (the case ids; ids not among ``cases`` get ``None``). Returns ``split``.
    Raises nothing."""
    by_id = {c.case_id: c for c in cases}
    split["patients"] = {role: [patient_entry(by_id[cid], ds) if cid in by_id else None
                                for cid in split.get(role) or []] for role in ROLES}
    return split


class SeenIndex:
    """The recorded split of a checkpoint, asked whether it saw a case (module docstring).

    Args:
        split: ``checkpoint["split"]``.
        fingerprint: ``fingerprint(case)``, :func:`~mriviewer.data.cases.content_fingerprint`
            when ``None``; each case's is computed once.
        by_id: whether a case of a checkpoint without fingerprints (or a bare id) is matched by
            its id.
    """

    def __init__(self, split: dict | None, fingerprint: Callable[[Case], str | None] | None = None,
                 by_id: bool = True) -> None:
        split = split if isinstance(split, dict) else {}
        self._fingerprint_of = fingerprint or content_fingerprint
        self._has_content = "fingerprints" in split
        self._by_id = by_id
        self._fingerprints: dict[str, str | None] = {}
        self._ids: dict[str, str] = {}
        self._files: dict[str, tuple[str, str | None]] = {}
        self._content: dict[str, tuple[str, str | None]] = {}
        self._dicom: dict[str, str] = {}
        self._named: dict[tuple[str, str], dict[str, str]] = {}
        patients = split.get("patients") if isinstance(split.get("patients"), dict) else {}
        for role in ("test", "validation", "train"):  # train wins if a bug ever put one in two
            entries = list(patients.get(role) or [])
            self._ids.update({i: role for i in split.get(role) or []})
            for key, table in (("identities", self._files), ("fingerprints", self._content)):
                for n, k in enumerate((split.get(key) or {}).get(role) or []):
                    if k:
                        table[k] = (role, entries[n] if n < len(entries) else None)
            for parsed in map(_parse, entries):
                if parsed is not None and role in SEEN_ROLES:
                    kind, scope, h = parsed
                    if kind == "dicom":
                        self._dicom[h] = role
                    else:
                        self._named.setdefault((kind, h), {})[scope] = role
        self._dataset: Dataset | None = None
        self._entries: dict[str, str | None] = {}
        self._trusted: dict[str, set[str]] = {}

    @property
    def records_patients(self) -> bool:
        """Whether the checkpoint recorded any patient (written since issue 14, with patient ids)."""
        return bool(self._dicom or self._named)

    def fingerprint(self, case: Case) -> str | None:
        """``case``'s content fingerprint, computed once per case identity."""
        key = case_identity(case)
        if key not in self._fingerprints:
            self._fingerprints[key] = self._fingerprint_of(case)
        return self._fingerprints[key]

    def _case_hit(self, case: Case) -> tuple[tuple[str, str | None] | None, str]:
        if not case.modalities:
            return None, ""
        hit = self._files.get(case_identity(case))
        if hit is not None:
            return hit, "files"
        if self._has_content:
            hit = self._content.get(self.fingerprint(case) or "")
            if hit is not None:
                return hit, "content"
        return None, ""

    def seen_by(self, case, dataset: Dataset | None = None) -> Seen:
        """``case``'s role and how it was found (a :class:`Seen`; see the module docstring).

        ``case`` is a :class:`Case` or a bare case id (matched by id). ``dataset`` is the
        dataset the case was opened in: needed to match a patient id read from a layout or names
        (its folder, and the cases that show the folder is the trained one); without it only a
        DICOM PatientID is matched. Raises nothing (an unreadable file gives no fingerprint).
        """
        if not isinstance(case, Case):
            role = self._ids.get(case) if self._by_id else None
            return Seen(role, "id") if role else EXTERNAL
        hit, how = self._case_hit(case)
        if hit is not None:
            return Seen(hit[0], how)
        if self._by_id and not (case.modalities and self._has_content) and case.case_id in self._ids:
            return Seen(self._ids[case.case_id], "id")
        return self._by_patient(case, dataset) if self.records_patients else EXTERNAL

    def role_of(self, case, dataset: Dataset | None = None) -> str:
        """:meth:`seen_by`'s role."""
        return self.seen_by(case, dataset).role

    def _by_patient(self, case: Case, dataset: Dataset | None) -> Seen:
        parsed = _parse(self._entry(case, dataset))
        if parsed is None:
            return EXTERNAL
        kind, scope, h = parsed
        if kind == "dicom":
            role = self._dicom.get(h)
            return Seen(PATIENT_ROLES[role], "DICOM PatientID") if role else EXTERNAL
        roles = self._named.get((kind, h))
        if not roles:
            return EXTERNAL
        if scope in roles:
            return Seen(PATIENT_ROLES[roles[scope]], "patient id, same folder")
        for s in self._trusted_scopes(dataset, scope):
            if s in roles:
                return Seen(PATIENT_ROLES[roles[s]], "patient id, copy of the trained folder")
        return EXTERNAL

    def _entry(self, case: Case, dataset: Dataset | None) -> str | None:
        if dataset is None:
            return patient_entry(case, None)
        self._use(dataset)
        if case.case_id not in self._entries:
            self._entries[case.case_id] = patient_entry(case, dataset)
        return self._entries[case.case_id]

    def _use(self, dataset: Dataset) -> None:
        if self._dataset is not dataset:
            self._dataset, self._entries, self._trusted = dataset, {}, {}

    def _trusted_scopes(self, dataset: Dataset | None, scope: str) -> set[str]:
        """The trained folders (scope digests) the evaluated folder ``scope`` is a copy of: those
        of its cases seen by files or content whose patient entry is still the recorded one."""
        if dataset is None:
            return set()
        self._use(dataset)
        if scope not in self._trusted:
            found = set()
            for c in dataset.cases:
                parsed = _parse(self._entry(c, dataset))
                if parsed is None or parsed[1] != scope:
                    continue
                hit, _ = self._case_hit(c)
                if hit is not None and _same_patient(hit[1], self._entries[c.case_id]):
                    found.add(_parse(hit[1])[1])
            self._trusted[scope] = found
        return self._trusted[scope]


def left_out_messages(seen: dict[str, Seen], included: bool) -> list[str]:
    """``evaluate``'s words for the cases of ``seen`` (case id → :class:`Seen`) the model was
    trained or selected on, and for the other studies of its patients: one message each, with
    the count, saying they were left out (or, ``included``, that they flatter the figures).
    Raises nothing."""
    out = []
    fitted = [s for s in seen.values() if s.role in SEEN_ROLES]
    others = [s for s in seen.values() if s.other_study]
    if fitted:
        out.append(f"{len(fitted)} case(s) the model was trained or selected on "
                   + ("are included: the figures flatter it" if included else "were left out"))
    if others:
        on = "trained or selected on" if any(s.role == "validation-patient" for s in others) else "trained on"
        how = ", ".join(f"{n} by {h}" for h, n in Counter(s.how for s in others).items())
        out.append(f"{len(others)} case(s) are other studies of patients the model {on}; "
                   + ("included: the figures flatter it" if included else "left out") + f" (matched {how})")
    return out


def warm_start_overlap(pretrained: str, cases: list[Case], splits, dataset: Dataset,
                       fingerprint: Callable[[Case], str | None] | None = None) -> list[str]:
    """Starting from an mriviewer checkpoint (``pretrained`` = its file): warnings naming the new
    test cases that the source model was trained or selected on, and those that are other
    studies of its training or validation patients. Their test figures would flatter the
    model, and a new split of the same data puts some there unless the seed and split match.

    Args:
        pretrained: the run's ``pretrained`` setting (``"auto"``, ``"none"`` or a file).
        cases: the cases the splits index; ``dataset`` the dataset they come from.
        splits: :class:`~.splits.Split` objects.
        fingerprint: ``fingerprint(case)`` (the run's cached one).

    Returns:
        At most two warnings. Raises nothing: plain weights (ImageNet, Kinetics) or an unreadable
        file saw nothing.
    """
    from mriviewer.core.errors import CheckpointError
    from mriviewer.ml.checkpoint import load_checkpoint

    path = Path(pretrained) if pretrained not in ("auto", "none") else None
    if path is None or not path.is_file():
        return []
    try:
        index = SeenIndex(load_checkpoint(path, mmap=True).get("split") or {}, fingerprint, by_id=False)
    except CheckpointError:
        return []
    seen = {cases[i].case_id: index.seen_by(cases[i], dataset) for s in splits for i in s.test}
    same = sorted(cid for cid, s in seen.items() if s.role in SEEN_ROLES)
    other = sorted(cid for cid, s in seen.items() if s.other_study)
    out = []
    if same:
        out.append(f"{len(same)} test case(s) were training or validation cases of the checkpoint this run "
                   f"starts from ({path.name}); their test figures flatter the model (e.g. "
                   f"{', '.join(same[:3])}). Use the same seed and split, or data it never saw.")
    if other:
        out.append(f"{len(other)} test case(s) are other studies of patients the checkpoint this run starts "
                   f"from ({path.name}) was trained or selected on; their test figures flatter the model (e.g. "
                   f"{', '.join(other[:3])}). Use the same seed and split, or patients it never saw.")
    return out
