"""Assembled datasets: several folders, each given a class by the user (``--data HGG=path --data
healthy=path``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mriviewer.core.errors import DatasetError
from mriviewer.data.cases import Dataset, case_identity
from mriviewer.data.discover import discover


# ---------------------------------------------------------------------------- assembled
def parse_data_args(values: list[str]) -> list[tuple[str | None, Path]]:
    """Parse ``--data`` values: ``LABEL=PATH`` or ``PATH``.

    A value that contains ``=`` but names an existing file or folder as a whole is a path
    (folder names may contain ``=``); otherwise it is split at the first ``=``. The label is
    stripped of surrounding blanks.

    Returns:
        ``(label, path)`` per value, in order; ``label`` is ``None`` for a plain path.

    Raises:
        DatasetError: a value is empty, or its label or path is empty; the message names the
            value.
    """
    out: list[tuple[str | None, Path]] = []
    for value in values:
        if not value or not value.strip():
            raise DatasetError(f"--data {value!r}: empty value; expected LABEL=PATH or PATH")
        if "=" not in value or Path(value).expanduser().exists():
            out.append((None, Path(value).expanduser()))
            continue
        label, path = value.split("=", 1)
        label = label.strip()
        if not label:
            raise DatasetError(f"--data {value!r}: empty label before '='; expected LABEL=PATH")
        if not path.strip():
            raise DatasetError(f"--data {value!r}: empty path after '='; expected LABEL=PATH")
        out.append((label, Path(path).expanduser()))
    return out


def _folder_name(path: Path) -> str:
    name = Path(os.path.abspath(path)).name
    return re.sub(r"\.nii(\.gz)?$", "", name, flags=re.IGNORECASE) or str(path)


def _common_parent(paths: list[Path]) -> Path:
    parents = [Path(os.path.abspath(p)).parent for p in paths]
    try:
        return Path(os.path.commonpath([str(p) for p in parents]))
    except ValueError:  # different drives
        return parents[0]


def assemble(sources: list[tuple[str, str | Path]]) -> Dataset:
    """Build one labelled dataset from several folders, the class of each given by the user.

    For ``--data HGG=path --data LGG=path --data healthy=path``: each path is
    :func:`discover`-ed on its own and every case found there (labelled or not; its own label
    is replaced) gets the label of its source. Class names are the distinct labels in
    first-seen order, so one label may be given to several paths (``tumour=a tumour=b``).

    Case ids are ``<label>/<folder name>/<case id in its folder>`` (e.g.
    ``healthy/ixi-t1-2mm/t1/IXI012-HH-1211_T1``), made unique with a ``-2``, ``-3`` … suffix on
    the folder name when two sources share label and folder name; :attr:`Case.source` is the
    path as given. Cases keep their ``errors``; each source's warnings are kept, prefixed with
    its label. The dataset's layout is ``"assembled"``, its root the common parent of the
    paths, ``label_source`` ``None`` and ``settings`` empty; ``patient_ids`` holds when it holds
    for every source.

    Args:
        sources: ``(label, path)`` pairs, e.g. from :func:`parse_data_args`.

    Returns:
        the assembled :class:`Dataset`.

    Raises:
        DatasetError: no sources; a label is missing or empty; a source cannot be discovered or
            holds no case (the message names the label and the path); one case's files are given
            under two labels. Given twice under one label, a case counts once (a warning says so).
    """
    if not sources:
        raise DatasetError("no data folders given; expected one or more LABEL=PATH")
    paths = [Path(p).expanduser() for _, p in sources]
    ds = Dataset(_common_parent(paths), "assembled", label_source=None)
    prefixes: set[str] = set()
    ids: set[str] = set()
    seen: dict[str, tuple[str, str]] = {}  # case identity -> (label, case id) of its first source
    for (label, given), path in zip(sources, paths, strict=True):
        if label is None or not str(label).strip():
            raise DatasetError(f"{given}: no label; give it as LABEL={given}")
        label = str(label).strip()
        sub = _discover_source(label, given, path)
        if label not in ds.class_names:
            ds.class_names.append(label)
        prefix = _unique_prefix(f"{label}/{_folder_name(path)}", prefixes)
        if sub.label_source is not None or sub.class_names:
            ds.warnings.append(f"{label}: {given}: its own labels are replaced by {label!r}")
        repeated = _add_cases(ds, sub, label, given, prefix, seen, ids)
        if repeated:
            ds.warnings.append(f"{label}: {given}: {repeated} case(s) already given by another {label} "
                               "source; counted once")
        ds.warnings.extend(f"{label}: {w}" for w in sub.warnings)
        ds.patient_ids = ds.patient_ids and sub.patient_ids
    if len(ds.class_names) < 2:
        ds.warnings.append(
            f"only one class ({ds.class_names[0]!r}); a classifier needs at least two labels")
    return ds


def _discover_source(label: str, given, path: Path) -> Dataset:
    """:func:`discover` one source.

    Raises:
        DatasetError: it cannot be discovered or holds no case; the message names the label
            and the path as given.
    """
    try:
        sub = discover(path)
    except DatasetError as exc:
        raise DatasetError(f"data {label}={given}: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"data {label}={given}: cannot read ({exc})") from exc
    if not sub.cases:
        raise DatasetError(f"data {label}={given}: no cases found")
    return sub


def _unique_prefix(base: str, prefixes: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3`` … when taken; the result is added to ``prefixes``."""
    prefix, n = base, 1
    while prefix in prefixes:
        n += 1
        prefix = f"{base}-{n}"
    prefixes.add(prefix)
    return prefix


def _add_cases(ds: Dataset, sub: Dataset, label: str, given, prefix: str,
               seen: dict[str, tuple[str, str]], ids: set[str]) -> int:
    """Move ``sub``'s cases into ``ds`` under class ``label`` with ids ``<prefix>/<case id>``
    (made unique against ``ids``). Returns the number of cases skipped because an earlier
    source of the same label already gave their files (``seen``: case identity → first label
    and id).

    Raises:
        DatasetError: a case's files were given under another label.
    """
    idx = ds.class_names.index(label)
    repeated = 0
    for c in sub.cases:
        if c.modalities:  # the same files reached through two sources (nested or repeated paths)
            key = case_identity(c)
            if key in seen:
                first_label, first_id = seen[key]
                if first_label != label:
                    raise DatasetError(f"data {label}={given}: case {c.case_id} is also {first_id} "
                                       f"({first_label}); one case cannot have two classes")
                repeated += 1
                continue
            seen[key] = (label, f"{prefix}/{c.case_id}")
        case_id = f"{prefix}/{c.case_id}"
        k = 1
        while case_id in ids:  # two cases of one source with one id
            k += 1
            case_id = f"{prefix}/{c.case_id}-{k}"
        ids.add(case_id)
        c.case_id = case_id
        c.label = idx
        c.label_name = None
        c.source = str(given)
        ds.cases.append(c)
    return repeated
