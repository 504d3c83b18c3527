"""The ``mriviewer`` command line: subcommands and their options.
"""

from __future__ import annotations

import argparse

from mriviewer import RESEARCH_ONLY, __version__
from mriviewer.ml.config import MODEL_NAMES
from mriviewer.ml.config_fields import settable_keys


def build_parser() -> argparse.ArgumentParser:
    """The ``mriviewer`` argument parser: one sub-parser per command (``view`` when none is given)."""
    p = argparse.ArgumentParser(
        prog="mriviewer",
        description=f"Brain-MRI viewer that trains classifiers and shows Grad-CAM. {RESEARCH_ONLY}",
    )
    p.add_argument("--version", action="version", version=f"mriviewer {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = p.add_subparsers(dest="command")
    for add in (_add_view, _add_info, _add_presets, _add_train, _add_evaluate, _add_cam_check, _add_predict,
                _add_report, _add_convert, _add_demo, _add_cache, _add_desktop, _add_labels_command, _add_runs,
                _add_compare):
        add(sub)
    return p


_CHECKPOINT_HELP = "a checkpoint written by `mriviewer train` (best.pt)"
_DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"


def _add_view(sub) -> None:
    v = sub.add_parser("view", help="open the GUI on a dataset, case, series or file")
    v.add_argument("path", nargs="?", help="dataset folder, case folder, DICOM series, NIfTI or image")
    v.add_argument("--demo", action="store_true", help="open the built-in demo dataset")
    v.add_argument("--checkpoint", help=f"load {_CHECKPOINT_HELP} at start")


def _add_info(sub) -> None:
    i = sub.add_parser("info", help="describe the cases, modalities and geometry found in PATH")
    i.add_argument("path", metavar="PATH", help="dataset folder, case folder, DICOM series, NIfTI or image")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--no-headers", action="store_true", help="list files only, do not read image headers")
    i.add_argument("--decode", action="store_true",
                   help="decode every volume (checks the pixels; slow on large cohorts) instead of reading headers only")
    _add_assign(i)
    _add_labels(i)


def _add_presets(sub) -> None:
    ps = sub.add_parser("presets", help="list the papers' pipelines (presets)")
    ps.add_argument("--json", action="store_true", help="print JSON with every value")


def _add_train(sub) -> None:
    t = sub.add_parser("train", help="train a classifier (same engine as the GUI; torchrun for several processes)",
                       description="Train with a preset (the papers' pipelines) or a model. Evaluation: train / "
                                   "validation (checkpoint choice) / test (reported), split by patient.")
    t.add_argument("--data", required=True, action="append", metavar="[LABEL=]PATH",
                   help="dataset folder; repeat as LABEL=PATH to assemble classes from folders "
                        "(e.g. --data HGG=a --data LGG=b --data healthy=c)")
    t.add_argument("--preset", help="preset name (see `mriviewer presets`)")
    t.add_argument("--model", metavar="MODEL",
                   help=f"network, when no preset is given (or to override the preset's): {', '.join(MODEL_NAMES)}")
    t.add_argument("--out", required=True, help="output folder for best.pt, config.json, metrics.json")
    t.add_argument("--epochs", type=int)
    t.add_argument("--modalities", nargs="+", help="input modalities (default: the preset's, else the dataset's first)")
    t.add_argument("--folds", type=int, help="k-fold cross-validation (test = each fold in turn)")
    t.add_argument("--split", help="holdout fractions train/validation/test, e.g. 70/15/15")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set lr=0.01 --set augment.flip_lr=0.25 (repeatable); "
                        f"keys: {', '.join(settable_keys())}")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help=_DEVICE_HELP)
    t.add_argument("--image-size", type=int, help="in-plane size in pixels")
    t.add_argument("--depth", type=int, help="slices in the stack for 3D models")
    t.add_argument("--slices-per-case", type=int, help="slices per case for 2D models")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--pretrained", help="auto (torch hub cache), none, or a weights file")
    t.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    _add_assign(t)
    _add_labels(t)


def _add_evaluate(sub) -> None:
    ev = sub.add_parser("evaluate", help="test a checkpoint on an external labelled set (same metrics.json)")
    _add_model_and_data(ev, missing_modality=True)
    ev.add_argument("--out", required=True, help="output folder for metrics.json and predictions.csv")
    ev.add_argument("--include-seen", action="store_true",
                    help="also score cases the model was trained or selected on (flattering; off by default)")


