"""``mriviewer compare RUN_A RUN_B [RUN_C …] [--data PATH] [--json] [--out FILE.png]``: is one run
better than another on the same patients?

Without ``--data`` the runs are compared on their own test cases, read from each run folder's
``predictions.csv`` (not predicted again), and only when every run's checkpoint records the same
test set (``checkpoint["split"]["test"]``: case ids and, where recorded, content fingerprints);
otherwise the comparison is refused with the reason. With ``--data`` every run predicts the
labelled set (as ``mriviewer evaluate``); cases any run trained or selected on, and other studies
of their patients, are left out and said; a run's own test cases there use its recorded
predictions. The statistics are :mod:`mriviewer.ml.compare`'s.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mriviewer.core.errors import MriViewerError

if TYPE_CHECKING:
    import numpy as np

_NEEDS_SAME_CASES = ("a paired comparison needs the same cases: train the runs on the same data with the same "
                     "split and seed, or compare them on a labelled set with --data PATH (cases any run trained "
                     "or selected on are left out there)")


@dataclass
class Run:
    """One run given on the command line: its folder, ``best.pt`` (metadata only, weights mapped)
    and recorded test predictions (case id → ``(label name, probabilities in class_names order)``,
    ``None`` without a readable ``predictions.csv``)."""

    arg: str
    folder: Path
    checkpoint: Path
    ckpt: dict
    class_names: list[str]
    recorded: dict | None
    name: str = ""


def load_run(arg: str) -> Run:
    """The run of a run folder or its ``best.pt``.

    Raises:
        MriViewerError: neither a folder holding ``best.pt`` nor a checkpoint file;
            CheckpointError: the checkpoint cannot be read.
    """
    from mriviewer.ml.checkpoint import load_checkpoint

    path = Path(arg)
    if path.is_dir():
        folder, ckpt_path = path, path / "best.pt"
        if not ckpt_path.is_file():
            raise MriViewerError(f"{arg}: no best.pt in this folder (a run folder holds best.pt, metrics.json "
                                 "and predictions.csv)")
    elif path.is_file():
        folder, ckpt_path = path.parent, path
    else:
        raise MriViewerError(f"{arg}: not a run folder or a checkpoint")
    ckpt = load_checkpoint(ckpt_path, mmap=True)
    names = list(ckpt["class_names"])
    return Run(arg, folder, ckpt_path, ckpt, names, read_predictions(folder / "predictions.csv", names))


def read_predictions(path: Path, class_names: list[str]) -> dict | None:
    """The ``test`` rows of a run's ``predictions.csv`` (written by the engine): case id →
    ``(label name, (K,) probabilities)``; ``None`` when the file is absent, unreadable or lacks a
    class's column."""
    import numpy as np

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    cols = [f"p_{n}" for n in class_names]
    out = {}
    for row in rows:
        if row.get("split") != "test":
            continue
        try:
            probs = np.array([float(row[c]) for c in cols])
        except (KeyError, TypeError, ValueError):
            return None
        out[_uncsv(row.get("case_id") or "")] = (_uncsv(row.get("label") or row.get("true_label") or ""), probs)
    return out


def _uncsv(text: str) -> str:
    """Undo :func:`~mriviewer.core.files.csv_text`'s spreadsheet escape."""
    return text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t", "\r") else text


def _name_runs(runs: list[Run]) -> None:
    """Display names: the folder names, or the paths as given when two folders share a name.

    Raises:
        MriViewerError: the same checkpoint given twice.
    """
    seen = {}
    for r in runs:
        key = r.checkpoint.resolve()
        if key in seen:
            raise MriViewerError(f"{r.arg} and {seen[key]}: the same run given twice")
        seen[key] = r.arg
    folders = [r.folder.resolve().name or str(r.folder) for r in runs]
    unique = len(set(folders)) == len(folders)
    for r, f in zip(runs, folders, strict=True):
        r.name = f if unique else r.arg


