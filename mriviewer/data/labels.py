"""Label tables: a label CSV checked row by row (:func:`read_label_table`), found beside a dataset,
its id and label columns chosen, and its labels applied to the cases.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mriviewer.core.errors import DatasetError, MriViewerError
from mriviewer.data.cases import Dataset
from mriviewer.data.listing import _isdir


class LabelFileError(DatasetError):
    """A label file whose label column is not class labels (continuous, absurdly many
    classes); the whole dataset is refused rather than trained on nonsense."""


# ---------------------------------------------------------------------------- labels
#: Longest ID or label cell accepted (longer: the row is reported and ignored).
MAX_LABEL_FIELD = 256


#: Most classes a label column may define (more: refused as not a class label).
MAX_CLASSES = 1000


@dataclass
class LabelRow:
    """One row of a label table (see :func:`read_label_table`).

    Attributes:
        raw_id: the ID as written (first row when it is repeated).
        value: the label, normalised: blanks stripped, a number written as an integer when it
            is one (``" 1 "``, ``"1.0"`` and ``"1"`` are all ``"1"``).
        line: line number in the file (1 = header).
        conflict: the ID appears on several rows with different labels; the case is left
            unlabelled (:attr:`Dataset.warnings` names the rows).
    """

    raw_id: str
    value: str
    line: int
    conflict: bool = False


def _id_key(case_id: str) -> str:
    """Case ID as matched against label tables: blanks stripped, a zero-padded number is the
    number (``00001`` ≡ ``1``, as RSNA-MICCAI writes them)."""
    s = str(case_id).strip()
    return str(int(s)) if s.isdigit() and len(s) <= 30 else s


def _number(value: str) -> float | None:
    try:
        v = float(value)
    except (ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def _norm_value(value: str) -> str:
    v = value.strip()
    n = _number(v)
    if n is not None and n.is_integer():
        return str(int(n))
    return v


def _decode_table(path: Path, warnings: list[str]) -> str:
    """Text of a label file: UTF-8 (with or without BOM); lines that are not UTF-8 are read
    as Latin-1 and named in a warning."""
    from mriviewer.io.paths import check_source_path

    try:
        check_source_path(path, "file")
    except MriViewerError as exc:
        raise OSError(str(exc)) from None
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    lines = raw.split(b"\n")
    bad: list[int] = []
    out = []
    for n, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8-sig" if n == 1 else "utf-8"))
        except UnicodeDecodeError:
            bad.append(n)
            out.append(line.decode("latin-1"))
    shown = ", ".join(map(str, bad[:10])) + (", …" if len(bad) > 10 else "")
    warnings.append(f"{path}: not valid UTF-8 on line(s) {shown}; read as Latin-1 (check those labels)")
    return "\n".join(out)


class _FieldLimit:
    """Raise the csv module's field size limit (131,072 characters) for one read: an over-long
    cell is then reported by line instead of failing the whole file."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __enter__(self):
        self.old = csv.field_size_limit()
        csv.field_size_limit(max(self.old, self.size + 1))

    def __exit__(self, *exc):
        csv.field_size_limit(self.old)


def _read_rows(path: Path, warnings: list[str] | None = None) -> list[tuple[int, dict]]:
    """``(line, row)`` for every data row of a CSV file (see :func:`_decode_table`).

    Raises:
        OSError: the file cannot be read.
    """
    text = _decode_table(path, warnings if warnings is not None else [])
    rows: list[tuple[int, dict]] = []
    with _FieldLimit(len(text)):
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            for row in reader:
                rows.append((reader.line_num, row))
        except csv.Error as exc:
            if warnings is not None:
                warnings.append(f"{path}: line {reader.line_num}: {exc}; the rest of the file is not read")
    return rows


def _csv_header(path: Path) -> list[str]:
    try:
        text = _decode_table(path, [])
        with _FieldLimit(len(text)):
            return next(csv.reader(io.StringIO(text, newline="")), [])
    except (OSError, csv.Error):
        return []


