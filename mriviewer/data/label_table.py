"""A researcher's own label table: a clinical spreadsheet (CSV, TSV or Excel ``.xlsx``) with an id
column and any number of candidate label columns (``PatientID, age, sex, IDH, MGMT, grade``).

The user chooses the label column (:class:`LabelSpec`); the id column is detected — the column
whose values match the most case ids, or else patient ids (rows keyed by patient label each of
their cases) — unless given, and what was chosen is said. Values may be mapped to classes
(``2=LGG,3=LGG,4=HGG``) and excluded. Everything doubtful is reported, naming the file: cases
without a row, rows without a case, repeated ids, conflicting labels (the case is left
unlabelled), a patient whose cases get different labels.

Tables are read with pandas (``read_csv`` with the delimiter sniffed, ``read_excel`` through
openpyxl), every cell as text, so ids such as ``00046`` keep their zeros; ids are matched after
normalisation (``00046`` ≡ ``46``, blanks stripped) and values compared normalised (``1`` ≡
``1.0``), as for the label files found beside a dataset (:mod:`mriviewer.data.labels`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mriviewer.data.cases import Dataset
from mriviewer.data.labels import (
    _LABEL_COLUMNS,
    MAX_CLASSES,
    LabelFileError,
    _id_key,
    _norm_value,
    _number,
)

#: Suffixes read as a table, and how.
TABLE_SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".xlsx": "excel", ".xlsm": "excel"}


@dataclass(frozen=True)
class LabelSpec:
    """What the user chose: the file, its columns, a value → class mapping and excluded values.

    Attributes:
        path: the table (CSV, TSV, ``.xlsx``).
        label_column: the column holding the class (required when no column is named like a
            label: ``label``, ``class``, ``grade``, …).
        id_column: the column of case or patient ids (default: detected, see :func:`match_labels`).
        patient_column: a column naming each case's patient (rows keyed by case).
        label_map: raw value → class name, e.g. ``{"2": "LGG", "3": "LGG", "4": "HGG"}``; with a
            map, values it does not name leave their case unlabelled (said).
        exclude: values (raw or mapped) whose cases are left out of the labelled set.
    """

    path: Path
    label_column: str | None = None
    id_column: str | None = None
    patient_column: str | None = None
    label_map: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()


def parse_label_map(text: str | None) -> dict[str, str]:
    """``"2=LGG,3=LGG,4=HGG"`` → ``{"2": "LGG", "3": "LGG", "4": "HGG"}`` (values normalised: ``2.0``
    is ``2``).

    Raises:
        LabelFileError: an item is not ``VALUE=CLASS``.
    """
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise LabelFileError(f"--label-map {text!r}: {item.strip()!r} is not VALUE=CLASS (e.g. 4=HGG)")
        value, name = (s.strip() for s in item.split("=", 1))
        if not value or not name:
            raise LabelFileError(f"--label-map {text!r}: {item.strip()!r} is not VALUE=CLASS (e.g. 4=HGG)")
        out[_norm_value(value)] = name
    return out


def read_table(path: str | Path):
    """The table at ``path`` as a pandas DataFrame of text cells (``""`` where empty).

    Raises:
        LabelFileError: not a CSV/TSV/Excel file by its suffix, unreadable, empty, or without a
            header; the message names the file.
    """
    import pandas as pd

    path = Path(path)
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise LabelFileError(f"{path}: not a label table (expected {', '.join(sorted(TABLE_SUFFIXES))})")
    try:
        if kind == "excel":
            df = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if kind == "tsv" else None,
                             engine="python", encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelFileError(f"{path}: no such file") from None
    except (OSError, ValueError, ImportError) as exc:  # pandas' parser and openpyxl errors are ValueErrors
        raise LabelFileError(f"{path}: cannot read the table ({exc})") from None
    if df.shape[1] < 2 or df.empty:
        raise LabelFileError(f"{path}: a label table needs a header and rows with at least two columns "
                             f"(found {df.shape[1]} column(s), {len(df)} row(s))")
    df.columns = [str(c).strip() for c in df.columns]
    return df.fillna("").astype(str)


def describe_columns(df) -> list[dict]:
    """Each column's name, type (``"number"``, ``"text"`` or ``"empty"``), distinct values and the
    ten most frequent with their counts, for ``mriviewer labels`` and the GUI's picker."""
    out = []
    for col in df.columns:
        values = [_norm_value(v) for v in df[col] if str(v).strip()]
        numbers = [_number(v) for v in values]
        kind = "empty" if not values else "number" if all(n is not None for n in numbers) else "text"
        counts = Counter(values)
        out.append({"name": col, "type": kind, "n_values": len(values), "n_distinct": len(counts),
                    "empty": len(df) - len(values), "top": dict(counts.most_common(10))})
    return out


