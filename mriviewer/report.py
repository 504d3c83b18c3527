"""Per-case PDF reports, their batch export, and the predictions CSV.

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

Grad-CAM overlay (:func:`cam_rgba`): a colour map blended over the greyscale image with alpha
proportional to the map above a threshold — ``alpha = opacity × (cam − t) / (1 − t)`` for
``cam > t``, 0 below — so weak values fade out instead of leaving dark patches ("black holes").

:func:`export_reports` writes one PDF per case and ``predictions.csv`` for a whole dataset as a
generator of progress tuples, so a GUI can show a progress bar and cancel.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import logging
import math
import re
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from xml.sax.saxutils import escape as _xml_escape

import numpy as np

from . import RESEARCH_ONLY, __version__
from .datasets import Case, Dataset
from .display import (
    LABEL_COLOURS,
    PLANES,
    colormap_lut,
    label_rgba,
    orientation_letters,
    pixel_size_mm,
    plane_axes,
    plane_slice,
    voxel_to_screen,
    window_to_uint8,
)
from .errors import DatasetError, MriViewerError
from .volume import MODALITIES, Volume, percentile_window, same_grid

__all__ = [
    "ReportInputs", "ReportProgress", "ExportSummary", "ExportCancelled", "build_report_inputs",
    "write_case_report", "export_reports", "write_predictions_csv", "render_planes", "cam_rgba",
    "model_card", "report_filename", "SEG_LEGEND", "CAM_THRESHOLD", "PREDICTIONS_CSV",
]

log = logging.getLogger(__name__)

#: Grad-CAM values at or below this are transparent in the report.
CAM_THRESHOLD = 0.15

#: Name of the CSV :func:`export_reports` writes next to the PDFs.
PREDICTIONS_CSV = "predictions.csv"

#: Crosshair colour (cyan: distinct from the inferno map and the label colours).
CROSSHAIR_RGB = (0, 190, 255)

#: BraTS segmentation labels: value → meaning (colours: :data:`mriviewer.display.LABEL_COLOURS`).
#: BraTS 2017–2021 number the enhancing tumour 4; BraTS 2023 renumbered it 3.
SEG_LEGEND: dict[int, str] = {
    1: "necrotic / non-enhancing tumour core (NCR)",
    2: "peritumoural oedema (ED)",
    4: "enhancing tumour (ET)",
    3: "enhancing tumour (ET), BraTS 2023 numbering",
}

_ROLE_TEXT = {
    "test": "test: held out, never used to train or choose this model",
    "validation": "validation: used to choose this model's epoch, so its prediction is optimistic",
    "train": "train: the model was fitted on this case, so its prediction says nothing about performance",
    "external": "external: not part of this model's training data",
}

# Run warnings that are per-case noise rather than caveats on the reported figures.
_SKIP_RUN_WARNINGS = ("Case ", "Cannot decode", "fp16")


class ExportCancelled(Exception):  # noqa: N818  (a request, not an error)
    """Raised inside :func:`write_case_report` when its ``cancel`` callable returns true; the
    PDF being written is removed."""


@dataclass
class ReportInputs:
    """What goes into a case report.

    Attributes:
        case: the case.
        volume: canonical volume on whose grid ``cursor`` and ``cam`` lie (the Grad-CAM's
            reference: the model's first input modality).
        cursor: canonical voxel index ``(i, j, k)`` of the crosshair on ``volume``'s grid.
        prediction: a :class:`~mriviewer.ml.predict.Prediction`.
        cam: Grad-CAM ``(I, J, K)`` in [0, 1] on ``volume``'s grid, or ``None``.
        model_name, checkpoint, metrics: from the checkpoint (``metrics`` as
            :attr:`~mriviewer.ml.predict.Predictor.metrics`).
        class_names: the model's classes.
        window: display window ``(low, high)`` of ``volume``'s modality; default (and for the
            other modalities always) the 0.5–99.5 percentiles.
        radiological: patient's right on the left of axial and coronal images (ignored for 2D).
        cmap, opacity: Grad-CAM colour map and its largest opacity (0–1).
        dataset: text naming the dataset.
        role: the case's role in the model's split (``train``, ``validation``, ``test``,
            ``external``; empty when unknown).
        modalities: ``{name: canonical Volume}`` of every modality shown (default: ``volume``
            alone); each is resampled onto ``volume``'s grid plane by plane.
        segmentation: the case's label map (any grid; nearest-neighbour resampled), or ``None``.
        segmentation_name: its file name.
        model_card: ``{field: text}`` (:func:`model_card`).
        notes: lines shown under the case (e.g. a modality that could not be read).
        threshold: Grad-CAM values at or below it are transparent.
        date: the report's date (ISO text; default now).
        model_modalities: the model's input modalities (marked in the image headings).
        cam_class: the class the Grad-CAM explains (default: the predicted class).
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
    dataset: str = ""
    role: str = ""
    modalities: dict = field(default_factory=dict)
    segmentation: Volume | None = None
    segmentation_name: str = ""
    model_card: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    threshold: float = CAM_THRESHOLD
    date: str = ""
    model_modalities: list = field(default_factory=list)
    cam_class: str = ""