def read_label_table(path: Path, id_col: str, label_col: str, warnings: list[str]) -> dict[str, LabelRow]:
    """Read and check the ``id_col`` → ``label_col`` pairs of a CSV label file.

    Every problem is reported in ``warnings`` by file and line, and only the rows concerned are
    left out: an empty ID or label; a cell over :data:`MAX_LABEL_FIELD` characters (the csv
    module's 131,072-character limit is raised for the read, so no field fails the file);
    text that is not UTF-8 (read as Latin-1, see :func:`_decode_table`). IDs are matched after
    normalisation (``00001`` ≡ ``1``, blanks stripped) and labels compared normalised
    (``1`` ≡ ``1.0`` ≡ `` 1 ``). An ID on several rows with the same label is one warning and
    used once; with different labels it is a warning naming every row, and the case is left
    **unlabelled** (``conflict``): a guess between conflicting labels would be silent label
    noise.

    Returns:
        normalised ID (:func:`_id_key`) → :class:`LabelRow`.

    Raises:
        OSError: the file cannot be read.
    """
    out: dict[str, LabelRow] = {}
    seen: dict[str, list[tuple[int, str, str]]] = {}
    for n, row in _read_rows(path, warnings):
        key_raw, value_raw = row.get(id_col) or "", row.get(label_col) or ""
        if not isinstance(key_raw, str) or not isinstance(value_raw, str):
            continue
        long = next(((c, v) for c, v in ((id_col, key_raw), (label_col, value_raw)) if len(v) > MAX_LABEL_FIELD), None)
        if long is not None:
            warnings.append(f"{path}: line {n}: {long[0]} has {len(long[1])} characters (at most "
                            f"{MAX_LABEL_FIELD}); row ignored")
            continue
        key, value = key_raw.strip(), value_raw.strip()
        if not key or not value:
            warnings.append(f"{path}: line {n} has no {id_col} or {label_col}")
            continue
        if "\ufffd" in key + value:
            warnings.append(f"{path}: line {n}: undecodable bytes in {id_col} or {label_col}; row ignored")
            continue
        k = _id_key(key)
        seen.setdefault(k, []).append((n, key, _norm_value(value)))
        if k not in out:
            out[k] = LabelRow(key, _norm_value(value), n)
    for k, rows in seen.items():
        if len(rows) < 2:
            continue
        where = ", ".join(f"line {n} ({rid!r}: {v!r})" for n, rid, v in rows[:6]) + (", …" if len(rows) > 6 else "")
        if len({v for _, _, v in rows}) == 1:
            warnings.append(f"{path}: {id_col} {k!r} appears on {len(rows)} rows with the same label: {where}; used once")
        else:
            out[k].conflict = True
            warnings.append(f"{path}: {id_col} {k!r} has conflicting labels: {where}; the case is left unlabelled")
    return out


def _find_csv(dirs: list[Path], required: tuple[str, ...] = (), id_values: set[str] | None = None) -> Path | None:
    seen = set()
    for d in dirs:
        if not _isdir(d):
            continue
        for f in sorted(d.glob("*.csv")):
            if f in seen or not os.path.isfile(f):
                continue
            seen.add(f)
            header = _csv_header(f)
            if required and all(r in header for r in required):
                return f
            if id_values and header and _generic_columns(f, header, id_values) is not None:
                return f
    return None


_LABEL_COLUMNS = ("label", "mgmt_value", "grade", "class", "diagnosis", "target", "y")


def _generic_columns(path: Path, header: list[str], id_values: set[str]) -> tuple[str, str, bool] | None:
    """``(id column, label column, named)`` of a label file whose column holds some of
    ``id_values`` (normalised IDs); ``named`` when the label column has a label's name
    (:data:`_LABEL_COLUMNS`) rather than being the next column."""
    try:
        rows = [r for _, r in _read_rows(path)]
    except OSError:
        return None
    label_col = next((h for h in header if h.lower() in _LABEL_COLUMNS), None)
    for col in header:
        values = {_id_key(v) for r in rows if isinstance(v := r.get(col), str) and len(v) <= MAX_LABEL_FIELD}
        if values & id_values:
            if label_col and label_col != col:
                return col, label_col, True
            other = next((h for h in header if h != col), None)
            if other:
                return col, other, False
    return None


def _apply_generic_labels(ds: Dataset, csv_path: Path) -> None:
    """Label ``ds``'s cases from a CSV with an ID column and a label column.

    A column of numbers is a class index (classes ``<column>=0 … <column>=max``); a row whose
    value is not a whole number ≥ 0 there is reported by line and left out. A column of text
    gives one class per distinct value. Refused — :class:`DatasetError` when the column has a
    label's name (``label``, ``class``, ``grade`` …), a warning and no labels when it was only
    the next column — when it does not look like class labels: continuous (3 or more distinct
    non-integer numbers making over 10 % of the rows), or more than :data:`MAX_CLASSES`
    classes, or more than 20 classes and more than half the rows.
    """
    cols = _generic_columns(csv_path, _csv_header(csv_path), {_id_key(c.case_id) for c in ds.cases})
    if cols is None:
        return
    id_col, label_col, named = cols
    try:
        table = read_label_table(csv_path, id_col, label_col, ds.warnings)
    except OSError as exc:
        ds.warnings.append(f"{csv_path}: cannot read label CSV ({exc})")
        return
    rows = [r for r in table.values() if not r.conflict]
    numbers = {id(r): _number(r.value) for r in rows}
    numeric = rows and sum(v is not None for v in numbers.values()) * 2 >= len(rows)
    if numeric:
        valid, why = _numeric_labels(table, numbers, csv_path, label_col, ds.warnings)
        if why:
            return _refuse_labels(ds, csv_path, label_col, named, why)
        if not valid:
            return
        n_classes = max(int(v) for v in valid.values()) + 1
    else:
        valid = {k: r.value for k, r in table.items() if not r.conflict}
        n_classes = len(set(valid.values()))
    if n_classes > MAX_CLASSES or (n_classes > 20 and n_classes * 2 > len(valid)):
        return _refuse_labels(ds, csv_path, label_col, named,
                              f"it would make {n_classes} classes for {len(valid)} labelled rows")
    present = {_id_key(c.case_id) for c in ds.cases} & set(valid)
    if not present:
        return
    _set_labels(ds, csv_path, valid, present, label_col, n_classes if numeric else None)
    _warn_label_gaps(ds, csv_path, valid, label_col, named)


