"""One fold's fit loop: the model built for the fold, its training phases of epochs of train steps,
a validation pass per epoch, and the test pass at the end.

:class:`FitLoop` is driven by :class:`~.engine.Trainer` (one per fold, or one for a holdout run);
like the trainer it is a generator of events (:mod:`.events`) and returns the fold's result. The
decisions taken at each epoch's end are the stateful hooks of :mod:`.hooks`: model selection
(:class:`~.hooks.BestEpoch`, which also decides when ``best.pt`` is written), early stopping and
the learning-rate schedule. :func:`evaluate` is the validation and test pass (sharded over the
ranks under ``torchrun`` and gathered).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mriviewer.data.cases import case_identity, content_fingerprint
from mriviewer.ml.augment import make_augment, reseed_worker
from mriviewer.ml.checkpoint import new_checkpoint, save_checkpoint, update_checkpoint
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.device import _amp_name, resolve_amp
from mriviewer.ml.events import EpochEvent, EpochRecord, LogEvent, ProgressEvent
from mriviewer.ml.hooks import BestEpoch, EarlyStopping, LRSchedule, _criterion, _loss, _optimizer
from mriviewer.ml.metrics import classification_metrics
from mriviewer.ml.preprocess import normalise_channels
from mriviewer.ml.scores import accuracy, auc
from mriviewer.ml.splits import Split
from mriviewer.ml.store import SampleDataset, SampleStore, worker_count


def probabilities(logits):
    """Class probabilities ``(B, K)`` from logits ``(B, K)`` (softmax) or ``(B, 1)`` (a binary
    task's single logit: ``[1 − σ, σ]``)."""
    import torch

    logits = logits.float()
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


@dataclass
class RunContext:
    """What a run gives the fit loops of its folds (built by :class:`~.engine.Trainer`).

    Attributes:
        dist: the process group (:class:`~.distributed.DistContext`; one rank when not under
            ``torchrun``).
        device: the ``torch.device`` this rank trains on.
        say: ``(message, level="info", kind="other") → LogEvent``, recording the message in the run's
            log (a warning also as a :class:`~mriviewer.ml.caveats.Caveat` of ``kind``).
        stop: set when the run must end (under ``torchrun``: agreed by the ranks at epoch ends).
        stop_request: the flag :meth:`~.engine.Trainer.stop` sets (``stop`` itself on one rank).
        store: the run's preprocessed-sample store.
        samples: ``key → (S, C, …) samples`` of one case, memory-mapped once per run.
        dataset_root: the dataset's folder, recorded in the checkpoints.
        dataset: what the run trained on (:func:`mriviewer.data.record.dataset_record`: layout, classes, cases,
            patients, the user's label table), recorded in the checkpoints.
        fingerprint: ``Case → content fingerprint``, computed once per case for the whole run
            (:func:`~mriviewer.data.cases.content_fingerprint` reads the files; folds share it).
    """

    dist: object
    device: object
    say: Callable[..., LogEvent]
    stop: threading.Event
    stop_request: threading.Event
    store: SampleStore
    samples: Callable[[str], np.ndarray]
    dataset_root: str
    dataset: dict = field(default_factory=dict)
    fingerprint: Callable | None = None


def evaluate(model, cases, prepared, cfg: TrainConfig, criterion, amp, ctx: RunContext, n_classes: int):
    """The validation or test pass: case-level probabilities and the mean per-sample loss.

    Cases are sharded over the ranks and the predictions gathered, so every rank returns all;
    every rank predicts with rank 0's buffers (the model that is saved).

    Args:
        model: the network (not the DDP wrapper); put in eval mode.
        cases: the cases to predict, with their labels.
        prepared: ``{case_id: prepared entry}`` whose ``key`` names the case's stored samples.
        cfg: the run's config (``batch_size``, ``normalise``).
        criterion: the loss module (:func:`~.hooks._criterion`).
        amp: the autocast dtype, ``None`` for fp32.
        ctx: the run's context.
        n_classes: ``K``, for the shape of an empty result.

    Returns:
        ``(mean loss per sample, labels (N,) int, probabilities (N, K))``; a 2D case's
        probabilities are the mean over its slices.
    """
    import torch

    model.eval()
    ctx.dist.sync_buffers(model)
    mine = list(enumerate(cases))[ctx.dist.rank::ctx.dist.world_size]
    out, loss_sum, n = [], 0.0, 0
    device = ctx.device
    with torch.no_grad():
        for i, case in mine:
            arr = ctx.samples(prepared[case.case_id].key)
            parts = []
            for start in range(0, len(arr), max(cfg.batch_size, 1)):
                x = torch.from_numpy(np.asarray(arr[start:start + cfg.batch_size], dtype=np.float32))
                x = normalise_channels(x, cfg.normalise).to(device)
                with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    logits = model(x).float()
                y = torch.full((x.shape[0],), case.label, device=device)
                loss_sum += float(_loss(criterion, logits, y)) * x.shape[0]
                n += x.shape[0]
                parts.append(probabilities(logits).cpu().numpy())
            out.append((i, np.concatenate(parts).mean(axis=0)))
    gathered = [item for part in ctx.dist.gather(out) for item in part]
    gathered.sort(key=lambda t: t[0])
    loss_mean, _ = ctx.dist.mean(loss_sum / max(n, 1), n)
    labels = np.array([c.label for c in cases], dtype=int)
    probs = np.stack([p for _, p in gathered]) if gathered else np.zeros((0, n_classes))
    return loss_mean, labels, probs


class FitLoop:
    """Train, select and test one fold.

    Args:
        ctx: the run's context.
        cfg: the run's (or per-modality member's) config.
        split: the fold's case indices per role.
        cases: the run's usable cases (``split`` indexes them).
        prepared: ``{case_id: prepared entry}`` (sample-store ``key``, sample count ``n``).
        class_names: the task's classes.
        out: the fold's folder (``best.pt`` goes there).
        tag: the fold tag of the events (``"holdout"``, ``"fold 2"``, ``"FLAIR fold 2"``).
        fold_index: the cross-validation fold's number, ``None`` for a holdout run.

    :meth:`run` yields the events and returns the fold's result dict (``name``, ``history``,
    ``validation``, ``test``, ``split``, ``checkpoint``, ``test_pred``), or ``None`` when no
    epoch finished.
    """

    def __init__(self, ctx: RunContext, cfg: TrainConfig, split: Split, cases, prepared, class_names,
                 out: Path, tag: str, fold_index: int | None = None) -> None:
        self.ctx, self.cfg, self.split, self.prepared = ctx, cfg, split, prepared
        self.class_names = list(class_names)
        self.out, self.tag, self.fold_index = out, tag, fold_index
        self.train_cases = [cases[i] for i in split.train]
        self.val_cases = [cases[i] for i in split.val]
        self.test_cases = [cases[i] for i in split.test]
        self.all_2d = all(c.is_2d for c in cases)
        self.ckpt_path = out / "best.pt"
        self.history: list[dict] = []
        self.epoch = 0
        self.total_epochs = cfg.total_epochs
        self.selection = BestEpoch(cfg.monitor, {
            "n_cases": len(self.val_cases),
            "n_per_class": _count_by_class(self.val_cases, self.class_names, as_dict=True)})

    @property
    def _main(self) -> bool:
        return self.ctx.dist.is_main

    def run(self):
        """Build the model, train its phases, test the chosen epoch; see the class docstring."""
        yield from self._describe()
        yield from self._build()
        phases = self.cfg.phases()
        for pi, phase in enumerate(phases):
            if self.ctx.stop.is_set():
                break
            yield from self._phase(pi, phase, len(phases))
            if self.selection.weights is not None and pi + 1 < len(phases):
                self.model.load_state_dict(self.selection.weights)  # fine-tune from this phase's best epoch
        if self.selection.weights is None:
            return None
        return (yield from self._test())

    # ------------------------------------------------------------------ set-up
    def _describe(self):
        """The fold's roles (``role_ids``: case ids and identities) and their log lines."""
        names, say = self.class_names, self.ctx.say
        if self._main:
            self.out.mkdir(parents=True, exist_ok=True)
        roles = (("train", self.train_cases), ("validation", self.val_cases), ("test", self.test_cases))
        self.role_ids = {r: [c.case_id for c in cs] for r, cs in roles}
        self.role_ids["identities"] = {r: [case_identity(c) for c in cs] for r, cs in roles}
        fingerprint = self.ctx.fingerprint or content_fingerprint
        self.role_ids["fingerprints"] = {r: [fingerprint(c) for c in cs] for r, cs in roles}
        # Cases and patients per role (metrics.json "roles"; a case without a patient id is its own).
        self.role_counts = {r: {"cases": len(cs), "patients": len({c.patient_id or c.case_id for c in cs})}
                            for r, cs in roles}
        yield say(f"{self.split.name}: {len(self.train_cases)} train, {len(self.val_cases)} validation, "
                  f"{len(self.test_cases)} test ({_count_by_class(self.test_cases, names)} in test).")
        absent = [names[k] for k in range(len(names)) if k not in {c.label for c in self.train_cases}]
        if absent:
            yield say(f"{self.split.name}: no training case of {', '.join(absent)}; the model cannot learn "
                      f"{'it' if len(absent) == 1 else 'them'} in this fold.", "warning", "class")

    def _build(self):
        """The model, mixed precision, loss and training dataset of the fold."""
        import torch

        from mriviewer.ml.models.build import build_model

        cfg, device, say = self.cfg, self.ctx.device, self.ctx.say
        n_classes = len(self.class_names)
        self.n_out = 1 if cfg.loss == "bce" else n_classes
        in_ch = 3 if cfg.color == "rgb" and self.all_2d else len(cfg.modalities)
        model, weights_msg = build_model(cfg.model, in_ch, self.n_out, cfg.pretrained, stem=cfg.stem,
                                         head=cfg.head, dropout=cfg.dropout)
        yield say(weights_msg)
        self.initial_weights = weights_msg  # what was actually loaded, for the model card
        if cfg.freeze == "backbone" and "random weights" in weights_msg:
            yield say("The backbone is frozen but has no pretrained weights: the first phase trains the head "
                      "on random features.", "warning", "weights")
        self.model = model.to(device)
        self.amp = amp = resolve_amp(cfg.amp, device)
        if cfg.amp == "fp16" and device.type != "cuda":
            yield say("fp16 autocast needs CUDA; training in fp32.", "warning", "precision")
        self.scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
        self.criterion = _criterion(cfg, [c.label for c in self.train_cases], n_classes, device)
        yield say(f"Training {cfg.model} on {device}"
                  + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
                  + f", {_amp_name(amp)}, modalities {', '.join(cfg.modalities)}, {n_classes} classes, "
                  f"loss {cfg.loss}, {cfg.optimizer} lr {cfg.lr:g}.")
        items = [(self.prepared[c.case_id].key, s, c.label) for c in self.train_cases
                 for s in range(self.prepared[c.case_id].n)]
        self.train_ds = SampleDataset(self.ctx.store, items, make_augment(cfg, cfg.seed + self.ctx.dist.rank),
                                      cfg.normalise)

    def _wrap(self):
        """The network the steps run: the model, in DDP under ``torchrun``."""
        dist, device = self.ctx.dist, self.ctx.device
        if not dist.enabled:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)

    def _loader(self, pi: int, batch_size: int):
        """``(DataLoader, sampler)`` of phase ``pi``: shuffled per phase (per epoch under
        ``torchrun``); a last batch of one sample, which breaks BatchNorm in training mode, is
        dropped."""
        import torch
        from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

        cfg, dist, ds = self.cfg, self.ctx.dist, self.train_ds
        gen = torch.Generator().manual_seed(cfg.seed + 1000 * pi)
        sampler = (DistributedSampler(ds, dist.world_size, dist.rank, shuffle=True, seed=cfg.seed)
                   if dist.enabled else RandomSampler(ds, generator=gen))
        nw = worker_count(cfg)
        per_rank = math.ceil(len(ds) / dist.world_size)  # DistributedSampler pads
        loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=nw,
                            persistent_workers=nw > 0, pin_memory=self.ctx.device.type == "cuda",
                            worker_init_fn=reseed_worker if nw > 0 else None,
                            drop_last=per_rank > batch_size and per_rank % batch_size == 1)
        return loader, sampler

    # ------------------------------------------------------------------ training
    def _phase(self, pi: int, phase: dict, n_phases: int):
        """One training phase (its own frozen layers, optimiser, schedule and early stopping)."""
        from torch.utils.data import DistributedSampler

        from mriviewer.ml.models.build import freeze

        cfg, ctx = self.cfg, self.ctx
        freeze(self.model, cfg.model, phase["freeze"])
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = _optimizer(cfg, params, phase["lr"])
        schedule, stopper = LRSchedule(cfg, opt), EarlyStopping(cfg.early_stopping)
        net = self._wrap()
        loader, sampler = self._loader(pi, phase["batch_size"])
        if n_phases > 1:
            yield ctx.say(f"Phase {pi + 1} of {n_phases}: {phase['name']}, {phase['epochs']} epochs, "
                          f"lr {phase['lr']:g}, batch {phase['batch_size']}, "
                          f"{sum(p.numel() for p in params):,} trainable parameters.")
        for _ in range(phase["epochs"]):
            if ctx.stop.is_set():
                break
            self.epoch += 1
            t0 = time.perf_counter()
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(self.epoch)
            train_loss = yield from self.train_epoch(net, opt, loader)
            if train_loss is None:
                yield ctx.say(f"Stopped during epoch {self.epoch}; it is not counted.")
                break
            record = yield from self._end_epoch(phase["name"], opt, train_loss, t0, schedule)
            if stopper.update(record.is_best):
                yield ctx.say(f"Early stopping at epoch {self.epoch}: {cfg.monitor} has not improved for "
                              f"{stopper.waited} epochs (best epoch {self.selection.best.get('epoch')}).")
                break
            if ctx.dist.enabled and ctx.dist.any(ctx.stop_request.is_set()):
                ctx.stop.set()

    def train_epoch(self, net, opt, loader):
        """One pass over the training batches; yields a ``"train"`` :class:`ProgressEvent` per
        batch (rank 0) and returns the epoch's mean loss per sample over the ranks, or ``None``
        when a stop ended it before its last batch."""
        from mriviewer.ml.models.build import keep_frozen_bn_eval

        ctx = self.ctx
        net.train()
        keep_frozen_bn_eval(self.model)
        total, count, n_batches, b = 0.0, 0, len(loader), 0
        for b, (x, y) in enumerate(loader, start=1):
            total += self.train_step(net, opt, x, y) * len(y)
            count += len(y)
            if self._main:
                yield ProgressEvent("train", self.epoch, b, n_batches, total / count, self.tag, self.total_epochs,
                                    self.fold_index)
            if ctx.stop.is_set():
                break
        if ctx.stop.is_set() and b < n_batches:
            return None
        train_loss, _ = ctx.dist.mean(total / max(count, 1), count)
        return train_loss

    def train_step(self, net, opt, x, y) -> float:
        """Forward, backward and optimiser step on one batch (autocast and loss scaling as
        configured); returns the batch's mean loss."""
        import torch

        device, amp = self.ctx.device, self.amp
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = _loss(self.criterion, net(x), y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
        else:
            loss.backward()
            opt.step()
        return float(loss.detach())

    def _end_epoch(self, phase_name: str, opt, train_loss: float, t0: float, schedule: LRSchedule):
        """Validate, record, select (writing ``best.pt`` on a new best), step the schedule, and
        yield the :class:`EpochEvent` (rank 0); returns the :class:`EpochRecord`."""
        val_loss, labels, probs = evaluate(self.model, self.val_cases, self.prepared, self.cfg, self.criterion,
                                           self.amp, self.ctx, len(self.class_names))
        values = {"epoch": self.epoch, "phase": phase_name, "fold": self.tag, "lr": float(opt.param_groups[0]["lr"]),
                  "train_loss": train_loss, "val_loss": val_loss, "val_auc": auc(labels, probs),
                  "val_accuracy": accuracy(labels, probs), "seconds": time.perf_counter() - t0}
        improved = self.selection.update(values, self.model)
        record = EpochRecord(**values, is_best=improved)
        self.history.append(record.as_dict())
        if improved and self._main:
            save_checkpoint(self.ckpt_path, new_checkpoint(
                self.selection.weights, self.cfg, self.class_names, self.n_out,
                metrics={"validation": self.selection.best}, history=self.history, split=self.role_ids,
                fold=self.split.name, dataset_root=self.ctx.dataset_root, initial_weights=self.initial_weights,
                dataset=self.ctx.dataset))
        schedule.step(record)
        if self._main:
            yield EpochEvent(record, self.fold_index)
        return record

    # ------------------------------------------------------------------ test
    def _test(self):
        """The chosen epoch's weights on the test cases, never used for training or selection."""
        self.model.load_state_dict(self.selection.weights)
        _, t_labels, t_probs = evaluate(self.model, self.test_cases, self.prepared, self.cfg, self.criterion,
                                        self.amp, self.ctx, len(self.class_names))
        test = classification_metrics(t_labels, t_probs, self.class_names, seed=self.cfg.seed)
        best = self.selection.best
        if self._main:
            update_checkpoint(self.ckpt_path, metrics={"validation": best, "test": test}, history=self.history)
        yield self.ctx.say(f"{self.split.name}: chosen epoch {best['epoch']} on validation {self.cfg.monitor}; "
                           f"test AUC {_fmt(test.get('auc'))} on {len(self.test_cases)} cases.")
        return {"name": self.split.name, "history": self.history, "validation": best, "test": test,
                "split": self.role_ids, "roles": self.role_counts, "checkpoint": self.ckpt_path,
                "test_pred": {"case_ids": self.role_ids["test"], "labels": t_labels, "probs": t_probs}}


def _count_by_class(cases, class_names, as_dict=False):
    c = Counter(x.label for x in cases)
    d = {class_names[k]: c[k] for k in sorted(c)}
    return d if as_dict else ", ".join(f"{k} {v}" for k, v in d.items())


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"