def _class_order(runs: list[Run]) -> list[list[int]]:
    """For each run, the column of each of the first run's classes (classes matched by name).

    Raises:
        MriViewerError: the runs do not have the same classes.
    """
    ref = runs[0].class_names
    for r in runs[1:]:
        if set(r.class_names) != set(ref):
            raise MriViewerError(f"{runs[0].name} and {r.name} have different classes ({', '.join(ref)} vs "
                                 f"{', '.join(r.class_names)}): they cannot be compared")
    return [[r.class_names.index(c) for c in ref] for r in runs]


# ---------------------------------------------------------------------------- own test sets
def _test_keys(run: Run, by_content: bool) -> list:
    """The run's test cases as keys: ``(id, fingerprint)`` with ``by_content``, else ids."""
    split = run.ckpt.get("split") or {}
    ids = [str(i) for i in split.get("test") or []]
    if not by_content:
        return ids
    return list(zip(ids, (split.get("fingerprints") or {}).get("test"), strict=True))


def _has_fingerprints(run: Run) -> bool:
    split = run.ckpt.get("split") or {}
    fps = (split.get("fingerprints") or {}).get("test")
    return isinstance(fps, list) and len(fps) == len(split.get("test") or []) and all(fps)


def _why_different(a: Run, b: Run, keys_a: list, keys_b: list) -> str:
    """Why two runs' test sets differ, in words (data, seed, split settings, fold)."""
    ca, cb = a.ckpt["config"], b.ckpt["config"]
    shared = len(set(keys_a) & set(keys_b))
    ids_a = {k[0] if isinstance(k, tuple) else k for k in keys_a}
    ids_b = {k[0] if isinstance(k, tuple) else k for k in keys_b}
    if ids_a == ids_b:
        return (f"{a.name} and {b.name} name the same {len(ids_a)} test cases, but their images differ (content "
                "fingerprints): another copy of the data, or changed files")
    why = []
    if str(a.ckpt.get("dataset_root")) != str(b.ckpt.get("dataset_root")):
        why.append(f"different data ({a.ckpt.get('dataset_root')} vs {b.ckpt.get('dataset_root')})")
    if ca.seed != cb.seed:
        why.append(f"different split seeds ({ca.seed} vs {cb.seed})")
    if list(ca.split) != list(cb.split) or ca.folds != cb.folds:
        why.append(f"different split settings ({_split_text(ca)} vs {_split_text(cb)})")
    if a.ckpt.get("fold") != b.ckpt.get("fold"):
        why.append(f"best.pt holds different folds ({a.ckpt.get('fold')} vs {b.ckpt.get('fold')})")
    share = "they share no test case" if not shared else f"they share {shared}"
    return (f"{a.name} and {b.name} were tested on different cases ({len(keys_a)} and {len(keys_b)} test cases; "
            f"{share}): {'; '.join(why) or 'different splits'}")


def _split_text(cfg) -> str:
    return f"{cfg.folds} folds" if cfg.folds else "holdout " + "/".join(f"{round(100 * f)}" for f in cfg.split)