def _add_cam_check(sub) -> None:
    cc = sub.add_parser("cam-check", help="score Grad-CAM against tumour masks (pointing game, energy in mask)")
    _add_model_and_data(cc)
    cc.add_argument("--max-cases", type=int, default=0, help="score at most N cases with a mask (0 = all)")
    cc.add_argument("--class", dest="explain", metavar="NAME",
                    help="class whose map is scored (default: the case's label when known, else the prediction)")
    cc.add_argument("--json", action="store_true", help="print per-case scores and the summary as JSON")


def _add_predict(sub) -> None:
    pr = sub.add_parser("predict", help="predict every case of a dataset")
    _add_model_and_data(pr, missing_modality=True)
    pr.add_argument("--out", required=True, help="CSV file")


def _add_report(sub) -> None:
    r = sub.add_parser("report", help="write per-case PDF reports with Grad-CAM (one case, some, or all)",
                       description="One case (--case ID --out FILE.pdf), or a folder with one PDF per case and "
                                   "predictions.csv (--all or --cases ID,ID --out DIR). Exit status 1 when some "
                                   "cases failed (each is named on stderr), 2 when none could be reported.")
    _add_model_and_data(r)
    r.add_argument("--case", help="one case id as listed by `mriviewer info`; --out is the PDF file")
    r.add_argument("--all", action="store_true", help="every case of the data; --out is a folder")
    r.add_argument("--cases", metavar="ID,ID,...", help="only these cases (comma-separated); --out is a folder")
    r.add_argument("--out", required=True, help="PDF file (--case) or output folder (--all / --cases)")


def _add_convert(sub) -> None:
    c = sub.add_parser("convert", help="write a series, a file or one modality of a case as NIfTI")
    c.add_argument("path", help="DICOM series folder, DICOM/NIfTI file, case or dataset folder")
    c.add_argument("--out", required=True, help="output .nii or .nii.gz")
    c.add_argument("--modality", help="which modality of the case (default: the first present)")
    c.add_argument("--case", help="case id when PATH holds several cases")
    _add_assign(c)


def _add_demo(sub) -> None:
    d = sub.add_parser("demo", help="write the synthetic demo dataset (RSNA-MICCAI layout)")
    d.add_argument("--out", required=True, help="folder to write the demo into (created; e.g. runs/demo-data)")
    d.add_argument("--cases", type=int, default=32, help="number of cases (default 32, as view --demo)")
    d.add_argument("--seed", type=int, default=0, help="random seed of the phantoms (default 0)")


def _add_cache(sub) -> None:
    ca = sub.add_parser("cache", help="show (--info, the default) or empty (--clear) the disk caches of decoded "
                                      "volumes and training samples")
    what = ca.add_mutually_exclusive_group()
    what.add_argument("--info", action="store_true", help="location, entries, total size and limit (default)")
    what.add_argument("--clear", action="store_true", help="delete every cached entry (asks nothing; prints what "
                                                           "it removed)")
    ca.add_argument("--json", action="store_true", help="print JSON")


def _add_desktop(sub) -> None:
    de = sub.add_parser("desktop", help="install (or --remove) the desktop launcher and icon for this user",
                        description="Writes mriviewer.desktop to $XDG_DATA_HOME/applications (default "
                                    "~/.local/share/applications) and the icon to icons/hicolor/scalable/apps, "
                                    "with Exec pointing at this installation's mriviewer command.")
    de.add_argument("--remove", action="store_true", help="remove the launcher and icon installed earlier")
    de.add_argument("--data-home", metavar="DIR", help="instead of $XDG_DATA_HOME (~/.local/share)")


def _add_model_and_data(parser: argparse.ArgumentParser, missing_modality: bool = False) -> None:
    """The options of every command that applies a checkpoint to data: ``--checkpoint``,
    repeatable ``--data [LABEL=]PATH``, ``--device``, the modality options and, where asked,
    ``--allow-missing-modality``."""
    parser.add_argument("--checkpoint", required=True, help=_CHECKPOINT_HELP)
    parser.add_argument("--data", required=True, action="append", metavar="[LABEL=]PATH",
                        help="dataset folder; repeat as LABEL=PATH to assemble classes from folders")
    parser.add_argument("--device", default="auto", help=_DEVICE_HELP + " (default auto)")
    if missing_modality:
        parser.add_argument("--allow-missing-modality", action="store_true",
                            help="predict with zeros for a modality the data lacks (otherwise an error)")
    _add_assign(parser)
    _add_labels(parser)


