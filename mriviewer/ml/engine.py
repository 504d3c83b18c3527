"""The training engine shared by the GUI, the command line and ``torchrun``.

:meth:`Trainer.run` is a generator: it yields :class:`LogEvent`, :class:`ProgressEvent` (one per
batch), :class:`EpochEvent` (one per epoch) and :class:`FoldEvent` (one per finished fold or
holdout run) and returns a :class:`TrainResult`. The command line iterates it and prints; the GUI
wraps it in a worker thread whose ``yielded`` signal feeds the curves (the napari
``thread_worker`` pattern). :meth:`Trainer.stop` (thread-safe) ends the run after the current
batch; the best checkpoint so far stays on disk. :func:`run_training` drives the generator with
plain callbacks.

The trainer orchestrates: the device and process group, per-modality members, decoding and
preprocessing into the sample store, the split and its checks, one :class:`~.fit.FitLoop` per
fold (model, phases, epochs, validation, test; its per-epoch decisions are the hooks of
:mod:`.hooks`), and the pooled results. A run works on its own copy of the config.

Evaluation cannot flatter by construction (:mod:`.splits`): **train** fits the weights,
**validation** chooses the epoch (``config.monitor``) and drives early stopping and
ReduceLROnPlateau, and **test** — never seen before the end — gives the only reported numbers
(:func:`~.metrics.classification_metrics`, bootstrap 95 % intervals, warnings). Cross-validation
(``folds`` ≥ 2) makes every fold the test set once; ``"test"`` is then computed on the pooled
out-of-fold predictions, ``"folds"`` holds each fold's and ``"summary"`` their mean ± sd. The
recorded split names each role's cases by id, files, content and patient (hashed; :mod:`.seen`),
and a warm start warns of test cases whose files, content or patient the source model saw.

Outputs in ``out_dir`` (rank 0 only under ``torchrun``): ``best.pt`` (:mod:`.checkpoint`; for
CV the fold with the best *validation* score, folds in ``fold-k/best.pt``), ``config.json``,
``metrics.json`` and ``predictions.csv`` (test-set predictions). ``per_modality`` runs put one
such set per modality in ``out_dir/<modality>/``.
"""

from __future__ import annotations

import copy
import csv
import logging
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mriviewer.cache.stream import StreamStep, decode_stream
from mriviewer.core.errors import ConfigError, DatasetError, MriViewerError
from mriviewer.core.files import atomic_path, csv_text, write_json
from mriviewer.data.cases import Case, Dataset
from mriviewer.data.record import dataset_record
from mriviewer.ml.caveats import Caveat
from mriviewer.ml.config import TrainConfig
from mriviewer.ml.device import resolve_device
from mriviewer.ml.duplicates import (
    cross_role_duplicates,
    duplicate_messages,
    merge_duplicate_groups,
    near_duplicate_pairs,
)
from mriviewer.ml.events import EpochEvent, FoldEvent, LogEvent, ProgressEvent, TrainResult
from mriviewer.ml.fit import FitLoop, RunContext, probabilities
from mriviewer.ml.hooks import _monitor_value
from mriviewer.ml.metrics import classification_metrics, summarise_folds
from mriviewer.ml.metrics_text import format_metrics
from mriviewer.ml.preprocess import Preprocessor
from mriviewer.ml.seen import record_patients, warm_start_overlap
from mriviewer.ml.splits import make_splits
from mriviewer.ml.store import SampleStore

# The event types and ``probabilities`` (used by :mod:`.predict`) stay importable from here.
__all__ = ["EpochEvent", "FoldEvent", "LogEvent", "ProgressEvent", "TrainResult", "Trainer", "probabilities",
           "run_training"]

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    key: str
    n: int
    facts: dict


