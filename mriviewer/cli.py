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


def default_demo_dir() -> Path:
    """Where ``mriviewer view --demo`` keeps its generated demo (``~/.cache/mriviewer/demo``)."""
    return Path.home() / ".cache" / "mriviewer" / "demo"


def ensure_demo(path: Path | None = None) -> Path:
    """The demo dataset at ``path`` (default :func:`default_demo_dir`), generated if absent."""
    from .demo import make_demo_dataset

    path = path or default_demo_dir()
    if not (path / "train_labels.csv").is_file():
        make_demo_dataset(path)
    return path


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

    t = sub.add_parser("train", help="train a classifier (same engine as the GUI)")
    t.add_argument("--data", required=True, help="dataset folder")
    t.add_argument("--model", required=True, help="resnet18-2d or r3d-18")
    t.add_argument("--epochs", type=int, required=True)
    t.add_argument("--out", required=True, help="output folder for best.pt, config.json, metrics.json")
    t.add_argument("--modalities", nargs="+", help="input modalities (default: the dataset's first)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu or cuda")
    t.add_argument("--image-size", type=int, help="in-plane size in pixels (default 128)")
    t.add_argument("--depth", type=int, help="slices in the stack for 3D models (default 32)")
    t.add_argument("--slices-per-case", type=int, help="slices per case for 2D models (default 8)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--val-fraction", type=float)
    t.add_argument("--pretrained", default="auto", help="auto (torch hub cache), none, or a weights file")
    _add_assign(t)

    pr = sub.add_parser("predict", help="predict every case of a dataset")
    pr.add_argument("--checkpoint", required=True)
    pr.add_argument("--data", required=True)
    pr.add_argument("--out", required=True, help="CSV file")
    pr.add_argument("--device", default="auto")
    _add_assign(pr)

    r = sub.add_parser("report", help="write a per-case PDF report with Grad-CAM")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--case", required=True, help="case id as listed by `mriviewer info`")
    r.add_argument("--out", required=True, help="PDF file")
    r.add_argument("--device", default="auto")
    _add_assign(r)

    c = sub.add_parser("convert", help="write a series, a file or one modality of a case as NIfTI")
    c.add_argument("path", help="DICOM series folder, DICOM/NIfTI file, case or dataset folder")
    c.add_argument("--out", required=True, help="output .nii or .nii.gz")
    c.add_argument("--modality", help="which modality of the case (default: the first present)")
    c.add_argument("--case", help="case id when PATH holds several cases")
    _add_assign(c)

    d = sub.add_parser("demo", help="write the synthetic demo dataset (RSNA-MICCAI layout)")
    d.add_argument("--out", required=True)
    d.add_argument("--cases", type=int, default=24)
    d.add_argument("--seed", type=int, default=0)
    return p


def _add_assign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assign", action="append", default=[], metavar="OLD=NEW",
                        help="rename a modality in every case, e.g. other=T2w (repeatable)")
    parser.add_argument("--volume", type=int, default=1, metavar="N",
                        help="which volume of 4D NIfTI files (1-based, default 1)")


def _discover(path, assign: list[str], volume: int = 1):
    """discover() plus the user's modality assignments and 4D volume choice (1-based)."""
    from .datasets import assign_modality, discover

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
        "spacing_mm", "affine", "axcodes", "acquisition_plane"}}, "errors"}]}``. Standard
        modalities a case lacks are ``null``.
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
        label_name = ds.label_name(case)
        cases.append({"case_id": case.case_id, "label": case.label, "label_name": label_name,
                      "modalities": mods, "errors": errors})
    return {
        "root": str(ds.root), "layout": ds.layout, "task": ds.task, "class_names": ds.class_names,
        "label_source": str(ds.label_source) if ds.label_source else None,
        "patient_ids": ds.patient_ids, "warnings": ds.warnings, "cases": cases,
    }


def _cmd_info(args) -> int:
    from .ml.engine import json_safe

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
        for e in c["errors"]:
            print(f"    error: {e}")
    return 0


