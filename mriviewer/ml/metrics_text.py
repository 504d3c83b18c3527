"""Metrics as text, for the log and the command line.
"""

from __future__ import annotations

from mriviewer.core.text import fmt_interval, fmt_number


def format_metrics(m: dict, title: str = "Test") -> str:
    """Human-readable lines for the log and the report.

    Args:
        m: a :func:`classification_metrics` or :func:`summarise_folds` result.
        title: what was evaluated ("Test", "Validation", "Cross-validation", ...).

    Returns:
        A summary line, a line of secondary metrics, a calibration line (Brier, ECE) when
        present, then one ``"Warning: ..."`` line per warning. Missing or undefined values read ``n/a``.
    """
    if "n_folds" in m:
        return _format_folds(m, title)
    level = m.get("ci_level") or 0.95
    lines = [
        f"{title} ({_count(m.get('n_cases'))} cases): "
        f"AUC {_f3(m.get('auc'))} ({100 * level:g}% CI {_ci(m.get('auc_ci'))}), "
        f"accuracy {_f3(m.get('accuracy'))} ({_ci(m.get('accuracy_ci'))}; "
        f"most frequent class {_f3(m.get('accuracy_chance'))}), "
        f"balanced accuracy {_f3(m.get('balanced_accuracy'))}, "
        f"macro F1 {_f3(m.get('f1_macro'))} ({_ci(m.get('f1_macro_ci'))})",
        f"  macro precision {_f3(m.get('precision_macro'))}, "
        f"macro recall {_f3(m.get('recall_macro'))}, "
        f"specificity {_f3(m.get('specificity'))}, weighted F1 {_f3(m.get('f1_weighted'))}",
    ]
    if "brier" in m:
        lines.append(f"  calibration: Brier {_f3(m.get('brier'))} ({_ci(m.get('brier_ci'))}), "
                     f"ECE {_f3(m.get('ece'))} ({_ci(m.get('ece_ci'))}; {m.get('ece_bins')} bins)")
    lines += [f"Warning: {w}" for w in m.get("warnings", [])]
    return "\n".join(lines)


def _f3(v) -> str:
    return fmt_number(v, 3)


def _ci(ci) -> str:
    return fmt_interval(ci, 2)


def _count(v) -> str:
    return "n/a" if v is None else str(int(v))


def _format_folds(s: dict, title: str) -> str:
    def mean_sd(name: str) -> str:
        entry = s.get(name) or {}
        mean, sd = entry.get("mean"), entry.get("sd")
        return f"{_f3(mean)} ± {_f3(sd)}" if mean is not None else "n/a"

    lines = [
        f"{title} ({_count(s.get('n_folds'))} folds, mean ± SD): AUC {mean_sd('auc')}, "
        f"accuracy {mean_sd('accuracy')}, balanced accuracy {mean_sd('balanced_accuracy')}, "
        f"macro F1 {mean_sd('f1_macro')}",
        f"  macro precision {mean_sd('precision_macro')}, macro recall {mean_sd('recall_macro')}, "
        f"specificity {mean_sd('specificity')}, weighted F1 {mean_sd('f1_weighted')}",
    ]
    lines += [f"Warning: {w}" for w in s.get("warnings", [])]
    return "\n".join(lines)
