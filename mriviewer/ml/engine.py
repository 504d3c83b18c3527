"""The training engine shared by the GUI, the command line and ``torchrun``.

:meth:`Trainer.run` is a generator: it yields :class:`LogEvent`, :class:`ProgressEvent` (one per
batch), :class:`EpochEvent` (one per epoch) and :class:`FoldEvent` (one per finished fold or
holdout run) and returns a :class:`TrainResult`. The command line iterates it and prints; the GUI
wraps it in a worker thread whose ``yielded`` signal feeds the curves (the napari
``thread_worker`` pattern). :meth:`Trainer.stop` (thread-safe) ends the run after the current
batch; the best checkpoint so far stays on disk. :func:`run_training` drives the generator with
plain callbacks.

Evaluation cannot flatter by construction (:mod:`.splits`): **train** fits the weights,
**validation** chooses the epoch (``config.monitor``) and drives early stopping and
ReduceLROnPlateau, and **test** — never seen before the end — gives the only reported numbers
(:func:`~.metrics.classification_metrics`, bootstrap 95 % intervals, warnings). Cross-validation
(``folds`` ≥ 2) makes every fold the test set once; ``"test"`` is then computed on the pooled
out-of-fold predictions, ``"folds"`` holds each fold's and ``"summary"`` their mean ± sd.

Outputs in ``out_dir`` (rank 0 only under ``torchrun``): ``best.pt`` (:mod:`.checkpoint`; for
CV the fold with the best *validation* score, folds in ``fold-k/best.pt``), ``config.json``,
``metrics.json`` and ``predictions.csv`` (test-set predictions). ``per_modality`` runs put one
such set per modality in ``out_dir/<modality>/``.
"""

from __future__ import annotations

import copy
import csv
import logging
import math
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mriviewer.core.errors import ConfigError, DatasetError, MriViewerError
from mriviewer.core.files import atomic_path, csv_text, write_json
from mriviewer.data.cases import Case, Dataset, case_identity
from mriviewer.ml.augment import make_augment, reseed_worker
from mriviewer.ml.checkpoint import new_checkpoint, save_checkpoint
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.device import _amp_name, resolve_amp, resolve_device
from mriviewer.ml.duplicates import (
    MAX_DISTANCE,
    cross_role_duplicates,
    merge_duplicate_groups,
    near_duplicate_pairs,
)
from mriviewer.ml.events import EpochEvent, FoldEvent, LogEvent, ProgressEvent, TrainResult
from mriviewer.ml.hooks import _improves, _loss, _monitor_value, _optimizer, _scheduler
from mriviewer.ml.metrics import classification_metrics, summarise_folds
from mriviewer.ml.metrics_text import format_metrics
from mriviewer.ml.preprocess import Preprocessor, normalise_channels
from mriviewer.ml.scores import accuracy, auc
from mriviewer.ml.splits import Split, make_splits
from mriviewer.ml.store import SampleDataset, SampleStore, worker_count

log = logging.getLogger(__name__)


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
class _Prepared:
    key: str
    n: int
    facts: dict


