"""The ``mriviewer`` command line: subcommands and their options.
"""

from __future__ import annotations

import argparse

from mriviewer import RESEARCH_ONLY, __version__


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
