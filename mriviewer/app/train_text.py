"""The Train panel's text and HTML as pure functions: the editors' tooltips, the preset lines,
the log lines of epochs and folds, the curves' title, and the results of a run (the held-out
test figures, the CV summary, each modality's AUC, the ROC curves' names, the confusion
matrix' cells and the warnings). Numbers follow :mod:`mriviewer.core.text` (``n/a`` for a
missing or undefined value). Qt-free; :mod:`mriviewer.ui.controls.train` puts these strings
into widgets.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from mriviewer.core.text import fmt_interval, fmt_number

__all__ = [
    "WARN_COLOUR", "duration", "field_tooltip", "json_placeholder", "json_error", "overrides_tip", "preset_tooltip", "preset_info", "preset_notes_html",
    "fold_suffix", "loss_title", "epoch_log_line", "fold_log_line", "ResultsText", "results_text",
    "warnings_html", "roc_curves", "ConfusionCell", "confusion_cells",
]

#: The colour of warnings (log lines, the Warnings tab, the results' warnings).
WARN_COLOUR = "#c25e00"
_LIST = "<ul style='margin-left:-20px'>"


def duration(seconds: float) -> str:
    """``seconds`` as ``m:ss`` (``1:05``), or ``h:mm:ss`` from an hour on."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ---------------------------------------------------------------------------- settings
def field_tooltip(field) -> str:
    """The HTML tooltip of a :class:`~mriviewer.ml.config_fields.ConfigField`'s editor: its key
    and type, help, choices or range, and the command-line form."""
    tip = [f"<b>{html.escape(field.label)}</b> — <tt>{field.key}</tt> ({field.kind.__name__})"]
    if field.help:
        tip.append(html.escape(field.help))
    if field.choices:
        tip.append("Choices: " + ", ".join(field.choices))
    if field.minimum is not None:
        unit = f" {field.unit}" if field.unit else ""
        tip.append(f"Range: {field.minimum:g} … {field.maximum:g}{unit}")
    tip.append(f"Command line: <tt>--set {field.key}=…</tt>")
    return "<br>".join(tip)


def json_placeholder(field) -> str:
    """The placeholder of a list or dict editor: ``JSON, e.g. [0.7, 0.15, 0.15]``."""
    example = field.default if field.default else ([] if field.kind is list else {})
    return "JSON, e.g. " + json.dumps(example)


def json_error(key: str, kind: type, text: str, reason: str) -> str:
    """The message for an editor's text that is not valid JSON, with an example to follow."""
    example = "[0.7, 0.15, 0.15]" if key == "split" else json.dumps([] if kind is list else {})
    return f"{key}: not valid JSON ({reason}): {text!r}; write e.g. {example}"


def preset_tooltip(p) -> str:
    """The HTML tooltip of a :class:`~mriviewer.ml.presets.Preset`: name, version, task, paper,
    summary and the notes on values that are ours."""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in p.notes)
    return (f"<b>{html.escape(p.name)}</b> v{p.version}<br>{html.escape(p.task)}<br><i>{html.escape(p.paper)}</i>"
            f"<br><br>{html.escape(p.summary)}"
            + (f"<br><br>Where the values are ours, not the paper's:<ul>{notes}</ul>" if notes else ""))


def preset_info(p) -> str:
    """The line under the preset picker (HTML; ``p`` ``None``: no preset), with a link that
    shows the notes."""
    if p is None:
        return "No preset: defaults, plus your edits (recorded as overrides)."
    link = (f" <a href='notes'>{len(p.notes)} note{'s' if len(p.notes) != 1 else ''} on values "
            f"that are ours ▸</a>" if p.notes else "")
    return f"v{p.version}: {html.escape(p.summary)}.{link}"


def preset_notes_html(p) -> str:
    """A preset's notes as an HTML list (``""`` for none)."""
    if p is None:
        return ""
    return _LIST + "".join(f"<li>{html.escape(n)}</li>" for n in p.notes) + "</ul>"


