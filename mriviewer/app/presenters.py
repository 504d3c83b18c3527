"""The text and HTML the panels show, as pure functions of the models (FSLeyes keeps such
formatting beside its display context, napari beside its components): the case browser's rows,
the dataset and checkpoint lines, the prediction box, the cursor readouts, the captions and the
Train panel's messages. Nothing here changes a model or touches a widget, so every line a user
reads is tested without a window; :mod:`mriviewer.ui` only puts these strings into widgets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mriviewer.core.volume import MODALITIES

__all__ = [
    "CASE_COLUMNS", "CaseRow", "case_row", "patient_of", "patient_cases", "patient_order", "patient_tooltip",
    "patient_sort_key", "id_affixes", "short_ids", "MIN_AFFIX", "class_prefix", "short_class", "dataset_summary",
    "checkpoint_summary", "prediction_text", "NO_MODEL", "case_title", "modality_items", "GRID_ITEMS",
    "cam_class_items", "cam_caption", "status_readout", "readout_html", "legend_html", "colorbar_caption",
    "loaded_text", "training_start_log",
    "training_outcome", "epoch_text", "checkpoint_results", "assigned_text",
]

#: Columns of the case browser, in order.
CASE_COLUMNS = ("Case", "Patient", "Label", "Prediction", "P", "Split", "Modalities", "Errors")
_SHORT = {"FLAIR": "FL", "T1w": "T1", "T1wCE": "T1c", "T2w": "T2"}

#: What the prediction box says with no model loaded.
NO_MODEL = "No model loaded. Train one or load a checkpoint."

#: The grid box's entries: ``(text, ViewerState.grid value)``.
GRID_ITEMS: tuple[tuple[str, str], ...] = (
    ("Grid: finest", "auto"), *((f"Grid: {m}", m) for m in MODALITIES), ("Grid: native", "native"))


# ---------------------------------------------------------------------------- case browser
@dataclass
class CaseRow:
    """One row of the case browser (see :data:`CASE_COLUMNS`); ``patient`` is the patient's id,
    ``""`` when the case is its own patient; ``probability`` is that of the predicted class,
    ``None`` before prediction; ``tooltip`` explains modalities and errors, ``patient_tip`` the
    patient's cases."""

    case_id: str
    label: str
    prediction: str
    probability: float | None
    split: str
    modalities: str
    errors: str
    tooltip: str
    patient: str = ""
    patient_tip: str = ""

    def values(self) -> tuple:
        """The cells' texts, in :data:`CASE_COLUMNS` order."""
        p = "" if self.probability is None else f"{self.probability:.2f}"
        return (self.case_id, self.patient, self.label, self.prediction, p, self.split, self.modalities, self.errors)


def patient_of(case) -> str:
    """The patient column's text: the case's patient id, ``""`` when the case is its own patient
    (no patient id, or the case id itself)."""
    pid = case.patient_id
    return pid if pid and pid != case.case_id else ""


def _patient_key(case) -> str:
    return case.patient_id or case.case_id


def patient_cases(cases) -> dict[str, list[str]]:
    """Patient → the ids of its cases (studies, sessions, time points), in ``cases``' order; a
    case without a patient id is its own patient."""
    out: dict[str, list[str]] = {}
    for c in cases:
        out.setdefault(_patient_key(c), []).append(c.case_id)
    return out


def patient_order(cases) -> list:
    """``cases`` with each patient's cases together: patients in the order their first case
    comes, a patient's cases in their own order (a dataset in folder order is unchanged)."""
    groups: dict[str, list] = {}
    for c in cases:
        groups.setdefault(_patient_key(c), []).append(c)
    return [c for group in groups.values() for c in group]


def patient_tooltip(patient: str, case_ids: list[str], shown: int = 8) -> str:
    """The patient cell's tooltip: how many cases (studies, sessions, time points) the patient
    has, and which."""
    n = len(case_ids)
    what = "case (study, session or time point)" if n == 1 else "cases (studies, sessions or time points)"
    listed = ", ".join(case_ids[:shown]) + (f", … ({n - shown} more)" if n > shown else "")
    return f"Patient {patient}: {n} {what} in this dataset: {listed}"


def patient_sort_key(row: CaseRow) -> str:
    """The Patient column's sort key: the patient (the case itself when it is its own), then
    the case, so a patient's cases stay together in either direction."""
    return f"{row.patient or row.case_id}\x00{row.case_id}"


