"""The training engine shared by the GUI and the command line.

:meth:`Trainer.run` is a generator: it yields :class:`LogEvent`, :class:`ProgressEvent` (one per
batch) and :class:`EpochEvent` (one per epoch) and returns a :class:`TrainResult`. The command
line iterates it and prints; the GUI wraps it in a worker thread whose ``yielded`` signal feeds
the curves (the napari ``thread_worker`` pattern). :meth:`Trainer.stop` (thread-safe) ends the
run after the current batch; the best checkpoint so far stays on disk. :func:`run_training`
drives the generator with plain callbacks.

Outputs in ``out_dir``: ``best.pt`` (checkpoint of the epoch with the best validation AUC;
the lowest validation loss breaks ties and decides while the AUC is undefined), ``config.json`` and
``metrics.json`` (``epochs``: ``train_loss``, ``val_loss``, ``val_auc``, ``val_accuracy``,
``seconds`` per epoch; ``best``: epoch, AUC and its 95 % bootstrap interval; the split).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..datasets import Case, Dataset
from ..errors import ConfigError, DatasetError, MriViewerError
from .config import TrainConfig
from .data import Preprocessor, normalise_channels, patient_split
from .metrics import accuracy, auc, bootstrap_auc_ci

log = logging.getLogger(__name__)

__all__ = [
    "Trainer", "TrainResult", "LogEvent", "ProgressEvent", "EpochEvent", "run_training",
    "resolve_device", "CHECKPOINT_FORMAT", "json_safe",
]

CHECKPOINT_FORMAT = "mriviewer-checkpoint"


@dataclass
class LogEvent:
    """A line for the log (weights used, split sizes, skipped cases, …)."""

    message: str


@dataclass
class ProgressEvent:
    """Progress within a stage: ``stage`` is ``"decode"`` (DICOM/NIfTI decoding in worker
    processes), ``"prepare"`` (resampling cases) or ``"train"``
    (batches of an epoch); ``step`` of ``total``; ``loss`` is the running training loss."""

    stage: str
    epoch: int
    step: int
    total: int
    loss: float | None = None


@dataclass
class EpochEvent:
    """One finished epoch: ``record`` holds ``epoch``, ``train_loss``, ``val_loss``,
    ``val_auc``, ``val_accuracy``, ``seconds``, ``is_best``."""

    record: dict


@dataclass
class TrainResult:
    """What a run produced. ``checkpoint`` is ``None`` when it stopped before an epoch ended."""

    out_dir: Path
    checkpoint: Path | None
    history: list[dict]
    best: dict
    stopped: bool
    messages: list[str] = field(default_factory=list)


def resolve_device(name: str):
    """``"auto"`` → CUDA when available, else CPU.

    Raises:
        ConfigError: CUDA asked for but not available.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but no CUDA GPU is available; use auto or cpu")
    return torch.device(name)