def _refuse_labels(ds: Dataset, csv_path: Path, label_col: str, named: bool, why: str) -> None:
    """Refuse ``label_col`` as class labels: raise when it is named like a label, else warn.

    Raises:
        LabelFileError: ``named``.
    """
    msg = (f"{csv_path}: column {label_col!r} does not look like class labels: {why}; "
           "mriviewer trains classifiers (give a column of class names or indices)")
    if named:
        raise LabelFileError(msg)
    ds.warnings.append(msg + "; not used as labels")


def _numeric_labels(table: dict[str, LabelRow], numbers: dict[int, float | None], csv_path: Path,
                    label_col: str, warnings: list[str]) -> tuple[dict[str, str], str | None]:
    """``(valid, refusal)`` of a column of class numbers: the rows holding a whole number ≥ 0
    (ID key → value; the others warned by line), or why the column is refused as continuous
    (``valid`` then empty). ``numbers`` maps ``id(row)`` to its value as a number."""
    fractional = [v for v in numbers.values() if v is not None and not v.is_integer()]
    if len(set(fractional)) >= 3 and len(fractional) * 10 > len(numbers):
        examples = ", ".join(f"{v:g}" for v in sorted(set(fractional))[:4])
        return {}, f"{len(set(fractional))} distinct non-integer values (e.g. {examples}) — continuous"
    valid: dict[str, str] = {}
    for k, r in table.items():
        if r.conflict:
            continue
        v = numbers[id(r)]
        why = ("is not a number" if v is None else "is negative" if v < 0
               else "is not a whole number" if not v.is_integer() else None)
        if why:
            warnings.append(f"{csv_path}: line {r.line}: {label_col} {r.value!r} {why} "
                            "(the column holds class numbers); row ignored")
            continue
        valid[k] = r.value
    return valid, None


def _set_labels(ds: Dataset, csv_path: Path, valid: dict[str, str], present: set[str],
                label_col: str, n_classes: int | None) -> None:
    """Set ``ds``'s class names and each case's label: ``<label_col>=0 … n_classes - 1`` for
    class numbers, else the sorted distinct values of the cases present (``n_classes`` None)."""
    if n_classes is not None:
        ds.class_names = [f"{label_col}={v}" for v in range(n_classes)]
        to_index = {v: int(v) for v in valid.values()}
    else:
        names = sorted({valid[k] for k in present})
        ds.class_names = names
        to_index = {v: i for i, v in enumerate(names)}
    ds.label_source = csv_path
    for c in ds.cases:
        k = _id_key(c.case_id)
        if k in valid and valid[k] in to_index:
            c.label = to_index[valid[k]]


def _warn_label_gaps(ds: Dataset, csv_path: Path, valid: dict[str, str], label_col: str,
                     named: bool) -> None:
    """Nothing doubtful silently: a guessed column, cases without a row, rows without a case,
    classes that no case has (a typo "7" in a 0/1 column makes eight classes)."""
    if not named:
        ds.warnings.append(f"{csv_path}: no column named like a label ({', '.join(sorted(_LABEL_COLUMNS))}); "
                           f"using {label_col!r} as the class column — check that it is the label")
    unlabelled = [c.case_id for c in ds.cases if c.label is None]
    if unlabelled:
        ds.warnings.append(f"{csv_path}: {len(unlabelled)} case(s) have no usable label row "
                           f"(e.g. {', '.join(unlabelled[:3])})")
    unmatched = sorted(set(valid) - {_id_key(c.case_id) for c in ds.cases})
    if unmatched:
        ds.warnings.append(f"{csv_path}: {len(unmatched)} labelled row(s) match no case "
                           f"(e.g. {', '.join(unmatched[:3])})")
    counts = Counter(c.label for c in ds.cases if c.label is not None)
    empty = [n for i, n in enumerate(ds.class_names) if counts[i] == 0]
    if empty:
        ds.warnings.append(f"{csv_path}: class(es) {', '.join(empty)} have no case "
                           f"({len(ds.class_names)} classes from the largest number in {label_col!r})")
