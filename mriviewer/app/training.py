"""One training run's state as the Train panel shows it, apart from any widget: the run's
config, its epochs (typed :class:`~mriviewer.ml.events.EpochRecord`\\ s, every fold's), the
finished folds, the log and its warnings, the status line, the progress with its ETA, and the
results. The panel feeds it the engine's events (:meth:`TrainingRun.handle`) and observes its
psygnal signals; everything here is synchronous and Qt-free (``tests/app/test_training.py``).

Signals (``run.<signal>.connect(callback)``):

==============================  ======================================================
``started()``                   a run started (epochs, warnings and results cleared)
``ended()``                     the run ended (finished, stopped or failed)
``epoch_added(object)``         an :class:`~mriviewer.ml.events.EpochRecord` arrived
``progress_changed(object)``    a :class:`RunProgress` (bars, status, ETA)
``log_added(str, str)``         a log line and its level (``"info"``/``"warning"``)
``warning_added(str)``          a new warning (each is collected once)
``status_changed(str)``         the status line changed
``results_changed(object)``     :class:`RunResults` shown, or ``None`` (cleared)
==============================  ======================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from psygnal import Signal

from mriviewer.app.train_text import duration, epoch_log_line, fold_log_line
from mriviewer.core.text import fmt_number
from mriviewer.ml.events import EpochEvent, EpochRecord, FoldEvent, LogEvent, ProgressEvent

__all__ = ["TrainingRun", "RunClock", "RunProgress", "RunResults"]


@dataclass
class RunClock:
    """The timing behind the ETAs: ``start`` of the run, seconds spent in ``train`` stages (the
    preparation is not extrapolated), the ``last`` train event's time, the current epoch's key
    ``(fold, epoch)``, start time and first step, and the run's done fraction ``frac``."""

    start: float
    train: float = 0.0
    last: float | None = None
    epoch_key: tuple | None = None
    epoch_t0: float | None = None
    epoch_step0: int = 1
    frac: float = 0.0


@dataclass(frozen=True)
class RunProgress:
    """What the progress bars and the status line show after a
    :class:`~mriviewer.ml.events.ProgressEvent`: ``step`` of ``total`` in this epoch (or
    stage), ``bar_text`` on that bar, the run's done ``fraction`` (0–1) with ``overall_text``,
    and the ``status`` line."""

    step: int
    total: int
    bar_text: str
    fraction: float
    overall_text: str
    status: str


@dataclass(frozen=True)
class RunResults:
    """A run's (or a loaded checkpoint's) results: ``metrics`` as in ``metrics.json``,
    whether the run was ``stopped``, and where they come from (``source``)."""

    metrics: dict
    stopped: bool = False
    source: str = ""


