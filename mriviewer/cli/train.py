"""``mriviewer train`` and ``mriviewer presets``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mriviewer import RESEARCH_ONLY, __version__
from mriviewer.cli.common import _discover, _f, label_spec
from mriviewer.core.errors import MriViewerError


def _train_config(args, ds):
    """The run's config: the preset (or defaults), then the CLI's flags and ``--set`` values, all
    recorded as overrides."""
    from mriviewer.ml.config import TrainConfig, parse_set_values
    from mriviewer.ml.presets import get_preset

    overrides = {}
    if args.model:
        overrides["model"] = args.model
    for name in ("epochs", "seed", "device", "image_size", "depth", "slices_per_case", "batch_size", "lr",
                 "pretrained", "folds"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.modalities:
        overrides["modalities"] = args.modalities
    if args.split:
        try:
            parts = [float(v) for v in args.split.replace(",", "/").split("/")]
        except ValueError:
            raise MriViewerError(f"--split {args.split!r}: expected three numbers, e.g. 70/15/15") from None
        total = sum(parts)
        overrides["split"] = [round(v / total, 6) for v in parts] if total > 0 else parts
        overrides.setdefault("folds", 0)
    overrides.update(parse_set_values(args.set))
    if args.preset:
        cfg = get_preset(args.preset).config(overrides)
    else:
        if not args.model:
            raise MriViewerError("give --preset NAME (see `mriviewer presets`) or --model NAME")
        base = TrainConfig(modalities=ds.modalities[:1])
        if all(c.is_2d for c in ds.cases):
            base.modalities = ["image"]
        cfg = base.with_overrides(overrides)
    if cfg.modalities == ["image"] and not all(c.is_2d for c in ds.cases):
        cfg = cfg.with_overrides({"modalities": ds.modalities[:1]})
    return cfg


def _cmd_presets(args) -> int:
    from mriviewer.ml.presets import list_presets

    presets = list_presets()
    if args.json:
        print(json.dumps([p.describe() for p in presets], indent=2))
        return 0
    width = max(len(p.name) for p in presets)
    for p in presets:
        print(f"{p.name:<{width}}  v{p.version}  {p.task}")
        print(f"{'':<{width}}       {p.summary}")
        print(f"{'':<{width}}       paper: {p.paper}")
    return 0


def _cmd_train(args) -> int:
    import os

    from mriviewer.ml.engine import Trainer
    from mriviewer.ml.events import EpochEvent, FoldEvent, LogEvent, ProgressEvent

    ds = _discover(args.data, args.assign, args.volume, label_spec(args))
    cfg = _train_config(args, ds)
    unknown = [m for m in cfg.modalities if m not in ds.modalities
               and not any(f in ds.modalities for f in cfg.modality_fallback.get(m, []))]
    if unknown and not (cfg.modalities == ["image"] and all(c.is_2d for c in ds.cases)):
        raise MriViewerError(f"{', '.join(map(str, args.data))}: modality {', '.join(unknown)} not found "
                             f"(present: {', '.join(ds.modalities)}); choose with --modalities")
    out = Path(args.out)
    main_rank = int(os.environ.get("RANK", "0") or 0) == 0
    earlier = [f for f in ("best.pt", "metrics.json") if (out / f).exists()] if out.is_dir() else []
    if not earlier and out.is_dir():  # a per-modality run keeps its models in <out>/<modality>/
        earlier = [str(p.relative_to(out)) for p in sorted(out.glob("*/best.pt"))][:1]
    if main_rank and earlier and not args.overwrite:
        raise MriViewerError(f"{out}: holds an earlier run ({earlier[0]}); choose another --out or add --overwrite")

    def err(*a):
        if main_rank:
            print(*a, file=sys.stderr, flush=True)

    err(f"mriviewer {__version__} — {RESEARCH_ONLY}")
    if cfg.preset:
        err(f"Preset {cfg.preset} v{cfg.preset_version}" + (f", overrides: {json.dumps(cfg.overrides)}" if cfg.overrides else ""))
    suggested = _suggested_modalities(ds)
    if suggested and not args.modalities and suggested != list(cfg.modalities):
        err(f"warning: the dataset's mriviewer.json suggests --modalities {' '.join(suggested)}; training on "
            f"{', '.join(cfg.modalities)} as {'the preset' if cfg.preset else 'the default'} says.")
    trainer = Trainer(cfg, ds, out)
    gen = trainer.run()
    progress = _PrepareProgress(err)
    try:
        while True:
            ev = next(gen)
            if isinstance(ev, LogEvent):
                err(("warning: " if ev.level == "warning" else "") + ev.message)
            elif isinstance(ev, ProgressEvent) and ev.stage == "prepare":
                progress(ev)
            elif isinstance(ev, EpochEvent):
                r = ev.record
                err(f"{r.fold:>8} epoch {r.epoch:3d}  train_loss {r.train_loss:.4f}  val_loss {r.val_loss:.4f}  "
                    f"val_auc {_f(r.val_auc)}  val_acc {_f(r.val_accuracy)}  lr {r.lr:.2g}  {r.seconds:.1f}s"
                    + ("  *best" if r.is_best else ""))
            elif isinstance(ev, FoldEvent):
                err(f"{ev.name} done ({ev.index}/{ev.total}).")
    except StopIteration as done:
        result = done.value
    except KeyboardInterrupt:
        trainer.stop()
        best = sorted(Path(trainer.out_dir).rglob("best.pt"))
        err("Interrupted; the best checkpoint so far is kept: " + ", ".join(map(str, best)) if best
            else "Interrupted before the first epoch ended: no checkpoint was written.")
        return 130
    if main_rank and "per_modality" in result.metrics:
        print(json.dumps({"checkpoint": str(result.checkpoint) if result.checkpoint else None,
                          "chosen_on_validation": result.metrics["chosen_on_validation"],
                          "per_modality": {m: {"test_auc": _f((r["test"] or {}).get("auc")),
                                               "test_auc_ci": [_f(v) for v in (r["test"] or {}).get("auc_ci") or []],
                                               "test_cases": (r["test"] or {}).get("n_cases")}
                                           for m, r in result.metrics["per_modality"].items()}}))
    elif main_rank:
        test = result.metrics.get("test") or {}
        print(json.dumps({"checkpoint": str(result.checkpoint) if result.checkpoint else None,
                          "test_auc": _f(test.get("auc")), "test_auc_ci": [_f(v) for v in test.get("auc_ci") or []],
                          "test_accuracy": _f(test.get("accuracy")), "test_cases": test.get("n_cases"),
                          "warnings": len(result.metrics.get("warnings", []))}))
    return 0


def _suggested_modalities(ds) -> list[str]:
    """The input modalities the dataset's ``mriviewer.json`` suggests (``{"train": {"modalities":
    [...]}}``, e.g. the demo's T1wCE, where its label shows), or ``[]``."""
    train = ds.settings.get("train") if isinstance(ds.settings, dict) else None
    mods = train.get("modalities") if isinstance(train, dict) else None
    return [str(m) for m in mods] if isinstance(mods, list) else []


class _PrepareProgress:
    """Prints the preparation's progress every 5 s (cases done, share, time left) and its end."""

    def __init__(self, err, every_s: float = 5.0) -> None:
        import time

        self.err, self.every_s, self.clock = err, every_s, time.monotonic
        self.start = self.last = None

    def __call__(self, ev) -> None:
        now = self.clock()
        if self.start is None or ev.step <= 1:
            self.start, self.last = now, now
        if ev.step == ev.total:
            self.err(f"Prepared {ev.total} cases ({now - self.start:.0f} s).")
        elif now - self.last >= self.every_s:
            self.last = now
            left = (now - self.start) / max(ev.step, 1) * (ev.total - ev.step)
            self.err(f"Preparing cases: {ev.step}/{ev.total} ({100 * ev.step // ev.total}%), "
                     f"about {left:.0f} s left")
