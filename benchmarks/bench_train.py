"""Training speed: our engine against a plain PyTorch loop, measured in one run on the same data.

Everything is measured in this process, in this run:

1. **Engine vs pure compute.** The real engine
   (:func:`mriviewer.ml.engine.run_training`) trains ``--epochs`` epochs on generated lesion
   phantoms (or ``--data``) with the sample store already warm. Every event is time-stamped when
   it arrives and when the engine resumes, so time spent in the callback is left out. An epoch's
   *training part* is the engine time from the previous ``EpochEvent`` to the epoch's last
   ``ProgressEvent("train")``: sample-store reads, augmentation, collation, forward, backward,
   optimiser step. The epoch's ``record.seconds`` also holds the validation pass; it is
   printed, and validation = ``seconds`` − training part. The baseline is a plain PyTorch loop:
   the same network (:func:`mriviewer.ml.models.build.build_model`, i.e. the torchvision model with a
   C-channel stem and a new head; random weights in both), the same optimiser (Adam, the
   config's lr and weight decay), loss, batch size and number of samples, random tensors of the
   sample shape already on the device; forward + backward + step, no data loading. One plain
   step runs right after each engine step (in the batch's ``ProgressEvent`` callback), so both
   see the same machine load. Epoch 1 of each run is warm-up. ``epoch_vs_compute`` = best later
   engine training part / best later plain epoch (goal ≤ 1.15); the same epochs paired
   (median ratio, total-time ratio) are printed as cross-checks, and samples/s of both.
2. **First vs later epoch.** A cold run (fresh ``MRIVIEWER_CACHE_DIR``: empty volume cache and
   sample store; worker-pool start, decoding, preprocessing, model set-up, epoch 1) against a
   later epoch of a warm run. ``cached_vs_first`` = best later epoch's ``seconds`` (training +
   validation) / cold run's time from its start to its first ``EpochEvent``.
3. **bf16 vs fp32.** The engine with ``amp="bf16"`` against ``amp="off"`` (training part of
   the later epochs; the runs alternate). The plain fp32 loop is interleaved with both, step by
   step, as a yardstick of the machine's load: ``bf16_vs_fp32`` = median over epochs of (bf16
   engine / plain loop of the same epoch) ÷ the same median for the fp32 engine (< 1: bf16 is
   faster). On a quiet machine this equals best bf16 epoch / best fp32 epoch, also printed; on
   a shared one, separate runs see different loads and only the yardstick makes them comparable.
4. **Throughput**: samples/s of the engine and of the plain loop (the figures of 1.); also the
   engine's data path alone (its ``SampleDataset`` and ``DataLoader``, no model).

Timings are wall-clock: on a shared machine, other processes slow some epochs down; the header
and the footer show the load average and the CPU time other processes took during the run.

Prints a header (machine, torch, device), one block per measurement and, last:
``epoch_vs_compute=<R> cached_vs_first=<C>``, after a line ``bf16_vs_fp32=<B>``

Run: ``python benchmarks/bench_train.py [--model resnet18-2d|r3d-18|cnn3d] [--cases 24]
[--epochs 4] [--image-size N] [--repeat 2] [--device auto|cpu|cuda] [--data PATH]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Only the standard library at module level: mriviewer's decoding workers are spawned and
# import this module again.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_EPOCH_VS_COMPUTE = 1.15


# ---------------------------------------------------------------------------- machine
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class CpuShare:
    """CPU seconds used by *other* processes between construction and :meth:`other` (Linux
    ``/proc/stat`` minus this process and its reaped children; ``None`` elsewhere)."""

    def __init__(self) -> None:
        self.busy0, self.own0, self.t0 = self._busy(), self._own(), time.perf_counter()

    @staticmethod
    def _busy() -> float | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def other(self) -> tuple[float, float] | None:
        """``(other processes' CPU seconds, CPU seconds available)`` since construction."""
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        return max(0.0, busy - self.busy0 - (self._own() - self.own0)), wall * (os.cpu_count() or 1)


class GpuSampler:
    """GPU utilisation (%) sampled every ``period`` s from pynvml or ``nvidia-smi`` into
    ``samples[label]`` while ``label`` is set. Best effort: never raises; inactive when neither
    is available."""

    def __init__(self, index: int, period: float = 0.2) -> None:
        self.index, self.period = index, period
        self.samples: dict[str, list[float]] = {}
        self.label: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._read = self._reader()

    @property
    def available(self) -> bool:
        return self._read is not None

    def _reader(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:
            pass
        exe = shutil.which("nvidia-smi")
        if exe is None:
            return None
        cmd = [exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i",
               str(self.index)]

        def read() -> float:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=True)
            return float(out.stdout.strip().splitlines()[0])

        try:
            read()
        except Exception:
            return None
        return read

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            label = self.label
            if label is None:
                continue
            try:
                self.samples.setdefault(label, []).append(self._read())
            except Exception:
                return

    def start(self) -> None:
        if self._read is not None and self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def mean(self, label: str) -> float | None:
        s = self.samples.get(label)
        return sum(s) / len(s) if s else None


def set_label(sampler: GpuSampler | None, label: str | None) -> None:
    if sampler is not None:
        sampler.label = label


# ---------------------------------------------------------------------------- engine runs
@dataclasses.dataclass
class EpochTimes:
    epoch: int
    train: float  # training part: engine time from the epoch's start to its last batch
    seconds: float  # the engine's record.seconds (training + validation), callbacks removed
    wall: float  # training part + validation + checkpoint (to the EpochEvent)
    batches: int


@dataclasses.dataclass
class Run:
    start: float
    timeline: list  # (arrival, event, resume): the engine is suspended from arrival to resume
    result: object

    def times_of(self, stage: str) -> list[float]:
        return [t for t, e, _ in self.timeline
                if type(e).__name__ == "ProgressEvent" and e.stage == stage]

    def epochs(self) -> list[EpochTimes]:
        """Engine time per epoch, callbacks excluded: the training part is the time from the
        previous event (``EpochEvent`` of the epoch before; for epoch 1 the log line before its
        first batch, so building the data loader counts) to the epoch's last batch event."""
        out: list[EpochTimes] = []
        train: dict[int, float] = {}
        paused: dict[int, float] = {}
        batches: dict[int, int] = {}
        prev = self.start
        for arrival, e, resume in self.timeline:
            kind = type(e).__name__
            if kind == "ProgressEvent" and e.stage == "train":
                train[e.epoch] = train.get(e.epoch, 0.0) + arrival - prev
                paused[e.epoch] = paused.get(e.epoch, 0.0) + resume - arrival
                batches[e.epoch] = e.total
            elif kind == "EpochEvent":
                n = e.record.epoch
                seconds = float(e.record.seconds) - paused.get(n, 0.0)
                out.append(EpochTimes(n, train[n], seconds, train[n] + arrival - prev, batches[n]))
            prev = resume
        return out

    def first_epoch_end(self) -> float:
        """Engine time from the start to the first ``EpochEvent`` (callbacks excluded)."""
        paused = 0.0
        for arrival, e, resume in self.timeline:
            if type(e).__name__ == "EpochEvent":
                return arrival - self.start - paused
            paused += resume - arrival
        raise RuntimeError("the run ended before its first epoch")


def engine_run(cfg, dataset, out: Path, per_batch=None, per_epoch=None, sampler=None,
               label: str = "engine") -> Run:
    """The real engine, driven by :func:`run_training`. Every event is time-stamped on arrival
    and when the engine resumes (it is suspended while the callback runs), so callback time is
    left out of every engine figure. ``per_batch(event)`` runs in the callback of each training
    batch (a plain-loop step interleaved with the engine's, on the same machine load),
    ``per_epoch(event)`` in that of each ``EpochEvent``. GPU utilisation goes to ``label``."""
    from mriviewer.ml.engine import run_training

    timeline: list = []

    def stamp(event) -> None:
        arrival = time.perf_counter()
        if per_batch is not None and type(event).__name__ == "ProgressEvent" \
                and event.stage == "train":
            set_label(sampler, "plain")
            per_batch(event)
            set_label(sampler, label)
        if per_epoch is not None and type(event).__name__ == "EpochEvent":
            set_label(sampler, None)
            per_epoch(event)
            set_label(sampler, label)
        timeline.append((arrival, event, time.perf_counter()))

    set_label(sampler, label)
    start = time.perf_counter()
    try:
        result = run_training(cfg, dataset, out, callbacks=[stamp])
    finally:
        set_label(sampler, None)
    return Run(start, timeline, result)


def train_items(cfg, dataset, result) -> list[tuple[str, int, int]]:
    """The run's training samples as the engine lists them: ``(store key, sample, label)``."""
    from mriviewer.ml.store import SampleStore

    store = SampleStore(cfg)
    train_ids = set(result.metrics["split"]["train"])
    items = []
    for case in dataset.cases:
        if case.case_id in train_ids:
            key = store.key(case)
            items += [(key, s, case.label) for s in range(store.get(key)[0].shape[0])]
    return items


class DataPath:
    """The engine's data path alone: :class:`~mriviewer.ml.store.SampleDataset` and a
    ``DataLoader`` built as the engine builds them (augmentation, normalisation, sampler, batch
    size, workers), iterated over one epoch without a model; :meth:`epoch` adds its time to
    ``times``."""

    def __init__(self, cfg, items, device) -> None:
        import torch
        from torch.utils.data import DataLoader, RandomSampler

        from mriviewer.ml.augment import make_augment
        from mriviewer.ml.store import SampleDataset, SampleStore, worker_count

        ds = SampleDataset(SampleStore(cfg), items, make_augment(cfg, cfg.seed), cfg.normalise)
        nw, bs, n = worker_count(cfg), cfg.batch_size, len(items)
        sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(cfg.seed))
        self.loader = DataLoader(ds, batch_size=bs, sampler=sampler, num_workers=nw,
                                 persistent_workers=nw > 0, pin_memory=device.type == "cuda",
                                 drop_last=n > bs and n % bs == 1)
        self.device = device
        self.times: list[float] = []

    def epoch(self, _event=None) -> None:
        t0 = time.perf_counter()
        for x, y in self.loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - t0)


