"""The ``mriviewer`` command: GUI by default, and subcommands on the same engine.

``view`` is the only subcommand that imports Qt. Bad input ends with one line on stderr
(``mriviewer: error: …``) and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from . import RESEARCH_ONLY, __version__
from .errors import MriViewerError

__all__ = ["main", "build_parser", "dataset_info"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mriviewer",
        description=f"Brain-MRI viewer that trains classifiers and shows Grad-CAM. {RESEARCH_ONLY}",
    )
    p.add_argument("--version", action="version", version=f"mriviewer {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = p.add_subparsers(dest="command")

    v = sub.add_parser("view", help="open the GUI on a dataset, case, series or file")
    v.add_argument("path", nargs="?", help="dataset folder, case folder, DICOM series, NIfTI or image")
    v.add_argument("--demo", action="store_true", help="open the built-in demo dataset")
    v.add_argument("--checkpoint", help="load a trained checkpoint at start")

    i = sub.add_parser("info", help="describe the cases, modalities and geometry found in PATH")
    i.add_argument("path")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--no-headers", action="store_true", help="list files only, do not read image headers")
    _add_assign(i)

    ps = sub.add_parser("presets", help="list the papers' pipelines (presets)")
    ps.add_argument("--json", action="store_true", help="print JSON with every value")

    t = sub.add_parser("train", help="train a classifier (same engine as the GUI; torchrun for several processes)",
                       description="Train with a preset (the papers' pipelines) or a model. Evaluation: train / "
                                   "validation (checkpoint choice) / test (reported), split by patient.")
    t.add_argument("--data", required=True, action="append", metavar="[LABEL=]PATH",
                   help="dataset folder; repeat as LABEL=PATH to assemble classes from folders "
                        "(e.g. --data HGG=a --data LGG=b --data healthy=c)")
    t.add_argument("--preset", help="preset name (see `mriviewer presets`)")
    t.add_argument("--model", help="network, when no preset is given (or to override the preset's)")
    t.add_argument("--out", required=True, help="output folder for best.pt, config.json, metrics.json")
    t.add_argument("--epochs", type=int)
    t.add_argument("--modalities", nargs="+", help="input modalities (default: the preset's, else the dataset's first)")
    t.add_argument("--folds", type=int, help="k-fold cross-validation (test = each fold in turn)")
    t.add_argument("--split", help="holdout fractions train/validation/test, e.g. 70/15/15")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set lr=0.01 --set augment.flip_lr=0.25 (repeatable)")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--image-size", type=int, help="in-plane size in pixels")
    t.add_argument("--depth", type=int, help="slices in the stack for 3D models")
    t.add_argument("--slices-per-case", type=int, help="slices per case for 2D models")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--pretrained", help="auto (torch hub cache), none, or a weights file")
    t.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    _add_assign(t)

    ev = sub.add_parser("evaluate", help="test a checkpoint on an external labelled set (same metrics.json)")
    _add_model_and_data(ev, missing_modality=True)
    ev.add_argument("--out", required=True, help="output folder for metrics.json and predictions.csv")
    ev.add_argument("--include-seen", action="store_true",
                    help="also score cases the model was trained or selected on (flattering; off by default)")

    cc = sub.add_parser("cam-check", help="score Grad-CAM against tumour masks (pointing game, energy in mask)")
    _add_model_and_data(cc)
    cc.add_argument("--max-cases", type=int, default=0, help="score at most N cases with a mask (0 = all)")
    cc.add_argument("--class", dest="explain", metavar="NAME",
                    help="class whose map is scored (default: the case's label when known, else the prediction)")
    cc.add_argument("--json", action="store_true", help="print per-case scores and the summary as JSON")

    pr = sub.add_parser("predict", help="predict every case of a dataset")
    _add_model_and_data(pr, missing_modality=True)
    pr.add_argument("--out", required=True, help="CSV file")

    r = sub.add_parser("report", help="write per-case PDF reports with Grad-CAM (one case, some, or all)",
                       description="One case (--case ID --out FILE.pdf), or a folder with one PDF per case and "
                                   "predictions.csv (--all or --cases ID,ID --out DIR). Exit status 1 when some "
                                   "cases failed (each is named on stderr), 2 when none could be reported.")
    _add_model_and_data(r)
    r.add_argument("--case", help="one case id as listed by `mriviewer info`; --out is the PDF file")
    r.add_argument("--all", action="store_true", help="every case of the data; --out is a folder")
    r.add_argument("--cases", metavar="ID,ID,...", help="only these cases (comma-separated); --out is a folder")
    r.add_argument("--out", required=True, help="PDF file (--case) or output folder (--all / --cases)")

    c = sub.add_parser("convert", help="write a series, a file or one modality of a case as NIfTI")
    c.add_argument("path", help="DICOM series folder, DICOM/NIfTI file, case or dataset folder")
    c.add_argument("--out", required=True, help="output .nii or .nii.gz")
    c.add_argument("--modality", help="which modality of the case (default: the first present)")
    c.add_argument("--case", help="case id when PATH holds several cases")
    _add_assign(c)

    d = sub.add_parser("demo", help="write the synthetic demo dataset (RSNA-MICCAI layout)")
    d.add_argument("--out", required=True)
    d.add_argument("--cases", type=int, default=32, help="number of cases (default 32, as view --demo)")
    d.add_argument("--seed", type=int, default=0)

    ca = sub.add_parser("cache", help="show (--info, the default) or empty (--clear) the disk caches of decoded "
                                      "volumes and training samples")
    what = ca.add_mutually_exclusive_group()
    what.add_argument("--info", action="store_true", help="location, entries, total size and limit (default)")
    what.add_argument("--clear", action="store_true", help="delete every cached entry (asks nothing; prints what "
                                                           "it removed)")
    ca.add_argument("--json", action="store_true", help="print JSON")
    return p


def _add_model_and_data(parser: argparse.ArgumentParser, missing_modality: bool = False) -> None:
    """The options of every command that applies a checkpoint to data: ``--checkpoint``,
    repeatable ``--data [LABEL=]PATH``, ``--device``, the modality options and, where asked,
    ``--allow-missing-modality``."""
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, action="append", metavar="[LABEL=]PATH",
                        help="dataset folder; repeat as LABEL=PATH to assemble classes from folders")
    parser.add_argument("--device", default="auto")
    if missing_modality:
        parser.add_argument("--allow-missing-modality", action="store_true",
                            help="predict with zeros for a modality the data lacks (otherwise an error)")
    _add_assign(parser)


def _add_assign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assign", action="append", default=[], metavar="OLD=NEW",
                        help="rename a modality in every case, e.g. other=T2w (repeatable)")
    parser.add_argument("--volume", type=int, default=1, metavar="N",
                        help="which volume of 4D NIfTI files or multi-volume DICOM series (time points, "
                             "b-values, echoes, mosaic files); 1-based, default 1")


def _discover(path, assign: list[str], volume: int = 1):
    """discover() (or assemble() for several / labelled ``--data`` values) plus the user's
    modality assignments and 4D volume choice (1-based)."""
    from .datasets import assemble, assign_modality, discover, parse_data_args

    if isinstance(path, (list, tuple)):
        parsed = parse_data_args(list(path))
        if len(parsed) == 1 and parsed[0][0] is None:
            ds = discover(parsed[0][1])
        elif any(label is None for label, _ in parsed):
            raise MriViewerError("with several --data values, give each a class: --data LABEL=PATH")
        else:
            ds = assemble(parsed)
    else:
        ds = discover(path)
    if volume < 1:
        raise MriViewerError(f"--volume {volume}: volumes are numbered from 1")
    for case in ds.cases:
        for src in case.modalities.values():
            src.volume_index = volume - 1
    for item in assign or []:
        if "=" not in item:
            raise MriViewerError(f"--assign {item!r}: expected OLD=NEW, e.g. other=T2w")
        old, new = (v.strip() for v in item.split("=", 1))
        assign_modality(ds, old, new)
    return ds


def dataset_info(path: str | Path, read_headers: bool = True, assign: list[str] | None = None,
                 volume: int = 1) -> dict:
    """JSON-ready description of what :func:`~mriviewer.datasets.discover` finds at ``path``.

    Returns:
        ``{"root", "layout", "task", "class_names", "label_source", "warnings", "cases": [
        {"case_id", "label", "label_name", "modalities": {name: null | {"path", "shape",
        "spacing_mm", "affine", "axcodes", "acquisition_plane", "reason"}}, "errors"}]}``.
        Standard modalities a case lacks are ``null``; ``reason`` says why a source is that
        modality (``ModalitySource.reason``, e.g. "file name '3_AX_T2_FLAIR' ends in 'flair'").
    """
    from .cache import default_cache
    from .volume import MODALITIES

    ds = _discover(path, assign or [], volume)
    cases = []
    for case in ds.cases:
        mods: dict = {}
        names = list(MODALITIES) if not case.is_2d else []
        names += [m for m in case.modalities if m not in names]
        errors = list(case.errors)
        present = [m for m in names if m in case.modalities]
        # A case's series decode together, in parallel worker processes.
        loaded = default_cache().get_many([case.modalities[m] for m in present]) if read_headers else []
        for m in names:
            src = case.modalities.get(m)
            if src is None:
                mods[m] = None
            elif not read_headers:
                mods[m] = {"path": str(src.path)}
            elif isinstance(vol := loaded[present.index(m)], MriViewerError):
                mods[m] = {"path": str(src.path), "error": str(vol)}
                errors.append(str(vol))
            else:
                mods[m] = vol.describe()
            if src is not None:
                mods[m]["reason"] = getattr(src, "reason", "")
        label_name = ds.label_name(case)
        cases.append({"case_id": case.case_id, "label": case.label, "label_name": label_name,
                      "modalities": mods, "errors": errors})
    return {
        "root": str(ds.root), "layout": ds.layout, "task": ds.task, "class_names": ds.class_names,
        "label_source": str(ds.label_source) if ds.label_source else None,
        "patient_ids": ds.patient_ids, "warnings": ds.warnings, "cases": cases,
    }


def _cmd_info(args) -> int:
    from .fileio import json_safe

    info = dataset_info(args.path, read_headers=not args.no_headers, assign=args.assign, volume=args.volume)
    loaded = args.no_headers or any(
        d and "shape" in d for c in info["cases"] for d in c["modalities"].values()
    )
    if args.json:
        print(json.dumps(json_safe(info), indent=2))
        if not loaded:
            print(f"mriviewer: error: {args.path}: no case could be loaded (see errors)", file=sys.stderr)
        return 0 if loaded else 2
    print(f"{info['root']}: {info['layout']}, {len(info['cases'])} case(s), task {info['task']}")
    for w in info["warnings"]:
        print(f"  warning: {w}")
    for c in info["cases"]:
        present = {m: d for m, d in c["modalities"].items() if d}
        desc = ", ".join(
            f"{m} {'x'.join(map(str, d['shape']))} {d['axcodes']} {d['acquisition_plane']}" if "shape" in d else m
            for m, d in present.items()
        )
        print(f"  {c['case_id']}  label={c['label_name']}  {desc}")
        for m, d in present.items():
            if d.get("reason"):
                print(f"    {m}: {d['reason']}")
        for e in c["errors"]:
            print(f"    error: {e}")
    if not loaded:
        print(f"mriviewer: error: {args.path}: no case could be loaded (see errors)", file=sys.stderr)
        return 2
    return 0


def _train_config(args, ds):
    """The run's config: the preset (or defaults), then the CLI's flags and ``--set`` values, all
    recorded as overrides."""
    from .ml.config import TrainConfig, parse_set_values
    from .ml.presets import get_preset

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
    from .ml.presets import list_presets

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

    from .ml.engine import EpochEvent, FoldEvent, LogEvent, ProgressEvent, Trainer

    ds = _discover(args.data, args.assign, args.volume)
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
    trainer = Trainer(cfg, ds, out)
    gen = trainer.run()
    try:
        while True:
            ev = next(gen)
            if isinstance(ev, LogEvent):
                err(("warning: " if ev.level == "warning" else "") + ev.message)
            elif isinstance(ev, ProgressEvent) and ev.stage == "prepare" and ev.step == ev.total:
                err(f"Prepared {ev.total} cases.")
            elif isinstance(ev, EpochEvent):
                r = ev.record
                err(f"{r['fold']:>8} epoch {r['epoch']:3d}  train_loss {r['train_loss']:.4f}  val_loss {r['val_loss']:.4f}  "
                    f"val_auc {_f(r['val_auc'])}  val_acc {_f(r['val_accuracy'])}  lr {r['lr']:.2g}  {r['seconds']:.1f}s"
                    + ("  *best" if r["is_best"] else ""))
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


def _f(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def _predict_all(predictor, ds, allow_missing: bool):
    """Predictions of every case of ``ds`` that has the model's modalities (others reported)."""
    from .cache import default_cache

    missing = predictor.check_modalities(ds.modalities, allow_missing)
    if missing:
        print(f"warning: predicting with zeros for {', '.join(missing)} (--allow-missing-modality)", file=sys.stderr)
    preds = []
    for case in ds.cases:
        try:
            preds.append(predictor.predict(case, default_cache().get))
        except MriViewerError as exc:
            print(f"case {case.case_id} skipped: {exc}", file=sys.stderr)
    return preds