@dataclass
class LabelMatch:
    """How a table's rows met a dataset's cases (:func:`match_labels`).

    Attributes:
        id_column, label_column: the columns used; ``keyed_by`` ``"case"`` or ``"patient"``.
        notes: what was detected and chosen ("id column 'PatientID' (detected: …)").
        labels: case id → class name, for the cases that get a label.
        cases_without_row, rows_without_case: ids on one side only.
        repeated: ids on several rows with one value (used once); conflicts: ids with different
            values (their cases unlabelled); patient_conflicts: patients whose cases differ.
        unmapped: raw values a ``label_map`` does not name → row count; excluded: case ids left out.
        patients: case id → patient id from ``patient_column``.
        blank_rows: file lines (1 = header) whose id or label cell is empty (not used; said).
    """

    id_column: str
    label_column: str
    keyed_by: str
    notes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    cases_without_row: list[str] = field(default_factory=list)
    rows_without_case: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    patient_conflicts: list[str] = field(default_factory=list)
    unmapped: dict[str, int] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    patients: dict[str, str] = field(default_factory=dict)
    blank_rows: list[int] = field(default_factory=list)

    def class_counts(self) -> dict[str, int]:
        """Cases per class name, classes in :func:`class_order`."""
        counts = Counter(self.labels.values())
        return {c: counts[c] for c in class_order(counts)}


def class_order(names) -> list[str]:
    """Class names sorted as numbers when they all are (``2 < 10``), else as text."""
    names = list(dict.fromkeys(names))
    if names and all(_number(n) is not None for n in names):
        return sorted(names, key=lambda n: _number(n))
    return sorted(names)


def _keys(ds: Dataset, by: str) -> dict[str, list[str]]:
    """Normalised case (or patient) id → the case ids it names."""
    out: dict[str, list[str]] = {}
    for c in ds.cases:
        key = c.case_id if by == "case" else c.patient_id
        if key:
            out.setdefault(_id_key(key), []).append(c.case_id)
            if by == "case" and "/" in key:  # assembled or nested ids also match by their last part
                out.setdefault(_id_key(key.rsplit("/", 1)[-1]), []).append(c.case_id)
    return out


def _detect_id_column(df, ds: Dataset, spec: LabelSpec) -> tuple[str, str, str]:
    """``(column, keyed_by, note)``: the given id column, else the one matching most cases."""
    by_case, by_patient = _keys(ds, "case"), _keys(ds, "patient")
    candidates = [spec.id_column] if spec.id_column else [c for c in df.columns if c != spec.label_column]
    if spec.id_column and spec.id_column not in df.columns:
        raise LabelFileError(f"{spec.path}: no column {spec.id_column!r} (columns: {', '.join(df.columns)})")
    best = (0, "", "case")
    for col in candidates:
        values = {_id_key(v) for v in df[col] if str(v).strip()}
        for by, keys in (("case", by_case), ("patient", by_patient)):
            hits = len(values & set(keys))
            if hits > best[0]:
                best = (hits, col, by)
    hits, col, by = best
    if not hits:
        if spec.id_column:
            raise LabelFileError(f"{spec.path}: no value of column {spec.id_column!r} matches a case or "
                                 f"patient id of {ds.root} (e.g. {', '.join(c.case_id for c in ds.cases[:3])})")
        raise LabelFileError(f"{spec.path}: no column matches the case or patient ids of {ds.root} "
                             f"(e.g. {', '.join(c.case_id for c in ds.cases[:3])}); give --id-column")
    how = "given" if spec.id_column else "detected"
    return col, by, f"id column {col!r} ({how}; {hits} {by} id(s) match; rows keyed by {by})"