class Trainer:
    """Train ``config.model`` on the labelled cases of ``dataset``.

    Args:
        config: the run's configuration.
        dataset: discovered (or assembled) dataset with labels (binary or multiclass).
        out_dir: where the result files go (created).
        loader: ``ModalitySource → Volume``; defaults to the process-wide cache.
        store_root: folder of the preprocessed-sample store (default: next to the volume cache).
    """

    def __init__(self, config: TrainConfig, dataset: Dataset, out_dir: str | Path, loader=None,
                 store_root: str | Path | None = None) -> None:
        self.config = config.validate()
        self.dataset = dataset
        self.out_dir = Path(out_dir)
        if loader is None:
            from mriviewer.cache.memory import default_cache

            loader = default_cache().get
        self.loader = loader
        self.store_root = store_root
        self._stop = threading.Event()
        self._stop_request = self._stop  # under torchrun: a separate flag, agreed at epoch ends
        self.messages: list[str] = []
        self.warnings: list[str] = []
        self.dist = None
        self._opened: dict[str, np.ndarray] = {}

    def stop(self) -> None:
        """Ask the run to end after the current batch (thread-safe); under ``torchrun``, all
        ranks end together after the current epoch."""
        self._stop_request.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ helpers
    def _say(self, msg: str, level: str = "info") -> LogEvent:
        self.messages.append(msg)
        if level == "warning":
            self.warnings.append(msg)
        log.info(msg)  # the events carry the message to the CLI and the GUI
        return LogEvent(msg, level)

    @property
    def _main(self) -> bool:
        return self.dist is None or self.dist.is_main

    # ------------------------------------------------------------------ the run
    def run(self) -> Generator[LogEvent | ProgressEvent | EpochEvent | FoldEvent, None, TrainResult]:
        """Run training; see the module docstring for the events and outputs.

        Raises:
            DatasetError: no labels, too few usable cases or patients for the roles.
            ConfigError: invalid configuration, unavailable device, BCE on a multiclass task.
            CheckpointError / MriViewerError: result files cannot be written.
        """
        import torch

        from mriviewer.ml.distributed import context_from_env

        cfg = self.config
        if self.dataset.task == "none":
            raise DatasetError(f"{self.dataset.root}: no labels found, nothing to train on")
        if not cfg.modalities:
            cfg.modalities = self.dataset.modalities[:1]
        if cfg.loss == "bce" and len(self.dataset.class_names) != 2:
            raise ConfigError(f"loss bce needs a binary task; this dataset has {len(self.dataset.class_names)} classes "
                              "(use ce or weighted_ce)")
        device = resolve_device(cfg.device)
        self.dist = context_from_env(device.type == "cuda")
        if self.dist.enabled:
            # A stop seen by one rank only would leave the others in a collective: every
            # _stop check below reads a flag that the ranks set together (dist.any, epoch ends).
            self._stop = threading.Event()
        threads_before = torch.get_num_threads()
        try:
            self.device = self.dist.device(device)
            if cfg.num_threads:  # for this run only (the GUI's process outlives it)
                torch.set_num_threads(cfg.num_threads)
            if self._main:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.dist.enabled:
                d = self.dist
                yield self._say(f"Distributed: rank {d.rank} of {d.world_size} ({d.backend}).")
            if cfg.per_modality and len(cfg.modalities) > 1:
                result = yield from self._per_modality()
            else:
                result = yield from self._run_one(cfg, self.out_dir, "")
        finally:
            if cfg.num_threads:
                torch.set_num_threads(threads_before)
            if self.dist is not None:
                self.dist.close()
        return result

    def _per_modality(self):
        cfg = self.config
        results = {}
        for m in cfg.modalities:
            if self._stop.is_set():
                break
            sub = copy.deepcopy(cfg)
            sub.modalities, sub.per_modality = [m], False
            yield self._say(f"— {m}: one model per modality ({cfg.modalities.index(m) + 1} of {len(cfg.modalities)}) —")
            try:
                results[m] = yield from self._run_one(sub, self.out_dir / m, m)
            except DatasetError as exc:
                yield self._say(f"{m}: not trained ({exc})", "warning")
        if not results:
            raise DatasetError(f"{self.dataset.root}: no modality of {', '.join(cfg.modalities)} could be trained")
        # The reported member is each member; the checkpoint offered to the viewer is the one with
        # the best *validation* score (never the test score).
        best_m = max(results, key=lambda m: _monitor_value(results[m].best, cfg.monitor))
        summary = {
            "per_modality": {m: {"test": r.metrics.get("test"), "validation": r.best,
                                 "checkpoint": str(r.checkpoint) if r.checkpoint else None}
                             for m, r in results.items()},
            "chosen_on_validation": best_m, "warnings": list(dict.fromkeys(self.warnings)),
            "preset": cfg.preset, "preset_version": cfg.preset_version,
        }
        if self._main:
            write_json(self.out_dir / "metrics.json", summary)
            cfg.save(self.out_dir / "config.json")
        for m, r in results.items():
            yield self._say(f"{m}: " + format_metrics(r.metrics.get("test") or {}, title="Test").splitlines()[0])
        r = results[best_m]
        return TrainResult(self.out_dir, r.checkpoint, r.history, r.best, self._stop.is_set(), self.messages, summary)

    def _cases(self, cfg: TrainConfig) -> list[Case]:
        pre = Preprocessor(cfg, self.loader)
        cases = [c for c in self.dataset.labelled() if pre.usable(c)]
        if len(cases) < 3:
            raise DatasetError(f"{self.dataset.root}: {len(cases)} labelled case(s) with "
                               f"{', '.join(cfg.modalities)}; need at least 3 (train, validation, test)")
        return cases

    def _prepare(self, cfg: TrainConfig, cases: list[Case], fold_tag: str):
        """Decode and preprocess every case once into the sample store (rank 0 first, then the
        other ranks read it). Yields events; returns ``{case_id: _Prepared}``."""
        pre = Preprocessor(cfg, self.loader)
        store = SampleStore(cfg, self.store_root)
        self.store = store
        self._opened: dict[str, np.ndarray] = {}  # keys are per store (per-modality runs differ)
        prepared: dict[str, _Prepared] = {}
        # Local rank 0 of each node prepares; the other ranks then find every case in the store.
        leader = self.dist.local_rank == 0
        if self.dist.enabled and not leader:
            self.dist.barrier()
        todo = []
        for c in cases:
            try:
                key = store.key(c)
            except OSError as exc:
                yield self._say(f"Case {c.case_id} skipped: cannot read its files ({exc})", "warning")
                continue
            got = store.get(key)
            if got is None:
                todo.append((c, key))
            else:
                prepared[c.case_id] = _Prepared(key, got[0].shape[0], got[1])
        cache = getattr(self.loader, "__self__", None)
        if todo and hasattr(cache, "prefetch_iter"):
            sources = [c.modalities[m] for c, _ in todo for m in dict.fromkeys(pre.resolve_modalities(c)[0].values())]
            decoding = cache.prefetch_iter(sources)
            for done, total, err in decoding:
                if err:
                    yield self._say(f"Cannot decode: {err}", "warning")
                yield ProgressEvent("decode", 0, done, total, fold=fold_tag)
                if self._stop.is_set():
                    decoding.close()
                    break
        for i, (c, key) in enumerate(todo):
            if self._stop.is_set():
                break
            try:
                x, ci = pre.training_samples(c)
                facts = {**ci.meta, "missing": ci.missing, "substituted": ci.substituted}
                store.put(key, x, facts)
                prepared[c.case_id] = _Prepared(key, x.shape[0], facts)
            except MriViewerError as exc:
                yield self._say(f"Case {c.case_id} skipped: {exc}", "warning")
            yield ProgressEvent("prepare", 0, i + 1, len(todo), fold=fold_tag)
        if self.dist.enabled and leader:
            self.dist.barrier()
        if self.dist.enabled:  # every rank must train and evaluate on the same cases
            common = set.intersection(*(set(ids) for ids in self.dist.gather(list(prepared))))
            for cid in [cid for cid in prepared if cid not in common]:
                del prepared[cid]
                yield self._say(f"Case {cid} skipped: not prepared on every rank.", "warning")
        missing = Counter(m for p in prepared.values() for m in p.facts.get("missing", []))
        for m, n in missing.items():
            yield self._say(f"{n} case(s) lack {m}: its channel is zeros for them.", "warning")
        subs = Counter((a, b) for p in prepared.values() for a, b in p.facts.get("substituted", {}).items())
        for (a, b), n in subs.items():
            yield self._say(f"{n} case(s) use {b} in place of {a} (modality_fallback).", "warning")
        return prepared

    def _run_one(self, cfg: TrainConfig, out: Path, tag: str):
        import torch

        if self._main:
            out.mkdir(parents=True, exist_ok=True)
            cfg.save(out / "config.json")
        self._first_warning = len(self.warnings)  # this member's warnings start here
        class_names = list(self.dataset.class_names)
        cases = self._cases(cfg)
        prepared = yield from self._prepare(cfg, cases, tag)
        if self._stop.is_set():
            yield self._say("Stopped before training started; no checkpoint was saved.")
            return TrainResult(out, None, [], {}, True, self.messages, {})
        cases = [c for c in cases if c.case_id in prepared]
        labels = [c.label for c in cases]
        groups = [getattr(c, "patient_id", None) or c.case_id for c in cases]
        pairs = self._near_duplicate_pairs(cases)
        if pairs:
            groups, clusters = merge_duplicate_groups(groups, pairs)
            for w in _duplicate_messages(cases, pairs, clusters, class_names):
                yield self._say(*w)
        splits = make_splits(labels, groups, split=cfg.split, folds=cfg.folds, seed=cfg.seed, class_names=class_names)
        unit = "patient" if self.dataset.patient_ids else "image (this dataset has no patient IDs)"
        yield self._say(f"{len(cases)} cases, split by {unit}, seed {cfg.seed}: "
                        + ("holdout " + "/".join(f"{round(100 * f)}" for f in cfg.split) if not cfg.folds
                           else f"{cfg.folds}-fold cross-validation (validation carved from the training folds)") + ".")
        if not self.dataset.patient_ids:
            yield self._say("This dataset has no patient IDs: one patient's images may fall in several roles; "
                            "test figures may be optimistic.", "warning")
        for w in dict.fromkeys(w for s in splits for w in s.warnings):
            yield self._say(f"Split: {w}.", "warning")
        for w in self._confounds(cfg, cases, prepared, class_names):
            yield self._say(w, "warning")
        for w in cross_role_duplicates(cases, splits, pairs):  # none expected: a check of the grouping
            yield self._say(w, "warning")
        for w in self._warm_start_overlap(cfg, cases, splits):
            yield self._say(w, "warning")

        folds = []
        for k, split in enumerate(splits, start=1):
            if self._stop.is_set():
                break
            fold_dir = out if len(splits) == 1 else out / f"fold-{k}"
            torch.manual_seed(cfg.seed + k)
            fold = yield from self._fit(cfg, split, cases, prepared, class_names, fold_dir,
                                        f"{tag} {split.name}".strip())
            if fold is None:
                break
            folds.append(fold)
            yield FoldEvent(split.name, k, len(splits), fold["test"])
        return (yield from self._finish(cfg, out, folds, cases, class_names, splits))

    def _finish(self, cfg, out, folds, cases, class_names, splits):
        stopped = self._stop.is_set()
        if not folds:
            if stopped:
                yield self._say("Stopped before the first epoch ended; no checkpoint was saved.")
            return TrainResult(out, None, [], {}, stopped, self.messages, {})
        metrics: dict = {"preset": cfg.preset, "preset_version": cfg.preset_version, "model": cfg.model,
                         "modalities": cfg.modalities, "class_names": class_names, "stopped": stopped}
        if len(folds) == 1 and not cfg.folds:
            f = folds[0]
            metrics.update(test=f["test"], validation=f["validation"], epochs=f["history"], split=f["split"])
            chosen = f
        else:
            # Pooled out-of-fold predictions: each case predicted once, by a model that never saw it.
            ids = [i for f in folds for i in f["test_pred"]["case_ids"]]
            lab = np.concatenate([f["test_pred"]["labels"] for f in folds])
            prob = np.concatenate([f["test_pred"]["probs"] for f in folds])
            pooled = classification_metrics(lab, prob, class_names, seed=cfg.seed)
            metrics.update(
                test=pooled,
                folds=[{"name": f["name"], "test": f["test"], "validation": f["validation"], "epochs": f["history"],
                        "split": f["split"]} for f in folds],
                summary=summarise_folds([f["test"] for f in folds]),
                test_note="test = pooled out-of-fold predictions; folds = each fold's test set; summary = mean ± sd over folds",
            )
            if len(folds) < len(splits):
                metrics["warnings_cv"] = f"only {len(folds)} of {len(splits)} folds finished"
            chosen = max(folds, key=lambda f: _monitor_value(f["validation"], cfg.monitor))
            metrics["chosen_fold"] = chosen["name"]
            metrics["test_pred_case_ids"] = ids
        self.warnings.extend(metrics["test"].get("warnings", []))
        metrics["warnings"] = list(dict.fromkeys(self.warnings[self._first_warning:]))
        ckpt_path = None
        if self._main:
            ckpt_path = out / "best.pt"
            if chosen["checkpoint"] != ckpt_path:
                with atomic_path(ckpt_path) as tmp:
                    shutil.copyfile(chosen["checkpoint"], tmp)
            from mriviewer.ml.checkpoint import update_checkpoint

            ck_metrics = {"validation": chosen["validation"], "test": chosen["test"], "warnings": metrics["warnings"]}
            if "summary" in metrics:
                ck_metrics["cv"] = {"test": metrics["test"], "summary": metrics["summary"]}
            update_checkpoint(ckpt_path, metrics=ck_metrics)
            write_json(out / "metrics.json", metrics)
            self._write_predictions(out / "predictions.csv", folds, class_names)
        title = "Test (pooled out-of-fold)" if "folds" in metrics else "Test"
        for line in format_metrics(metrics["test"], title=title).splitlines():
            yield self._say(line)
        if "summary" in metrics:
            s = metrics["summary"].get("auc", {})
            if s.get("mean") is not None:
                yield self._say(f"AUC over {len(folds)} folds: {s['mean']:.3f} ± {(s.get('sd') or 0):.3f} (mean ± sd).")
        return TrainResult(out, ckpt_path, chosen["history"], chosen["validation"], stopped, self.messages, metrics)

    def _write_predictions(self, path: Path, folds, class_names) -> None:
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["case_id", "fold", "split", "label", "predicted"] + [f"p_{n}" for n in class_names])
            for f in folds:
                tp = f["test_pred"]
                for cid, lab, p in zip(tp["case_ids"], tp["labels"], tp["probs"], strict=True):
                    w.writerow([csv_text(cid), f["name"], "test", class_names[int(lab)],
                                class_names[int(np.argmax(p))]] + [f"{v:.6f}" for v in p])

    # ------------------------------------------------------------------ checks before training
    def _confounds(self, cfg, cases, prepared, class_names) -> list[str]:
        from mriviewer.ml.confounds import confound_warnings

        rows = []
        for c in cases:
            f = prepared[c.case_id].facts
            rows.append({"case_id": c.case_id, "label": c.label, "source": getattr(c, "source", None),
                         "spacing_mm": tuple(f["spacing_mm"]) if f.get("spacing_mm") else None,
                         "shape": tuple(f["shape"]) if f.get("shape") else None,
                         "modalities": tuple(f.get("modalities") or ()), "scanner": f.get("scanner"),
                         "dtype": f.get("dtype")})
        return confound_warnings(rows, class_names)

    def _warm_start_overlap(self, cfg: TrainConfig, cases, splits) -> list[str]:
        """Starting from an mriviewer checkpoint (``pretrained`` = its file): the new test cases
        that the source model was trained or selected on. Their test figures would flatter the
        model, and a new split of the same data puts some there unless the seed and split match."""
        path = Path(cfg.pretrained) if cfg.pretrained not in ("auto", "none") else None
        if path is None or not path.is_file():
            return []
        from mriviewer.core.errors import CheckpointError
        from mriviewer.data.cases import case_identity
        from mriviewer.ml.checkpoint import load_checkpoint

        try:
            seen_ids = (load_checkpoint(path, mmap=True).get("split") or {}).get("identities") or {}
        except CheckpointError:
            return []  # plain weights (ImageNet, Kinetics): nothing was seen
        seen = set(seen_ids.get("train", [])) | set(seen_ids.get("validation", []))
        if not seen:
            return []
        tested = {cases[i].case_id for s in splits for i in s.test if case_identity(cases[i]) in seen}
        if not tested:
            return []
        return [f"{len(tested)} test case(s) were training or validation cases of the checkpoint this run "
                f"starts from ({path.name}); their test figures flatter the model (e.g. "
                f"{', '.join(sorted(tested)[:3])}). Use the same seed and split, or data it never saw."]

    @staticmethod
    def _near_duplicate_pairs(cases) -> list[tuple[int, int, int]]:
        """Near-duplicate image pairs of a 2D image set (none for volumes)."""
        if not cases or not all(c.is_2d for c in cases):
            return []
        return near_duplicate_pairs(cases)

    # ------------------------------------------------------------------ one fold
    def _fit(self, cfg: TrainConfig, split: Split, cases, prepared, class_names, out: Path, fold_tag: str):
        import torch
        from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

        from mriviewer.ml.models.build import build_model, freeze, keep_frozen_bn_eval

        dist, device = self.dist, self.device
        if self._main:
            out.mkdir(parents=True, exist_ok=True)
        train_cases = [cases[i] for i in split.train]
        val_cases = [cases[i] for i in split.val]
        test_cases = [cases[i] for i in split.test]
        role_ids = {"train": [c.case_id for c in train_cases], "validation": [c.case_id for c in val_cases],
                    "test": [c.case_id for c in test_cases]}
        role_ids["identities"] = {r: [case_identity(c) for c in cs] for r, cs in
                                  (("train", train_cases), ("validation", val_cases), ("test", test_cases))}
        yield self._say(f"{split.name}: {len(train_cases)} train, {len(val_cases)} validation, {len(test_cases)} test "
                        f"({_count_by_class(test_cases, class_names)} in test).")
        absent = [class_names[k] for k in range(len(class_names)) if k not in {c.label for c in train_cases}]
        if absent:
            yield self._say(f"{split.name}: no training case of {', '.join(absent)}; the model cannot learn "
                            f"{'it' if len(absent) == 1 else 'them'} in this fold.", "warning")
        n_out = 1 if cfg.loss == "bce" else len(class_names)
        in_ch = 3 if cfg.color == "rgb" and all(c.is_2d for c in cases) else len(cfg.modalities)
        model, weights_msg = build_model(cfg.model, in_ch, n_out, cfg.pretrained, stem=cfg.stem, head=cfg.head,
                                         dropout=cfg.dropout)
        yield self._say(weights_msg)
        if cfg.freeze == "backbone" and "random weights" in weights_msg:
            yield self._say("The backbone is frozen but has no pretrained weights: the first phase trains the head "
                            "on random features.", "warning")
        model.to(device)
        amp = resolve_amp(cfg.amp, device)
        if cfg.amp == "fp16" and device.type != "cuda":
            yield self._say("fp16 autocast needs CUDA; training in fp32.", "warning")
        scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
        criterion = self._criterion(cfg, train_cases, len(class_names), device)
        yield self._say(f"Training {cfg.model} on {device}"
                        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
                        + f", {_amp_name(amp)}, modalities {', '.join(cfg.modalities)}, {len(class_names)} classes, "
                        f"loss {cfg.loss}, {cfg.optimizer} lr {cfg.lr:g}.")

        items = [(prepared[c.case_id].key, s, c.label) for c in train_cases for s in range(prepared[c.case_id].n)]
        train_ds = SampleDataset(self.store, items, make_augment(cfg, cfg.seed + dist.rank), cfg.normalise)
        history: list[dict] = []
        best: dict = {}
        best_state = None
        ckpt_path = out / "best.pt"
        epoch = 0
        total_epochs = cfg.total_epochs
        phases = cfg.phases()
        for pi, phase in enumerate(phases):
            if self._stop.is_set():
                break
            freeze(model, cfg.model, phase["freeze"])
            params = [p for p in model.parameters() if p.requires_grad]
            opt = _optimizer(cfg, params, phase["lr"])
            sched = _scheduler(cfg, opt)
            net = model
            if dist.enabled:
                from torch.nn.parallel import DistributedDataParallel

                net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
            gen = torch.Generator().manual_seed(cfg.seed + 1000 * pi)
            sampler = (DistributedSampler(train_ds, dist.world_size, dist.rank, shuffle=True, seed=cfg.seed)
                       if dist.enabled else RandomSampler(train_ds, generator=gen))
            nw = worker_count(cfg)
            bs = phase["batch_size"]
            per_rank = math.ceil(len(train_ds) / dist.world_size)  # DistributedSampler pads
            # A last batch of one sample breaks BatchNorm in training mode: drop that straggler.
            loader = DataLoader(train_ds, batch_size=bs, sampler=sampler, num_workers=nw,
                                persistent_workers=nw > 0, pin_memory=device.type == "cuda",
                                worker_init_fn=reseed_worker if nw > 0 else None,
                                drop_last=per_rank > bs and per_rank % bs == 1)
            if len(phases) > 1:
                yield self._say(f"Phase {pi + 1} of {len(phases)}: {phase['name']}, {phase['epochs']} epochs, "
                                f"lr {phase['lr']:g}, batch {phase['batch_size']}, "
                                f"{sum(p.numel() for p in params):,} trainable parameters.")
            waited = 0
            for _ in range(phase["epochs"]):
                if self._stop.is_set():
                    break
                epoch += 1
                t0 = time.perf_counter()
                if isinstance(sampler, DistributedSampler):
                    sampler.set_epoch(epoch)
                net.train()
                keep_frozen_bn_eval(model)
                total, count, n_batches, b = 0.0, 0, len(loader), 0
                for b, (x, y) in enumerate(loader, start=1):
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    opt.zero_grad(set_to_none=True)
                    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                        loss = _loss(criterion, net(x), y)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.step(opt)
                        scaler.update()
                    else:
                        loss.backward()
                        opt.step()
                    total += float(loss.detach()) * len(y)
                    count += len(y)
                    if self._main:
                        yield ProgressEvent("train", epoch, b, n_batches, total / count, fold_tag, total_epochs)
                    if self._stop.is_set():
                        break
                if self._stop.is_set() and b < n_batches:
                    yield self._say(f"Stopped during epoch {epoch}; it is not counted.")
                    break
                train_loss, _ = dist.mean(total / max(count, 1), count)
                val_loss, labels, probs = self._predict(model, val_cases, prepared, cfg, criterion, amp)
                record = {
                    "epoch": epoch, "phase": phase["name"], "fold": fold_tag, "lr": float(opt.param_groups[0]["lr"]),
                    "train_loss": train_loss, "val_loss": val_loss, "val_auc": auc(labels, probs),
                    "val_accuracy": accuracy(labels, probs), "seconds": time.perf_counter() - t0,
                }
                improved = _improves(record, best, cfg.monitor)
                record["is_best"] = bool(improved)
                history.append(record)
                if improved:
                    waited = 0
                    best = {k: record[k] for k in ("epoch", "val_auc", "val_loss", "val_accuracy")}
                    best.update(monitor=cfg.monitor, n_cases=len(val_cases),
                                n_per_class=_count_by_class(val_cases, class_names, as_dict=True))
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                    if self._main:
                        save_checkpoint(ckpt_path, new_checkpoint(
                            best_state, cfg, class_names, n_out, metrics={"validation": best}, history=history,
                            split=role_ids, fold=split.name, dataset_root=str(self.dataset.root)))
                else:
                    waited += 1
                if sched is not None:
                    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        sched.step(_monitor_value(record, cfg.monitor, for_min=True))
                    else:
                        sched.step()
                if self._main:
                    yield EpochEvent(dict(record))
                if cfg.early_stopping and waited >= cfg.early_stopping:
                    yield self._say(f"Early stopping at epoch {epoch}: {cfg.monitor} has not improved for "
                                    f"{waited} epochs (best epoch {best.get('epoch')}).")
                    break
                if dist.enabled and dist.any(self._stop_request.is_set()):
                    self._stop.set()
            if best_state is not None and pi + 1 < len(phases):
                model.load_state_dict(best_state)  # fine-tune from the best epoch of this phase
        if best_state is None:
            return None
        # Test: the chosen epoch's weights on cases never used for training or selection.
        model.load_state_dict(best_state)
        _, t_labels, t_probs = self._predict(model, test_cases, prepared, cfg, criterion, amp)
        test = classification_metrics(t_labels, t_probs, class_names, seed=cfg.seed)
        if self._main:
            from mriviewer.ml.checkpoint import update_checkpoint

            update_checkpoint(ckpt_path, metrics={"validation": best, "test": test}, history=history)
        yield self._say(f"{split.name}: chosen epoch {best['epoch']} on validation {cfg.monitor}; "
                        f"test AUC {_fmt(test.get('auc'))} on {len(test_cases)} cases.")
        return {"name": split.name, "history": history, "validation": best, "test": test, "split": role_ids,
                "checkpoint": ckpt_path,
                "test_pred": {"case_ids": role_ids["test"], "labels": t_labels, "probs": t_probs}}

    def _samples(self, key: str) -> np.ndarray:
        """A case's stored samples, memory-mapped once per run (validation reads them every epoch)."""
        opened = self._opened
        if key not in opened:
            got = self.store.get(key)
            if got is None:
                raise DatasetError(f"preprocessed samples {key} missing from {self.store.folder}")
            opened[key] = got[0]
        return opened[key]

    def _criterion(self, cfg, train_cases, n_classes, device):
        import torch
        from torch import nn

        if cfg.loss == "bce":
            return nn.BCEWithLogitsLoss()
        if cfg.loss == "weighted_ce":
            counts = np.bincount([c.label for c in train_cases], minlength=n_classes).astype(float)
            weights = 1.0 - counts / counts.sum()
            weights[counts == 0] = 1.0
            if (counts > 0).sum() < 2:  # one class only: W = 0 would make the loss 0/0
                weights[:] = 1.0
            return nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=device))
        return nn.CrossEntropyLoss()

    def _predict(self, model, cases, prepared, cfg, criterion, amp):
        """Case-level probabilities ``(N, K)`` (mean over a 2D case's slices) and the mean
        per-sample loss; cases are sharded over ranks and gathered, so every rank returns all."""
        import torch

        model.eval()
        self.dist.sync_buffers(model)  # every rank predicts with rank 0's model, the one saved
        mine = list(enumerate(cases))[self.dist.rank::self.dist.world_size]
        out, loss_sum, n = [], 0.0, 0
        with torch.no_grad():
            for i, case in mine:
                arr = self._samples(prepared[case.case_id].key)
                parts = []
                for start in range(0, len(arr), max(cfg.batch_size, 1)):
                    x = torch.from_numpy(np.asarray(arr[start:start + cfg.batch_size], dtype=np.float32))
                    x = normalise_channels(x, cfg.normalise).to(self.device)
                    with torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None):
                        logits = model(x).float()
                    y = torch.full((x.shape[0],), case.label, device=self.device)
                    loss_sum += float(_loss(criterion, logits, y)) * x.shape[0]
                    n += x.shape[0]
                    parts.append(probabilities(logits).cpu().numpy())
                out.append((i, np.concatenate(parts).mean(axis=0)))
        gathered = [item for part in self.dist.gather(out) for item in part]
        gathered.sort(key=lambda t: t[0])
        loss_mean, _ = self.dist.mean(loss_sum / max(n, 1), n)
        labels = np.array([c.label for c in cases], dtype=int)
        probs = np.stack([p for _, p in gathered]) if gathered else np.zeros((0, len(self.dataset.class_names)))
        return loss_mean, labels, probs