def _modalities_cell(case) -> tuple[str, str]:
    """``(cell, tooltip)`` of the modalities column."""
    if case.is_2d:
        return "2D image", ""
    mods = "all 4" if all(m in case.modalities for m in MODALITIES) else \
        " ".join(_SHORT[m] if m in case.modalities else "–" for m in MODALITIES)
    extra = [m for m in case.modalities if m not in MODALITIES]
    if extra:
        mods += " +" + ",".join(extra)
    missing = [m for m in MODALITIES if m not in case.modalities]
    tip = "present: " + ", ".join(case.modalities) + (f"; missing: {', '.join(missing)}" if missing else "")
    return mods, tip


def case_row(model, case, patients: Mapping[str, list[str]] | None = None) -> CaseRow:
    """The browser row of ``case`` in the :class:`~mriviewer.app.model.AppModel` ``model``;
    ``patients`` is :func:`patient_cases` of the dataset (computed when not given: pass it when
    making every row)."""
    ds = model.dataset
    truth = ds.label_name(case) if ds is not None else None
    label = short_class(model, truth) or "—"
    mods, tip = _modalities_cell(case)
    pred = model.predictions.get(case.case_id)
    err = model.prediction_errors.get(case.case_id)
    errors = list(case.errors) + ([f"not predicted: {err}"] if err else [])
    tooltip = [tip] + errors + ([f"predicted: {pred.class_name}"] if pred is not None else []) \
        + ([f"label: {truth}"] if truth else [])
    patient = patient_of(case)
    patient_tip = ""
    if patient:
        if patients is None:
            patients = patient_cases(model.cases)
        patient_tip = patient_tooltip(patient, patients.get(patient, [case.case_id]))
    return CaseRow(
        case_id=case.case_id, label=label,
        prediction=short_class(model, pred.class_name) if pred is not None else ("not predicted" if err else ""),
        probability=pred.probability if pred is not None else None,
        split=model.split_of(case), modalities=mods,
        errors=str(len(errors)) if errors else "",
        tooltip="\n".join(tooltip).strip(), patient=patient, patient_tip=patient_tip,
    )


#: Shared parts of ids shorter than this are left in (an ellipsis is about as wide).
MIN_AFFIX = 3


def _kind(ch: str) -> int:
    return 0 if ch.isalpha() else 1 if ch.isdigit() else 2


def _token_prefix(texts: list[str]) -> str:
    """The longest prefix of every text that ends at a token boundary (after a separator, or
    between letters and digits) and leaves each text something."""
    common = os.path.commonprefix(texts)
    for i in range(min(len(common), min(map(len, texts)) - 1), 0, -1):
        if _kind(common[i - 1]) == 2 or all(_kind(t[i]) not in (2, _kind(common[i - 1])) for t in texts):
            return common[:i]
    return ""


def id_affixes(ids) -> tuple[str, str]:
    """``(prefix, suffix)`` every one of ``ids`` shares, cut at token boundaries
    (``"BraTS-GLI-"``, ``"-000"`` for ``BraTS-GLI-00001-000``, ``BraTS-GLI-00002-000``…), each
    ``""`` when shorter than :data:`MIN_AFFIX`. What is left of an id tells it from the others."""
    texts = [t for t in dict.fromkeys(ids) if t]
    if len(texts) < 2:
        return "", ""
    prefix = _token_prefix(texts)
    prefix = prefix if len(prefix) >= MIN_AFFIX else ""
    rest = [t[len(prefix):] for t in texts]
    suffix = _token_prefix([r[::-1] for r in rest])[::-1]
    return prefix, suffix if len(suffix) >= MIN_AFFIX else ""


def short_ids(text: str, affixes: tuple[str, str]) -> list[str]:
    """Shorter forms of ``text`` for a narrow column, longest first: without the shared prefix
    (``"…00001-000"``), then without the shared suffix as well (``"…00001…"``); the part that
    tells the ids apart always stays. Empty when nothing is shared."""
    prefix, suffix = affixes
    out, core, lead = [], text, ""
    if prefix and text.startswith(prefix) and len(text) > len(prefix):
        core, lead = text[len(prefix):], "…"
        out.append(lead + core)
    if suffix and core.endswith(suffix) and len(core) > len(suffix):
        out.append(lead + core[: -len(suffix)] + "…")
    return out