def _label_column(df, spec: LabelSpec) -> tuple[str, str]:
    if spec.label_column:
        if spec.label_column not in df.columns:
            raise LabelFileError(f"{spec.path}: no column {spec.label_column!r} (columns: {', '.join(df.columns)})")
        return spec.label_column, f"label column {spec.label_column!r} (given)"
    named = [c for c in df.columns if c.lower() in _LABEL_COLUMNS]
    if not named:
        raise LabelFileError(f"{spec.path}: which column is the label? give --label-column "
                             f"(columns: {', '.join(df.columns)})")
    return named[0], f"label column {named[0]!r} (detected by its name; --label-column to choose another)"


def _row_values(df, spec: LabelSpec, id_col: str, label_col: str, m: LabelMatch) -> dict[str, str]:
    """Normalised id → class name of the usable rows (mapped, not excluded, not conflicting)."""
    seen: dict[str, set[str]] = {}
    for line, (raw_id, raw) in enumerate(zip(df[id_col], df[label_col], strict=True), start=2):
        key, value = _id_key(raw_id), _norm_value(str(raw))
        if not key or not value:
            m.blank_rows.append(line)  # line numbers as in the file (1 = header)
            continue
        if spec.label_map:
            if value not in spec.label_map:
                m.unmapped[value] = m.unmapped.get(value, 0) + 1
                continue
            value = spec.label_map[value]
        seen.setdefault(key, set()).add(value)
    out = {}
    for key, values in seen.items():
        if len(values) > 1:
            m.conflicts.append(key)
        else:
            out[key] = values.pop()
    return out


def match_labels(ds: Dataset, spec: LabelSpec, df=None) -> LabelMatch:
    """Match ``spec``'s table against ``ds`` (nothing is changed; see :func:`apply_labels`).

    Raises:
        LabelFileError: the table cannot be read, a named column is absent, no id column matches,
            the label column cannot be told, or the labels would make more than
            :data:`~mriviewer.data.labels.MAX_CLASSES` classes.
    """
    df = read_table(spec.path) if df is None else df
    label_col, label_note = _label_column(df, spec)
    id_col, by, id_note = _detect_id_column(df, ds, LabelSpec(**{**spec.__dict__, "label_column": label_col}))
    if id_col == label_col:
        raise LabelFileError(f"{spec.path}: the id and label columns are both {id_col!r}")
    m = LabelMatch(id_col, label_col, by, notes=[id_note, label_note])
    counts = Counter(_id_key(v) for v in df[id_col] if str(v).strip())
    m.repeated = sorted(k for k, n in counts.items() if n > 1)
    values = _row_values(df, spec, id_col, label_col, m)
    m.repeated = [k for k in m.repeated if k not in m.conflicts]
    keys = _keys(ds, by)
    m.rows_without_case = sorted(set(values) - set(keys))
    excluded = {_norm_value(v) for v in spec.exclude} | set(spec.exclude)
    for key, case_ids in keys.items():
        for cid in case_ids:
            if key in values and values[key] in excluded:
                m.excluded.append(cid)
            elif key in values:
                m.labels[cid] = values[key]
    labelled_or_out = set(m.labels) | set(m.excluded)
    m.cases_without_row = [c.case_id for c in ds.cases if c.case_id not in labelled_or_out]
    if spec.patient_column:
        if spec.patient_column not in df.columns:
            raise LabelFileError(f"{spec.path}: no column {spec.patient_column!r} (columns: {', '.join(df.columns)})")
        rows = {_id_key(i): str(p).strip() for i, p in zip(df[id_col], df[spec.patient_column], strict=True)}
        m.patients = {cid: rows[k] for k, cids in keys.items() for cid in cids if rows.get(k)}
    _patient_conflicts(ds, m)
    if len(set(m.labels.values())) > MAX_CLASSES:
        raise LabelFileError(f"{spec.path}: column {label_col!r} makes {len(set(m.labels.values()))} classes "
                             f"(at most {MAX_CLASSES}); mriviewer trains classifiers")
    return m


