"""What a case report says, gathered Qt-free from the case, its prediction and the checkpoint
(:class:`ReportInputs`), with the model card (:func:`model_card`) and the report's file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mriviewer.core.colour import CAM_THRESHOLD
from mriviewer.core.errors import MriViewerError
from mriviewer.core.text import fmt_interval, fmt_number
from mriviewer.core.volume import MODALITIES, Volume
from mriviewer.data.cases import Case, Dataset


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


# ---------------------------------------------------------------------------- text helpers
def _fmt(v) -> str:
    return fmt_number(v, 3)


def _ci(pair) -> str:
    return fmt_interval(pair, 3)


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
    card["Architecture"] = f"{cfg.model} ({kind}; stem {cfg.stem}, head {cfg.head})"
    # What was loaded, as the run said it (random, or which pretrained tensors), not what was asked.
    card["Initial weights"] = ck.get("initial_weights") or (
        f"asked: {cfg.pretrained}; what was loaded is not recorded in this checkpoint (written before "
        "mriviewer recorded it)")
    if cfg.preset:
        over = ", ".join(f"{k}={v}" for k, v in (cfg.overrides or {}).items())
        card["Preset"] = f"{cfg.preset} version {cfg.preset_version}" + (f"; overrides: {over}" if over else "")
    else:
        card["Preset"] = "none (configuration given directly)"
    size = f"{cfg.image_size}×{cfg.image_size} px" + (f" × {cfg.depth} slices" if cfg.is_3d else
                                                     f", {cfg.slices_per_case} slice(s) per case")
    card["Inputs"] = f"{', '.join(cfg.modalities)} ({cfg.color}); {size}"
    card["Classes"] = ", ".join(predictor.class_names)
    table = (ck.get("dataset") or {}).get("label_table")
    if table:  # the user's label table, traceable: file, hash, columns, mapping
        mapping = ", ".join(f"{k}→{v}" for k, v in (table.get("label_map") or {}).items())
        card["Labels"] = (f"{table.get('file')} (SHA-256 {str(table.get('sha256', ''))[:12]}…), column "
                          f"{table.get('label_column')!r}, ids in {table.get('id_column')!r} by {table.get('keyed_by')}"
                          + (f"; mapped {mapping}" if mapping else "")
                          + (f"; excluded {', '.join(table.get('exclude') or [])}" if table.get("exclude") else ""))
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
        loader: ``ModalitySource → Volume`` (e.g. :meth:`~mriviewer.cache.memory.VolumeCache.get`).
        cursor: canonical voxel ``(i, j, k)`` on the Grad-CAM's grid.
        dataset: the :class:`~mriviewer.data.cases.Dataset` (or a text) named in the report.
        display: ``radiological``, ``cmap``, ``opacity``, ``window``, ``threshold``.

    Raises:
        MriViewerError: the case cannot be predicted (missing modality, unreadable file).
    """
    from mriviewer.data.cases import ModalitySource

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
        role = predictor.role_of(case, dataset) if isinstance(dataset, Dataset) else predictor.role_of(case)
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