def _duplicate_messages(cases, pairs, clusters, class_names) -> list[tuple[str, str]]:
    """``(text, level)`` messages about near-duplicate images joined before the split: how many
    and the largest group, and pairs whose labels differ (in the Kaggle 44-class set: one
    patient's slice as "T1" and as "T1C+"; elsewhere label noise, or one image filed twice)."""
    out = []
    if clusters:
        big = max(clusters, key=len)
        out.append((f"{len(pairs)} near-duplicate image pair(s) (perceptual hash within {MAX_DISTANCE} of 64 bits) "
                    f"join {sum(map(len, clusters))} images into {len(clusters)} group(s); each group stays in one "
                    f"role, so no copy of a test image is trained on. Largest: {len(big)} images (e.g. "
                    f"{', '.join(cases[k].case_id for k in big[:3])}).", "warning"))
    conflict = [(i, j) for i, j, _ in pairs if cases[i].label != cases[j].label]
    if conflict:
        i, j = conflict[0]
        out.append((f"{len(conflict)} near-duplicate image pair(s) carry different labels, e.g. {cases[i].case_id} "
                    f"({class_names[cases[i].label]}) ~ {cases[j].case_id} ({class_names[cases[j].label]}): one "
                    "patient's slice in two sequences (e.g. before and after contrast), label noise, or one image "
                    "filed under two classes; each pair is kept in one role.", "warning"))
    return out


def _count_by_class(cases, class_names, as_dict=False):
    c = Counter(x.label for x in cases)
    d = {class_names[k]: c[k] for k in sorted(c)}
    return d if as_dict else ", ".join(f"{k} {v}" for k, v in d.items())


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


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
