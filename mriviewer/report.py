"""Per-case PDF report (reportlab) and the predictions CSV.

The PDF holds: case id and source files, modalities present and missing, the three planes at
the crosshair without and with the Grad-CAM overlay (orientation letters at the edges), the
predicted class with its probability and every class's probability, the known label when the
dataset has one, the model, checkpoint and its validation metrics (AUC with 95 % bootstrap
interval), the date, mriviewer's version, and the sentence "Research use only — not for
diagnosis." on every page.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import RESEARCH_ONLY, __version__
from .datasets import Case, Dataset
from .display import (
    PLANES,
    composite_rgb,
    orientation_letters,
    overlay_rgba,
    pixel_size_mm,
    plane_slice,
    window_to_uint8,
)
from .volume import MODALITIES, Volume, percentile_window

__all__ = ["ReportInputs", "write_case_report", "write_predictions_csv", "render_planes", "build_report_inputs"]


@dataclass
class ReportInputs:
    """What goes into a case report.

    Attributes:
        case: the case.
        volume: canonical volume shown in the report (the displayed modality).
        cursor: canonical voxel index ``(i, j, k)`` of the crosshair.
        prediction: a :class:`~mriviewer.ml.predict.Prediction`.
        cam: Grad-CAM ``(I, J, K)`` in [0, 1] on ``volume``'s grid, or ``None``.
        model_name, checkpoint, metrics: from the checkpoint.
        class_names: the model's classes.
        window: display window ``(low, high)``; default the 0.5–99.5 percentiles.
    """

    case: Case
    volume: Volume
    cursor: tuple[int, int, int]
    prediction: object
    cam: np.ndarray | None
    model_name: str
    checkpoint: Path | None
    metrics: dict
    class_names: list[str]
    window: tuple[float, float] | None = None
    radiological: bool = True
    cmap: str = "inferno"
    opacity: float = 0.5


def render_planes(volume: Volume, cursor, cam: np.ndarray | None, window=None, radiological=True,
                  cmap="inferno", opacity=0.5) -> dict[str, np.ndarray]:
    """RGB images ``(rows, cols, 3)`` uint8 of each plane at ``cursor`` (canonical voxel),
    with the overlay when ``cam`` is given, resized to square millimetres."""
    from PIL import Image

    low, high = window or percentile_window(volume.data)
    out = {}
    for plane in PLANES:
        axis = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
        grey = window_to_uint8(plane_slice(volume.data, plane, cursor[axis], radiological), low, high)
        rgba = None
        if cam is not None:
            rgba = overlay_rgba(plane_slice(cam, plane, cursor[axis], radiological), cmap, opacity)
        rgb = composite_rgb(grey, rgba)
        dy, dx = pixel_size_mm(plane, volume.spacing)
        h_mm, w_mm = rgb.shape[0] * dy, rgb.shape[1] * dx
        scale = 256.0 / max(h_mm, w_mm)
        size = (max(1, round(w_mm * scale)), max(1, round(h_mm * scale)))
        out[plane] = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    return out


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.3f}"


def write_case_report(inputs: ReportInputs, out: str | Path) -> Path:
    """Write the PDF report of one case to ``out``.

    Raises:
        OSError: ``out`` cannot be written.
    """
    from PIL import Image
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    out = Path(out)
    case, pred = inputs.case, inputs.prediction
    c = canvas.Canvas(str(out), pagesize=A4)
    c.setTitle(f"mriviewer report — case {case.case_id}")
    c.setAuthor(f"mriviewer {__version__}")
    width, height = A4
    x0, y = 18 * mm, height - 20 * mm

    def line(text: str, size: float = 10, bold: bool = False, dy: float = 5.2 * mm):
        nonlocal y
        c.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        c.drawString(x0, y, text)
        y -= dy

    c.setFillColorRGB(0.75, 0.0, 0.0)
    line(RESEARCH_ONLY, 12, bold=True, dy=8 * mm)
    c.setFillColorRGB(0, 0, 0)
    line(f"mriviewer case report — case {case.case_id}", 15, bold=True, dy=8 * mm)
    sources = sorted({str(s.path) for s in case.modalities.values()})
    line(f"Source: {sources[0] if sources else 'n/a'}" + (f" (+{len(sources) - 1} more)" if len(sources) > 1 else ""), 8)
    present = [m for m in MODALITIES if m in case.modalities] + [m for m in case.modalities if m not in MODALITIES]
    missing = [m for m in MODALITIES if m not in case.modalities] if not case.is_2d else []
    line(f"Modalities present: {', '.join(present) or 'none'}" + (f"; missing: {', '.join(missing)}" if missing else ""))
    line(f"Displayed: {inputs.volume.modality or 'image'}; crosshair at voxel {tuple(int(v) for v in inputs.cursor)}, "
         f"{tuple(round(float(v), 1) for v in inputs.volume.voxel_to_world(np.array(inputs.cursor)))} mm (RAS)")
    y -= 2 * mm
    line(f"Predicted class: {pred.class_name}   probability {pred.probability:.3f}", 13, bold=True, dy=7 * mm)
    probs = ", ".join(f"{n}: {p:.3f}" for n, p in zip(inputs.class_names, pred.probs, strict=False))
    line(f"Class probabilities: {probs}", 8)
    if case.label is not None and 0 <= case.label < len(inputs.class_names):
        line(f"Known label (from the dataset): {inputs.class_names[case.label]}", 9)
    m = inputs.metrics or {}
    line(f"Model: {inputs.model_name}   checkpoint: {inputs.checkpoint or 'n/a'}", 8)
    test = m.get("test")
    if test:
        ci = test.get("auc_ci") or [None, None]
        aci = test.get("accuracy_ci") or [None, None]
        line(f"Test set: {test.get('n_cases', 'n/a')} held-out cases, never used for training or selection", 9,
             dy=4.4 * mm)
        line(f"AUC {_fmt(test.get('auc'))} (95% CI {_fmt(ci[0])}–{_fmt(ci[1])}), "
             f"accuracy {_fmt(test.get('accuracy'))} ({_fmt(aci[0])}–{_fmt(aci[1])}), "
             f"balanced accuracy {_fmt(test.get('balanced_accuracy'))}, macro F1 {_fmt(test.get('f1_macro'))}", 9)
        # The test figures' warnings, then the run's confound / split / duplicate warnings.
        run_warnings = [w for w in m.get("warnings", []) if w not in test.get("warnings", [])
                        and (w.startswith("Confound") or "near-duplicate" in w or "no patient IDs" in w)]
        for w in (test.get("warnings", []) + run_warnings)[:6]:
            c.setFillColorRGB(0.7, 0.3, 0.0)
            line(f"Warning: {w}"[:170], 7.5, dy=4.0 * mm)
            c.setFillColorRGB(0, 0, 0)
    else:
        line("No test-set metrics in this checkpoint (trained before mriviewer kept a test set): "
             "its performance on unseen patients is unknown.", 9)
    line(f"Date: {_dt.datetime.now().isoformat(timespec='seconds')}   Software: mriviewer {__version__}", 8)
    y -= 3 * mm

    conv = "radiological" if inputs.radiological else "neurological"
    rows = [("Without overlay", None), (f"With Grad-CAM ({inputs.cmap}, opacity {inputs.opacity:.2f})", inputs.cam)]
    cell_w = (width - 2 * x0) / 3  # one column per plane
    box = cell_w - 12 * mm  # largest image side; leaves room for the letters
    planes = PLANES if not inputs.volume.is_2d else ("axial",)
    for title, cam in rows:
        if cam is None and title != "Without overlay":
            line("Grad-CAM: not available for this case", 9)
            continue
        line(title + f" — {conv} convention", 10, bold=True, dy=4 * mm)
        imgs = render_planes(inputs.volume, inputs.cursor, cam, inputs.window, inputs.radiological,
                             inputs.cmap, inputs.opacity)
        top = y - 3 * mm  # below the plane names
        for n, plane in enumerate(planes):
            img = imgs[plane]
            h, w = img.shape[:2]
            scale = box / max(h, w)
            dw, dh = w * scale, h * scale
            cx = x0 + n * cell_w + cell_w / 2  # centre of the column
            left, bottom = cx - dw / 2, top - 5 * mm - (box + dh) / 2
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            buf.seek(0)
            c.drawImage(ImageReader(buf), left, bottom, dw, dh)
            c.setFont("Helvetica", 7)
            c.drawCentredString(cx, top, "2D image" if inputs.volume.is_2d else plane)
            if not inputs.volume.is_2d:
                letters = orientation_letters(plane, inputs.radiological)
                c.setFont("Helvetica-Bold", 8)
                mid = bottom + dh / 2 - 1 * mm
                c.drawCentredString(cx, bottom + dh + 1.2 * mm, letters["top"])
                c.drawCentredString(cx, bottom - 3.5 * mm, letters["bottom"])
                c.drawRightString(left - 1.2 * mm, mid, letters["left"])
                c.drawString(left + dw + 1.2 * mm, mid, letters["right"])
        y = top - box - 14 * mm
    c.setFont("Helvetica", 7)
    c.drawString(x0, 12 * mm, f"{RESEARCH_ONLY} Predictions are model outputs for research, not findings.")
    c.showPage()
    c.save()
    return out


def write_predictions_csv(predictions: Iterable, class_names: list[str], out: str | Path,
                          dataset: Dataset | None = None, role=None) -> Path:
    """Write ``case_id, split, true_label, predicted_class, predicted_label, probability,
    p_<class>…`` rows, atomically.

    ``split`` is ``role(case_id)`` — train / validation / test from the checkpoint's recorded
    split, or external — so nobody mixes training cases into an evaluation by accident.
    ``true_label`` is the class name when known, else empty. Returns ``out``.

    Raises:
        MriViewerError: ``out`` cannot be written (nothing is left under that name).
    """
    from .fileio import atomic_path, csv_text

    out = Path(out)
    role = role or (lambda _cid: "")
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", "split", "true_label", "predicted_class", "predicted_label", "probability"]
                   + [f"p_{csv_text(n)}" for n in class_names])
        for p in predictions:
            truth = class_names[p.label] if p.label is not None and 0 <= p.label < len(class_names) else ""
            w.writerow([csv_text(p.case_id), role(p.case_id), csv_text(truth), p.predicted, csv_text(p.class_name),
                        f"{p.probability:.6f}"] + [f"{float(v):.6f}" for v in p.probs])
    return out


def build_report_inputs(predictor, case: Case, loader, cursor=None, prediction=None,
                        gradcam=None, **display) -> ReportInputs:
    """Assemble :class:`ReportInputs` for ``case`` from a loaded
    :class:`~mriviewer.ml.predict.Predictor` (prediction and Grad-CAM computed unless given).

    The report shows the model's first input modality, on whose grid the Grad-CAM lies. The
    crosshair defaults to the Grad-CAM peak (or the volume centre without one).
    """
    if prediction is None:
        prediction = predictor.predict(case, loader)
    if gradcam is None:
        gradcam = predictor.gradcam(case, loader, prediction.predicted)
    volume, cam = gradcam.reference, gradcam.cam
    if cursor is None:
        if cam is not None and cam.max() > 0:
            cursor = tuple(int(v) for v in np.unravel_index(int(np.argmax(cam)), cam.shape))
        else:
            cursor = tuple(s // 2 for s in volume.shape)
    return ReportInputs(
        case=case, volume=volume, cursor=cursor, prediction=prediction, cam=cam,
        model_name=predictor.config.model, checkpoint=predictor.path, metrics=predictor.metrics,
        class_names=predictor.class_names, **display,
    )
