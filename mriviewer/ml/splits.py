"""Train / validation / test roles, grouped by patient and stratified by label.

Three roles, never mixed: **train** (fits the weights), **validation** (early stopping and the
checkpoint choice) and **test** (the only numbers reported). A holdout run carves the test set
first, then validation from the rest; k-fold cross-validation makes each fold the test set once
and carves validation from the remaining folds. Every carve keeps all cases of one group
(patient) on one side and is stratified by label where the counts allow; when they do not, the
split says so in :attr:`Split.warnings` instead of silently falling back.

Methods: scikit-learn ``train_test_split`` (one case per patient), ``StratifiedGroupKFold``
(several cases per patient, and k-fold CV).
"""

from __future__ import annotations

import warnings as _warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mriviewer.core.errors import DatasetError

__all__ = ["Split", "make_splits"]


@dataclass
class Split:
    """Indices into the case list for each role. ``name`` is ``"holdout"`` or ``"fold k"``."""

    name: str
    train: list[int]
    val: list[int]
    test: list[int]
    warnings: list[str] = field(default_factory=list)

    def roles(self) -> dict[str, list[int]]:
        return {"train": self.train, "validation": self.val, "test": self.test}


def make_splits(
    labels: Sequence[int],
    groups: Sequence[str],
    *,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    folds: int = 0,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> list[Split]:
    """Assign every case a role, by group and stratified by label.

    Args:
        labels: ``(N,)`` class index per case.
        groups: ``(N,)`` patient (group) id per case; cases of one group never straddle roles.
        split: ``[train, validation, test]`` fractions for a holdout run (sum 1).
        folds: 0 for holdout, else the number of cross-validation folds (≥ 2).
        seed: random state of every carve.
        class_names: for messages.

    Returns:
        One :class:`Split` (holdout) or ``folds`` splits; in each, train, validation and test
        are disjoint in cases and in groups, their union all cases, none empty.

    Raises:
        DatasetError: too few cases or groups for the roles asked for.
    """
    labels = np.asarray(labels, dtype=int)
    groups = np.asarray([str(g) for g in groups])
    n = len(labels)
    names = list(class_names) if class_names else [str(k) for k in range(int(labels.max(initial=0)) + 1)]
    n_groups = len(set(groups))
    if n_groups < 3:
        raise DatasetError(f"need at least 3 patients for train, validation and test; found {n_groups}")
    idx = np.arange(n)
    out: list[Split] = []
    if folds and folds >= 2:
        if n_groups < folds + 1:
            raise DatasetError(f"{folds}-fold cross-validation needs at least {folds + 1} patients; found {n_groups}")
        val_share = split[1] / (split[0] + split[1])
        fold_warn: list[str] = []
        for k, (rest, test) in enumerate(_kfold(idx, labels, groups, folds, seed, names, fold_warn), start=1):
            train, val, w = _carve(rest, labels, groups, val_share, seed + k, names, "validation")
            out.append(_finish(f"fold {k}", train, val, test, groups, fold_warn + w))
    else:
        rest, test, w1 = _carve(idx, labels, groups, split[2], seed, names, "test")
        train, val, w2 = _carve(rest, labels, groups, split[1] / (split[0] + split[1]), seed + 1, names, "validation")
        out.append(_finish("holdout", train, val, test, groups, w1 + w2))
    return out


def _finish(name, train, val, test, groups, warns) -> Split:
    roles = {"train": train, "validation": val, "test": test}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = set(groups[roles[a]]) & set(groups[roles[b]])
        if shared:  # a bug, never data: refuse rather than report a leaked number
            raise AssertionError(f"{name}: patients in both {a} and {b}: {sorted(shared)[:5]}")
    return Split(name, sorted(int(i) for i in train), sorted(int(i) for i in val),
                 sorted(int(i) for i in test), list(dict.fromkeys(warns)))


def _class_counts(labels: np.ndarray, names) -> str:
    c = Counter(labels.tolist())
    return ", ".join(f"{names[k] if k < len(names) else k}: {c[k]}" for k in sorted(c))


def _carve(idx: np.ndarray, labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int,
           names, role: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Split ``idx`` into ``(rest, carved)`` with about ``fraction`` of the groups carved."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

    warns: list[str] = []
    sub_groups = groups[idx]
    uniq = np.unique(sub_groups)
    if len(uniq) < 2:
        raise DatasetError(f"too few patients to carve a {role} set (found {len(uniq)})")
    y = labels[idx]
    if len(uniq) == len(idx):  # one case per patient: an exact stratified fraction
        n_carve = min(max(1, int(round(len(idx) * fraction))), len(idx) - 1)
        counts = Counter(y.tolist())
        ok = min(counts.values()) >= 2 and n_carve >= len(counts) and len(idx) - n_carve >= len(counts)
        if not ok:
            warns.append(f"stratification impossible for the {role} set ({_class_counts(y, names)}; "
                         f"{n_carve} {role} case(s)): classes may be missing from it")
        if ok:
            rest, carved = train_test_split(idx, test_size=n_carve, random_state=seed, stratify=y)
            return np.asarray(rest), np.asarray(carved), warns
        # Unstratified: prefer a draw that leaves every class in the remainder (training needs them).
        for attempt in range(200):
            rest, carved = train_test_split(idx, test_size=n_carve, random_state=seed + attempt)
            if set(labels[rest]) == set(y):
                break
        else:
            warns.append(f"a class is missing from the training part after carving the {role} set")
        return np.asarray(rest), np.asarray(carved), warns
    # Several cases per patient: whole groups move together.
    n_splits = max(2, int(round(1.0 / max(fraction, 1e-6))))
    n_splits = min(n_splits, len(uniq))
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("error")
            sgkf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            rest, carved = next(sgkf.split(idx, y, sub_groups))
    except (ValueError, UserWarning) as exc:
        warns.append(f"stratification impossible for the {role} set ({exc}); split by patient without it")
        gss = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        rest, carved = next(gss.split(idx, y, sub_groups))
    return idx[rest], idx[carved], warns


def _kfold(idx, labels, groups, folds, seed, names, warns):
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    counts = Counter(labels.tolist())
    smallest = min(counts.values())
    if smallest < folds:
        warns.append(f"stratification across {folds} folds impossible ({_class_counts(labels, names)}): "
                     "some test folds lack a class")
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", UserWarning)
        try:
            yield from StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(idx, labels, groups)
            return
        except ValueError as exc:
            warns.append(f"stratified folds impossible ({exc}); folds by patient without stratification")
    yield from GroupKFold(n_splits=folds).split(idx, labels, groups)
