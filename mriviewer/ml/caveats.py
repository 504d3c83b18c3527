"""Caveats of a training run as typed records, not strings matched by prefix.

Every warning the engine raises is a :class:`Caveat` with a ``kind`` (what it is about) and a
``scope``: ``"result"`` caveats qualify the reported figures (a confound, near-duplicates across
roles, no patient ids, a class absent from training, the test set's own warnings) and belong in
reports; ``"case"`` caveats concern one case (skipped, undecodable) and ``"run"`` caveats how the
run went (a precision fallback, a modality not trained) — the log shows them, a report does not.

``metrics.json`` keeps the messages in ``"warnings"`` (as before) and the records in
``"caveats"``; :func:`caveats_of` reads either, so checkpoints written before caveats existed
still read (their strings are classified once, by the wording those versions used).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

#: What a caveat can be about, and whether it qualifies the reported figures.
KINDS: dict[str, str] = {
    "confound": "result",        # a class comes from one source / acquisition
    "near-duplicate": "result",  # near-identical images in different roles or classes
    "patients": "result",        # no patient ids: split by case
    "split": "result",           # the split could not be made as asked
    "class": "result",           # a class absent from training, too few of a class
    "modality": "result",        # a channel missing (zeros) or replaced by a fallback
    "test-set": "result",        # the test metrics' own warnings (chance, size, one class)
    "weights": "result",         # e.g. a frozen backbone without pretrained weights
    "leak": "result",            # a warm start from a model that saw these test cases
    "case": "case",              # one case skipped or undecodable
    "precision": "run",          # e.g. fp16 requested without CUDA
    "run": "run",                # how the run went (a modality not trained, ...)
    "other": "result",
}


@dataclass(frozen=True)
class Caveat:
    """One warning of a run.

    Attributes:
        kind: a key of :data:`KINDS`.
        message: the sentence a person reads (it names the cases, files or classes concerned).
    """

    kind: str
    message: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown caveat kind {self.kind!r} (one of {', '.join(KINDS)})")

    @property
    def scope(self) -> str:
        """``"result"``, ``"case"`` or ``"run"`` (see the module docstring)."""
        return KINDS[self.kind]

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict:
        """``{"kind", "scope", "message"}`` for ``metrics.json``."""
        return {**asdict(self), "scope": self.scope}


# How versions before caveats worded their per-case and run warnings (read only, for old files).
_LEGACY_PREFIXES = (("Case ", "case"), ("Cannot decode", "case"), ("fp16", "precision"))


def from_json(obj) -> Caveat:
    """A :class:`Caveat` from its ``to_json`` dict, or from a plain warning string of an older
    ``metrics.json`` (classified by the wording of those versions; anything else is ``other``)."""
    if isinstance(obj, Mapping):
        kind = str(obj.get("kind", "other"))
        return Caveat(kind if kind in KINDS else "other", str(obj.get("message", "")))
    text = str(obj)
    kind = next((k for prefix, k in _LEGACY_PREFIXES if text.startswith(prefix)), "other")
    return Caveat(kind, text)


def caveats_of(metrics: Mapping) -> list[Caveat]:
    """The run's caveats from a ``metrics.json`` / checkpoint ``metrics`` dict: its ``"caveats"``
    records when present, else its ``"warnings"`` strings read by :func:`from_json`."""
    records = metrics.get("caveats")
    if records is not None:
        return [from_json(c) for c in records]
    return [from_json(w) for w in metrics.get("warnings") or []]


def reported(caveats: Iterable[Caveat]) -> list[Caveat]:
    """The caveats that qualify the reported figures (scope ``"result"``), in order, once each."""
    return list(dict.fromkeys(c for c in caveats if c.scope == "result"))
