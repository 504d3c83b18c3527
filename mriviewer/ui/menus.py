"""The main window's commands and menus: every command is a
:class:`~mriviewer.ui.actions.ModelAction` that enables itself from the app model's and the
viewer state's predicates (FSLeyes-style), and the menus list them."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from mriviewer.ui.dialogs import prompts

__all__ = ["build_actions", "build_menus"]


def build_actions(win) -> None:
    """Register the window's commands in ``win.actions`` (and on the window, so their
    shortcuts work whatever has focus)."""
    m, st, a = win.model, win.state, win.actions

    def ask(prompt):
        return lambda: prompt(win)

    has_case = lambda: (m.current_case is not None, "Open a dataset first.")  # noqa: E731

    def can_assign() -> tuple[bool, str]:  # never while a run reads the cases' modalities
        ok, why = m.can_assign_modality()
        return has_case() if ok else (ok, why)

    a.add("open", "&Open folder…", ask(prompts.open_folder), shortcut=QtGui.QKeySequence.StandardKey.Open)
    a.add("open_file", "Open &file…", ask(prompts.open_file))
    a.add("open_labelled", "Open &labelled folders…", ask(prompts.open_labelled))
    a.add("open_demo", "Open &demo dataset", win.open_demo)
    a.add("load_labels", "Load la&bels…", ask(prompts.load_labels), enabled_when=m.can_assign_modality,
          tip="Label the cases from your own table (CSV, TSV, Excel): columns, matches, mapping")
    a.add("load_checkpoint", "&Load checkpoint…", ask(prompts.load_checkpoint))
    a.add("checkpoints", "&Checkpoint manager…", ask(prompts.checkpoint_manager),
          shortcut="Ctrl+K", tip="Runs and checkpoints with their metadata")
    a.add("save_checkpoint", "&Save checkpoint as…", ask(prompts.save_checkpoint),
          enabled_when=lambda: (m.predictor is not None, "Load or train a model first."))
    a.add("report", "Export &report (PDF)…", ask(prompts.export_report), enabled_when=m.can_report,
          shortcut="Ctrl+E", tip="PDF of the selected case at the crosshair")
    a.add("batch_report", "Export reports of shown cases…", ask(prompts.batch_export),
          enabled_when=m.can_batch_export, tip="One PDF per case shown in the browser, and predictions.csv")
    a.add("export_csv", "Export predictions (&CSV)…", ask(prompts.export_csv),
          enabled_when=m.can_export_predictions)
    a.add("screenshot", "Save screen&shot…", ask(prompts.screenshot), shortcut="Ctrl+Shift+S",
          enabled_when=lambda: (st.volume is not None, "Nothing shown yet."))
    a.add("quit", "&Quit", win.close, shortcut=QtGui.QKeySequence.StandardKey.Quit)
    a.add("next_case", "Next case", lambda: win.step_case(1), shortcut=["N", "Ctrl+Down"], enabled_when=has_case)
    a.add("prev_case", "Previous case", lambda: win.step_case(-1), shortcut=["P", "Ctrl+Up"], enabled_when=has_case)
    a.add("cycle_modality", "Cycle modality", win.cycle_modality, shortcut="M", enabled_when=has_case)
    a.add("toggle_cam", "Toggle Grad-CAM", lambda: st.set_overlay_options(visible=not st.overlay_visible),
          shortcut="G")
    a.add("toggle_seg", "Toggle segmentation", lambda: st.set_segmentation_options(
        visible=not st.segmentation_visible), shortcut="S")
    a.add("toggle_layout", "Switch layout (one modality / all modalities)", lambda: st.set_layout(
        "grid" if st.layout == "single" else "single"), shortcut="L")
    a.add("auto_window", "Reset window/level", st.auto_window, shortcut="W")
    a.add("reset_view", "Reset zoom and pan", win.reset_views, shortcut="Home")
    a.add("slice_up", "Next axial slice", lambda: st.step(2, 1), shortcut="Shift+Up")
    a.add("slice_down", "Previous axial slice", lambda: st.step(2, -1), shortcut="Shift+Down")
    a.add("assign", "Assign &modality…", ask(prompts.assign_modality),
          enabled_when=can_assign)
    a.add("cache", "Volume &cache…", ask(prompts.cache))
    a.add("shortcuts", "Keyboard and mouse &shortcuts", ask(prompts.shortcuts), shortcut="F1")
    a.add("about", "&About", ask(prompts.about))
    for act in a.actions.values():
        win.addAction(act)  # shortcuts work whatever has focus


def _add(menu: QtWidgets.QMenu, actions, names: tuple[str, ...]) -> None:
    for name in names:
        menu.addAction(actions[name])


def build_menus(win) -> None:
    """File, View, Case, Tools and Help; File ▸ Open recent is ``win.recent_menu``."""
    a, bar = win.actions, win.menuBar()
    f = bar.addMenu("&File")
    _add(f, a, ("open", "open_file", "open_labelled", "open_demo", "load_labels"))
    win.recent_menu = f.addMenu("Open &recent")
    f.addSeparator()
    _add(f, a, ("load_checkpoint", "checkpoints", "save_checkpoint"))
    f.addSeparator()
    _add(f, a, ("report", "batch_report", "export_csv", "screenshot"))
    f.addSeparator()
    f.addAction(a["quit"])
    v = bar.addMenu("&View")
    _add(v, a, ("toggle_layout", "cycle_modality", "toggle_cam", "toggle_seg", "auto_window", "reset_view",
                "slice_up", "slice_down"))
    v.addSeparator()
    for dock in win.findChildren(QtWidgets.QDockWidget):
        v.addAction(dock.toggleViewAction())
    _add(bar.addMenu("&Case"), a, ("next_case", "prev_case", "assign"))
    _add(bar.addMenu("&Tools"), a, ("cache",))
    _add(bar.addMenu("&Help"), a, ("shortcuts", "about"))