def class_prefix(model) -> str:
    """Words every class name starts with (``"MGMT "`` for MGMT unmethylated / methylated),
    left out of the browser's narrow columns; ``""`` when none."""
    names = list(model.dataset.class_names) if model.dataset is not None else []
    if model.predictor is not None:
        names += list(model.predictor.class_names)
    if len(names) < 2:
        return ""
    words = [n.split(" ") for n in names]
    common = []
    for group in zip(*words, strict=False):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    if not common or any(len(w) <= len(common) for w in words):
        return ""
    return " ".join(common) + " "


def short_class(model, name: str | None) -> str | None:
    """``name`` without :func:`class_prefix`."""
    prefix = class_prefix(model)
    return name[len(prefix):] if name and prefix and name.startswith(prefix) else name


def dataset_summary(model) -> str:
    """One line: root, layout, case count, task, cases with errors."""
    ds = model.dataset
    if ds is None:
        return "No dataset. File ▸ Open folder… or File ▸ Open demo."
    n_err = sum(bool(c.errors) for c in ds.cases)
    task = {"binary": "binary", "multiclass": f"{len(ds.class_names)} classes", "none": "no labels"}[ds.task]
    return f"{ds.root}: {ds.layout}, {len(ds.cases)} cases, {task}" + (f", {n_err} with errors" if n_err else "")


# ---------------------------------------------------------------------------- model and prediction
def checkpoint_summary(model) -> str:
    """One line on the loaded model: architecture, where it was chosen, its test AUC with
    interval and the number of held-out cases."""
    p = model.predictor
    if p is None:
        return NO_MODEL
    val = p.metrics.get("validation") or {}
    test = p.test_metrics or {}
    text = f"Model {p.config.model} from {model.checkpoint_path}"
    if val:
        text += f"; chosen on validation ({val.get('monitor', 'val_auc')}, epoch {val.get('epoch', '?')})"
    if test:
        ci = test.get("auc_ci") or [None, None]
        auc = test.get("auc")
        text += (f"; test AUC {'n/a' if auc is None else f'{auc:.3f}'}"
                 + (f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if None not in ci else "")
                 + f" on {test.get('n_cases', '?')} held-out cases")
    else:
        text += "; no test metrics in this checkpoint"
    return text


def prediction_text(model, case) -> tuple[str, str]:
    """``(headline, detail)`` (HTML) for the prediction box of ``case``."""
    p = model.predictor
    if p is None:
        return NO_MODEL, ""
    if case is None:
        return "", ""
    pred = model.predictions.get(case.case_id)
    if pred is None:
        err = model.prediction_errors.get(case.case_id)
        return (f"Not predicted: {err}" if err else "Predicting…"), ""
    probs = ", ".join(f"{n}: {q:.2f}" for n, q in zip(p.class_names, pred.probs, strict=False))
    detail = f"Model {p.config.model}: {probs}"
    truth = model.dataset.label_name(case) if model.dataset is not None else None
    if truth:
        detail += f"<br>Known label: {truth}"
    split = model.split_of(case)
    from mriviewer.ml.seen import ROLE_TEXT  # no torch: cheap

    if split in ROLE_TEXT:
        detail += f"<br>This case is <b>{ROLE_TEXT[split]}</b>: its prediction is not a test result."
    elif split and split != "external":
        detail += f"<br>This case was in the model's <b>{split}</b> set."
    return f"<b>{pred.class_name}</b> — probability {pred.probability:.3f}", detail


def cam_class_items(predictor) -> list[tuple[str, int | None]]:
    """The Grad-CAM class box's entries ``(text, class index or None = the predicted one)``."""
    names = predictor.class_names if predictor is not None else []
    return [("Grad-CAM of the predicted class", None)] + [(f"Grad-CAM of '{n}'", k) for k, n in enumerate(names)]


def cam_caption(result, class_names) -> str:
    """The caption under the prediction of a :class:`~mriviewer.ml.predict.GradCamResult`."""
    return result.describe(class_names[result.class_index])