class Trainer:
    """Train ``config.model`` on the labelled cases of ``dataset``.

    Args:
        config: the run's configuration.
        dataset: discovered dataset with labels (``task`` binary or multiclass).
        out_dir: where ``best.pt``, ``config.json`` and ``metrics.json`` go (created).
        loader: ``ModalitySource → Volume``; defaults to the process-wide cache.
    """

    def __init__(self, config: TrainConfig, dataset: Dataset, out_dir: str | Path, loader=None) -> None:
        self.config = config.validate()
        self.dataset = dataset
        self.out_dir = Path(out_dir)
        if loader is None:
            from ..cache import default_cache

            loader = default_cache().get
        self.loader = loader
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the run to end after the current batch (thread-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ helpers
    def _cases(self) -> list[Case]:
        if self.dataset.task == "none":
            raise DatasetError(f"{self.dataset.root}: no labels found, nothing to train on")
        mods = self.config.modalities
        cases = [c for c in self.dataset.labelled() if any(m in c.modalities for m in mods)]
        if len(cases) < 2:
            raise DatasetError(
                f"{self.dataset.root}: {len(cases)} labelled case(s) with {', '.join(mods)}; need at least 2"
            )
        return cases

    def _save_json(self, name: str, obj) -> None:
        (self.out_dir / name).write_text(json.dumps(json_safe(obj), indent=2))

    # ------------------------------------------------------------------ the run
    def run(self) -> Generator[LogEvent | ProgressEvent | EpochEvent, None, TrainResult]:
        """Run training; see the module docstring for the events.

        Raises:
            DatasetError: no labels, fewer than 2 usable cases, or every case failed to load.
            ConfigError: invalid configuration or unavailable device.
        """
        import torch
        from torch import nn

        from .models import build_model

        cfg = self.config
        if not cfg.modalities:
            cfg.modalities = self.dataset.modalities[:1]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        device = resolve_device(cfg.device)
        messages: list[str] = []

        def say(msg: str) -> LogEvent:
            messages.append(msg)
            log.info(msg)
            return LogEvent(msg)

        cases = self._cases()
        train_cases, val_cases = patient_split(cases, cfg.val_fraction, cfg.seed)
        class_names = list(self.dataset.class_names)
        yield say(
            f"Split by {'patient' if self.dataset.patient_ids else 'image (no patient IDs in this dataset)'}: "
            f"{len(train_cases)} training, {len(val_cases)} validation cases (seed {cfg.seed})."
        )
        if not self.dataset.patient_ids:
            yield say("Warning: this dataset has no patient IDs; one patient's images may be in both sets.")

        pre = Preprocessor(cfg, self.loader)
        samples: dict[str, np.ndarray] = {}
        all_cases = train_cases + val_cases
        # Decode every series once, in parallel processes, into the disk cache.
        cache = getattr(self.loader, "__self__", None)
        if hasattr(cache, "prefetch_iter"):
            sources = [c.modalities[m] for c in all_cases for m in cfg.modalities if m in c.modalities]
            decoding = cache.prefetch_iter(sources)
            for done, total, err in decoding:
                if err:
                    yield say(f"Cannot decode: {err}")
                yield ProgressEvent("decode", 0, done, total)
                if self._stop.is_set():
                    decoding.close()
                    break
        for i, case in enumerate(all_cases):
            if self._stop.is_set():
                break
            try:
                x, ci = pre.training_samples(case)
                samples[case.case_id] = x.astype(np.float16)
                if ci.missing:
                    yield say(f"Case {case.case_id}: missing {', '.join(ci.missing)} (zeros used).")
            except MriViewerError as exc:
                yield say(f"Case {case.case_id} skipped: {exc}")
            yield ProgressEvent("prepare", 0, i + 1, len(all_cases))
        train_cases = [c for c in train_cases if c.case_id in samples]
        val_cases = [c for c in val_cases if c.case_id in samples]
        if not self._stop.is_set() and (not train_cases or not val_cases):
            raise DatasetError("no usable training or validation case after loading; see the log")

        model, weights_msg = build_model(cfg.model, len(cfg.modalities), len(class_names), cfg.pretrained)
        yield say(weights_msg)
        model.to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        criterion = nn.CrossEntropyLoss()
        use_amp = bool(cfg.amp and device.type == "cuda" and torch.cuda.is_bf16_supported())
        yield say(f"Training {cfg.model} on {device} ({'bf16 autocast' if use_amp else 'fp32'}), "
                  f"modalities {', '.join(cfg.modalities)}, {len(class_names)} classes.")

        train_x = [(samples[c.case_id][s], c.label) for c in train_cases for s in range(len(samples[c.case_id]))]
        history: list[dict] = []
        best: dict = {"epoch": None, "val_auc": math.nan, "val_loss": math.inf}
        best_preds: dict | None = None
        ckpt_path = self.out_dir / "best.pt"
        ckpt_saved = False
        cfg.save(self.out_dir / "config.json")
        split = {"train": [c.case_id for c in train_cases], "val": [c.case_id for c in val_cases]}

        def batches(items, shuffle):
            order = rng.permutation(len(items)) if shuffle else np.arange(len(items))
            for start in range(0, len(items), cfg.batch_size):
                yield [items[i] for i in order[start:start + cfg.batch_size]]

        def to_tensor(arrays, flip=False):
            x = torch.from_numpy(np.stack(arrays).astype(np.float32))
            if flip:
                # Random left-right flip (W axis = R-L): lesion side carries no label information here.
                mask = torch.from_numpy(rng.random(x.shape[0]) < 0.5)
                x[mask] = torch.flip(x[mask], dims=[-1])
            return normalise_channels(x).to(device)

        for epoch in range(1, cfg.epochs + 1):
            if self._stop.is_set():
                break
            t0 = time.perf_counter()
            model.train()
            n_batches = math.ceil(len(train_x) / cfg.batch_size)
            total, count = 0.0, 0
            for b, batch in enumerate(batches(train_x, shuffle=True)):
                x = to_tensor([s for s, _ in batch], flip=True)
                y = torch.tensor([lab for _, lab in batch], device=device)
                optimiser.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss = criterion(model(x), y)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
                count += len(batch)
                yield ProgressEvent("train", epoch, b + 1, n_batches, total / count)
                if self._stop.is_set():
                    break
            if self._stop.is_set() and b + 1 < n_batches:
                yield say(f"Stopped during epoch {epoch}; it is not counted.")
                break
            train_loss = total / max(count, 1)

            val_loss, labels, probs = self._validate(model, val_cases, samples, to_tensor, criterion, device, use_amp)
            val_auc = auc(labels, probs)
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_auc": val_auc,
                "val_accuracy": accuracy(labels, probs),
                "seconds": time.perf_counter() - t0,
            }
            improved = _improves(val_auc, val_loss, best)
            record["is_best"] = bool(improved)
            history.append(record)
            if improved:
                best = {"epoch": epoch, "val_auc": val_auc, "val_loss": val_loss, "val_accuracy": record["val_accuracy"]}
                best_preds = {"case_ids": [c.case_id for c in val_cases], "labels": labels.tolist(), "probs": probs.tolist()}
                self._save_checkpoint(ckpt_path, model, class_names, best, history, split)
                ckpt_saved = True
            self._save_json("metrics.json", {"epochs": history, "best": best, "split": split})
            yield EpochEvent(dict(record))

        stopped = self._stop.is_set()
        if best_preds is not None:
            lo, hi = bootstrap_auc_ci(np.array(best_preds["labels"]), np.array(best_preds["probs"]), seed=cfg.seed)
            best["val_auc_ci95"] = [lo, hi]
            best["n_val_cases"] = len(best_preds["labels"])
            best["val_predictions"] = best_preds
            self._save_checkpoint(ckpt_path, None, class_names, best, history, split, update_only=True)
            self._save_json("metrics.json", {"epochs": history, "best": best, "split": split})
            yield say(
                f"Best epoch {best['epoch']}: validation AUC {_fmt(best['val_auc'])} "
                f"(95% CI {_fmt(lo)}–{_fmt(hi)}, {best['n_val_cases']} cases)."
            )
        elif stopped:
            yield say("Stopped before the first epoch ended; no checkpoint was saved.")
        return TrainResult(self.out_dir, ckpt_path if ckpt_saved else None, history, best, stopped, messages)

    def _validate(self, model, val_cases, samples, to_tensor, criterion, device, use_amp):
        import torch

        model.eval()
        losses, n = 0.0, 0
        case_probs = []
        with torch.no_grad():
            for case in val_cases:
                arr = samples[case.case_id]
                parts = []
                for start in range(0, len(arr), self.config.batch_size):
                    x = to_tensor(list(arr[start:start + self.config.batch_size]))
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                        logits = model(x).float()
                    y = torch.full((x.shape[0],), case.label, device=device)
                    losses += float(criterion(logits, y)) * x.shape[0]
                    n += x.shape[0]
                    parts.append(torch.softmax(logits, dim=1).cpu().numpy())
                case_probs.append(np.concatenate(parts).mean(axis=0))
        labels = np.array([c.label for c in val_cases], dtype=int)
        return losses / max(n, 1), labels, np.stack(case_probs)

    def _save_checkpoint(self, path, model, class_names, best, history, split, update_only=False):
        import torch

        if update_only:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        else:
            ckpt = {
                "format": CHECKPOINT_FORMAT,
                "format_version": 1,
                "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "config": self.config.to_dict(),
                "class_names": list(class_names),
                "dataset_root": str(self.dataset.root),
                "software_version": __version__,
                "created": _dt.datetime.now().isoformat(timespec="seconds"),
            }
        ckpt["metrics"] = json_safe(best)
        ckpt["history"] = json_safe(history)
        ckpt["split"] = split
        tmp = path.with_suffix(".tmp")
        torch.save(ckpt, tmp)
        tmp.replace(path)


def run_training(
    config: TrainConfig,
    dataset: Dataset,
    out_dir: str | Path,
    callbacks: Iterable[Callable[[object], None]] = (),
    loader=None,
) -> TrainResult:
    """Run :meth:`Trainer.run` to the end, passing every event to each callback."""
    gen = Trainer(config, dataset, out_dir, loader).run()
    while True:
        try:
            event = next(gen)
        except StopIteration as done:
            return done.value
        for cb in callbacks:
            cb(event)


def _improves(val_auc: float, val_loss: float, best: dict) -> bool:
    """Model selection: a higher validation AUC wins; on an equal AUC (within 1e-9, e.g. both
    1.0 on an easy set) or an undefined one, the lower validation loss wins."""
    best_auc = best["val_auc"]
    if math.isnan(val_auc):
        return math.isnan(best_auc) and val_loss < best["val_loss"]
    if math.isnan(best_auc) or val_auc > best_auc + 1e-9:
        return True
    return abs(val_auc - best_auc) <= 1e-9 and val_loss < best["val_loss"]


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def json_safe(obj):
    """``obj`` with NaN/inf floats as ``None`` and numpy values as Python ones (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj
