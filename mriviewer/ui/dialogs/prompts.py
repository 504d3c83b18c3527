"""The prompts behind the menu commands: each asks for a path or a choice (a standard dialog)
and hands the answer to the window's scriptable method (``open_path``, ``load_checkpoint``,
``export_report`` …); cancelling does nothing."""

from __future__ import annotations

from PySide6 import QtWidgets

from mriviewer import RESEARCH_ONLY, __version__
from mriviewer.app.model import runs_dir
from mriviewer.core.volume import MODALITIES

__all__ = [
    "open_folder", "open_file", "open_labelled", "load_checkpoint", "checkpoint_manager", "save_checkpoint",
    "export_report", "batch_export", "export_csv", "screenshot", "cache", "assign_modality", "shortcuts",
    "about",
]

_Dialog = QtWidgets.QFileDialog


def open_folder(win) -> None:
    """File ▸ Open folder."""
    path = _Dialog.getExistingDirectory(win, "Open dataset, case or series folder")
    if path:
        win.open_path_in_background(path)


def open_file(win) -> None:
    """File ▸ Open file."""
    path, _ = _Dialog.getOpenFileName(win, "Open image", "",
                                      "Images (*.nii *.nii.gz *.dcm *.png *.jpg *.jpeg);;All files (*)")
    if path:
        win.open_path(path)


def open_labelled(win) -> None:
    """File ▸ Open labelled folders."""
    from mriviewer.ui.dialogs.labelled_folders import LabelledFoldersDialog

    dlg = LabelledFoldersDialog(win)
    if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.sources():
        win.open_labelled_folders(dlg.sources())


def load_labels(win) -> None:
    """File ▸ Load labels…: the user's label table (:class:`~mriviewer.ui.dialogs.label_table.LabelTableDialog`)."""
    from mriviewer.core.errors import MriViewerError
    from mriviewer.ui.dialogs.label_table import LabelTableDialog

    dlg = LabelTableDialog(win.model, win)
    if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
        return
    try:
        win.model.apply_label_table(dlg.spec())
    except MriViewerError as exc:
        win.model.report_error("Labels not loaded", exc)


def load_checkpoint(win) -> None:
    """File ▸ Load checkpoint."""
    path, _ = _Dialog.getOpenFileName(win, "Load checkpoint", str(runs_dir()), "Checkpoint (*.pt)")
    if path:
        win.load_checkpoint(path)


def checkpoint_manager(win) -> None:
    """File ▸ Checkpoint manager."""
    from mriviewer.ui.controls.checkpoints import CheckpointDialog

    dlg = CheckpointDialog(runs_dir(), win.model.dataset, win)
    if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.chosen:
        win.load_checkpoint(dlg.chosen)


def save_checkpoint(win) -> None:
    """File ▸ Save checkpoint as."""
    src = win.model.checkpoint_path
    path, _ = _Dialog.getSaveFileName(win, "Save checkpoint as", src.name if src else "", "Checkpoint (*.pt)")
    if path:
        win.save_checkpoint(path)


def export_report(win) -> None:
    """File ▸ Export report."""
    case = win.model.current_case
    name = f"mriviewer-report-{case.case_id.replace('/', '_') if case else 'case'}.pdf"
    path, _ = _Dialog.getSaveFileName(win, "Export report", name, "PDF (*.pdf)")
    if path:
        win.export_report(path)


def batch_export(win) -> None:
    """File ▸ Export reports of shown cases."""
    out = _Dialog.getExistingDirectory(win, "Folder for the reports")
    if out:
        win.export_reports(out, win.browser.visible_case_ids())


def export_csv(win) -> None:
    """File ▸ Export predictions (CSV)."""
    path, _ = _Dialog.getSaveFileName(win, "Export predictions", "predictions.csv", "CSV (*.csv)")
    if path:
        win.export_predictions(path)


def screenshot(win) -> None:
    """File ▸ Save screenshot."""
    case = win.state.case_id or "view"
    path, _ = _Dialog.getSaveFileName(win, "Save screenshot", f"mriviewer-{case.replace('/', '_')}.png",
                                      "PNG (*.png)")
    if path:
        win.save_screenshot(path)


def cache(win) -> None:
    """Tools ▸ Volume cache."""
    from mriviewer.ui.controls.cache_dialog import CacheDialog

    CacheDialog(win).exec()


def assign_modality(win) -> None:
    """Case ▸ Assign modality: which series, and what it is."""
    case = win.model.current_case
    if case is None or not case.modalities:
        return
    old, ok = QtWidgets.QInputDialog.getItem(win, "Assign modality", "Series:", list(case.modalities), 0, False)
    if not ok:
        return
    new, ok = QtWidgets.QInputDialog.getItem(win, "Assign modality", f"{old} is:",
                                             [m for m in MODALITIES if m != old], 0, True)
    if ok and new:
        win.assign_modality(old, new)


def shortcuts(win) -> None:
    """Help ▸ Keyboard and mouse shortcuts."""
    from mriviewer.ui.actions import ShortcutsDialog

    ShortcutsDialog(win.actions, win).exec()


def about(win) -> None:
    """Help ▸ About."""
    QtWidgets.QMessageBox.about(
        win, "mriviewer", f"mriviewer {__version__}\n\n{RESEARCH_ONLY}\n\nGeometry from DICOM/NIfTI "
        "headers; patient-level splits; test metrics with bootstrap 95% CI.")