def overrides_tip(edited: Sequence[str], preset_chosen: bool) -> str:
    """What the settings' tooltip says about the edited keys."""
    what = "the preset" if preset_chosen else "the defaults"
    if edited:
        return f"Edited (recorded as overrides of {what}): " + ", ".join(edited)
    return f"No value differs from {what}."


# ---------------------------------------------------------------------------- the run
def fold_suffix(fold: str) -> str:
    """``" (fold 2)"`` for a fold tag, ``""`` for a holdout run."""
    return f" ({fold})" if fold and fold != "holdout" else ""


def loss_title(fold: str) -> str:
    """The loss plot's title with its legend: ``Loss (fold 2) ━ train ━ validation`` (``fold``
    the tag, ``""`` or ``"holdout"`` for none)."""
    return (f"Loss{html.escape(fold_suffix(fold))} <span style='color:#4da6ff'>━ train</span> "
            "<span style='color:#ff9933'>━ validation</span>")


def epoch_log_line(r) -> str:
    """The log line of a finished :class:`~mriviewer.ml.events.EpochRecord`."""
    return (f"epoch {r.epoch}{fold_suffix(r.fold)}: train loss {fmt_number(r.train_loss, 4)}, val loss "
            f"{fmt_number(r.val_loss, 4)}, val AUC {fmt_number(r.val_auc)}, lr {r.lr:.3g}"
            f"{' (best)' if r.is_best else ''}, {r.seconds:.1f}s")


def fold_log_line(event) -> str:
    """The log line of a finished fold (a :class:`~mriviewer.ml.events.FoldEvent`)."""
    t = event.test or {}
    return (f"{event.name} done ({event.index} of {event.total}): test AUC {fmt_number(t.get('auc'))} "
            f"({fmt_interval(t.get('auc_ci'), 3, na='CI n/a')}) on {t.get('n_cases', '?')} cases.")


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ResultsText:
    """The results of a run as text: ``html`` the figures; ``test`` the metrics whose ROC
    curve and confusion matrix are shown (``None``: none); ``warnings`` those on these figures
    (in order, once each)."""

    html: str
    test: dict | None
    warnings: list[str]


def _ci(v) -> str:
    return fmt_interval(v, 3)


def _per_modality(metrics: dict) -> tuple[list[str], dict | None, list[str]]:
    """Lines, the chosen modality's test metrics and the warnings of a per-modality run."""
    per = metrics["per_modality"]
    chosen = metrics.get("chosen_on_validation")
    rows, warns = [], []
    for m, entry in per.items():
        t = (entry or {}).get("test") or {}
        mark = " ← chosen on validation" if m == chosen else ""
        rows.append(f"<li><b>{html.escape(m)}</b>: AUC {fmt_number(t.get('auc'))} (95 % CI {_ci(t.get('auc_ci'))}), "
                    f"{t.get('n_cases', '?')} cases{mark}</li>")
        warns += [f"{m}: {w}" for w in t.get("warnings", [])]
    lines = ["<b>Test (held-out) per modality</b> — one model each:", _LIST + "".join(rows) + "</ul>"]
    test = ((per.get(chosen) or {}).get("test")) if chosen else None
    if test:
        lines.append(f"Details below: {html.escape(chosen)} (the model offered to the viewer).")
    return lines, test, warns


def _test_lines(metrics: dict, test: dict) -> tuple[list[str], list[str]]:
    """Lines of the held-out test metrics (with the CV summary when there is one) and the
    summary's warnings (the test metrics' own are in ``test["warnings"]``)."""
    n = test.get("n_cases", "?")
    pooled = "folds" in metrics or "summary" in metrics
    kind = "held-out, pooled out-of-fold" if pooled else "held-out"
    level = round(100 * (test.get("ci_level") or 0.95))
    chance = (f"; always the most frequent class: {fmt_number(test['accuracy_chance'])}"
              if test.get("accuracy_chance") is not None else "")
    lines = [f"<b>Test ({kind}, {n} cases)</b>",
             f"AUC <b>{fmt_number(test.get('auc'))}</b> ({level} % CI {_ci(test.get('auc_ci'))})<br>"
             f"accuracy {fmt_number(test.get('accuracy'))} ({level} % CI {_ci(test.get('accuracy_ci'))}){chance}<br>"
             f"balanced accuracy {fmt_number(test.get('balanced_accuracy'))}<br>"
             f"macro F1 {fmt_number(test.get('f1_macro'))} ({level} % CI {_ci(test.get('f1_macro_ci'))})"]
    warns: list[str] = []
    summary = metrics.get("summary")
    if summary:
        a = summary.get("auc") or {}
        k = summary.get("n_folds", len(metrics.get("folds", [])))
        lines.append(f"AUC mean ± sd over {k} folds: <b>{fmt_number(a.get('mean'))} ± {fmt_number(a.get('sd'))}"
                     f"</b> ({a.get('n', 0)} folds with a defined AUC)")
        warns += summary.get("warnings", [])
    if metrics.get("warnings_cv"):
        warns.append(metrics["warnings_cv"])
    return lines, warns