# ---------------------------------------------------------------------------- images
def cam_rgba(values: np.ndarray, cmap: str = "inferno", opacity: float = 0.5,
             threshold: float = CAM_THRESHOLD) -> np.ndarray:
    """Colour a [0, 1] map (Grad-CAM) as RGBA uint8 ``(..., 4)`` for alpha blending.

    The colour is the matplotlib colour map ``cmap`` at the value; the alpha is
    ``opacity × (v − threshold) / (1 − threshold)`` above ``threshold`` and 0 at or below it
    (NaN counts as 0), so the overlay fades in from the threshold and never paints the dark
    low end of the colour map over the image.
    """
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    rgba = colormap_lut(cmap)[np.round(v * 255).astype(np.uint8)].copy()
    t = float(np.clip(threshold, 0.0, 0.999))
    alpha = np.clip((v - t) / (1.0 - t), 0.0, 1.0) * float(np.clip(opacity, 0.0, 1.0))
    rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
    return rgba


def _blend(rgb: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """``rgb`` (float32 ``(R, C, 3)``) with ``rgba`` (uint8) alpha-blended over it."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return rgb * (1.0 - a) + rgba[..., :3].astype(np.float32) * a


def _grid_plane(volume: Volume, shape, affine, plane: str, index: int, radiological: bool,
                nearest: bool = False) -> np.ndarray:
    """Screen image of ``plane`` through slice ``index`` of the canonical grid
    ``(shape, affine)``, sampled from ``volume`` (resampled through the affines when its grid
    differs; only that one slab is computed)."""
    from .resample import resample_to_grid

    s = plane_axes(plane)[0]
    index = int(np.clip(index, 0, shape[s] - 1))
    if same_grid(volume.shape, volume.affine, shape, affine):
        return plane_slice(volume.data, plane, index, radiological)
    shift = np.eye(4)
    shift[s, 3] = index
    slab_shape = list(shape)
    slab_shape[s] = 1
    data = resample_to_grid(np.asarray(volume.data), volume.affine, tuple(slab_shape), np.asarray(affine) @ shift,
                            order=0 if nearest else 1)
    return plane_slice(data, plane, 0, radiological)


def render_planes(volume: Volume, cursor, cam: np.ndarray | None = None, window=None, radiological: bool = True,
                  cmap: str = "inferno", opacity: float = 0.5, *, grid: Volume | None = None,
                  labels: Volume | None = None, label_opacity: float = 0.45, crosshair: bool = True,
                  threshold: float = CAM_THRESHOLD, size: int = 256,
                  planes: Iterable[str] = PLANES) -> dict[str, np.ndarray]:
    """RGB images of ``volume`` in each plane through ``cursor``.

    Args:
        volume: the image (any grid; resampled onto ``grid``'s slab when it differs).
        cursor: canonical voxel index ``(i, j, k)`` on ``grid``.
        cam: ``(I, J, K)`` map in [0, 1] on ``grid`` blended with :func:`cam_rgba`, or ``None``.
        window: ``(low, high)`` display window; default :func:`~mriviewer.volume.percentile_window`.
        radiological: patient's right on the screen's left (axial, coronal).
        grid: the canonical volume whose grid the planes are cut from (default ``volume``).
        labels: a segmentation drawn in :data:`~mriviewer.display.LABEL_COLOURS` (values
            rounded to integers; interpolated BraTS files hold fractions), or ``None``.
        crosshair: draw the crosshair lines (cyan, with a gap at the centre).
        size: pixels of the longer side; the other follows the voxel size in mm.

    Returns:
        ``{plane: (rows, cols, 3) uint8}``, rows top to bottom as on screen.
    """
    from PIL import Image, ImageDraw

    grid = grid if grid is not None else volume
    shape, affine = grid.shape, grid.affine
    low, high = window or percentile_window(volume.data)
    out = {}
    for plane in planes:
        s = plane_axes(plane)[0]
        grey = window_to_uint8(_grid_plane(volume, shape, affine, plane, cursor[s], radiological), low, high)
        rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
        if labels is not None:
            lab = _grid_plane(labels, shape, affine, plane, cursor[s], radiological, nearest=True)
            rgb = _blend(rgb, label_rgba(np.rint(np.nan_to_num(lab)).astype(np.int32), label_opacity))
        if cam is not None:
            rgb = _blend(rgb, cam_rgba(plane_slice(cam, plane, cursor[s], radiological), cmap, opacity, threshold))
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        dy, dx = pixel_size_mm(plane, grid.spacing)
        h_mm, w_mm = rgb.shape[0] * dy, rgb.shape[1] * dx
        scale = size / max(h_mm, w_mm)
        w_px, h_px = max(1, round(w_mm * scale)), max(1, round(h_mm * scale))
        img = Image.fromarray(rgb).resize((w_px, h_px), Image.BILINEAR)
        if crosshair:
            row, col = voxel_to_screen(plane, cursor, shape, radiological)
            y = (row + 0.5) * h_px / rgb.shape[0]
            x = (col + 0.5) * w_px / rgb.shape[1]
            gap = max(3.0, 0.04 * max(w_px, h_px))
            draw = ImageDraw.Draw(img)
            for a, b in ((0, x - gap), (x + gap, w_px)):
                if b > a:
                    draw.line([(a, y), (b, y)], fill=CROSSHAIR_RGB, width=1)
            for a, b in ((0, y - gap), (y + gap, h_px)):
                if b > a:
                    draw.line([(x, a), (x, b)], fill=CROSSHAIR_RGB, width=1)
        out[plane] = np.asarray(img)
    return out


# ---------------------------------------------------------------------------- text helpers
def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.3f}"


def _ci(pair) -> str:
    lo, hi = (list(pair) + [None, None])[:2] if pair else (None, None)
    return "n/a" if lo is None or hi is None else f"{_fmt(lo)}–{_fmt(hi)}"


def _t(value) -> str:
    """Text safe for a Paragraph in the PDF's standard (WinAnsi) fonts: XML-escaped, characters
    the font lacks replaced by ``?``."""
    s = str(value).encode("cp1252", "replace").decode("cp1252")
    return _xml_escape(s)


def report_filename(case_id: str) -> str:
    """A file name for ``case_id``'s PDF: characters other than letters, digits, ``. _ -``
    replaced by ``_`` (2D case ids hold ``class/file.jpg``), no leading dot, ``.pdf`` added."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(case_id)).strip("._") or "case"
    return name[:150] + ".pdf"


def model_card(predictor) -> dict[str, str]:
    """The model card of a loaded :class:`~mriviewer.ml.predict.Predictor`: ``{field: text}``
    with architecture, preset and version, inputs, classes, training set, split, epochs, the
    software that trained it, its date and file (all from the checkpoint; "not recorded" where
    an older checkpoint lacks a field)."""
    ck = getattr(predictor, "checkpoint", {}) or {}
    cfg = predictor.config
    split = ck.get("split") or {}
    card = {}
    kind = "3D volumes" if cfg.is_3d else "2D slices"
    card["Architecture"] = f"{cfg.model} ({kind}; stem {cfg.stem}, head {cfg.head}, initial weights {cfg.pretrained})"
    if cfg.preset:
        over = ", ".join(f"{k}={v}" for k, v in (cfg.overrides or {}).items())
        card["Preset"] = f"{cfg.preset} version {cfg.preset_version}" + (f"; overrides: {over}" if over else "")
    else:
        card["Preset"] = "none (configuration given directly)"
    size = f"{cfg.image_size}×{cfg.image_size} px" + (f" × {cfg.depth} slices" if cfg.is_3d else
                                                     f", {cfg.slices_per_case} slice(s) per case")
    card["Inputs"] = f"{', '.join(cfg.modalities)} ({cfg.color}); {size}"
    card["Classes"] = ", ".join(predictor.class_names)
    n = {r: len(split.get(r) or []) for r in ("train", "validation", "test")}
    if any(n.values()):
        card["Training set"] = (f"{n['train']} cases (plus {n['validation']} validation and {n['test']} test cases, "
                                "never trained on)")
    else:
        card["Training set"] = "not recorded in this checkpoint"
    if cfg.folds:
        card["Split"] = (f"{cfg.folds}-fold cross-validation by patient, seed {cfg.seed}; "
                         f"this model: {ck.get('fold', 'n/a')}")
    else:
        card["Split"] = ("holdout " + "/".join(f"{round(100 * f)}" for f in cfg.split)
                         + f" % train/validation/test by patient (by image where the data have no patient "
                         f"IDs), seed {cfg.seed}")
    history = ck.get("history") or []
    val = (ck.get("metrics") or {}).get("validation") or {}
    epochs = f"{len(history)} run of {cfg.total_epochs} configured" if history else f"{cfg.total_epochs} configured"
    if val.get("epoch") is not None:
        epochs += f"; weights of epoch {val['epoch']}, chosen on validation {val.get('monitor', cfg.monitor)}"
    card["Epochs"] = epochs
    card["Optimiser"] = f"{cfg.optimizer}, learning rate {cfg.lr:g}, batch size {cfg.batch_size}, loss {cfg.loss}"
    card["Trained with"] = f"mriviewer {ck.get('software_version') or 'version not recorded'}"
    card["Trained on (date)"] = str(ck.get("created") or "not recorded")
    card["Checkpoint"] = str(getattr(predictor, "path", None) or ck.get("path") or "n/a")
    return card


def _dataset_text(dataset) -> str:
    if dataset is None:
        return ""
    if isinstance(dataset, Dataset):
        n = len(dataset.cases)
        return f"{dataset.root.name} ({dataset.layout}, {n} case{'' if n == 1 else 's'}) — {dataset.root}"
    return str(dataset)


# ---------------------------------------------------------------------------- inputs
def build_report_inputs(predictor, case: Case, loader, cursor=None, prediction=None,
                        gradcam=None, dataset: Dataset | str | None = None, **display) -> ReportInputs:
    """Assemble :class:`ReportInputs` for ``case`` from a loaded
    :class:`~mriviewer.ml.predict.Predictor` (prediction and Grad-CAM computed unless given).

    The Grad-CAM lies on the grid of the model's first input modality (``volume``); every
    modality of the case is loaded (canonical) to be shown on that grid, and the segmentation
    when the case has one. A modality or segmentation that cannot be read is left out with a
    note; the crosshair defaults to the Grad-CAM peak (or the volume centre without one).

    Args:
        loader: ``ModalitySource → Volume`` (e.g. :meth:`~mriviewer.cache.VolumeCache.get`).
        cursor: canonical voxel ``(i, j, k)`` on the Grad-CAM's grid.
        dataset: the :class:`~mriviewer.datasets.Dataset` (or a text) named in the report.
        display: ``radiological``, ``cmap``, ``opacity``, ``window``, ``threshold``.

    Raises:
        MriViewerError: the case cannot be predicted (missing modality, unreadable file).
    """
    from .datasets import ModalitySource

    if prediction is None and gradcam is None:  # one preprocessing for both
        prediction, gradcam = predictor.predict_with_gradcam(case, loader)
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
    notes = []
    modalities: dict[str, Volume] = {}
    seg_source = case.segmentation
    order = [volume.modality] + [m for m in MODALITIES] + list(case.modalities)
    for name in dict.fromkeys(m for m in order if m in case.modalities):
        if name == "SEG":
            seg_source = seg_source or case.modalities[name].path
            continue
        try:
            modalities[name] = loader(case.modalities[name]).canonical()
        except MriViewerError as exc:
            notes.append(f"{name} not shown: {exc}")
    if not modalities:
        modalities[volume.modality or "image"] = volume
    seg = None
    if seg_source is not None and not case.is_2d:
        try:
            seg = loader(ModalitySource("SEG", Path(seg_source), "nifti"))
        except MriViewerError as exc:
            notes.append(f"segmentation not shown: {exc}")
    role = ""
    if hasattr(predictor, "role_of"):
        role = predictor.role_of(case)
    return ReportInputs(
        case=case, volume=volume, cursor=tuple(int(v) for v in cursor), prediction=prediction, cam=cam,
        model_name=predictor.config.model, checkpoint=predictor.path, metrics=predictor.metrics,
        class_names=predictor.class_names, dataset=_dataset_text(dataset), role=role, modalities=modalities,
        segmentation=seg, segmentation_name=Path(seg_source).name if seg is not None else "",
        model_card=model_card(predictor), notes=notes, model_modalities=list(predictor.config.modalities),
        cam_class=predictor.class_names[gradcam.class_index] if 0 <= gradcam.class_index < len(predictor.class_names)
        else "",
        **display,
    )


# ---------------------------------------------------------------------------- PDF
def _styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontSize=8.5, leading=10.5, spaceAfter=1)
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontSize=15, leading=18, alignment=0, spaceAfter=2),
        "banner": ParagraphStyle("banner", parent=body, fontName="Helvetica-Bold", fontSize=10.5, leading=13,
                                 textColor=colors.HexColor("#b00000"), spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontSize=11.5, leading=14, spaceBefore=7, spaceAfter=3),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontSize=10, leading=12, spaceBefore=6, spaceAfter=2),
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=7.5, leading=9),
        "cell": ParagraphStyle("cell", parent=body, fontSize=8, leading=9.5, spaceAfter=0),
        "key": ParagraphStyle("key", parent=body, fontName="Helvetica-Bold", fontSize=8, leading=9.5, spaceAfter=0),
        "big": ParagraphStyle("big", parent=body, fontName="Helvetica-Bold", fontSize=12.5, leading=15.5,
                              spaceAfter=3),
        "warn": ParagraphStyle("warn", parent=body, fontSize=8, leading=10, textColor=colors.HexColor("#a04000"),
                               leftIndent=8, firstLineIndent=-8),
        "caption": ParagraphStyle("caption", parent=body, fontSize=7.5, leading=9, alignment=1, spaceAfter=0),
        "letter": ParagraphStyle("letter", parent=body, fontName="Helvetica-Bold", fontSize=7.5, leading=9,
                                 alignment=1, spaceAfter=0),
    }