def _cmd_predict(args) -> int:
    from .ml.predict import Predictor
    from .report import write_predictions_csv

    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume)
    preds = _predict_all(predictor, ds, args.allow_missing_modality)
    if not preds:
        raise MriViewerError(f"{', '.join(args.data)}: no case could be predicted")
    by_id = {c.case_id: c for c in ds.cases}
    write_predictions_csv(preds, predictor.class_names, args.out, ds, role=lambda cid: predictor.role_of(by_id[cid]))
    roles = {}
    for p in preds:
        r = predictor.role_of(by_id[p.case_id])
        roles[r] = roles.get(r, 0) + 1
    print(f"{len(preds)} predictions written to {args.out} (split: "
          + ", ".join(f"{k} {v}" for k, v in roles.items()) + ")", file=sys.stderr)
    if roles.get("train") or roles.get("validation"):
        print("note: cases marked train/validation were used to fit or choose this model; "
              "only test and external rows measure it", file=sys.stderr)
    return 0


def _cmd_evaluate(args) -> int:
    """Metrics of a checkpoint on a labelled set, as ``metrics.json``'s ``"test"``: classes are
    matched by name; cases the model was trained or selected on are left out unless asked."""
    import numpy as np

    from .fileio import write_json
    from .ml.metrics import classification_metrics, format_metrics
    from .ml.predict import Predictor
    from .report import write_predictions_csv

    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume)
    if ds.task == "none":
        raise MriViewerError(f"{', '.join(args.data)}: no labels found; evaluate needs a labelled set")
    names = predictor.class_names
    unknown = [n for n in ds.class_names if n not in names]
    labelled = [c for c in ds.labelled()]
    warnings = []
    if unknown:
        skipped = [c for c in labelled if ds.class_names[c.label] in unknown]
        labelled = [c for c in labelled if ds.class_names[c.label] not in unknown]
        warnings.append(f"classes not known to the model, {len(skipped)} case(s) left out: {', '.join(unknown)}")
    seen = {c.case_id for c in labelled if predictor.role_of(c) in ("train", "validation")}
    if seen and not args.include_seen:
        labelled = [c for c in labelled if c.case_id not in seen]
        warnings.append(f"{len(seen)} case(s) the model was trained or selected on were left out")
    elif seen:
        warnings.append(f"{len(seen)} case(s) the model was trained or selected on are included: the figures flatter it")
    sub = type(ds)(ds.root, ds.layout, labelled, ds.class_names, ds.label_source, ds.warnings, ds.patient_ids)
    preds = _predict_all(predictor, sub, args.allow_missing_modality)
    if not preds:
        raise MriViewerError(f"{', '.join(args.data)}: no labelled case could be predicted")
    labels = np.array([names.index(ds.class_names[p.label]) for p in preds])
    probs = np.stack([p.probs for p in preds])
    m = classification_metrics(labels, probs, names)
    m["warnings"] = warnings + m["warnings"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", {"test": m, "external": True, "checkpoint": str(args.checkpoint),
                                      "data": [str(d) for d in args.data], "warnings": m["warnings"]})
    by_id = {c.case_id: c for c in ds.cases}
    write_predictions_csv(preds, names, out / "predictions.csv", ds, role=lambda cid: predictor.role_of(by_id[cid]))
    print(format_metrics(m, title="External test"), file=sys.stderr)
    print(json.dumps({"metrics": str(out / "metrics.json"), "auc": _f(m.get("auc")), "n_cases": m["n_cases"]}))
    return 0