class TrainingRun:
    """The state of the current (or last) training run; see the module docstring for the
    signals.

    Attributes:
        config: the run's :class:`~mriviewer.ml.config.TrainConfig` (``None`` before a run).
        running: a run is in progress.
        history: every finished epoch of the run, in order (every fold's, every modality's).
        folds: the finished folds' :class:`~mriviewer.ml.events.FoldEvent`\\ s.
        fold_index: the cross-validation fold of the last epoch (``None``: holdout).
        warnings: the warnings of the run (and those logged before it), each once.
        status: the status line.
        clock: the timing of the ETAs (``None`` before the first progress).
        results: the results shown (``None``: none, or cleared when a run started).
    """

    started = Signal()
    ended = Signal()
    epoch_added = Signal(object)
    progress_changed = Signal(object)
    log_added = Signal(str, str)
    warning_added = Signal(str)
    status_changed = Signal(str)
    results_changed = Signal(object)

    def __init__(self) -> None:
        self.config = None
        self.running = False
        self.history: list[EpochRecord] = []
        self.folds: list[FoldEvent] = []
        self.fold_index: int | None = None
        self.warnings: list[str] = []
        self.status = "Idle"
        self.clock: RunClock | None = None
        self.results: RunResults | None = None

    # ------------------------------------------------------------------ the run's life
    def start(self, config=None, now: float | None = None) -> None:
        """Enter the running state with ``config`` (for fold counts and the ETA): the epochs,
        folds, warnings and results of the previous run are cleared."""
        self.config = config
        self.running = True
        self.history = []
        self.folds = []
        self.fold_index = None
        self.warnings = []
        self.clock = RunClock(time.monotonic() if now is None else now)
        self.results = None
        self.started.emit()
        self.results_changed.emit(None)

    def end(self) -> None:
        """Leave the running state (the epochs, warnings and results stay)."""
        self.running = False
        self.ended.emit()

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds since the run started (``None`` before any)."""
        if self.clock is None:
            return None
        return (time.monotonic() if now is None else now) - self.clock.start

    def set_status(self, text: str) -> None:
        """Change the status line."""
        self.status = text
        self.status_changed.emit(text)

    # ------------------------------------------------------------------ events
    def handle(self, event, now: float | None = None) -> None:
        """Take one engine event: a log line, progress, a finished epoch or fold."""
        if isinstance(event, LogEvent):
            self.add_log(event.message, event.level)
        elif isinstance(event, ProgressEvent):
            self.progress(event, now)
        elif isinstance(event, EpochEvent):
            self.add_epoch(event.record, event.fold_index)
        elif isinstance(event, FoldEvent):
            self.folds.append(event)
            self.add_log(fold_log_line(event))

    def add_log(self, text: str, level: str = "info") -> None:
        """A log line (``level`` ``"warning"``: also collected as a warning)."""
        self.log_added.emit(text, level)
        if level == "warning":
            self.add_warning(text)

    def add_warning(self, text: str) -> None:
        """Collect a warning (once)."""
        if text in self.warnings:
            return
        self.warnings.append(text)
        self.warning_added.emit(text)

    def add_epoch(self, record: EpochRecord, fold_index: int | None = None) -> None:
        """A finished epoch (its fold's number ``fold_index``; ``None``: holdout); logged."""
        self.history.append(record)
        self.fold_index = fold_index
        self.epoch_added.emit(record)
        self.add_log(epoch_log_line(record))

    def fold_epochs(self) -> list[EpochRecord]:
        """The epochs of the fold (and modality) of the last epoch: what the curves show."""
        if not self.history:
            return []
        fold = self.history[-1].fold
        return [r for r in self.history if r.fold == fold]

    # ------------------------------------------------------------------ progress
    def unit_of(self, fold_tag: str, fold_index: int | None = None) -> tuple[int, int, str]:
        """``(unit index, unit count, label)`` of a fold (tag ``"holdout"``, ``"fold 2"``,
        ``"FLAIR fold 2"``; ``fold_index`` the event's fold number) under the run's config: a
        unit is one fold of one modality."""
        cfg = self.config
        n_folds = cfg.folds if cfg is not None and cfg.folds >= 2 else 1
        mods = cfg.modalities if cfg is not None and cfg.per_modality and len(cfg.modalities) > 1 else []
        fold_i = fold_index or 1
        first = fold_tag.split(" ")[0] if fold_tag else ""
        m_i = mods.index(first) if first in mods else 0
        parts = []
        if mods:
            parts.append(f"{mods[m_i]} ({m_i + 1} of {len(mods)})")
        if n_folds > 1:
            parts.append(f"fold {fold_i} of {n_folds}")
        n_units = max(len(mods), 1) * n_folds
        return min(m_i * n_folds + fold_i - 1, n_units - 1), n_units, ", ".join(parts)

    def progress(self, ev: ProgressEvent, now: float | None = None) -> RunProgress:
        """Take a progress event: the bars' values and texts with the epoch's and the run's ETA
        (the run's extrapolated from the time spent training, not preparing). Emits
        :attr:`progress_changed` and :attr:`status_changed`."""
        now = time.monotonic() if now is None else now
        clock = self.clock = self.clock or RunClock(now)
        total = max(ev.total, 1)
        unit, n_units, where = self.unit_of(ev.fold, ev.fold_index)
        where_txt = f"{where}: " if where else ""
        if ev.stage in ("decode", "prepare"):
            clock.last = None
            what = "Decoding series (parallel)" if ev.stage == "decode" else "Preparing cases"
            bar, status, frac = f"{what} {ev.step}/{total}", f"{where_txt}{what} {ev.step}/{total}", unit / n_units
        else:
            bar, status, within = self._train_step(ev, now, total, where_txt)
            frac = (unit + within) / n_units
        clock.frac = frac
        eta = ""
        if clock.train > 1.0 and frac > 0.005:
            eta = f" · ETA {duration(clock.train * (1 - frac) / frac)}"
        prefix = f"{where} · " if where else ""
        overall = f"run: {prefix}{100 * frac:.0f}% · {duration(now - clock.start)} elapsed{eta}"
        out = RunProgress(min(ev.step, total), total, bar, frac, overall, status)
        self.progress_changed.emit(out)
        self.set_status(status)
        return out

    def _train_step(self, ev: ProgressEvent, now: float, total: int, where_txt: str) -> tuple[str, str, float]:
        """``(bar text, status, fraction of the fold done)`` of a batch, timing the epoch."""
        clock = self.clock
        if clock.last is not None:
            clock.train += now - clock.last
        clock.last = now
        key = (ev.fold, ev.epoch)
        if clock.epoch_key != key:
            clock.epoch_key, clock.epoch_t0, clock.epoch_step0 = key, now, ev.step
        epochs = max(ev.epochs, ev.epoch, 1)
        within = ((ev.epoch - 1) + ev.step / total) / epochs
        done_steps = ev.step - clock.epoch_step0
        epoch_eta = ""
        if done_steps > 0:
            per_step = (now - clock.epoch_t0) / done_steps
            epoch_eta = f" · {duration(per_step * (total - ev.step))} left"
        loss = f", running loss {fmt_number(ev.loss, 4)}" if ev.loss is not None else ""
        return (f"epoch {ev.epoch}/{epochs} · batch {ev.step}/{total}{epoch_eta}",
                f"{where_txt}epoch {ev.epoch} of {epochs}, batch {ev.step}/{total}{loss}", within)

    # ------------------------------------------------------------------ results
    def set_results(self, metrics: dict, stopped: bool = False, source: str = "") -> RunResults:
        """Show a run's (or a checkpoint's) metrics; their ``"warnings"`` join the run's."""
        for w in metrics.get("warnings", []):
            self.add_warning(w)
        self.results = RunResults(metrics, stopped, source)
        self.results_changed.emit(self.results)
        return self.results

    def clear_results(self) -> None:
        """Show no results (a run is under way)."""
        self.results = None
        self.results_changed.emit(None)
