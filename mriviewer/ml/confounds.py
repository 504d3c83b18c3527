"""Warn when something other than the disease tells the classes apart (a confound).

Why: a classifier learns whatever separates the classes most easily. When a dataset is put
together from several collections, one per class, the easiest cue is often the collection
itself, not the disease: in the HGG / LGG / healthy grading study that motivated this module
(paper 003) the healthy class is IXI T1 (2 mm, uint8, one scanner site) while the tumours are
BraTS T1ce, so voxel spacing, image size, stored data type, sequence and scanner each predict
"healthy" perfectly. The model then reaches high accuracy by learning the source — *shortcut
learning* (Geirhos et al. 2020, "Shortcut learning in deep neural networks", Nature Machine
Intelligence 2:665–673). DeGrave, Janizek and Lee (2021, "AI for radiographic COVID-19
detection selects shortcuts over signal", Nature Machine Intelligence 3:610–619) showed that
published COVID-19 chest-radiograph classifiers did exactly this, relying on text markers and
the hospital a radiograph came from rather than on the lungs.

:func:`confound_warnings` looks at the attributes that come with each training case (source
folder, voxel spacing, image shape, modality set, scanner, stored data type) and says, in
words, which of them coincide with the class. It needs only what the headers hold, so it can
run before training. numpy and the standard library only (no torch, no Qt).
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePath

import numpy as np

__all__ = ["ATTRIBUTES", "confound_warnings", "describe_value"]

#: Row key → (what it is called in a warning, what the model may learn instead).
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "source": ("source", "the source"),
    "spacing_mm": ("voxel spacing", "the scanner or resolution"),
    "shape": ("image shape", "the image size or field of view"),
    "modalities": ("modality set", "which sequences were acquired"),
    "scanner": ("scanner", "the scanner"),
    "dtype": ("stored data type", "how the intensities were stored"),
}

#: Values listed per class in a warning before "…".
MAX_VALUES = 3


def _normalise(attr: str, value):
    """A hashable, comparable form of ``value`` (``None`` when missing or empty)."""
    if value is None:
        return None
    if attr == "source":
        text = str(value).strip()
        return (PurePath(text.rstrip("/\\")).name or text) if text else None
    if attr == "spacing_mm":
        try:
            values = tuple(round(float(v), 1) + 0.0 for v in np.ravel(value))
        except (TypeError, ValueError):
            return None
        return values or None
    if attr == "shape":
        try:
            values = tuple(int(v) for v in np.ravel(value))
        except (TypeError, ValueError):
            return None
        return values or None
    if attr == "modalities":
        if isinstance(value, str):
            value = [value]
        values = frozenset(str(v) for v in value)
        return values or None
    text = str(value).strip()
    return text or None


def describe_value(attr: str, value) -> str:
    """``value`` of attribute ``attr`` in words: ``"2.0×2.0×2.0 mm"`` for a spacing,
    ``"240×240×155"`` for a shape, ``"FLAIR+T1w"`` for a modality set, the last path component
    for a source."""
    norm = _normalise(attr, value)
    if norm is None:
        return "unknown"
    if attr == "spacing_mm":
        return "×".join(f"{v:.1f}" for v in norm) + " mm"
    if attr == "shape":
        return "×".join(str(v) for v in norm)
    if attr == "modalities":
        return "+".join(sorted(norm))
    return str(norm)


def _class_name(label: int, class_names: list[str]) -> str:
    return class_names[label] if 0 <= label < len(class_names) else f"class {label}"


def _listing(attr: str, counts: Counter) -> str:
    """Values of one class, most frequent first, at most :data:`MAX_VALUES` then "…"."""
    ordered = sorted(counts, key=lambda v: (-counts[v], describe_value(attr, v)))
    words = [describe_value(attr, v) for v in ordered[:MAX_VALUES]]
    return ", ".join(words) + (", …" if len(ordered) > MAX_VALUES else "")


def _per_class(rows: list[dict], attr: str) -> dict[int, Counter]:
    per: dict[int, Counter] = {}
    for row in rows:
        label = row.get("label")
        if label is None:
            continue
        value = _normalise(attr, row.get(attr))
        if value is None:
            continue
        per.setdefault(int(label), Counter())[value] += 1
    return dict(sorted(per.items()))


def _warning(attr: str, per: dict[int, Counter], class_names: list[str]) -> str | None:
    if len(per) < 2:
        return None
    all_values = set().union(*per.values())
    if len(all_values) < 2:
        return None
    what, learns = ATTRIBUTES[attr]
    tail = f" — the model may learn {learns}, not the disease."
    disjoint = all(
        not (set(per[a]) & set(per[b])) for a in per for b in per if a < b
    )
    if disjoint:
        if attr == "source":
            parts = []
            for n, (label, counts) in enumerate(per.items()):
                noun = "source" if len(counts) == 1 else "sources"
                verb = "comes only from" if n == 0 else "only from"
                parts.append(f"class '{_class_name(label, class_names)}' {verb} {noun} "
                             f"{_listing(attr, counts)}")
            joined = ", ".join(parts[:-1]) + " and " + parts[-1]
            return f"Confound: {joined}" + tail
        listing = "; ".join(f"{_class_name(label, class_names)}: {_listing(attr, counts)}"
                            for label, counts in per.items())
        return f"Confound: {what} differs by class ({listing})" + tail
    # Weaker: one class's cases all share a value that no case of another class has.
    clauses = []
    for label, counts in per.items():
        if len(counts) != 1:
            continue
        value = next(iter(counts))
        if any(value in other for o, other in per.items() if o != label):
            continue
        name = _class_name(label, class_names)
        if attr == "source":
            clauses.append(f"every case of class '{name}' comes from source "
                           f"{describe_value(attr, value)}, which no other class uses")
        else:
            clauses.append(f"every case of class '{name}' has {what} "
                           f"{describe_value(attr, value)}, which no case of another class has")
    if not clauses:
        return None
    return "Confound: " + "; ".join(clauses) + tail


def confound_warnings(rows: list[dict], class_names: list[str]) -> list[str]:
    """Warnings for attributes that coincide with the class.

    Each row describes one training case: ``{"case_id", "label" (class index), "source",
    "spacing_mm", "shape", "modalities", "scanner", "dtype"}``; a missing or ``None``
    attribute is ignored for that attribute, as are rows without a label. Spacing is compared
    rounded to 0.1 mm, sources by their last path component.

    An attribute is a confound when it takes at least two values and either each class's set
    of values is disjoint from every other class's (the attribute alone predicts the class),
    or — weaker — all cases of some class share one value that no case of another class has.

    Args:
        rows: one dict per case.
        class_names: the class names, indexed by ``label``.

    Returns:
        one warning per confounded attribute, in :data:`ATTRIBUTES` order; each starts with
        ``"Confound:"`` and says what the model "may learn" instead of the disease. Empty with
        fewer than two classes.
    """
    if len(class_names) < 2:
        return []
    out = []
    for attr in ATTRIBUTES:
        warning = _warning(attr, _per_class(rows, attr), class_names)
        if warning:
            out.append(warning)
    return out