class PlainLoop:
    """A plain PyTorch training loop: the engine's network, optimiser (Adam, the config's lr
    and weight decay), loss (cross-entropy), batch size and sample count; random inputs and
    labels already on ``device``; no data loading. :meth:`step` runs one batch and adds its
    time to ``epochs[epoch]``."""

    def __init__(self, cfg, in_ch: int, n_out: int, shape, n_samples: int, device) -> None:
        import torch

        from mriviewer.ml.models.build import build_model

        torch.manual_seed(cfg.seed)
        self.model, _ = build_model(cfg.model, in_ch, n_out, "none", stem=cfg.stem, head=cfg.head,
                                    dropout=cfg.dropout)
        self.model.to(device).train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.criterion = torch.nn.CrossEntropyLoss()
        bs = cfg.batch_size
        sizes = [bs] * (n_samples // bs) + ([n_samples % bs] if n_samples % bs else [])
        if n_samples > bs and n_samples % bs == 1:  # the engine drops a last batch of one sample
            sizes.pop()
        self.batches = [(torch.randn((b, *shape), device=device),
                         torch.randint(0, n_out, (b,), device=device)) for b in sizes]
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.epochs: dict[tuple[int, int], float] = {}
        self.run = 0

    def step(self, event) -> None:
        x, y = self.batches[(event.step - 1) % len(self.batches)]
        self.sync()
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = self.criterion(self.model(x).float(), y)
        loss.backward()
        self.opt.step()
        self.sync()
        key = (self.run, event.epoch)
        self.epochs[key] = self.epochs.get(key, 0.0) + time.perf_counter() - t0

    def whole_epoch(self) -> None:
        """All batches back to back (no engine in between)."""
        for b in range(len(self.batches)):
            self.step(argparse.Namespace(step=b + 1, epoch=0))


def fmt_list(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def balanced_subset(cases, n: int):
    """The first ``n`` labelled cases, taken round-robin over the classes."""
    by_class: dict[int, list] = {}
    for c in cases:
        by_class.setdefault(c.label, []).append(c)
    out, queues = [], [list(v) for _, v in sorted(by_class.items())]
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18-2d",
                    help="resnet18-2d (default), r3d-18, cnn3d or another of MODEL_NAMES")
    ap.add_argument("--cases", type=int, default=None,
                    help="phantom cases (default 24); with --data: use this many labelled cases")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per warm run (epoch 1 = warm-up)")
    ap.add_argument("--image-size", type=int, default=None, help="default 64 (2D), 32 (3D)")
    ap.add_argument("--depth", type=int, default=16, help="slices of a 3D model's input")
    ap.add_argument("--slices-per-case", type=int, default=8, help="2D samples per case")
    ap.add_argument("--batch-size", type=int, default=None, help="default 16 (2D), 4 (3D)")
    ap.add_argument("--repeat", type=int, default=2, help="warm runs per precision")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--data", type=Path, default=None, help="a dataset folder instead of phantoms")
    ap.add_argument("--modality", default=None,
                    help="input modality (default: FLAIR for phantoms, the dataset's first "
                    "for --data)")
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs must be at least 2 (epoch 1 is warm-up)")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="mriviewer-bench-train-"))
    # A fresh, empty volume cache and sample store for this run (read when the engine starts).
    os.environ["MRIVIEWER_CACHE_DIR"] = str(work / "cache" / "volumes")
    try:
        run_benchmark(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_benchmark(args, work: Path) -> None:
    import torch
    import torchvision

    from mriviewer.data.discover import discover
    from mriviewer.ml.config import TrainConfig, is_3d_model
    from mriviewer.ml.device import resolve_device
    from mriviewer.ml.store import SampleStore

    torch.manual_seed(0)
    share = CpuShare()
    is_3d = is_3d_model(args.model)
    size = args.image_size or (32 if is_3d else 64)
    bs = args.batch_size or (4 if is_3d else 16)
    device = resolve_device(args.device)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, load average {load:.2f}; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), torchvision "
          f"{torchvision.__version__}, Python {platform.python_version()}")
    sampler = None
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        print(f"device: cuda:{index} ({torch.cuda.get_device_name(index)})")
        sampler = GpuSampler(index)
        if sampler.available:
            sampler.start()
        else:
            sampler = None
    else:
        print("device: cpu")

    if args.data is None:
        from tests.phantoms import make_lesion_phantoms

        n_cases = args.cases or 24
        make_lesion_phantoms(work / "phantoms", n_cases=n_cases, seed=0)
        dataset = discover(work / "phantoms")
        what = f"{n_cases} lesion phantoms (32×32×24 voxels, NIfTI)"
    else:
        dataset = discover(args.data)
        if args.cases:
            dataset = dataclasses.replace(dataset,
                                          cases=balanced_subset(dataset.labelled(), args.cases))
        what = f"{args.data} ({len(dataset.labelled())} labelled cases)"
    # The engine would pick the dataset's first modality itself; resolved here so that this
    # script's configs and sample-store keys match the engine's.
    modality = args.modality or ("FLAIR" if args.data is None else dataset.modalities[0])
    if is_3d:
        grid = f"{args.depth}×{size}×{size}"
    elif all(c.is_2d for c in dataset.labelled()):
        grid = f"{size}×{size} (one image per case)"
    else:
        grid = f"{size}×{size}, {args.slices_per_case} slices per case"
    print(f"data: {what}; model {args.model}, input {grid}, batch {bs}, {args.epochs} epochs per "
          f"run, {args.repeat} run(s) per precision")

    def config(amp: str, epochs: int):
        return TrainConfig(model=args.model, modalities=[modality],
                           epochs=epochs, image_size=size, depth=args.depth,
                           slices_per_case=args.slices_per_case, batch_size=bs, pretrained="none",
                           device=args.device, amp=amp, seed=0)

    # ------------------------------------------------------------------ 2. cold run
    cold_cfg = config("off", 1)
    cold = engine_run(cold_cfg, dataset, work / "runs" / "cold")
    for _, e, _ in cold.timeline:
        if type(e).__name__ == "LogEvent" and e.level == "warning":
            print(f"  engine warning: {e.message}")
    decode, prepare = cold.times_of("decode"), cold.times_of("prepare")
    t_decoded = decode[-1] if decode else cold.start
    t_prepared = prepare[-1] if prepare else t_decoded
    cold_epoch = cold.epochs()[0]
    cold_total = cold.first_epoch_end()
    items = train_items(cold_cfg, dataset, cold.result)
    n_train = len(items)
    shape = tuple(SampleStore(cold_cfg).get(items[0][0])[0].shape[1:])
    n_out = len(dataset.class_names)
    print("\nfirst run (empty volume cache and sample store):")
    print(f"  decode {t_decoded - cold.start:.2f} s ({len(decode)} sources, worker-pool start "
          f"included), prepare {t_prepared - t_decoded:.2f} s, set-up + checkpoint "
          f"{cold_total - (t_prepared - cold.start) - cold_epoch.seconds:.2f} s, epoch 1 "
          f"{cold_epoch.seconds:.2f} s (training part {cold_epoch.train:.2f} s) → "
          f"{cold_total:.2f} s to the end of epoch 1")
    print(f"  {n_train} training samples of shape {shape}, {cold_epoch.batches} batches per epoch")

    # ------------------------------------------------------------------ warm runs
    plain = PlainLoop(cold_cfg, shape[0], n_out, shape, n_train, device)
    data_path = DataPath(cold_cfg, items, device)
    if len(plain.batches) != cold_epoch.batches:
        print(f"  note: plain loop has {len(plain.batches)} batches, the engine "
              f"{cold_epoch.batches}")
    fp32_runs: list[Run] = []
    bf16_runs: list[Run] = []
    pairs: list[tuple[float, float]] = []
    bf16_pairs: list[tuple[float, float]] = []
    for r in range(args.repeat):
        plain.run = r
        run = engine_run(config("off", args.epochs), dataset, work / "runs" / f"fp32-{r}",
                         per_batch=plain.step, per_epoch=data_path.epoch)
        fp32_runs.append(run)
        pairs += [(e.train, plain.epochs[(r, e.epoch)]) for e in run.epochs()[1:]]
        plain.run = f"bf16-{r}"  # the plain fp32 loop again, as a reference for the load
        run = engine_run(config("bf16", args.epochs), dataset, work / "runs" / f"bf16-{r}",
                         per_batch=plain.step)
        bf16_runs.append(run)
        bf16_pairs += [(e.train, plain.epochs[(plain.run, e.epoch)]) for e in run.epochs()[1:]]
    if sampler is not None:
        # Utilisation needs the engine and the plain loop apart (not interleaved): one more
        # engine run and as many plain epochs, after the timed ones.
        engine_run(config("off", args.epochs), dataset, work / "runs" / "gpu-util",
                   sampler=sampler, label="engine")
        sampler.label = "plain"
        for _ in range(args.epochs):
            plain.whole_epoch()
        sampler.label = None
        sampler.stop()

    later = [e for run in fp32_runs for e in run.epochs()[1:]]
    engine_train = min(e.train for e in later)
    engine_seconds = min(e.seconds for e in later)
    plain_best = min(p for _, p in pairs)
    warm_start = min(run.first_epoch_end() for run in fp32_runs)

    # ------------------------------------------------------------------ 1. + 4.
    print("\nengine, warm sample store, fp32, later epochs:")
    print(f"  training part {fmt_list(e.train for e in later)} s")
    print(f"  epoch seconds (training + validation) {fmt_list(e.seconds for e in later)} s; "
          f"validation ≈ {fmt_list(e.seconds - e.train for e in later)} s; wall incl. checkpoint "
          f"{fmt_list(e.wall for e in later)} s")
    print(f"  warm start: {warm_start:.2f} s from the run's start to the end of epoch 1 "
          f"(store hit, no decoding)")
    print(f"plain PyTorch loop, fp32, {n_train} samples, batch {bs}, inputs in memory, "
          f"each step right after the engine's:")
    print(f"  epochs {fmt_list(p for _, p in pairs)} s")
    epoch_vs_compute = engine_train / plain_best
    pair_median = statistics.median(e / p for e, p in pairs)
    total_ratio = sum(e for e, _ in pairs) / sum(p for _, p in pairs)
    print(f"epoch vs compute: engine training part {engine_train:.3f} s vs plain loop "
          f"{plain_best:.3f} s (best of {len(pairs)} epochs each) → {epoch_vs_compute:.2f} "
          f"(goal ≤ {GOAL_EPOCH_VS_COMPUTE:.2f}); same epochs paired: median ratio "
          f"{pair_median:.2f}, total time ratio {total_ratio:.2f}")
    print(f"throughput: engine {n_train / engine_train:.1f} samples/s, plain PyTorch loop "
          f"{n_train / plain_best:.1f} samples/s (best epochs)")
    data_best = min(data_path.times)
    print(f"engine's data path alone (SampleDataset + DataLoader built as the engine builds them, "
          f"no model): {data_best * 1000:.1f} ms per epoch (best of {len(data_path.times)}) = "
          f"{100 * data_best / plain_best:.1f} % of the plain loop's epoch")
    if sampler is not None:
        def pct(label: str) -> str:
            v = sampler.mean(label)
            return "n/a" if v is None else f"{v:.0f} %"

        print(f"GPU utilisation (mean, separate untimed runs): engine {pct('engine')}, plain loop "
              f"{pct('plain')}")
    elif device.type == "cuda":
        print("GPU utilisation: not measured (neither pynvml nor nvidia-smi available)")

    # ------------------------------------------------------------------ 2.
    cached_vs_first = engine_seconds / cold_total
    print(f"\nfirst vs later epoch: later epoch {engine_seconds:.2f} s (training + validation, "
          f"warm store) / first run {cold_total:.2f} s (decode + prepare + set-up + epoch 1) "
          f"→ cached_vs_first {cached_vs_first:.2f}")

    # ------------------------------------------------------------------ 3.
    bf16_later = [e for run in bf16_runs for e in run.epochs()[1:]]
    bf16_train = min(e.train for e in bf16_later)
    bf16_rel = statistics.median(e / p for e, p in bf16_pairs)
    fp32_rel = statistics.median(e / p for e, p in pairs)
    bf16_vs_fp32 = bf16_rel / fp32_rel
    print(f"\nbf16 vs fp32 on {device.type} (engine training part, later epochs):")
    print(f"  bf16 autocast {fmt_list(e.train for e in bf16_later)} s; fp32 "
          f"{fmt_list(e.train for e in later)} s")
    print(f"  plain fp32 loop in the same epochs: {fmt_list(p for _, p in bf16_pairs)} s (bf16 "
          f"runs), {fmt_list(p for _, p in pairs)} s (fp32 runs)")
    print(f"  engine / plain loop of the same epochs (median): bf16 {bf16_rel:.2f}, fp32 "
          f"{fp32_rel:.2f} → {bf16_vs_fp32:.2f}; best epochs, not corrected for load: bf16 "
          f"{bf16_train:.3f} s / fp32 {engine_train:.3f} s = {bf16_train / engine_train:.2f} "
          f"({n_train / bf16_train:.1f} vs {n_train / engine_train:.1f} samples/s)")

    other = share.other()
    if other is not None:
        used, avail = other
        print(f"\nother processes used {used:.0f} of {avail:.0f} CPU-seconds during this run "
              f"({100 * used / avail:.0f} %); load average now {os.getloadavg()[0]:.2f}")
    print(f"bf16_vs_fp32={bf16_vs_fp32:.2f}")
    print(f"epoch_vs_compute={epoch_vs_compute:.2f} cached_vs_first={cached_vs_first:.2f}")


if __name__ == "__main__":
    main()