def checkpoint_results(model) -> dict | None:
    """What the Train panel's results show for a checkpoint loaded (not just trained): its test
    figures (pooled over folds for a cross-validated run) and warnings; ``None`` when it has
    none or is the last run's own checkpoint (its results are shown already)."""
    p, last = model.predictor, model.last_result
    if p is None:
        return None
    just_trained = last is not None and last.checkpoint is not None and \
        Path(last.checkpoint) == Path(model.checkpoint_path)
    test = p.test_metrics or {}
    if just_trained or not test:
        return None
    cv = p.metrics.get("cv") or {}
    shown = {"test": cv.get("test") or test, "warnings": list(p.metrics.get("warnings") or [])}
    if cv.get("summary"):
        shown["summary"] = cv["summary"]
    return shown


# ---------------------------------------------------------------------------- viewer
def case_title(case) -> str:
    """The case line above the views."""
    return f"Case {case.case_id}" if case is not None else ""


def modality_items(case) -> list[tuple[str, str, bool]]:
    """The modality box's entries for ``case``: ``(text, modality, present)``; the structural
    modalities are always listed (missing ones disabled), then any other the case has."""
    names = list(MODALITIES) if not case.is_2d else []
    names += [m for m in case.modalities if m not in names]
    return [(m if m in case.modalities else f"{m} (missing)", m, m in case.modalities) for m in names]


def loaded_text(case_id: str, reference: str | None) -> str:
    """The status line once a case is loaded."""
    return f"Loaded {case_id}" + (f" on the {reference} grid" if reference else " (native grids)")


def status_readout(st) -> str:
    """The status bar's one-line cursor readout of a :class:`~mriviewer.app.viewer.ViewerState`."""
    if st.volume is None:
        return ""
    if st.volume.is_2d:
        i, j = st.cursor[0], st.cursor[1]
        text = (f"{st.case_id}  pixel (column {st.volume.shape[0] - 1 - i}, row {st.volume.shape[1] - 1 - j})  "
                f"value {st.cursor_value():.1f}")
    else:
        xyz = st.cursor_world()
        idx = st.native_index()
        text = (f"{st.case_id} {st.modality}  voxel {idx if idx is not None else st.cursor}  "
                f"RAS ({xyz[0]:.1f}, {xyz[1]:.1f}, {xyz[2]:.1f}) mm  ")
        text += "  ".join(f"{m} {'—' if v is None else f'{v:.1f}'}" for m, v in st.values_at_cursor().items())
    if st.overlay is not None:
        text += f"  Grad-CAM {float(st.overlay[st.cursor]):.2f}"
    return text


def readout_html(st) -> str:
    """The location panel's readout as HTML: position, each modality's value and file voxel index."""
    from mriviewer.core.colour import LABEL_NAMES

    vol = st.volume
    if vol.is_2d:
        i, j = st.cursor[0], st.cursor[1]
        rows = [f"<b>{st.case_id}</b>", f"pixel: column {vol.shape[0] - 1 - i}, row {vol.shape[1] - 1 - j}",
                f"value: {st.cursor_value():.1f}"]
    else:
        xyz = st.cursor_world()
        rows = [f"<b>{st.case_id}</b>", f"RAS ({xyz[0]:.1f}, {xyz[1]:.1f}, {xyz[2]:.1f}) mm",
                "<table cellspacing=4><tr><th align=left>modality</th><th align=right>value</th>"
                "<th align=left>voxel in file</th></tr>"]
        for m, value in st.values_at_cursor().items():
            idx = st.native_index(m)
            bold = ("<b>", "</b>") if m == st.modality else ("", "")
            rows[-1] += (f"<tr><td>{bold[0]}{m}{bold[1]}</td><td align=right>"
                         f"{'—' if value is None else f'{value:.1f}'}</td><td>"
                         f"{'—' if idx is None else str(idx)}</td></tr>")
        rows[-1] += "</table>"
    if st.overlay is not None:
        rows.append(f"Grad-CAM {float(st.overlay[st.cursor]):.2f}")
    if st.segmentation is not None:
        v = int(st.segmentation[st.cursor])
        rows.append(f"segmentation label {v}" + (f" ({LABEL_NAMES[v]})" if v in LABEL_NAMES else ""))
    return "<br>".join(rows)