class Trainer:
    """Train ``config.model`` on the labelled cases of ``dataset``.

    Args:
        config: the run's configuration; the run works on a copy (it fills in ``modalities``).
        dataset: discovered (or assembled) dataset with labels (binary or multiclass).
        out_dir: where the result files go (created).
        loader: ``ModalitySource → Volume``; defaults to the process-wide cache.
        store_root: folder of the preprocessed-sample store (default: next to the volume cache).
    """

    def __init__(self, config: TrainConfig, dataset: Dataset, out_dir: str | Path, loader=None,
                 store_root: str | Path | None = None) -> None:
        self.config = copy.deepcopy(config).validate()  # the caller's config stays as it was
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
        self.caveats: list[Caveat] = []  # the warnings as typed records (ml.caveats), in order
        self.dist = None
        self._opened: dict[str, np.ndarray] = {}
        self._fingerprints: dict[str, str | None] = {}  # case identity → content fingerprint

    def stop(self) -> None:
        """Ask the run to end after the current batch (thread-safe); under ``torchrun``, all
        ranks end together after the current epoch."""
        self._stop_request.set()

    @property
    def stopping(self) -> bool:
        """Whether the run is ending (a stop was asked for and, under ``torchrun``, agreed)."""
        return self._stop.is_set()

    # ------------------------------------------------------------------ helpers
    def _say(self, msg: str, level: str = "info", kind: str = "other") -> LogEvent:
        """Log ``msg``; a warning is also kept as a :class:`~mriviewer.ml.caveats.Caveat` of ``kind``."""
        self.messages.append(msg)
        if level == "warning":
            self.warnings.append(msg)
            self.caveats.append(Caveat(kind, msg))
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
                              "(use ce or weighted_ce)", key="loss")
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
                yield self._say(f"{m}: not trained ({exc})", "warning", "run")
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
            "caveats": [c.to_json() for c in dict.fromkeys(self.caveats)],
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
        other ranks read it), streamed: worker processes decode a few cases ahead while this
        process prepares each in turn, so memory and the disk cache stay within budget on any
        cohort (:func:`~mriviewer.cache.stream.decode_stream`); cases already in the store are
        not decoded (an interrupted preparation resumes). Yields events; returns
        ``{case_id: _Prepared}``."""
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
                yield self._say(f"Case {c.case_id} skipped: cannot read its files ({exc})", "warning", "case")
                continue
            got = store.get(key)
            if got is None:
                todo.append((c, key))
            else:
                prepared[c.case_id] = _Prepared(key, got[0].shape[0], got[1])
        cache = getattr(self.loader, "__self__", None)
        steps = (decode_stream(cache, [[c.modalities[m] for m in dict.fromkeys(pre.resolve_modalities(c)[0].values())]
                                       for c, _ in todo])
                 if todo and getattr(cache, "disk", None) is not None else (StreamStep(i) for i in range(len(todo))))
        for step in steps:  # decoded a few cases ahead in worker processes, prepared here in turn
            if self._stop.is_set():
                steps.close()
                break
            for err in step.errors:
                yield self._say(f"Cannot decode: {err}", "warning", "case")
            if step.note:
                yield self._say(step.note, "info", "run")
            c, key = todo[step.index]
            try:
                x, ci = pre.training_samples(c)
                facts = {**ci.meta, "missing": ci.missing, "substituted": ci.substituted}
                store.put(key, x, facts)
                prepared[c.case_id] = _Prepared(key, x.shape[0], facts)
            except MriViewerError as exc:
                yield self._say(f"Case {c.case_id} skipped: {exc}", "warning", "case")
            yield ProgressEvent("prepare", 0, step.index + 1, len(todo), fold=fold_tag)
        if self.dist.enabled and leader:
            self.dist.barrier()
        if self.dist.enabled:  # every rank must train and evaluate on the same cases
            common = set.intersection(*(set(ids) for ids in self.dist.gather(list(prepared))))
            for cid in [cid for cid in prepared if cid not in common]:
                del prepared[cid]
                yield self._say(f"Case {cid} skipped: not prepared on every rank.", "warning", "case")
        missing = Counter(m for p in prepared.values() for m in p.facts.get("missing", []))
        for m, n in missing.items():
            yield self._say(f"{n} case(s) lack {m}: its channel is zeros for them.", "warning", "modality")
        subs = Counter((a, b) for p in prepared.values() for a, b in p.facts.get("substituted", {}).items())
        for (a, b), n in subs.items():
            yield self._say(f"{n} case(s) use {b} in place of {a} (modality_fallback).", "warning", "modality")
        return prepared

    def _run_one(self, cfg: TrainConfig, out: Path, tag: str):
        import torch

        if self._main:
            out.mkdir(parents=True, exist_ok=True)
            cfg.save(out / "config.json")
        self._first_warning = len(self.warnings)  # this member's warnings start here
        self._first_caveat = len(self.caveats)
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
            for text, level in duplicate_messages(cases, pairs, clusters, class_names):
                yield self._say(text, level, "near-duplicate")
        splits = make_splits(labels, groups, split=cfg.split, folds=cfg.folds, seed=cfg.seed, class_names=class_names)
        unit = "patient" if self.dataset.patient_ids else "image (this dataset has no patient IDs)"
        yield self._say(f"{len(cases)} cases, split by {unit}, seed {cfg.seed}: "
                        + ("holdout " + "/".join(f"{round(100 * f)}" for f in cfg.split) if not cfg.folds
                           else f"{cfg.folds}-fold cross-validation (validation carved from the training folds)") + ".")
        if not self.dataset.patient_ids:
            yield self._say("This dataset has no patient IDs: one patient's images may fall in several roles; "
                            "test figures may be optimistic.", "warning", "patients")
        for w in dict.fromkeys(w for s in splits for w in s.warnings):
            yield self._say(f"Split: {w}.", "warning", "split")
        for w in self._confounds(cfg, cases, prepared, class_names):
            yield self._say(w, "warning", "confound")
        for w in cross_role_duplicates(cases, splits, pairs):  # none expected: a check of the grouping
            yield self._say(w, "warning", "near-duplicate")
        for w in warm_start_overlap(cfg.pretrained, cases, splits, self.dataset, self._fingerprint):
            yield self._say(w, "warning", "leak")

        folds = []
        for k, split in enumerate(splits, start=1):
            if self._stop.is_set():
                break
            fold_dir = out if len(splits) == 1 else out / f"fold-{k}"
            torch.manual_seed(cfg.seed + k)
            fold_index = k if cfg.folds else None
            loop = FitLoop(self._context(), cfg, split, cases, prepared, class_names, fold_dir,
                           f"{tag} {split.name}".strip(), fold_index)
            fold = yield from loop.run()
            if fold is None:
                break
            folds.append(fold)
            yield FoldEvent(split.name, k, len(splits), fold["test"], fold_index)
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
        self.caveats.extend(Caveat("test-set", w) for w in metrics["test"].get("warnings", []))
        metrics["warnings"] = list(dict.fromkeys(self.warnings[self._first_warning:]))
        metrics["caveats"] = [c.to_json() for c in dict.fromkeys(self.caveats[self._first_caveat:])]
        for f in folds:  # each case's patient, hashed (mriviewer.ml.seen)
            record_patients(f["split"], cases, self.dataset)
        ckpt_path = None
        if self._main:
            ckpt_path = out / "best.pt"
            if chosen["checkpoint"] != ckpt_path:
                with atomic_path(ckpt_path) as tmp:
                    shutil.copyfile(chosen["checkpoint"], tmp)
            from mriviewer.ml.checkpoint import update_checkpoint

            ck_metrics = {"validation": chosen["validation"], "test": chosen["test"], "warnings": metrics["warnings"],
                          "caveats": metrics["caveats"]}
            if "summary" in metrics:
                ck_metrics["cv"] = {"test": metrics["test"], "summary": metrics["summary"]}
            update_checkpoint(ckpt_path, metrics=ck_metrics, split=chosen["split"])
            write_json(out / "metrics.json", {**metrics, "roles": chosen.get("roles"), "dataset": dataset_record(self.dataset)})
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

    @staticmethod
    def _near_duplicate_pairs(cases) -> list[tuple[int, int, int]]:
        """Near-duplicate image pairs of a 2D image set (none for volumes)."""
        if not cases or not all(c.is_2d for c in cases):
            return []
        return near_duplicate_pairs(cases)

    # ------------------------------------------------------------------ the folds
    def _context(self) -> RunContext:
        """What this run gives each fold's :class:`~.fit.FitLoop`."""
        return RunContext(self.dist, self.device, self._say, self._stop, self._stop_request, self.store,
                          self._samples, str(self.dataset.root), dataset_record(self.dataset), self._fingerprint)

    def _fingerprint(self, case: Case) -> str | None:
        """:func:`~mriviewer.data.cases.content_fingerprint` of ``case``, read once per run."""
        from mriviewer.data.cases import case_identity, content_fingerprint

        key = case_identity(case)
        if key not in self._fingerprints:
            self._fingerprints[key] = content_fingerprint(case)
        return self._fingerprints[key]

    def _samples(self, key: str) -> np.ndarray:
        """A case's stored samples, memory-mapped once per run (validation reads them every epoch)."""
        opened = self._opened
        if key not in opened:
            got = self.store.get(key)
            if got is None:
                raise DatasetError(f"preprocessed samples {key} missing from {self.store.folder}")
            opened[key] = got[0]
        return opened[key]


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
