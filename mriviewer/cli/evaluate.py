"""``mriviewer predict``, ``mriviewer evaluate`` and ``mriviewer cam-check``: a checkpoint on a dataset.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mriviewer.cli.common import _discover, _f, _predict_all, label_spec
from mriviewer.core.errors import MriViewerError


def _cmd_predict(args) -> int:
    from mriviewer.ml.predict import Predictor
    from mriviewer.reporting.predictions_csv import write_predictions_csv

    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume, label_spec(args))
    preds = _predict_all(predictor, ds, args.allow_missing_modality)
    if not preds:
        raise MriViewerError(f"{', '.join(args.data)}: no case could be predicted")
    by_id = {c.case_id: c for c in ds.cases}
    roles = {p.case_id: predictor.role_of(by_id[p.case_id], ds) for p in preds}
    write_predictions_csv(preds, predictor.class_names, args.out, ds, role=roles.get)
    counts = Counter(roles.values())
    print(f"{len(preds)} predictions written to {args.out} (split: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")", file=sys.stderr)
    if counts.get("train") or counts.get("validation"):
        print("note: cases marked train/validation were used to fit or choose this model; "
              "only test and external rows measure it", file=sys.stderr)
    if counts.get("train-patient") or counts.get("validation-patient"):
        print("note: cases marked train-patient/validation-patient are other studies of patients used to fit or "
              "choose this model; they do not measure it on new patients", file=sys.stderr)
    return 0


def _cmd_evaluate(args) -> int:
    """Metrics of a checkpoint on a labelled set, as ``metrics.json``'s ``"test"``: classes are
    matched by name; cases the model was trained or selected on, and other studies of their
    patients (:meth:`~mriviewer.ml.predict.Predictor.seen_by`), are left out unless asked, each
    said once with its count. ``metrics.json``'s ``"roles"`` counts the scored cases by role and
    ``"external"`` says whether all were external; the run's own test cases are "Test", never
    "External test".

    Raises:
        MriViewerError: no labels, or no case could be predicted; CheckpointError: the checkpoint
            cannot be read or lacks the data's modalities.
    """
    import numpy as np

    from mriviewer.core.files import write_json
    from mriviewer.ml.metrics import classification_metrics
    from mriviewer.ml.metrics_text import format_metrics
    from mriviewer.ml.predict import Predictor
    from mriviewer.ml.seen import left_out_messages
    from mriviewer.reporting.predictions_csv import write_predictions_csv

    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume, label_spec(args))
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
    seen = {c.case_id: predictor.seen_by(c, ds) for c in labelled}
    warnings += left_out_messages(seen, included=args.include_seen)
    if not args.include_seen:
        labelled = [c for c in labelled if not seen[c.case_id].trained]
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
    roles = Counter(seen[p.case_id].role for p in preds)
    write_json(out / "metrics.json", {"test": m, "external": set(roles) == {"external"}, "roles": dict(roles),
                                      "checkpoint": str(args.checkpoint), "data": [str(d) for d in args.data],
                                      "warnings": m["warnings"]})
    write_predictions_csv(preds, names, out / "predictions.csv", ds, role=lambda cid: seen[cid].role)
    print(format_metrics(m, title=_evaluation_title(roles)), file=sys.stderr)
    print(json.dumps({"metrics": str(out / "metrics.json"), "auc": _f(m.get("auc")), "n_cases": m["n_cases"]}))
    return 0


def _cmd_cam_check(args) -> int:
    """Grad-CAM against tumour masks; last line ``pointing_game=H baseline=B energy_in_mask=E``."""
    import numpy as np

    from mriviewer.cache.memory import default_cache
    from mriviewer.core.files import json_safe
    from mriviewer.core.resample import resample_volume
    from mriviewer.data.cases import ModalitySource
    from mriviewer.ml.camcheck import score_case, summarise
    from mriviewer.ml.predict import Predictor, head_mask
    from mriviewer.ml.seen import TRAINED_ROLES

    predictor = Predictor.load(args.checkpoint, args.device)
    ds = _discover(args.data, args.assign, args.volume, label_spec(args))
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
        s["role"] = predictor.role_of(case, ds)
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
    verdict = ("points into the mask more often than chance" if summary["beats_chance"]
               else "does not point into the mask more often than chance")
    print(f"{summary['n_cases']} cases: pointing game {summary['pointing_game']:.2f} (95% CI {lo:.2f}–{hi:.2f}) vs "
          f"chance {summary['baseline']:.3f}; energy in mask {summary['energy_in_mask']:.3f} vs uniform "
          f"{summary['baseline_energy']:.3f} — the map {verdict}. This says where the map lies, not whether "
          "the model is right.", file=sys.stderr)
    note = _model_quality_note(predictor.test_metrics)
    if note:
        print(note, file=sys.stderr)
    if summary["empty_maps"]:
        print(f"warning: {summary['empty_maps']} of {summary['n_cases']} Grad-CAM maps are empty (no positive "
              "evidence for the class at the layer read); they count as misses", file=sys.stderr)
    if any(r["role"] in TRAINED_ROLES for r in rows):
        print("note: some scored cases (or their patients) were used to train or choose the model", file=sys.stderr)
    print(f"pointing_game={summary['pointing_game']:.3f} baseline={summary['baseline']:.3f} "
          f"energy_in_mask={np.nan_to_num(summary['energy_in_mask']):.3f}")
    return 0


def _evaluation_title(roles: Counter) -> str:
    """The heading of ``evaluate``'s figures for the roles of the scored cases: "External test"
    only when none was in the checkpoint's split; the run's own test cases stay "Test"."""
    kinds = set(roles)
    if kinds == {"external"}:
        return "External test"
    if kinds == {"test"}:
        return "Test (the run's own test cases)"
    if kinds <= {"test", "external"}:
        return f"Test ({roles['test']} of the run's own test cases, {roles['external']} external)"
    return "Evaluation (includes cases the model was trained or selected on, or their patients)"


def _model_quality_note(test: dict | None) -> str | None:
    """A note when the model itself is at chance on its own test set (its AUC interval holds 0.5,
    or it predicts one class for every case), so a map that points at the tumour is not read as
    praise of the model."""
    from mriviewer.core.text import fmt_interval, fmt_number

    if not test:
        return "note: this checkpoint has no test metrics: how good the model is is unknown."
    lo, hi = (list(test.get("auc_ci") or []) + [None, None])[:2]
    at_chance = lo is not None and hi is not None and lo <= 0.5 <= hi
    one_class = any("predicts one class" in str(w) for w in test.get("warnings") or [])
    if not (at_chance or one_class):
        return None
    why = []
    if at_chance:
        why.append(f"its test AUC {fmt_number(test.get('auc'))} (95% CI {fmt_interval(test.get('auc_ci'))}) is not "
                   "distinguishable from chance")
    if one_class:
        why.append("it predicts one class for every test case")
    return "note: the model itself is at chance: " + " and ".join(why) + "; a map that points at the tumour does not make it a good model."