def _cmd_cam_check(args) -> int:
    """Grad-CAM against tumour masks; last line ``pointing_game=H baseline=B energy_in_mask=E``."""
    import numpy as np

    from .cache import default_cache
    from .datasets import ModalitySource
    from .fileio import json_safe
    from .ml.camcheck import score_case, summarise
    from .ml.predict import Predictor, head_mask
    from .resample import resample_volume

    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume)
    cases = [c for c in ds.cases if c.segmentation is not None]
    if not cases:
        raise MriViewerError(f"{', '.join(args.data)}: no case has a tumour mask (BraTS seg / GT_W)")
    if args.max_cases:
        cases = cases[:args.max_cases]
    predictor.check_modalities(ds.modalities)
    explain = None
    if args.explain is not None:
        if args.explain not in predictor.class_names:
            raise MriViewerError(f"--class {args.explain!r}: the model's classes are {', '.join(predictor.class_names)}")
        explain = predictor.class_names.index(args.explain)
    cache = default_cache()
    rows = []
    for case in cases:
        try:
            # Explain the class asked for, else the case's true class when known, else the prediction.
            known = case.label is not None and ds.label_name(case) in predictor.class_names
            g = predictor.gradcam(case, cache.get, explain if explain is not None else
                                  predictor.class_names.index(ds.label_name(case)) if known else None)
            seg = cache.get(ModalitySource("SEG", case.segmentation, "nifti"))
            ref = g.reference
            mask = resample_volume(seg, ref.shape, ref.affine, nearest=True).data > 0.5
            if not mask.any():
                print(f"case {case.case_id}: empty mask, skipped", file=sys.stderr)
                continue
            brain = head_mask(ref.data) > 0
            s = score_case(g.cam, mask, brain)
        except (MriViewerError, ValueError) as exc:
            print(f"case {case.case_id} skipped: {exc}", file=sys.stderr)
            continue
        s["case_id"] = case.case_id
        s["role"] = predictor.role_of(case)
        rows.append(s)
        print(f"{case.case_id:<30} {s['role']:<10} hit {round(s['hit'], 2)}  "
              f"energy_in_mask {s['energy_in_mask']:.3f}  chance {s['baseline_hit']:.3f}"
              + ("  (empty map: no positive evidence, counted as a miss)" if s["empty"] else ""), file=sys.stderr)
    if not rows:
        raise MriViewerError("no case could be scored")
    summary = summarise(rows)
    if args.json:
        print(json.dumps(json_safe({"cases": rows, "summary": summary}), indent=2))
    lo, hi = summary["pointing_game_ci"]
    verdict = "beats" if summary["beats_chance"] else "does not beat"
    print(f"{summary['n_cases']} cases: pointing game {summary['pointing_game']:.2f} (95% CI {lo:.2f}–{hi:.2f}) vs "
          f"chance {summary['baseline']:.3f}; energy in mask {summary['energy_in_mask']:.3f} vs uniform "
          f"{summary['baseline_energy']:.3f} — the map {verdict} chance.", file=sys.stderr)
    if summary["empty_maps"]:
        print(f"warning: {summary['empty_maps']} of {summary['n_cases']} Grad-CAM maps are empty (no positive "
              "evidence for the class at the layer read); they count as misses", file=sys.stderr)
    if any(r["role"] in ("train", "validation") for r in rows):
        print("note: some scored cases were used to train or choose the model", file=sys.stderr)
    print(f"pointing_game={summary['pointing_game']:.3f} baseline={summary['baseline']:.3f} "
          f"energy_in_mask={np.nan_to_num(summary['energy_in_mask']):.3f}")
    return 0