def _kv_table(rows, st, width, key_width):
    """A two-column ``field | value`` table of Paragraphs."""
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    data = [[Paragraph(_t(k), st["key"]), Paragraph(v if isinstance(v, _Markup) else _t(v), st["cell"])]
            for k, v in rows]
    tab = Table(data, colWidths=[key_width, width - key_width], hAlign="LEFT")
    tab.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dddddd")),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
    ]))
    return tab


class _Markup(str):
    """Text already escaped for a Paragraph (may hold markup)."""


def _image_flowable(rgb: np.ndarray, box_w: float, box_h: float):
    """A platypus Image of ``rgb`` scaled to fit ``box_w × box_h`` points, aspect kept."""
    from PIL import Image as PILImage
    from reportlab.platypus import Image

    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="PNG")
    buf.seek(0)
    h, w = rgb.shape[:2]
    scale = min(box_w / w, box_h / h)
    return Image(buf, width=w * scale, height=h * scale)


def _plane_cell(rgb, plane: str, radiological: bool, st, box: float, letters: bool = True):
    """An image with orientation letters on its four sides (a 3×3 table)."""
    from reportlab.platypus import Paragraph, Table, TableStyle

    img = _image_flowable(rgb, box, box)
    if not letters:
        return img
    let = orientation_letters(plane, radiological)
    lw = 9
    tab = Table([["", Paragraph(let["top"], st["letter"]), ""],
                 [Paragraph(let["left"], st["letter"]), img, Paragraph(let["right"], st["letter"])],
                 ["", Paragraph(let["bottom"], st["letter"]), ""]],
                colWidths=[lw, box, lw])
    tab.setStyle(TableStyle([
        ("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
    ]))
    return tab


def _grid_table(rows, col_width):
    """Rows of flowables in equal columns, centred, little padding."""
    from reportlab.platypus import Table, TableStyle

    tab = Table(rows, colWidths=[col_width] * len(rows[0]))
    style = [("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("LEFTPADDING", (0, 0), (-1, -1), 1), ("RIGHTPADDING", (0, 0), (-1, -1), 1),
             ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    for r, row in enumerate(rows):
        if len(row) > 1 and all(c == "" for c in row[1:]):
            style.append(("SPAN", (0, r), (-1, r)))
    tab.setStyle(TableStyle(style))
    return tab


def _pixel_of(volume: Volume, ijk) -> tuple[int, int]:
    """``(column, row)`` in the stored 2D image of canonical voxel ``ijk`` (2D images are
    declared with x = −column, y = −row: :func:`mriviewer.io.load_image2d`)."""
    x, y, _ = volume.voxel_to_world(np.asarray(ijk, dtype=float))
    return int(round(-x)), int(round(-y))


def _case_section(inputs: ReportInputs, st, width) -> list:
    from reportlab.platypus import Paragraph

    case, vol = inputs.case, inputs.volume
    is_2d = vol.is_2d or case.is_2d
    rows = [("Case", case.case_id), ("Dataset", inputs.dataset or "not given")]
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
    run_w = [w for w in m.get("warnings") or [] if w not in test_w and not str(w).startswith(_SKIP_RUN_WARNINGS)]
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


def _image_sections(inputs: ReportInputs, st, width, cancel) -> list:
    from reportlab.platypus import KeepTogether, Paragraph, Spacer

    vol, cam = inputs.volume, inputs.cam
    pred = inputs.prediction
    is_2d = vol.is_2d or inputs.case.is_2d
    mods = inputs.modalities or {vol.modality or "image": vol}
    head = [Paragraph("Images" if is_2d else "Images at the crosshair", st["h2"])]
    out: list = []
    explained = inputs.cam_class or pred.class_name
    if explained != pred.class_name:
        explained += f" (not the predicted class, {pred.class_name})"
    cam_text = (f"Grad-CAM of the class <b>{_t(explained)}</b> ({_t(inputs.cmap)} colour map, transparent at "
                f"or below {inputs.threshold:.2f} and opacity rising with the map up to {inputs.opacity:.2f}; "
                "computed on the model's input, scaled to its maximum over the case). It shows where the "
                "network's evidence lies, not a lesion.")
    if cam is None:
        cam_text = "Grad-CAM: not available for this case."
    elif not np.any(cam > 0):
        cam_text = (f"Grad-CAM of the class <b>{_t(explained)}</b> is empty for this case: no position holds "
                    "positive evidence for this class, so the map points nowhere and no overlay is drawn.")
    if is_2d:
        head.append(Paragraph(cam_text, st["small"]))
        return [KeepTogether(head + _images_2d(inputs, st, width, mods))]

    rad = inputs.radiological
    conv = "radiological" if rad else "neurological"
    head.append(Paragraph(
        f"Each modality resampled onto the {_t(vol.modality or 'reference')} grid (the model's first input, on "
        f"which Grad-CAM lies) and cut in three planes through the crosshair (cyan lines), {conv} convention, "
        f"orientation letters at the edges. Top row: without overlay; bottom row: " + cam_text, st["small"]))
    col = width / 3
    box = min(col - 2 * 9 - 4, 110)  # two modalities per A4 page
    shape = vol.shape
    caps = []
    for plane in PLANES:
        s = plane_axes(plane)[0]
        caps.append(Paragraph(f"{plane}, slice {int(inputs.cursor[s]) + 1} of {shape[s]}", st["caption"]))
    for name, v in mods.items():
        if cancel():
            raise ExportCancelled
        win = inputs.window if inputs.window and name == vol.modality else None
        plain = render_planes(v, inputs.cursor, None, win, rad, grid=vol)
        rows = [caps, [_plane_cell(plain[p], p, rad, st, box) for p in PLANES]]
        if cam is not None:
            over = render_planes(v, inputs.cursor, cam, win, rad, inputs.cmap, inputs.opacity, grid=vol,
                                 threshold=inputs.threshold)
            rows.append([Paragraph(f"{_t(name)} with Grad-CAM ({_t(inputs.cam_class or pred.class_name)})", st["caption"]), "", ""])
            rows.append([_plane_cell(over[p], p, rad, st, box) for p in PLANES])
        title = f"{_t(name)}" + (" — model input" if name in inputs.model_modalities else "")
        block = [Paragraph(title, st["h3"]), _grid_table(rows, col), Spacer(1, 2)]
        out.append(KeepTogether((head if not out else []) + block))
    if inputs.segmentation is not None:
        out += _segmentation_section(inputs, st, width, mods, caps, col, box)
    return out


def _images_2d(inputs: ReportInputs, st, width, mods) -> list:
    """The 2D image as stored and with its Grad-CAM, side by side (no crosshair, no letters)."""
    from reportlab.platypus import Paragraph

    vol, cam = inputs.volume, inputs.cam
    name, v = next(iter(mods.items()))
    win = inputs.window if inputs.window and name == vol.modality else None
    box = (width - 12) / 2
    plain = render_planes(v, inputs.cursor, None, win, True, grid=vol, crosshair=False, size=512,
                          planes=("axial",))["axial"]
    cells = [_image_flowable(plain, box, box)]
    heads = [Paragraph("Image", st["caption"])]
    if cam is not None:
        over = render_planes(v, inputs.cursor, cam, win, True, inputs.cmap, inputs.opacity, grid=vol,
                             crosshair=False, threshold=inputs.threshold, size=512, planes=("axial",))["axial"]
        cells.append(_image_flowable(over, box, box))
        heads.append(Paragraph("Image with Grad-CAM", st["caption"]))
    return [_grid_table([heads, cells], width / 2)]


def _segmentation_section(inputs: ReportInputs, st, width, mods, caps, col, box) -> list:
    from reportlab.lib import colors
    from reportlab.platypus import KeepTogether, Paragraph, Table, TableStyle

    vol, seg = inputs.volume, inputs.segmentation
    name, v = next(iter(mods.items()))
    win = inputs.window if inputs.window and name == vol.modality else None
    imgs = render_planes(v, inputs.cursor, None, win, inputs.radiological, grid=vol, labels=seg)
    values = np.rint(np.nan_to_num(np.asarray(seg.data, dtype=np.float32))).astype(np.int64)
    counts = np.bincount(values[values > 0].ravel()) if (values > 0).any() else np.zeros(1, int)
    present = {int(k): int(c) for k, c in enumerate(counts) if k > 0 and c > 0}
    legend = [[Paragraph("<b>Colour</b>", st["cell"]), Paragraph("<b>Label</b>", st["cell"]),
               Paragraph("<b>Meaning (BraTS)</b>", st["cell"]), Paragraph("<b>Voxels in this mask</b>", st["cell"])]]
    style = [("FONTSIZE", (0, 0), (-1, -1), 8), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
             ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]
    shown = [1, 2, 4, 3] + sorted(k for k in present if k not in SEG_LEGEND)
    for value in shown:
        if value == 3 and 3 not in present:
            continue
        rgb = LABEL_COLOURS.get(value, (0, 200, 255))
        row = len(legend)
        legend.append(["", str(value), Paragraph(_t(SEG_LEGEND.get(value, "other label")), st["cell"]),
                       str(present.get(value, 0))])
        style.append(("BACKGROUND", (0, row), (0, row), colors.Color(*(c / 255 for c in rgb))))
    tab = Table(legend, colWidths=[14 * 2.8346, 14 * 2.8346, 95 * 2.8346, 35 * 2.8346], hAlign="LEFT")
    tab.setStyle(TableStyle(style))
    rows = [caps, [_plane_cell(imgs[p], p, inputs.radiological, st, box) for p in PLANES]]
    note = ("Planes through the crosshair. Labels 1 necrotic core, 2 oedema, 4 enhancing tumour (3 in BraTS "
            "2023); values are rounded to integers (some files were interpolated).")
    if present:
        centre = seg.voxel_to_world(np.argwhere(values > 0).mean(axis=0))
        ijk = np.rint(vol.world_to_voxel(centre)).astype(int)
        note += (f" The labelled region's centre is at RAS ({', '.join(f'{v:.1f}' for v in centre)}) mm, voxel "
                 f"({', '.join(map(str, ijk))}) of the {vol.modality or 'reference'} grid.")
    return [KeepTogether([
        Paragraph(f"Segmentation — {_t(inputs.segmentation_name or 'mask')} over {_t(name)}", st["h3"]),
        _grid_table(rows, col), Paragraph(_t(note), st["small"]), tab])]


def _footer(case_id: str):
    """``onPage`` callback drawing the footer of every page."""
    from reportlab.lib import colors
    from reportlab.lib.units import mm

    def draw(canvas, doc):
        canvas.saveState()
        canvas.setStrokeColor(colors.HexColor("#999999"))
        canvas.setLineWidth(0.4)
        canvas.line(doc.leftMargin, 13 * mm, doc.leftMargin + doc.width, 13 * mm)
        canvas.setFillColor(colors.HexColor("#b00000"))
        canvas.setFont("Helvetica-Bold", 8)
        canvas.drawString(doc.leftMargin, 9 * mm, RESEARCH_ONLY)
        canvas.setFillColor(colors.black)
        canvas.setFont("Helvetica", 7)
        text = f"mriviewer {__version__} — case {case_id}".encode("cp1252", "replace").decode("cp1252")
        canvas.drawString(doc.leftMargin, 5.5 * mm, text[:120])
        canvas.restoreState()

    return draw


def _numbered_canvas():
    """A canvas class that writes "page N of M" once the page count is known."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    class NumberedCanvas(canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):  # noqa: N802  (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont("Helvetica", 7)
                self.drawRightString(self._pagesize[0] - 15 * mm, 9 * mm, f"page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas


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

    from .fileio import atomic_path

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


# ---------------------------------------------------------------------------- batch export
class ReportProgress(NamedTuple):
    """One step of :func:`export_reports`: ``done`` of ``total`` cases handled; ``result`` is
    the PDF's :class:`~pathlib.Path`, or the error message (``str``) when the case failed."""

    done: int
    total: int
    case_id: str
    result: Path | str

    @property
    def ok(self) -> bool:
        """Whether this case's PDF was written."""
        return isinstance(self.result, Path)


@dataclass
class ExportSummary:
    """What :func:`export_reports` did (its generator's return value): ``written``
    ``{case_id: pdf}``, ``failed`` ``{case_id: message}``, the CSV (``None`` when cancelled or
    nothing was predicted) and whether it was cancelled."""

    out_dir: Path
    written: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    predictions_csv: Path | None = None
    cancelled: bool = False


def export_reports(predictor, dataset: Dataset, out_dir: str | Path, case_ids: Iterable[str] | None = None,
                   loader=None, cancel: Callable[[], bool] = lambda: False,
                   predictions: Mapping | None = None, gradcams: Mapping | None = None,
                   **display) -> Generator[ReportProgress, None, ExportSummary]:
    """Write one PDF report per case into ``out_dir`` and :data:`PREDICTIONS_CSV`, step by step.

    Iterate to run it; each case yields :class:`ReportProgress` ``(done, total, case_id,
    path_or_error)``. A case that fails (unreadable file, missing modality, …) yields its error
    message and the export goes on with the next; the CSV has a row for every case that could be
    predicted (also when its PDF then failed). ``cancel`` is polled before each case and
    between a report's images: when it returns true the export stops, the report being written
    is removed (finished PDFs stay) and no CSV is written. The generator returns an
    :class:`ExportSummary` (``StopIteration.value``; ``summary = yield from export_reports(…)``).

    Args:
        predictor: a loaded :class:`~mriviewer.ml.predict.Predictor`.
        dataset: the cases' :class:`~mriviewer.datasets.Dataset`.
        out_dir: folder (created if needed); a PDF per case named by :func:`report_filename`
            (``-2``, ``-3`` … appended when two ids give one name).
        case_ids: which cases (default all), in this order.
        loader: ``ModalitySource → Volume``; default the process-wide volume cache.
        predictions, gradcams: ``{case_id: Prediction / GradCamResult}`` already computed
            (e.g. by the GUI); others are computed.
        display: ``radiological``, ``cmap``, ``opacity``, ``threshold`` for every report.

    Raises:
        DatasetError: a ``case_ids`` entry names no case of ``dataset`` (before any work).
        MriViewerError: ``out_dir`` cannot be created, or the CSV cannot be written.
    """
    if loader is None:
        from .cache import default_cache

        loader = default_cache().get
    out_dir = Path(out_dir)
    if case_ids is None:
        cases = list(dataset.cases)
    else:
        cases, unknown = [], []
        for cid in case_ids:
            try:
                cases.append(dataset.case(cid))
            except DatasetError:
                unknown.append(cid)
        if unknown:
            raise DatasetError(f"{dataset.root}: no case {', '.join(repr(c) for c in unknown)}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MriViewerError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    predictions, gradcams = predictions or {}, gradcams or {}
    summary = ExportSummary(out_dir)
    names: set[str] = set()
    preds = []
    total = len(cases)
    for done, case in enumerate(cases, start=1):
        if cancel():
            summary.cancelled = True
            break
        name = report_filename(case.case_id)
        stem, n = name[:-4], 2
        while name.lower() in names:
            name, n = f"{stem}-{n}.pdf", n + 1
        names.add(name.lower())
        try:
            pred, cam = predictions.get(case.case_id), gradcams.get(case.case_id)
            if pred is None and cam is None:  # one preprocessing of the case for both
                pred, cam = predictor.predict_with_gradcam(case, loader)
            elif pred is None:
                pred = predictor.predict(case, loader)
            preds.append(pred)
            if cancel():
                raise ExportCancelled
            inputs = build_report_inputs(predictor, case, loader, prediction=pred, gradcam=cam, dataset=dataset,
                                         **display)
            result: Path | str = write_case_report(inputs, out_dir / name, cancel=cancel)
            summary.written[case.case_id] = result
        except ExportCancelled:
            summary.cancelled = True
            break
        except Exception as exc:  # one broken case must not stop the batch
            result = str(exc) if isinstance(exc, MriViewerError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, MriViewerError):
                log.warning("report of case %s failed", case.case_id, exc_info=True)
            summary.failed[case.case_id] = result
        yield ReportProgress(done, total, case.case_id, result)
    if not summary.cancelled and preds:
        by_id = {c.case_id: c for c in cases}
        summary.predictions_csv = write_predictions_csv(
            preds, predictor.class_names, out_dir / PREDICTIONS_CSV, dataset,
            role=lambda cid: predictor.role_of(by_id.get(cid, cid)))
    return summary


def write_predictions_csv(predictions: Iterable, class_names: list[str], out: str | Path,
                          dataset: Dataset | None = None, role=None) -> Path:
    """Write ``case_id, split, true_label, predicted_class, predicted_label, probability,
    p_<class>…`` rows, atomically.

    ``split`` is ``role(case_id)`` — train / validation / test from the checkpoint's recorded
    split, or external — so nobody mixes training cases into an evaluation by accident.
    ``true_label`` is the class name when known, else empty. Text cells starting with
    ``= + - @`` are escaped (:func:`~mriviewer.fileio.csv_text`). Returns ``out``.

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