def own_test_cases(runs: list[Run]) -> tuple[list[str], np.ndarray, list[np.ndarray], list[str]]:
    """The runs' shared test cases with their recorded predictions.

    Returns:
        ``(case ids, labels (N,) into the first run's classes, one (N, K) array per run, notes)``.

    Raises:
        MriViewerError: a run records no test set or no test predictions, the test sets differ
            (the reason named), or the recorded labels disagree.
    """
    import numpy as np

    order = _class_order(runs)
    for r in runs:
        if not (r.ckpt.get("split") or {}).get("test"):
            raise MriViewerError(f"{r.name}: its checkpoint records no test set (an older run); compare on a "
                                 "labelled set with --data PATH")
    by_content = all(_has_fingerprints(r) for r in runs)
    keys = [_test_keys(r, by_content) for r in runs]
    for r, k in zip(runs[1:], keys[1:], strict=True):
        if set(k) != set(keys[0]):
            raise MriViewerError(f"cannot compare on the runs' own test sets: {_why_different(runs[0], r, keys[0], k)}. "
                                 + _NEEDS_SAME_CASES[0].upper() + _NEEDS_SAME_CASES[1:] + ".")
    notes = [] if by_content else ["test sets matched by case id only: a checkpoint records no content fingerprints."]
    ref = runs[0].class_names
    ids0 = [k[0] if by_content else k for k in keys[0]]
    probs = []
    labels = None
    for r, k, cols in zip(runs, keys, order, strict=True):
        ids = dict(zip(k, (x[0] if by_content else x for x in k), strict=True))
        missing = [ids[key] for key in keys[0] if r.recorded is None or ids[key] not in r.recorded]
        if missing:
            raise MriViewerError(f"{r.name}: {r.folder / 'predictions.csv'} does not hold its test predictions "
                                 f"({len(missing)} of {len(k)} test cases missing; a best.pt copied without its "
                                 "folder?): compare on a labelled set with --data PATH")
        rows = [r.recorded[ids[key]] for key in keys[0]]
        names = [lab for lab, _ in rows]
        if labels is not None and names != labels:
            bad = sum(a != b for a, b in zip(names, labels, strict=True))
            raise MriViewerError(f"{runs[0].name} and {r.name} record different labels for {bad} test case(s) "
                                 "(another label table?): they cannot be compared")
        labels = names
        probs.append(np.stack([p for _, p in rows])[:, cols])
        if r.ckpt["config"].folds:
            notes.append(f"{r.name} is cross-validated: compared on the test cases of the fold in its best.pt "
                         f"({r.ckpt.get('fold')}), not on the pooled out-of-fold predictions.")
    unknown = sorted(set(labels) - set(ref))
    if unknown:
        raise MriViewerError(f"recorded test labels not among the classes: {', '.join(unknown)}")
    return ids0, np.array([ref.index(n) for n in labels]), probs, notes


# ---------------------------------------------------------------------------- an external set
def external_cases(runs: list[Run], args) -> tuple[list[str], np.ndarray, list[np.ndarray], list[str]]:
    """Every run's predictions of the labelled ``--data`` set, on the cases no run trained or
    selected on (nor other studies of their patients), paired.

    Returns:
        As :func:`own_test_cases`.

    Raises:
        MriViewerError: no labels, no case left, or no case that every run predicted.
    """
    import numpy as np

    from mriviewer.cli.common import _discover, label_spec
    from mriviewer.ml.seen import SeenIndex, left_out_messages

    order = _class_order(runs)
    ref = runs[0].class_names
    ds = _discover(args.data, args.assign, args.volume, label_spec(args))
    if ds.task == "none":
        raise MriViewerError(f"{', '.join(args.data)}: no labels found; compare needs a labelled set")
    notes = []
    labelled = [c for c in ds.labelled() if ds.class_names[c.label] in ref]
    unknown = sorted({ds.class_names[c.label] for c in ds.labelled()} - set(ref))
    if unknown:
        notes.append(f"classes not known to the runs, {len(ds.labelled()) - len(labelled)} case(s) left out: "
                     f"{', '.join(unknown)}")
    seen = []
    for r in runs:
        index = SeenIndex(r.ckpt.get("split") or {})  # as Predictor.seen_by
        seen.append({c.case_id: index.seen_by(c, ds) for c in labelled})
        notes += [f"{r.name}: {m}" for m in left_out_messages(seen[-1], included=False)]
    kept = [c for c in labelled if not any(s[c.case_id].trained for s in seen)]
    if len(kept) < len(labelled):
        notes.append(f"{len(labelled) - len(kept)} case(s) left out in all (a run trained or selected on them or "
                     f"their patients); {len(kept)} scored.")
    if not kept:
        raise MriViewerError(f"{', '.join(args.data)}: every labelled case was trained or selected on by a run")
    preds = [_run_predictions(r, s, kept, ds, args, notes) for r, s in zip(runs, seen, strict=True)]
    ids = [c.case_id for c in kept if all(c.case_id in p for p in preds)]
    if len(ids) < len(kept):
        notes.append(f"{len(kept) - len(ids)} case(s) not predicted by every run were left out (named above).")
    if not ids:
        raise MriViewerError("no case was predicted by every run")
    by_id = {c.case_id: c for c in kept}
    labels = np.array([ref.index(ds.class_names[by_id[i].label]) for i in ids])
    probs = [np.stack([p[i] for i in ids])[:, cols] for p, cols in zip(preds, order, strict=True)]
    own = [sum(s[i].role == "test" for i in ids) for s in seen]
    if any(own):
        notes.append(f"of the {len(ids)} scored cases, a run's own test cases: "
                     + ", ".join(f"{r.name} {n}" for r, n in zip(runs, own, strict=True))
                     + "; the others are external to that run.")
    return ids, labels, probs, notes


