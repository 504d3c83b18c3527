"""File ▸ Export report, Export predictions and Save screenshot: what the window's methods of
those names write (the report and CSV writers of :mod:`mriviewer.reporting` fed from the app
model, the viewer state and the session). Each reports a failure through the window and
returns ``None``."""

from __future__ import annotations

from pathlib import Path

from mriviewer.core.errors import MriViewerError

__all__ = ["export_report", "export_predictions", "save_screenshot"]


def export_report(win, path: str | Path) -> Path | None:
    """Write the PDF report of the selected case at the current crosshair."""
    from mriviewer.reporting.inputs import build_report_inputs
    from mriviewer.reporting.pdf import write_case_report

    m, st = win.model, win.state
    ok, why = m.can_report()
    if not ok:
        win.show_error(why)
        return None
    case = m.current_case
    try:
        inputs = build_report_inputs(
            m.predictor, case, win.cache.get, cursor=win.session.report_cursor(),
            prediction=m.predictions.get(case.case_id), gradcam=m.cams.get(case.case_id), dataset=m.dataset,
            radiological=st.radiological, cmap=st.cmap, opacity=st.opacity, threshold=st.threshold)
        if st.modality == inputs.volume.modality and st.window:
            inputs.window = st.window
        out = write_case_report(inputs, path)
    except (MriViewerError, OSError) as exc:
        win.show_error(f"Report not written: {exc}")
        return None
    win.statusBar().showMessage(f"Report written to {out}", 8000)
    return out


def export_predictions(win, path: str | Path) -> Path | None:
    """One row per predicted case (:func:`~mriviewer.reporting.predictions_csv.write_predictions_csv`),
    its ``split`` the case's role for the loaded checkpoint, as ``mriviewer evaluate`` and the
    batch export write it."""
    from mriviewer.reporting.predictions_csv import write_predictions_csv

    m = win.model
    ok, why = m.can_export_predictions()
    if not ok:
        win.show_error(why)
        return None
    try:
        return write_predictions_csv(m.predictions_in_order(), m.predictor.class_names, path, m.dataset,
                                     role=m.role_of_id)
    except (MriViewerError, OSError) as exc:
        win.show_error(f"Predictions not written: {exc}")
        return None


def save_screenshot(win, path: str | Path) -> Path | None:
    """Write the views area (the current layout) as a PNG."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    tmp = path.with_name(path.name + ".part.png")
    if not win.viewer.grab_layout().save(str(tmp), "PNG"):
        win.show_error(f"{path}: screenshot not written")
        return None
    tmp.replace(path)
    win.statusBar().showMessage(f"Screenshot written to {path}", 8000)
    return path