def _cmd_report(args) -> int:
    from .cache import default_cache
    from .ml.predict import Predictor
    from .report import build_report_inputs, write_case_report

    if bool(args.case) == bool(args.all or args.cases):
        raise MriViewerError("give either --case ID (one PDF) or --all / --cases ID,ID (a folder of PDFs)")
    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume)
    if args.case:
        case = ds.case(args.case)
        inputs = build_report_inputs(predictor, case, default_cache().get, dataset=ds)
        write_case_report(inputs, args.out)
        print(f"report written to {args.out}", file=sys.stderr)
        return 0
    from .report import export_reports

    ids = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else None
    steps = export_reports(predictor, ds, args.out, ids, default_cache().get)
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:  # the generator returns its ExportSummary
            summary = stop.value
            break
        print(f"[{step.done}/{step.total}] case {step.case_id}: "
              + (f"{step.result}" if step.ok else f"not reported ({step.result})"), file=sys.stderr)
    if not summary.written:
        raise MriViewerError(f"{args.out}: no case could be reported")
    print(f"{len(summary.written)} report(s) and {summary.predictions_csv} written"
          + (f"; {len(summary.failed)} case(s) failed" if summary.failed else ""), file=sys.stderr)
    return 1 if summary.failed else 0


def _cmd_convert(args) -> int:
    """Write one volume as NIfTI: data in its stored (I, J, K) order with the voxel→RAS affine
    as sform and qform (code 1, scanner), like dcm2niix; no reorientation or resampling."""
    import nibabel as nib

    from .cache import default_cache

    ds = _discover(args.path, args.assign, args.volume)
    if args.case:
        case = ds.case(args.case)
    elif len(ds.cases) == 1:
        case = ds.cases[0]
    else:
        ids = ", ".join(c.case_id for c in ds.cases[:5])
        raise MriViewerError(f"{args.path}: {len(ds.cases)} cases ({ids}, …); choose one with --case")
    modality = args.modality or case.first_modality()
    if modality not in case.modalities:
        raise MriViewerError(f"case {case.case_id}: no {modality} (present: {', '.join(case.modalities) or 'none'})")
    vol = default_cache().get(case.modalities[modality])
    out = Path(args.out)
    if not (out.name.endswith(".nii") or out.name.endswith(".nii.gz")):
        raise MriViewerError(f"{out}: the output name must end in .nii or .nii.gz")
    img = vol.to_nifti()
    img.header["descrip"] = f"mriviewer {__version__} {modality}".encode()[:79]
    from .fileio import atomic_path

    with atomic_path(out, keep_suffix=True) as tmp:  # a full disk leaves no partial .nii.gz
        nib.save(img, str(tmp))
    print(f"{case.case_id} {modality} {'x'.join(map(str, vol.shape))} {''.join(vol.axcodes)} -> {out}", file=sys.stderr)
    return 0


