"""What a training run yields (the engine's event stream): log lines, per-batch progress, per-epoch
records, finished folds, and the run's result. The GUI, the command line and the benchmarks are
listeners of this one stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class LogEvent:
    """A line for the log (weights used, split sizes, warnings, …); ``level`` is ``"info"`` or
    ``"warning"`` (shown prominently by the GUI and repeated in the report)."""

    message: str
    level: str = "info"


@dataclass
class ProgressEvent:
    """Progress within a stage: ``stage`` is ``"decode"`` (DICOM/NIfTI decoding in worker
    processes), ``"prepare"`` (network samples) or ``"train"`` (batches of an epoch); ``step``
    of ``total``; ``loss`` the running training loss; ``fold`` (``"holdout"``, ``"fold 2"``, with
    the modality for per-modality runs) and ``epochs`` (epochs planned in this fold) for ETAs."""

    stage: str
    epoch: int
    step: int
    total: int
    loss: float | None = None
    fold: str = ""
    epochs: int = 0


@dataclass
class EpochEvent:
    """One finished epoch: ``record`` holds ``epoch``, ``phase``, ``fold``, ``lr``,
    ``train_loss``, ``val_loss``, ``val_auc``, ``val_accuracy``, ``seconds``, ``is_best``."""

    record: dict


@dataclass
class FoldEvent:
    """A fold (or the holdout run) is done: ``index`` of ``total``; ``test`` its test metrics."""

    name: str
    index: int
    total: int
    test: dict


@dataclass
class TrainResult:
    """What a run produced. ``checkpoint`` is ``None`` when it stopped before an epoch ended.
    ``metrics`` is what ``metrics.json`` holds (``test``, ``validation``, ``folds``, ``summary``,
    ``warnings``)."""

    out_dir: Path
    checkpoint: Path | None
    history: list[dict]
    best: dict
    stopped: bool
    messages: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
