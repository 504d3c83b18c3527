"""Batch export of per-case PDF reports from the GUI: :func:`mriviewer.reporting.batch.export_reports`
in a worker, a progress dialog with Cancel, and a summary naming the cases that failed."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets

__all__ = ["run_batch_export"]


def run_batch_export(window, out_dir: str | Path, case_ids: list[str] | None = None):
    """Export reports of ``case_ids`` (default all) of the window's dataset into ``out_dir``.

    The Grad-CAM maps and predictions already computed in the app model are reused. Returns the
    worker; the window's ``statusBar`` and a message say what was written.
    """
    from mriviewer.reporting.batch import export_reports

    model = window.model
    ok, why = model.can_batch_export()
    if not ok:
        window.show_error(why)
        return None
    ids = list(case_ids) if case_ids is not None else [c.case_id for c in model.cases]
    cancel = threading.Event()
    dlg = QtWidgets.QProgressDialog(f"Writing {len(ids)} reports to {out_dir}…", "Cancel", 0, max(len(ids), 1),
                                    window)
    dlg.setWindowTitle("Export reports")
    dlg.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
    dlg.setMinimumDuration(0)
    dlg.canceled.connect(cancel.set)
    dlg.setValue(0)
    window.batch_dialog = dlg
    failed: list[str] = []

    def work():
        summary = yield from export_reports(
            model.predictor, model.dataset, out_dir, ids, loader=window.cache.get, cancel=cancel.is_set,
            predictions=dict(model.predictions), gradcams=dict(model.cams),
            radiological=window.state.radiological, cmap=window.state.cmap, opacity=window.state.opacity,
            threshold=window.state.threshold)
        return summary

    def step(p) -> None:
        dlg.setValue(p.done)
        dlg.setLabelText(f"{p.done} of {p.total}: {p.case_id}")
        if not p.ok:
            failed.append(f"{p.case_id}: {p.result}")

    def done(summary) -> None:
        dlg.reset()
        n = len(summary.written)
        text = (f"Export cancelled after {n} report(s)" if summary.cancelled
                else f"{n} report(s) and {summary.predictions_csv.name if summary.predictions_csv else 'no CSV'}"
                     f" written to {summary.out_dir}")
        window.statusBar().showMessage(text, 15000)
        if failed:
            window.show_error(f"{text}; {len(failed)} case(s) failed:\n" + "\n".join(failed[:20]))
        window.batch_finished.emit(summary)

    def error(exc) -> None:
        dlg.reset()
        window.model.report_error("Export failed", exc)

    # Quitting cancels it like the Cancel button: the report being written is removed.
    return window.workers.start(work, on_yield=step, on_return=done, on_error=error, cancel=cancel.set)