def _patient_conflicts(ds: Dataset, m: LabelMatch) -> None:
    by_patient: dict[str, set[str]] = {}
    for c in ds.cases:
        patient = m.patients.get(c.case_id) or c.patient_id
        if patient and c.case_id in m.labels:
            by_patient.setdefault(patient, set()).add(m.labels[c.case_id])
    m.patient_conflicts = sorted(p for p, labels in by_patient.items() if len(labels) > 1)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of the file's bytes (hex), recorded with the run so its labels can be traced."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def apply_labels(ds: Dataset, spec: LabelSpec) -> LabelMatch:
    """Label ``ds``'s cases from ``spec`` (replacing labels found beside the dataset), set their
    patients from ``spec.patient_column``, add a warning naming the file for each doubtful thing,
    and record the file (name, SHA-256), columns and mapping in ``ds.label_record``.

    Returns:
        The :class:`LabelMatch`.

    Raises:
        LabelFileError: see :func:`match_labels`; or no case gets a label.
    """
    m = match_labels(ds, spec)
    if not m.labels:
        raise LabelFileError(f"{spec.path}: no case of {ds.root} gets a label from column {m.label_column!r}")
    numeric = all(_number(v) is not None for v in m.labels.values()) and not spec.label_map
    names = class_order(set(m.labels.values()))
    ds.class_names = [f"{m.label_column}={n}" for n in names] if numeric else names
    index = {n: i for i, n in enumerate(names)}
    for c in ds.cases:
        value = m.labels.get(c.case_id)
        c.label = index[value] if value is not None else None
        c.label_name = None
        if c.case_id in m.patients:
            c.patient_id = m.patients[c.case_id]
    ds.label_source = Path(spec.path)
    ds.warnings.extend(label_warnings(spec, m))
    ds.label_record = {"file": Path(spec.path).name, "sha256": file_sha256(spec.path),
                       "id_column": m.id_column, "keyed_by": m.keyed_by, "label_column": m.label_column,
                       "patient_column": spec.patient_column, "label_map": dict(spec.label_map),
                       "exclude": list(spec.exclude), "classes": ds.class_names}
    return m


def label_warnings(spec: LabelSpec, m: LabelMatch) -> list[str]:
    """The doubtful things of a match as sentences naming the file."""
    f, out = spec.path, list(f"{spec.path}: {n}" for n in m.notes)

    def some(ids):
        return ", ".join(map(str, ids[:3])) + (", …" if len(ids) > 3 else "")

    if m.cases_without_row:
        out.append(f"{f}: {len(m.cases_without_row)} case(s) have no usable row (e.g. {some(m.cases_without_row)}); "
                   "they are unlabelled")
    if m.blank_rows:
        out.append(f"{f}: {len(m.blank_rows)} row(s) without an id or a {m.label_column} value (line(s) "
                   f"{some(m.blank_rows)}); not used")
    if m.rows_without_case:
        out.append(f"{f}: {len(m.rows_without_case)} row(s) match no case (e.g. {some(m.rows_without_case)})")
    if m.repeated:
        out.append(f"{f}: {len(m.repeated)} id(s) appear on several rows with one label (e.g. {some(m.repeated)}); "
                   "used once")
    if m.conflicts:
        out.append(f"{f}: {len(m.conflicts)} id(s) have conflicting labels (e.g. {some(m.conflicts)}); "
                   "their cases are left unlabelled")
    if m.patient_conflicts:
        out.append(f"{f}: {len(m.patient_conflicts)} patient(s) have cases with different labels "
                   f"(e.g. {some(m.patient_conflicts)}); they stay together in one role")
    if m.unmapped:
        vals = ", ".join(f"{v!r} ({n} row(s))" for v, n in sorted(m.unmapped.items())[:5])
        out.append(f"{f}: value(s) not in --label-map: {vals}; those cases are unlabelled")
    if m.excluded:
        out.append(f"{f}: {len(m.excluded)} case(s) excluded by their label ({', '.join(spec.exclude)})")
    return out