def results_text(metrics: dict, stopped: bool = False, source: str = "") -> ResultsText:
    """A run's ``metrics.json`` content (or a checkpoint's metrics in that shape) as text: the
    test metrics with intervals, the CV summary or each modality's test AUC, and the warnings on
    these figures."""
    lines: list[str] = []
    if source:
        lines.append(f"<i>{html.escape(source)}</i>")
    if stopped:
        lines.append(f"<span style='color:{WARN_COLOUR}'><b>Stopped run</b>: the figures are those of "
                     "the best epoch before the stop.</span>")
    warns: list[str] = []
    test = metrics.get("test")
    if metrics.get("per_modality"):
        more, test, warns = _per_modality(metrics)
        lines += more
    if test:
        more, extra = _test_lines(metrics, test)
        lines += more
        warns = list(test.get("warnings", [])) + warns + extra
    elif not metrics.get("per_modality"):
        lines.append("No test metrics: the run ended before an epoch finished.")
    return ResultsText("<br>".join(lines), test or None, list(dict.fromkeys(warns)))


def warnings_html(on_figures: Sequence[str], others: int) -> str:
    """The warnings under the results: those on the figures, listed, and how many more the
    Warnings tab holds."""
    text = ""
    if on_figures:
        text = (f"<b style='color:{WARN_COLOUR}'>Warnings on these figures</b>{_LIST}"
                + "".join(f"<li style='color:{WARN_COLOUR}'>{html.escape(w)}</li>" for w in on_figures) + "</ul>")
    if others:
        text += f"{others} more warning(s) about the run in the Warnings tab."
    return text


def roc_curves(test: dict) -> list[tuple[str, list, list]]:
    """The ROC curves of test metrics as ``(name, fpr, tpr)``: one for a binary task (named by
    its AUC), one per class for a multiclass one; empty when undefined (one class only)."""
    roc = test.get("roc") or {}
    if "fpr" in roc:
        return [(f"AUC {fmt_number(test.get('auc'))}", roc["fpr"], roc["tpr"])] if roc.get("fpr") else []
    per = test.get("per_class") or {}
    return [(f"{name} (AUC {fmt_number((per.get(name) or {}).get('auc'))})", r["fpr"], r["tpr"])
            for name, r in roc.items() if isinstance(r, dict) and r.get("fpr")]


@dataclass(frozen=True)
class ConfusionCell:
    """One cell of the confusion matrix: ``count`` cases of true class ``row`` predicted
    ``column``; ``share`` of the row; ``correct`` on the diagonal; ``tooltip`` in words."""

    row: int
    column: int
    count: int
    share: float
    correct: bool
    tooltip: str


def confusion_cells(test: dict) -> tuple[list[str], list[ConfusionCell]]:
    """``(class names, cells)`` of test metrics' confusion matrix (rows true, columns
    predicted); names default to the class indices."""
    cm = test.get("confusion_matrix") or []
    names = list(test.get("class_names") or [str(i) for i in range(len(cm))])
    cells = []
    for i, row in enumerate(cm):
        total = sum(row)
        for j, count in enumerate(row):
            cells.append(ConfusionCell(i, j, int(count), count / max(total, 1), i == j,
                                       f"{count} of {total} cases of {names[i]} predicted {names[j]}"))
    return names, cells