def _cmd_train(args) -> int:
    from .ml.config import TrainConfig
    from .ml.engine import EpochEvent, LogEvent, ProgressEvent, Trainer

    ds = _discover(args.data, args.assign, args.volume)
    cfg = TrainConfig(model=args.model, epochs=args.epochs, seed=args.seed, device=args.device,
                      pretrained=args.pretrained, modalities=args.modalities or ds.modalities[:1])
    for name in ("image_size", "depth", "slices_per_case", "batch_size", "lr", "val_fraction"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    cfg.validate()
    unknown = [m for m in cfg.modalities if m not in ds.modalities]
    if unknown:
        raise MriViewerError(f"{args.data}: modality {', '.join(unknown)} not found (present: {', '.join(ds.modalities)})")
    print(f"mriviewer {__version__} — {RESEARCH_ONLY}", file=sys.stderr)
    trainer = Trainer(cfg, ds, args.out)
    gen = trainer.run()
    try:
        while True:
            ev = next(gen)
            if isinstance(ev, LogEvent):
                print(ev.message, file=sys.stderr)
            elif isinstance(ev, ProgressEvent) and ev.stage == "prepare" and ev.step == ev.total:
                print(f"Prepared {ev.total} cases.", file=sys.stderr)
            elif isinstance(ev, EpochEvent):
                r = ev.record
                print(f"epoch {r['epoch']:3d}  train_loss {r['train_loss']:.4f}  val_loss {r['val_loss']:.4f}  "
                      f"val_auc {_f(r['val_auc'])}  val_acc {_f(r['val_accuracy'])}  {r['seconds']:.1f}s"
                      + ("  *best" if r["is_best"] else ""), file=sys.stderr)
    except StopIteration as done:
        result = done.value
    except KeyboardInterrupt:
        trainer.stop()
        print("Interrupted; the best checkpoint so far is kept.", file=sys.stderr)
        return 130
    print(json.dumps({"checkpoint": str(result.checkpoint) if result.checkpoint else None,
                      "best_epoch": result.best.get("epoch"), "val_auc": _f(result.best.get("val_auc")),
                      "val_auc_ci95": [_f(v) for v in result.best.get("val_auc_ci95", [])]}))
    return 0


def _f(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def _cmd_predict(args) -> int:
    from .cache import default_cache
    from .ml.predict import Predictor
    from .report import write_predictions_csv

    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume)
    preds = []
    for case in ds.cases:
        try:
            preds.append(predictor.predict(case, default_cache().get))
        except MriViewerError as exc:
            print(f"case {case.case_id} skipped: {exc}", file=sys.stderr)
    if not preds:
        raise MriViewerError(f"{args.data}: no case could be predicted")
    write_predictions_csv(preds, predictor.class_names, args.out, ds)
    print(f"{len(preds)} predictions written to {args.out}", file=sys.stderr)
    return 0


def _cmd_report(args) -> int:
    from .cache import default_cache
    from .ml.predict import Predictor
    from .report import build_report_inputs, write_case_report

    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume)
    case = ds.case(args.case)
    inputs = build_report_inputs(predictor, case, default_cache().get)
    write_case_report(inputs, args.out)
    print(f"report written to {args.out}", file=sys.stderr)
    return 0


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
    nib.save(img, str(out))
    print(f"{case.case_id} {modality} {'x'.join(map(str, vol.shape))} {''.join(vol.axcodes)} -> {out}", file=sys.stderr)
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
        path = str(ensure_demo())
    return run_app(path, checkpoint=args.checkpoint)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        args = parser.parse_args(["view", *(argv or [])])
    handlers = {"view": _cmd_view, "info": _cmd_info, "train": _cmd_train, "predict": _cmd_predict,
                "report": _cmd_report, "convert": _cmd_convert, "demo": _cmd_demo}
    try:
        return handlers[args.command](args)
    except MriViewerError as exc:
        print(f"mriviewer: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"mriviewer: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
