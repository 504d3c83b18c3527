"""The per-case PDF report.

A report is built with reportlab's platypus flowables (``BaseDocTemplate`` with one
``PageTemplate`` whose footer says "Research use only — not for diagnosis." and "page N of M" on
every page; ``Paragraph``, ``Table``, ``Image``, ``KeepTogether``). It holds, in this order:

1. the case: id, dataset, the case's role in the model's split (a training case's prediction
   measures nothing), date, source files, modalities present and missing, and where the
   crosshair is — voxel and RAS millimetres for volumes, pixels for 2D images;
2. the prediction: class, probability, every class's probability, the known label;
3. the model's *test* metrics from the checkpoint (``metrics["test"]``,
   :func:`~mriviewer.ml.metrics.classification_metrics`: AUC, accuracy, balanced accuracy and
   macro F1 with their 95 % bootstrap intervals) and the warnings that apply: the test set's own
   (chance level, too few cases, one class predicted, …) and the training run's
   (``metrics["warnings"]``: confounds, near-duplicates, no patient IDs, split problems);
4. a model card (:func:`model_card`): architecture, preset and version, inputs, classes,
   training-set size, split, epochs, software version and date of the checkpoint;
5. every modality of the case in three planes through the crosshair (each resampled onto the
   Grad-CAM's grid, so one crosshair names the same millimetre in all), without and with the
   Grad-CAM overlay, crosshair drawn, orientation letters at the edges; a 2D image is shown as
   stored, with and without its Grad-CAM, and described in pixels only;
6. the segmentation when the case has one, in BraTS label colours with a legend
   (:data:`SEG_LEGEND`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mriviewer import RESEARCH_ONLY, __version__
from mriviewer.core.volume import MODALITIES, Volume
from mriviewer.ml.caveats import caveats_of, reported
from mriviewer.reporting.flowables import _footer, _kv_table, _numbered_canvas, _styles, _t
from mriviewer.reporting.inputs import ExportCancelled, ReportInputs, _ci, _fmt
from mriviewer.reporting.pdf_images import _image_sections

_ROLE_TEXT = {
    "test": "test: held out, never used to train or choose this model",
    "validation": "validation: used to choose this model's epoch, so its prediction is optimistic",
    "train": "train: the model was fitted on this case, so its prediction says nothing about performance",
    "external": "external: not part of this model's training data",
    "train-patient": "another study of a trained patient: the model was fitted on this patient's other "
                     "scans, so its prediction says little about performance",
    "validation-patient": "another study of a validation patient: this patient's other scans chose the "
                          "model's epoch, so its prediction is optimistic",
}


def _pixel_of(volume: Volume, ijk) -> tuple[int, int]:
    """``(column, row)`` in the stored 2D image of canonical voxel ``ijk`` (2D images are
    declared with x = −column, y = −row: :func:`mriviewer.io.image2d.load_image2d`)."""
    x, y, _ = volume.voxel_to_world(np.asarray(ijk, dtype=float))
    return int(round(-x)), int(round(-y))


def _case_section(inputs: ReportInputs, st, width) -> list:
    from reportlab.platypus import Paragraph

    case, vol = inputs.case, inputs.volume
    is_2d = vol.is_2d or case.is_2d
    rows = [("Case", case.case_id), ("Dataset", inputs.dataset or "not given")]
    if case.patient_id and case.patient_id != case.case_id:  # a study, session or time point of a patient
        rows.insert(1, ("Patient", case.patient_id))
    if inputs.role:
        rows.append(("Role in the model's split", _ROLE_TEXT.get(inputs.role, inputs.role)))
    rows.append(("Report date", inputs.date or _dt.datetime.now().isoformat(timespec="seconds")))
    sources = sorted({str(s.path) for s in case.modalities.values()})
    if sources:
        rows.append(("Source", sources[0] + (f" (+{len(sources) - 1} more)" if len(sources) > 1 else "")))
    if is_2d:
        w, h = vol.shape[0], vol.shape[1]
        col, row = _pixel_of(vol, inputs.cursor)
        rows.append(("Image", f"{w} × {h} pixels (width × height), shown as stored; a 2D image has no "
                              "patient geometry, so positions are in pixels"))
        rows.append(("Grad-CAM peak" if inputs.cam is not None else "Position",
                     f"pixel column {col}, row {row} (from the top-left corner)"))
    else:
        present = [m for m in MODALITIES if m in case.modalities] + \
            [m for m in case.modalities if m not in MODALITIES]
        missing = [m for m in MODALITIES if m not in case.modalities]
        rows.append(("Modalities", (", ".join(present) or "none") + (f"; missing: {', '.join(missing)}" if missing
                                                                      else "")))
        ras = vol.voxel_to_world(np.array(inputs.cursor, dtype=float))
        conv = ("radiological convention (patient's right on the image's left)" if inputs.radiological
                else "neurological convention (patient's left on the image's left)")
        rows.append(("Crosshair", f"voxel ({', '.join(str(int(v)) for v in inputs.cursor)}) of the "
                                  f"{vol.modality or 'reference'} grid {'×'.join(map(str, vol.shape))}, "
                                  f"RAS ({', '.join(f'{v:.1f}' for v in ras)}) mm; {conv}"))
    out = [_kv_table(rows, st, width, 38 * 2.8346)]
    out += [Paragraph(_t(f"Note: {n}"), st["warn"]) for n in inputs.notes]
    return out


def _prediction_section(inputs: ReportInputs, st, width) -> list:
    from reportlab.platypus import Paragraph

    pred = inputs.prediction
    out = [Paragraph("Prediction", st["h2"]),
           Paragraph(f"Predicted class: {_t(pred.class_name)} — probability {pred.probability:.3f}", st["big"])]
    probs = ", ".join(f"{_t(n)} {float(p):.3f}" for n, p in zip(inputs.class_names, pred.probs, strict=False))
    out.append(Paragraph(f"Class probabilities: {probs}", st["body"]))
    label = getattr(pred, "label", None)
    if label is None:
        label = inputs.case.label
    if label is not None and 0 <= label < len(inputs.class_names):
        out.append(Paragraph(f"Known label (from the dataset): {_t(inputs.class_names[label])}", st["body"]))
    if inputs.role in ("train", "validation"):
        out.append(Paragraph(_t(f"Warning: this case was in the model's {inputs.role} set — "
                                f"{_ROLE_TEXT[inputs.role].split(': ', 1)[1]}."), st["warn"]))
    elif inputs.role in ("train-patient", "validation-patient"):
        out.append(Paragraph(_t(f"Warning: this case is {_ROLE_TEXT[inputs.role].split(': ', 1)[0]} — "
                                f"{_ROLE_TEXT[inputs.role].split(': ', 1)[1]}."), st["warn"]))
    out.append(Paragraph("A model output for research, not a finding: it is only as good as the test figures "
                         "below, on data like the training data.", st["small"]))
    return out


def _metrics_section(inputs: ReportInputs, st, width) -> list:
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    m = inputs.metrics or {}
    test = m.get("test")
    out = [Paragraph("Model performance on its test set", st["h2"])]
    if not test:
        out.append(Paragraph("No test-set metrics in this checkpoint (trained before mriviewer kept a test set): "
                             "its performance on unseen patients is unknown.", st["body"]))
        test = {}
    else:
        level = 100 * (test.get("ci_level") or 0.95)
        per_class = ", ".join(f"{_t(k)} {v}" for k, v in (test.get("n_per_class") or {}).items())
        out.append(Paragraph(
            f"Test set: {test.get('n_cases', 'n/a')} held-out cases ({per_class}), never used for training or "
            f"model selection. Intervals: {level:g}% CI, percentile bootstrap over cases "
            f"({test.get('n_boot', 'n/a')} resamples).", st["body"]))
        head = [Paragraph(f"<b>{h}</b>", st["cell"]) for h in ("Metric", "Value", f"{level:g}% CI")]
        rows = [head,
                ["AUC", _fmt(test.get("auc")), _ci(test.get("auc_ci"))],
                ["Accuracy", _fmt(test.get("accuracy")), _ci(test.get("accuracy_ci"))],
                ["  always the most frequent class", _fmt(test.get("accuracy_chance")), ""],
                ["Balanced accuracy", _fmt(test.get("balanced_accuracy")), ""],
                ["Macro F1", _fmt(test.get("f1_macro")), _ci(test.get("f1_macro_ci"))]]
        if "brier" in test:  # calibration: is a probability of 0.57 right 57 % of the time?
            rows += [["Brier score (lower is better)", _fmt(test.get("brier")), _ci(test.get("brier_ci"))],
                     [f"ECE ({test.get('ece_bins', 10)} bins)", _fmt(test.get("ece")), _ci(test.get("ece_ci"))]]
        tab = Table(rows, colWidths=[60 * 2.8346, 25 * 2.8346, 40 * 2.8346], hAlign="LEFT")
        tab.setStyle(TableStyle([
            ("FONTSIZE", (0, 0), (-1, -1), 8), ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
            ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#dddddd")),
            ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ]))
        out.append(tab)
        cv = (m.get("cv") or {}).get("summary") or {}
        auc_cv = cv.get("auc") or {}
        if auc_cv.get("mean") is not None:
            out.append(Paragraph(_t(f"Cross-validation: AUC {auc_cv['mean']:.3f} ± {(auc_cv.get('sd') or 0):.3f} "
                                    f"(mean ± sd over {cv.get('n_folds', 'n/a')} folds); the figures above are the "
                                    "test fold of this model."), st["body"]))
    test_w = list(test.get("warnings") or [])
    # Caveats on the reported figures; per-case and run notes (skipped cases, a precision
    # fallback) are the log's, not the report's.
    run_w = [c.message for c in reported(caveats_of(m)) if c.message not in test_w]
    warns = [("Test set", w) for w in test_w] + [("Training run", w) for w in run_w]
    if warns:
        out.append(Paragraph("Warnings", st["h3"]))
        for where, w in warns[:10]:
            out.append(Paragraph(f"<b>Warning ({where}):</b> {_t(w)}", st["warn"]))
        if len(warns) > 10:
            out.append(Paragraph(f"… and {len(warns) - 10} more in the run's metrics.json.", st["warn"]))
    return out


def _card_section(inputs: ReportInputs, st, width) -> list:
    from reportlab.platypus import KeepTogether, Paragraph

    card = dict(inputs.model_card) or {"Architecture": inputs.model_name,
                                       "Checkpoint": str(inputs.checkpoint or "n/a")}
    card["Report written by"] = f"mriviewer {__version__}"
    return [KeepTogether([Paragraph("Model card", st["h2"]), _kv_table(list(card.items()), st, width, 38 * 2.8346)])]


def write_case_report(inputs: ReportInputs, out: str | Path, cancel: Callable[[], bool] = lambda: False) -> Path:
    """Write the PDF report of one case to ``out`` (A4; see the module docstring for the
    contents), atomically: a temporary name in the same folder, renamed when complete.

    Args:
        cancel: polled between the images; when it returns true the report is abandoned.

    Returns:
        ``out``.

    Raises:
        ExportCancelled: ``cancel`` returned true (nothing is left under ``out``).
        MriViewerError: ``out`` cannot be written (nothing is left under that name).
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

    from mriviewer.core.files import atomic_path

    out = Path(out)
    st = _styles()
    case = inputs.case
    margin = 15 * mm
    width = A4[0] - 2 * margin
    story = [
        Paragraph(f"mriviewer case report — case {_t(case.case_id)}", st["title"]),
        Paragraph(_t(RESEARCH_ONLY), st["banner"]),
    ]
    story += _case_section(inputs, st, width)
    story += _prediction_section(inputs, st, width)
    story += _metrics_section(inputs, st, width)
    story += _card_section(inputs, st, width)
    story += _image_sections(inputs, st, width, cancel)
    if cancel():
        raise ExportCancelled
    with atomic_path(out) as tmp:
        doc = BaseDocTemplate(
            str(tmp), pagesize=A4, leftMargin=margin, rightMargin=margin, topMargin=14 * mm, bottomMargin=17 * mm,
            title=f"mriviewer report — case {case.case_id}", author=f"mriviewer {__version__}",
            subject=RESEARCH_ONLY, creator=f"mriviewer {__version__}")
        frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body",
                      leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=_footer(case.case_id))])
        doc.build(story, canvasmaker=_numbered_canvas())
    return out
