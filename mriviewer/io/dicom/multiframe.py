"""Enhanced (multi-frame) MR (PS3.3 C.8.13): the per-frame functional groups give each frame's
position, orientation and spacing; frames whose orientation or PixelSpacing differs from the
majority are split off, frames without a usable position dropped, each with the file named.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.io.dicom.geometry import _check_iop, _check_ipp, _check_spacing, _split_orientations
from mriviewer.io.dicom.headers import (
    _HEADER_ERRORS,
    LPS_TO_RAS,
    _checked_rescale,
    _fmt,
    _majority,
    _rescale,
    _series_meta,
)
from mriviewer.io.dicom.pixels import _raw_pixels
from mriviewer.io.dicom.problems import _Report, _Slice


# ----------------------------------------------------------------------------- multi-frame
def _read_multiframe(path: Path, ds: pydicom.Dataset, modality: str,
                     report: _Report | None = None) -> Volume:
    """Enhanced (multi-frame) MR image: per-frame geometry and rescale from the functional
    groups (PS3.3 C.7.6.16: PlanePositionSequence, PlaneOrientationSequence,
    PixelMeasuresSequence, PixelValueTransformationSequence), per frame before shared.

    Frames whose orientation or PixelSpacing differs from the majority are split off, frames
    without a usable position dropped (warnings name the file and the frame numbers); where
    several frames share a position the first at each position is kept (warned)."""
    report = report or _Report()
    frames = _raw_pixels(ds, path)  # (frames, rows, cols)
    if frames.ndim == 2:
        frames = frames[None]
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])

    def group_attr(fg, seq, attr):
        for src in (fg, shared):
            if src is not None and seq in src and attr in src[seq][0]:
                return src[seq][0][attr].value
        return None

    if not per_frame:
        raise LoadError(path, "multi-frame DICOM without per-frame functional groups")
    if len(per_frame) != frames.shape[0] or frames.ndim != 3:
        raise LoadError(path, f"{len(per_frame)} per-frame functional groups for pixel data of shape "
                              f"{frames.shape}")
    top_slope, top_inter = _rescale(ds)
    items = []
    for f, fg in enumerate(per_frame):
        item = _Slice(path, ds, {}, extra={"frame": f})
        where = f"frame {f + 1}"
        iop = group_attr(fg, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = group_attr(fg, "PixelMeasuresSequence", "PixelSpacing")
        if iop is None or spacing is None:
            raise LoadError(path, f"multi-frame DICOM without plane orientation or pixel spacing ({where})")
        try:
            item.iop, note = _check_iop(np.array([float(v) for v in iop]) if len(iop) == 6 else None, path)
            if note:
                report.note(path, f"{where}: {note}")
            if len(spacing) != 2:
                raise LoadError(path, f"PixelSpacing {list(spacing)} is not two values")
            item.spacing, note = _check_spacing((float(spacing[0]), float(spacing[1])), path)
            if note:
                report.note(path, note)
        except LoadError as exc:
            raise LoadError(path, f"{where}: {exc.reason}") from exc
        ipp = group_attr(fg, "PlanePositionSequence", "ImagePositionPatient")
        try:
            item.ipp = _check_ipp(None if ipp is None or len(ipp) != 3 else
                                  np.array([float(v) for v in ipp]), path)
        except LoadError as exc:
            report.skip(f"{path}: {where} dropped: {exc.reason}")
            continue
        slope = group_attr(fg, "PixelValueTransformationSequence", "RescaleSlope")
        inter = group_attr(fg, "PixelValueTransformationSequence", "RescaleIntercept")
        slope = top_slope if slope in (None, "") else float(slope)
        inter = top_inter if inter in (None, "") else float(inter)
        item.rescale, note = _checked_rescale(slope, inter)
        if note:
            report.note(path, note)
        items.append(item)
    if not items:
        raise LoadError(path, f"no frame can be placed ({report.skipped[0]})")
    items = _split_orientations(items, lambda it: it.iop, path, report, what="frame")
    spacing, _, others = _majority(items, lambda it: tuple(np.round(it.spacing, 4)))
    if others:
        report.warn(f"{path}: split off {len(others)} frames whose PixelSpacing differs from the "
                    f"{_fmt(spacing)} mm of the other {len(items) - len(others)}: frames "
                    f"{', '.join(str(it.extra['frame'] + 1) for it in others[:8])}")
        items = [it for it in items if it not in others]
    iop = items[0].iop
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    for it in items:
        it.pos = float(it.ipp @ normal)
    # Several frames at one position (echoes, phases): keep the first stack.
    items.sort(key=lambda it: (it.pos, it.extra["frame"]))
    unique: list[_Slice] = []
    for it in items:
        if not unique or abs(it.pos - unique[-1].pos) > 1e-4:
            unique.append(it)
    meta = _series_meta(ds)
    if len(unique) < len(items):
        report.warn(f"{path}: {len(items)} frames at {len(unique)} positions (several images per "
                    "position, e.g. magnitude and phase); showing the first frame at each position")

    def rescaled(it: _Slice) -> np.ndarray:
        slope, inter = it.rescale
        return frames[it.extra["frame"]].astype(np.float32) * np.float32(slope) + np.float32(inter)

    data = np.stack([rescaled(it).T for it in unique], axis=-1)
    ipp0 = unique[0].ipp
    if len(unique) > 1:
        step = (unique[-1].ipp - ipp0) / (len(unique) - 1)
    else:
        try:
            value = group_attr(per_frame[0], "PixelMeasuresSequence", "SliceThickness")
            thick = float(value) if value not in (None, "") else None
        except _HEADER_ERRORS:
            thick = float("nan")
        if thick is None:
            report.note(path, "one frame without SliceThickness; its thickness is assumed 1 mm")
            thick = 1.0
        elif not np.isfinite(thick) or thick <= 0:
            report.note(path, f"SliceThickness {thick} is not a slice thickness; assumed 1 mm")
            thick = 1.0
        step = normal * thick
    lps = np.eye(4)
    lps[:3, 0] = row_dir * float(spacing[1])
    lps[:3, 1] = col_dir * float(spacing[0])
    lps[:3, 2] = step
    lps[:3, 3] = ipp0
    report.into(meta)
    try:
        return Volume(data, LPS_TO_RAS @ lps, modality, [path], meta)
    except MriViewerError as exc:
        raise LoadError(path, str(exc)) from exc