def _cmd_cache(args) -> int:
    """``cache --info`` / ``--clear`` (:func:`mriviewer.cache.cache_info`, :func:`~mriviewer.cache.clear_cache`)."""
    from .cache import cache_info, clear_cache, format_cache_info, format_cleared

    info = cache_info()
    if args.clear:
        freed = clear_cache()
        print(json.dumps({"removed": info, "bytes_freed": freed}, indent=2) if args.json
              else format_cleared(info, freed))
        return 0
    print(json.dumps(info, indent=2) if args.json else format_cache_info(info))
    return 0


def _cmd_demo(args) -> int:
    from .demo import make_demo_dataset

    out = make_demo_dataset(args.out, n_cases=args.cases, seed=args.seed)
    print(f"demo dataset written to {out}", file=sys.stderr)
    return 0


def _cmd_view(args) -> int:
    from .ui.app import run_app

    path = args.path
    if args.demo:
        from .demo import ensure_demo

        path = str(ensure_demo())
    return run_app(path, checkpoint=args.checkpoint)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status. SIGTERM ends a command like Ctrl-C does
    (atexit handlers run: decoding worker processes are shut down, temporary files removed)
    instead of killing it outright; the previous handler is restored afterwards."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        args = parser.parse_args(["view", *(argv or [])])
    handlers = {"view": _cmd_view, "info": _cmd_info, "train": _cmd_train, "predict": _cmd_predict,
                "report": _cmd_report, "convert": _cmd_convert, "demo": _cmd_demo, "presets": _cmd_presets,
                "evaluate": _cmd_evaluate, "cam-check": _cmd_cam_check, "cache": _cmd_cache}
    try:
        return handlers[args.command](args)
    except MriViewerError as exc:
        print(f"mriviewer: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a training loop: no traceback
        print("mriviewer: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a missing or unwritable path, a full disk, an existing output…
        print(f"mriviewer: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