def _add_labels(parser: argparse.ArgumentParser) -> None:
    """The user's label table: ``--labels FILE`` and its columns, mapping and exclusions."""
    g = parser.add_argument_group("labels from your own table (CSV, TSV or Excel .xlsx)")
    g.add_argument("--labels", metavar="FILE", help="label table; replaces labels found beside the data")
    g.add_argument("--label-column", metavar="NAME", help="the column holding the class (e.g. IDH)")
    g.add_argument("--id-column", metavar="NAME",
                   help="the column of case or patient ids (default: the column matching most ids; said)")
    g.add_argument("--patient-column", metavar="NAME", help="a column naming each case's patient")
    g.add_argument("--label-map", metavar="V=CLASS,...",
                   help='map values to classes, e.g. "2=LGG,3=LGG,4=HGG" (unmapped values: unlabelled)')
    g.add_argument("--exclude-label", action="append", default=[], metavar="VALUE",
                   help="leave out cases with this value (raw or mapped; repeatable)")


def _add_labels_command(sub) -> None:
    la = sub.add_parser("labels", help="check a label table against a dataset (columns, matches, conflicts)",
                        description="Shows each column with its type and value counts, which column holds the "
                                    "ids (detected unless --id-column), how many ids match cases, the cases "
                                    "without a row and the rows without a case, repeated and conflicting ids, "
                                    "and the classes the chosen --label-column makes.")
    la.add_argument("file", metavar="FILE", help="CSV, TSV or Excel .xlsx table")
    la.add_argument("--data", required=True, action="append", metavar="[LABEL=]PATH", help="dataset folder")
    la.add_argument("--json", action="store_true", help="print JSON")
    for opt, kw in (("--label-column", {"metavar": "NAME"}), ("--id-column", {"metavar": "NAME"}),
                    ("--patient-column", {"metavar": "NAME"}), ("--label-map", {"metavar": "V=CLASS,..."})):
        la.add_argument(opt, **kw)
    la.add_argument("--exclude-label", action="append", default=[], metavar="VALUE")


def _add_runs(sub) -> None:
    ru = sub.add_parser("runs", help="list the training runs under a folder with their test AUC (sortable)")
    ru.add_argument("dir", metavar="DIR", help="a folder of runs (each holds metrics.json and config.json)")
    ru.add_argument("--sort", choices=("date", "auc", "name"), default="date",
                    help="newest first (default), best test AUC first, or by path")
    ru.add_argument("--json", action="store_true", help="print JSON")


def _add_compare(sub) -> None:
    co = sub.add_parser("compare", help="is one run better than another on the same cases? (paired ΔAUC, DeLong, "
                                        "McNemar)",
                        description="Compares runs on paired cases: their own test set (refused when the runs' "
                                    "splits differ), or with --data a labelled set every run predicts, leaving out "
                                    "cases any run trained or selected on. Binary tasks: ΔAUC with a paired "
                                    "bootstrap 95%% interval (1000 resamples, seed 0), DeLong's test and McNemar's "
                                    "exact test; multiclass: one-vs-rest macro ΔAUC (bootstrap) and McNemar. Every "
                                    "pair of runs; p-values also Holm-adjusted.")
    co.add_argument("runs", nargs="+", metavar="RUN", help="two or more run folders (or their best.pt)")
    co.add_argument("--data", action="append", metavar="[LABEL=]PATH",
                    help="a labelled dataset every run predicts (repeat as LABEL=PATH to assemble classes)")
    co.add_argument("--json", action="store_true", help="print JSON")
    co.add_argument("--out", metavar="FILE.png", help="write the runs' ROC curves in one plot (PNG)")
    co.add_argument("--device", default="auto", help=_DEVICE_HELP + " (default auto; --data only)")
    co.add_argument("--allow-missing-modality", action="store_true",
                    help="predict with zeros for a modality the data lacks (--data only; otherwise an error)")
    _add_assign(co)
    _add_labels(co)


def _add_assign(parser: argparse.ArgumentParser) -> None:
    """``--assign OLD=NEW`` (rename a modality) and ``--volume N`` (which volume of a 4D source)."""
    parser.add_argument("--assign", action="append", default=[], metavar="OLD=NEW",
                        help="rename a modality in every case, e.g. other=T2w (repeatable)")
    parser.add_argument("--volume", type=int, default=1, metavar="N",
                        help="which volume of 4D NIfTI files or multi-volume DICOM series (time points, "
                             "b-values, echoes, mosaic files); 1-based, default 1")