def _run_predictions(run: Run, seen: dict, cases: list, ds, args, notes: list[str]) -> dict:
    """case id → probabilities in ``run.class_names`` order: the recorded ones for the run's own
    test cases, the others predicted as ``evaluate`` does (the model loaded only when some are
    needed; the modalities checked against the whole set, a case lacking them skipped and said)."""
    import numpy as np

    recorded = run.recorded or {}
    out = {c.case_id: recorded[c.case_id][1] for c in cases
           if seen[c.case_id].role == "test" and c.case_id in recorded}
    todo = [c for c in cases if c.case_id not in out]
    if out:
        notes.append(f"{run.name}: its recorded test predictions used for {len(out)} case(s), {len(todo)} predicted.")
    if not todo:
        return out
    from mriviewer.cache.memory import default_cache
    from mriviewer.ml.predict import Predictor

    print(f"{run.name}: predicting {len(todo)} case(s)…", file=sys.stderr)
    predictor = Predictor.load(run.checkpoint, args.device)
    missing = predictor.check_modalities(ds.modalities, args.allow_missing_modality)
    if missing:
        print(f"warning: {run.name}: predicting with zeros for {', '.join(missing)} (--allow-missing-modality)",
              file=sys.stderr)
    for case in todo:
        try:
            out[case.case_id] = np.asarray(predictor.predict(case, default_cache().get).probs, dtype=np.float64)
        except MriViewerError as exc:
            print(f"{run.name}: case {case.case_id} skipped: {exc}", file=sys.stderr)
    return out


# ---------------------------------------------------------------------------- the command
def _cmd_compare(args) -> int:
    """Compare two or more runs on paired cases; text (default), ``--json``, ``--out`` ROC plot."""
    from mriviewer.ml.compare import compare_runs

    if len(args.runs) < 2:
        raise MriViewerError("compare needs two runs or more (run folders or their best.pt)")
    if args.out and Path(args.out).suffix.lower() != ".png":
        raise MriViewerError(f"--out {args.out}: the ROC plot is written as PNG; give a .png file")
    runs = [load_run(a) for a in args.runs]
    _name_runs(runs)
    if args.data:
        ids, labels, probs, notes = external_cases(runs, args)
        source = (f"{len(ids)} labelled cases of {', '.join(args.data)} (cases any run trained or selected on "
                  "left out)")
    else:
        ids, labels, probs, notes = own_test_cases(runs)
        source = f"the runs' own test set ({len(ids)} cases, the same in every run's split; recorded predictions)"
    result = compare_runs(labels, probs, [r.name for r in runs], runs[0].class_names)
    result["notes"] = notes + result["notes"]
    result["cases"] = {"source": "data" if args.data else "own test set", "description": source,
                       "data": list(args.data or []), "case_ids": ids}
    for r, entry in zip(runs, result["runs"], strict=True):
        cfg = r.ckpt["config"]
        entry.update(path=str(r.checkpoint), model=cfg.model, preset=cfg.preset or None)
    if args.out:
        write_roc_plot(args.out, labels, probs, result)
        result["plot"] = str(args.out)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print(format_comparison(result))
    return 0


