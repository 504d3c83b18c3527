"""What a training run yields (the engine's event stream): log lines, per-batch progress, per-epoch
records, finished folds, and the run's result. The GUI, the command line and the benchmarks are
listeners of this one stream.

Events that belong to a fold carry its number as ``fold_index`` (1-based; ``None`` for a holdout
run and for the stages before the split), so listeners never parse it out of the ``fold`` tag.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def _fold_index_of(tag: str) -> int | None:
    """The fold number in a fold tag (``"fold 2"``, ``"FLAIR fold 2"`` → 2; ``"holdout"`` →
    ``None``): for events built by hand without a ``fold_index``."""
    m = re.search(r"\bfold (\d+)\b", tag or "")
    return int(m.group(1)) if m else None


@dataclass
class LogEvent:
    """A line for the log (weights used, split sizes, warnings, …); ``level`` is ``"info"`` or
    ``"warning"`` (shown prominently by the GUI and repeated in the report)."""

    message: str
    level: str = "info"


@dataclass
class ProgressEvent:
    """Progress within a stage.

    Attributes:
        stage: ``"decode"`` (DICOM/NIfTI decoding in worker processes), ``"prepare"`` (network
            samples) or ``"train"`` (batches of an epoch).
        epoch: the epoch (1-based, counted over the fold's phases); 0 outside training.
        step: batches (cases, series) done, of ``total``.
        total: batches (cases, series) in this stage.
        loss: the running mean training loss per sample of this epoch (``"train"`` only).
        fold: the fold tag (``"holdout"``, ``"fold 2"``; with the modality for per-modality runs,
            ``"FLAIR fold 2"``; the modality alone before the split).
        epochs: epochs planned in this fold, for ETAs.
        fold_index: the cross-validation fold's number (1-based); ``None`` for a holdout run and
            before the split. Left ``None`` by the caller, it is read from ``fold``.
    """

    stage: str
    epoch: int
    step: int
    total: int
    loss: float | None = None
    fold: str = ""
    epochs: int = 0
    fold_index: int | None = None

    def __post_init__(self) -> None:
        if self.fold_index is None:
            self.fold_index = _fold_index_of(self.fold)


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch's figures (what ``metrics.json`` lists under ``"epochs"``, via
    :meth:`as_dict`).

    Attributes:
        epoch: the epoch, 1-based, counted over the fold's phases (a fine-tune phase continues
            the numbering).
        phase: the training phase's name (``"train"``, ``"train (backbone frozen)"``,
            ``"fine-tune"``).
        fold: the fold tag (``"holdout"``, ``"fold 2"``, ``"FLAIR fold 2"``).
        lr: learning rate of the first parameter group during the epoch (before the schedule
            steps at its end).
        train_loss: mean training loss per sample over the epoch (over all ranks).
        val_loss: mean loss per validation sample (slice for 2D models, volume for 3D).
        val_auc: case-level validation ROC AUC (macro one-vs-rest for multiclass); ``nan`` when
            undefined (one class present).
        val_accuracy: share of validation cases whose arg-max class is the label, in [0, 1].
        seconds: wall-clock seconds of the epoch (training and the validation pass).
        is_best: whether this epoch is the best so far on the monitored validation value (its
            weights are the fold's checkpoint).
    """

    epoch: int
    phase: str
    fold: str
    lr: float
    train_loss: float
    val_loss: float
    val_auc: float
    val_accuracy: float
    seconds: float
    is_best: bool

    def as_dict(self) -> dict:
        """The record as the plain dict stored in checkpoints and ``metrics.json``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> EpochRecord:
        """A record from its dict form (unknown keys are ignored).

        Raises:
            TypeError: a field is missing.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def __getitem__(self, key: str):
        """Deprecated mapping-style access (``record["epoch"]``) for listeners not yet
        switched to attributes; raises ``KeyError`` for an unknown key."""
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)


@dataclass
class EpochEvent:
    """One finished epoch: its :class:`EpochRecord` (a dict given here is converted) and the
    cross-validation fold's number (``None`` for a holdout run; read from ``record.fold`` when
    not given)."""

    record: EpochRecord
    fold_index: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.record, Mapping):
            self.record = EpochRecord.from_dict(self.record)
        if self.fold_index is None:
            self.fold_index = _fold_index_of(self.record.fold)


@dataclass
class FoldEvent:
    """A fold (or the holdout run) is done: ``index`` of ``total``; ``test`` its test metrics;
    ``fold_index`` the cross-validation fold's number (``None`` for a holdout run)."""

    name: str
    index: int
    total: int
    test: dict
    fold_index: int | None = None

    def __post_init__(self) -> None:
        if self.fold_index is None:
            self.fold_index = _fold_index_of(self.name)


@dataclass
class TrainResult:
    """What a run produced. ``checkpoint`` is ``None`` when it stopped before an epoch ended.
    ``history`` holds the chosen fold's epochs as :meth:`EpochRecord.as_dict` dicts; ``best`` its
    validation summary. ``metrics`` is what ``metrics.json`` holds (``test``, ``validation``,
    ``folds``, ``summary``, ``warnings``)."""

    out_dir: Path
    checkpoint: Path | None
    history: list[dict]
    best: dict
    stopped: bool
    messages: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
