"""Tools ▸ Volume cache: where the disk caches are, what they hold, and a Clear button
(:func:`mriviewer.cache.admin.cache_info`, :func:`mriviewer.cache.admin.clear_cache`)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from mriviewer.cache.admin import size_text

__all__ = ["CacheDialog", "cache_text"]


def _size(n) -> str:
    return size_text(n, none="no limit")


def cache_text() -> str:
    """HTML summary of :func:`mriviewer.cache.admin.cache_info`."""
    from mriviewer.cache.admin import cache_info

    info = cache_info()
    v, s = info["volumes"], info["samples"]
    return (f"<b>Decoded volumes</b> ({'on' if v.get('enabled', True) else 'off: MRIVIEWER_DISK_CACHE=0'})<br>"
            f"{v['path']}<br>{v['entries']} entries, {_size(v['bytes'])} of {_size(v.get('limit_bytes'))}<br><br>"
            f"<b>Training samples</b><br>{s['path']}<br>{s['entries']} samples in {s.get('settings', 0)} "
            f"preprocessing setting(s), {_size(s['bytes'])}<br><br>"
            f"Total {_size(info['total_bytes'])}. Entries carry checksums; a damaged one is rebuilt, never used.")


class CacheDialog(QtWidgets.QDialog):
    """Shows the cache summary; Clear empties both disk caches and the memory cache."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Volume cache")
        self.label = QtWidgets.QLabel(cache_text())
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        clear = QtWidgets.QPushButton("Clear cache")
        clear.clicked.connect(self.clear)
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.accept)
        row = QtWidgets.QHBoxLayout()
        row.addStretch(1)
        row.addWidget(clear)
        row.addWidget(close)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.label)
        lay.addLayout(row)
        self.resize(560, 260)

    def clear(self) -> int:
        """Empty the caches; returns the bytes freed."""
        from mriviewer.cache.admin import clear_cache

        freed = clear_cache()
        self.label.setText(f"Freed {_size(freed)}.<br><br>" + cache_text())
        return freed