def legend_html(labels: list[int]) -> str:
    """The segmentation legend of the location panel: a coloured square and name per label."""
    from mriviewer.core.colour import LABEL_COLOURS, LABEL_NAMES

    items = []
    for v in labels:
        r, g, b = LABEL_COLOURS.get(v, (0, 200, 255))
        items.append(f"<span style='color: rgb({r},{g},{b})'>■</span> {v} {LABEL_NAMES.get(v, 'label')}")
    return "Segmentation: " + " &nbsp; ".join(items) if items else ""


def colorbar_caption(threshold: float) -> str:
    """The caption of the Grad-CAM colour bar."""
    return f"Grad-CAM 0 → 1 (hidden below {threshold:.2f})"


# ---------------------------------------------------------------------------- training
def training_start_log(trainer, config) -> list[str]:
    """The log lines when a run starts: its folder and its preset and overrides."""
    lines = [f"Run folder: {trainer.out_dir}"]
    if config.preset:
        lines.append(f"Preset {config.preset} v{config.preset_version}"
                     + (f", overrides: {json.dumps(config.overrides)}" if config.overrides else ", no overrides"))
    elif config.overrides:
        lines.append(f"No preset; changed from the defaults: {json.dumps(config.overrides)}")
    return lines


def training_outcome(result, decision: str) -> tuple[str, list[str]]:
    """``(status line, log lines)`` of a finished run, by the app model's decision
    (:meth:`~mriviewer.app.model.AppModel.training_finished`: ``"none"``, ``"offered"``,
    ``"load"``)."""
    ckpt = result.checkpoint
    if decision == "none":
        return ("Stopped before the first epoch ended: no checkpoint was saved." if result.stopped
                else "Finished without a checkpoint."), []
    if decision == "offered":
        msg = f"Stopped run's checkpoint kept at {ckpt}; the loaded model is unchanged."
        return msg, [msg]
    if result.stopped:
        return (f"Stopped. Loaded the stopped run's best checkpoint: {ckpt}",
                [f"Loading the best checkpoint of a stopped run (chosen on validation before the stop): {ckpt}"])
    return f"Finished. Checkpoint: {ckpt}", []


def epoch_text(event) -> str:
    """The status line of an :class:`~mriviewer.ml.events.EpochEvent` (its record a dataclass, or
    a mapping in older runs)."""
    rec = event.record
    epoch = rec["epoch"] if isinstance(rec, Mapping) else rec.epoch
    return f"Epoch {epoch} done"


def assigned_text(old: str, new: str, n: int) -> str:
    """The status line after Case ▸ Assign modality."""
    return f"{old} is now {new} in {n} case(s)"


def label_match_html(match, columns: list[dict], n_cases: int) -> str:
    """The Load labels dialog's preview: what was detected and chosen, how many cases get a
    label per class, and every doubt (cases without a row, rows without a case, conflicts), as
    HTML. ``match`` is a :class:`~mriviewer.data.label_table.LabelMatch`, ``columns``
    :func:`~mriviewer.data.label_table.describe_columns`."""
    from html import escape

    def some(items) -> str:
        return escape(", ".join(map(str, items[:5])) + (", …" if len(items) > 5 else ""))

    counts = ", ".join(f"{escape(str(k))}: {n}" for k, n in match.class_counts().items())
    lines = [escape(n) for n in match.notes]
    lines.append(f"<b>{len(match.labels)} of {n_cases} cases labelled</b> ({counts or 'none'})")
    for items, what in ((match.cases_without_row, "cases without a row"), (match.rows_without_case, "rows without a case"),
                        (match.blank_rows, "rows without an id or a label (lines)"),
                        (match.repeated, "ids on several rows (one label, used once)"),
                        (match.conflicts, "ids with conflicting labels (left unlabelled)"),
                        (match.patient_conflicts, "patients whose cases differ"), (match.excluded, "cases excluded")):
        if items:
            lines.append(f"<span style='color:#b36b00'>{len(items)} {what}: {some(items)}</span>")
    if match.unmapped:
        lines.append("<span style='color:#b36b00'>values not in the mapping: "
                     + escape(", ".join(f"{v} ({n})" for v, n in match.unmapped.items())) + "</span>")
    col = next((c for c in columns if c["name"] == match.label_column), None)
    if col:
        top = ", ".join(f"{escape(str(v))} ({n})" for v, n in col["top"].items())
        lines.append(f"column {escape(col['name'])!s}: {col['type']}, {col['n_distinct']} values — {top}")
    return "<br>".join(lines)
