"""Settings that persist between runs (``QSettings``): recent datasets, layout, display
convention, window presets per modality, overlay options and the window's geometry and docks.

``$MRIVIEWER_SETTINGS`` names an INI file to use instead of the platform's store (the tests
point it at a temporary file so they never touch a user's settings)."""

from __future__ import annotations

import json
import os

from PySide6 import QtCore

__all__ = ["settings", "RECENT_MAX", "add_recent", "recent", "save_display", "restore_display",
           "restore_window", "save_window"]

#: How many recent datasets File ▸ Recent lists.
RECENT_MAX = 8


def settings() -> QtCore.QSettings:
    """The application's ``QSettings`` (an INI file when ``$MRIVIEWER_SETTINGS`` is set)."""
    path = os.environ.get("MRIVIEWER_SETTINGS")
    if path:
        return QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings("mriviewer", "mriviewer")


def recent() -> list[str]:
    """Recently opened datasets, newest first (paths that no longer exist are left out)."""
    raw = settings().value("recent", "[]")
    try:
        items = json.loads(raw) if isinstance(raw, str) else list(raw or [])
    except ValueError:
        items = []
    return [p for p in items if isinstance(p, str) and os.path.exists(p)][:RECENT_MAX]


def add_recent(path: str) -> list[str]:
    """Put ``path`` first in the recent list; returns the new list."""
    items = [p for p in recent() if p != path]
    items.insert(0, path)
    items = items[:RECENT_MAX]
    settings().setValue("recent", json.dumps(items))
    return items


def save_display(state) -> None:
    """Store the viewer's layout, convention and overlay options (``ViewerState``)."""
    s = settings()
    s.setValue("display", json.dumps({
        "layout": state.layout, "radiological": state.radiological,
        "overlay_visible": state.overlay_visible, "opacity": state.opacity, "cmap": state.cmap,
        "threshold": state.threshold, "segmentation_visible": state.segmentation_visible,
        "seg_opacity": state.seg_opacity, "default_window": state.default_window,
    }))


def restore_display(state) -> None:
    """Apply stored display options to ``state`` (unknown or damaged values are ignored)."""
    raw = settings().value("display", "")
    try:
        d = json.loads(raw) if raw else {}
    except ValueError:
        return
    if not isinstance(d, dict):
        return
    try:
        if d.get("layout") in ("single", "grid"):
            state.set_layout(d["layout"])
        from mriviewer.app.viewer import WINDOW_PRESETS

        if d.get("default_window") in WINDOW_PRESETS:
            state.default_window = d["default_window"]
        if isinstance(d.get("radiological"), bool):
            state.set_radiological(d["radiological"])
        state.set_overlay_options(
            visible=d.get("overlay_visible") if isinstance(d.get("overlay_visible"), bool) else None,
            opacity=float(d["opacity"]) if isinstance(d.get("opacity"), (int, float)) else None,
            cmap=d.get("cmap") if d.get("cmap") in ("inferno", "jet", "hot", "viridis", "magma") else None,
            threshold=float(d["threshold"]) if isinstance(d.get("threshold"), (int, float)) else None)
        state.set_segmentation_options(
            visible=d.get("segmentation_visible") if isinstance(d.get("segmentation_visible"), bool) else None,
            opacity=float(d["seg_opacity"]) if isinstance(d.get("seg_opacity"), (int, float)) else None)
    except (TypeError, ValueError):
        return


def restore_window(win, dock_widths: dict[str, int], dock_heights: dict[str, int]) -> None:
    """Restore the main window's geometry and docks; on the first start the views get the room
    and the docks ``dock_widths`` / ``dock_heights`` (object name → pixels)."""
    s = settings()
    geo, dock_state = s.value("geometry"), s.value("windowState")
    if isinstance(geo, QtCore.QByteArray) and not geo.isEmpty():
        win.restoreGeometry(geo)
    if isinstance(dock_state, QtCore.QByteArray) and not dock_state.isEmpty():
        win.restoreState(dock_state)
        return
    from PySide6 import QtWidgets

    docks = {d.objectName(): d for d in win.findChildren(QtWidgets.QDockWidget)}
    for sizes, orientation in ((dock_widths, QtCore.Qt.Orientation.Horizontal),
                               (dock_heights, QtCore.Qt.Orientation.Vertical)):
        names = [n for n in sizes if n in docks]
        win.resizeDocks([docks[n] for n in names], [sizes[n] for n in names], orientation)


def save_window(win, state) -> None:
    """Store the main window's geometry, docks and the viewer's display options; a failure is
    logged, never raised (settings must not block quitting)."""
    import logging

    try:
        s = settings()
        s.setValue("geometry", win.saveGeometry())
        s.setValue("windowState", win.saveState())
        save_display(state)
        s.sync()
    except Exception as exc:  # noqa: BLE001
        logging.getLogger(__name__).warning("settings not saved: %s", exc)