def format_comparison(result: dict) -> str:
    """The comparison as a text table followed by one block per pair and the notes."""
    from mriviewer.core.text import fmt_interval, fmt_number
    from mriviewer.ml.compare import format_p, signed

    per_class = ", ".join(f"{k} {v}" for k, v in result["n_per_class"].items())
    positive = f"; positive class: {result['positive']}" if result["positive"] else ""
    lines = [f"Compared on {result['cases']['description']}.", f"Cases per class: {per_class}{positive}.", ""]
    width = max(len(r["name"]) for r in result["runs"] + [{"name": "run"}])
    mwidth = max(len(str(r["model"])) for r in result["runs"] + [{"model": "model"}])
    lines.append(f"{'run':<{width}}  {'model':<{mwidth}}  {'AUC':>5}  {'95% CI':<11}  accuracy")
    for r in result["runs"]:
        lines.append(f"{r['name']:<{width}}  {str(r['model']):<{mwidth}}  {fmt_number(r['auc']):>5}  "
                     f"{fmt_interval(r['auc_ci']):<11}  {fmt_number(r['accuracy'])}")
    several = len(result["pairs"]) > 1
    for pr in result["pairs"]:
        lines += ["", f"{pr['a']} vs {pr['b']} (differences are {pr['a']} − {pr['b']}):"]
        delta = "n/a" if pr["delta_auc"] is None else ("+" if pr["delta_auc"] > 0 else "") + signed(pr["delta_auc"], 3)
        lines.append(f"  ΔAUC      {delta}  paired bootstrap {round(100 * result['ci_level'])}% CI "
                     f"{_interval(pr['delta_auc_ci'])} ({result['n_boot']} resamples, seed {result['seed']})")
        dl = pr["delong"]
        if dl.get("p") is None:
            lines.append(f"  DeLong    n/a: {dl.get('reason', 'undefined')}")
        else:
            holm = f", Holm-adjusted {format_p(dl.get('p_holm'))}" if several else ""
            lines.append(f"  DeLong    z = {signed(dl['z'])}, {format_p(dl['p'])}{holm} (its 95% CI "
                         f"{_interval(dl.get('ci'))})")
        mc = pr["mcnemar"]
        holm = f", Holm-adjusted {format_p(mc.get('p_holm'))}" if several else ""
        lines.append(f"  accuracy  {pr['accuracy_a']:.3f} vs {pr['accuracy_b']:.3f}; McNemar exact {format_p(mc['p'])}"
                     f"{holm} on {mc['discordant']} discordant case(s) ({pr['a']} alone right {mc['a_only']}, "
                     f"{pr['b']} alone right {mc['b_only']})")
        lines += [f"  → {v}" for v in pr["verdict"]]
    lines += [""] + [f"note: {n}" for n in result["notes"]]
    lines.append("Methods: ΔAUC " + result["method"]["delta_auc"] + "; DeLong's test " + result["method"]["delong"]
                 + "; accuracy: " + result["method"]["mcnemar"] + ".")
    return "\n".join(lines)


def _interval(ci) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    from mriviewer.ml.compare import signed

    return f"{signed(ci[0])} to {signed(ci[1])}"


def write_roc_plot(path, labels: np.ndarray, probs: list[np.ndarray], result: dict) -> Path:
    """Every run's ROC curve on the paired cases in one PNG (matplotlib's Agg canvas, no pyplot),
    written atomically; multiclass: each class against the rest, one line style per class.

    Raises:
        MriViewerError: the file cannot be written.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    from mriviewer import RESEARCH_ONLY
    from mriviewer.core.files import atomic_path

    names, class_names = [r["name"] for r in result["runs"]], result["class_names"]
    fig = Figure(figsize=(6, 6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="chance")
    present = np.unique(labels)
    classes = [1] if len(class_names) == 2 else list(present)
    for i, (name, p) in enumerate(zip(names, probs, strict=True)):
        auc_text = "n/a" if result["runs"][i]["auc"] is None else f"{result['runs'][i]['auc']:.3f}"
        for j, k in enumerate(classes if present.size >= 2 else []):
            fpr, tpr, _ = roc_curve(labels == k, p[:, k])
            what = f"{name} (AUC {auc_text})" if len(classes) == 1 else f"{name}: {class_names[k]} vs rest"
            ax.plot(fpr, tpr, color=f"C{i % 10}", ls=("-", "--", "-.", ":")[j % 4], lw=2, label=what)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.set_title(f"ROC on {result['n_cases']} paired cases" + ("" if present.size >= 2 else " (one class: undefined)"))
    ax.legend(loc="lower right", fontsize=8)
    fig.text(0.01, 0.005, RESEARCH_ONLY, fontsize=7, color="grey")
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
