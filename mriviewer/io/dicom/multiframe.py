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
from mriviewer.io.dicom.geometry import (
    _check_iop,
    _check_ipp,
    _check_spacing,
    _lps_affine,
    _split_orientations,
)
from mriviewer.io.dicom.headers import (
    _HEADER_ERRORS,
    LPS_TO_RAS,
    _checked_rescale,
    _fmt,
    _majority,
    _rescale,
    _series_meta,
)
from mriviewer.io.dicom.pixels import _as_luminance, _raw_pixels
from mriviewer.io.dicom.problems import _Report, _Slice


# ----------------------------------------------------------------------------- multi-frame
def _group_attr(fg, shared, seq: str, attr: str):
    """``attr`` of the first item of functional group ``seq``: per frame (``fg``) before shared."""
    for src in (fg, shared):
        if src is not None and seq in src and attr in src[seq][0]:
            return src[seq][0][attr].value
    return None


def _read_multiframe(path: Path, ds: pydicom.Dataset, modality: str,
                     report: _Report | None = None, index4d: int = 0) -> Volume:
    """Enhanced (multi-frame) MR image: per-frame geometry and rescale from the functional
    groups (PS3.3 C.7.6.16: PlanePositionSequence, PlaneOrientationSequence,
    PixelMeasuresSequence, PixelValueTransformationSequence), per frame before shared.

    Frames whose orientation or PixelSpacing differs from the majority are split off, frames
    without a usable position dropped (warnings name the file and the frame numbers); where
    several frames share a position the first at each position is kept (warned)."""
    report = report or _Report()
    frames, colour = _as_luminance(ds, _raw_pixels(ds, path))  # (frames, rows, cols)
    if colour:
        report.note(path, colour)
    if frames.ndim == 2:
        frames = frames[None]
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])
    if not per_frame:
        raise LoadError(path, "multi-frame DICOM without per-frame functional groups")
    if len(per_frame) != frames.shape[0] or frames.ndim != 3:
        raise LoadError(path, f"{len(per_frame)} per-frame functional groups for pixel data of shape "
                              f"{frames.shape}")
    items = _placed_frames(path, ds, per_frame, shared, report)
    items = _split_orientations(items, lambda it: it.iop, path, report, what="frame")
    spacing, items = _split_spacing(items, path, report)
    iop = items[0].iop
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    unique, meta_4d = _volume_at_each_position(items, normal, path, report, index4d)
    meta = {**_series_meta(ds), **meta_4d}

    def rescaled(it: _Slice) -> np.ndarray:
        slope, inter = it.rescale
        return frames[it.extra["frame"]].astype(np.float32) * np.float32(slope) + np.float32(inter)

    data = np.stack([rescaled(it).T for it in unique], axis=-1)
    ipp0 = unique[0].ipp
    if len(unique) > 1:
        step = (unique[-1].ipp - ipp0) / (len(unique) - 1)
    else:
        step = normal * _single_frame_thickness(path, per_frame[0], shared, report)
    lps = _lps_affine(row_dir, col_dir, float(spacing[0]), float(spacing[1]), step, ipp0)
    report.into(meta)
    try:
        return Volume(data, LPS_TO_RAS @ lps, modality, [path], meta)
    except MriViewerError as exc:
        raise LoadError(path, str(exc)) from exc


def _placed_frames(path: Path, ds: pydicom.Dataset, per_frame, shared, report: _Report) -> list[_Slice]:
    """One :class:`_Slice` per frame with a usable position (the others dropped, warned).

    Raises:
        LoadError: a frame without orientation or spacing, or that cannot be trusted; no frame
            can be placed.
    """
    top_rescale = _rescale(ds)
    items = []
    for f, fg in enumerate(per_frame):
        item = _frame(path, ds, f, fg, shared, top_rescale, report)
        if item is not None:
            items.append(item)
    if not items:
        raise LoadError(path, f"no frame can be placed ({report.skipped[0]})")
    return items


def _frame(path: Path, ds: pydicom.Dataset, f: int, fg, shared, top_rescale: tuple[float, float],
           report: _Report) -> _Slice | None:
    """Frame ``f`` (0-based) with its checked geometry and rescale; ``None`` (dropped, warned)
    when it has no usable position.

    Raises:
        LoadError: no plane orientation or pixel spacing, or values that cannot be trusted.
    """
    item = _Slice(path, ds, {}, extra={"frame": f})
    where = f"frame {f + 1}"
    iop = _group_attr(fg, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = _group_attr(fg, shared, "PixelMeasuresSequence", "PixelSpacing")
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
    ipp = _group_attr(fg, shared, "PlanePositionSequence", "ImagePositionPatient")
    try:
        item.ipp = _check_ipp(None if ipp is None or len(ipp) != 3 else
                              np.array([float(v) for v in ipp]), path)
    except LoadError as exc:
        report.skip(f"{path}: {where} dropped: {exc.reason}")
        return None
    slope = _group_attr(fg, shared, "PixelValueTransformationSequence", "RescaleSlope")
    inter = _group_attr(fg, shared, "PixelValueTransformationSequence", "RescaleIntercept")
    slope = top_rescale[0] if slope in (None, "") else float(slope)
    inter = top_rescale[1] if inter in (None, "") else float(inter)
    item.rescale, note = _checked_rescale(slope, inter)
    if note:
        report.note(path, note)
    return item


def _split_spacing(items: list[_Slice], path: Path, report: _Report) -> tuple[tuple, list[_Slice]]:
    """``(PixelSpacing, frames)``: the majority spacing and its frames; the others split off (warned)."""
    spacing, _, others = _majority(items, lambda it: tuple(np.round(it.spacing, 4)))
    if others:
        report.warn(f"{path}: split off {len(others)} frames whose PixelSpacing differs from the "
                    f"{_fmt(spacing)} mm of the other {len(items) - len(others)}: frames "
                    f"{', '.join(str(it.extra['frame'] + 1) for it in others[:8])}")
        items = [it for it in items if it not in others]
    return spacing, items


def _volume_at_each_position(items: list[_Slice], normal: np.ndarray, path: Path, report: _Report,
                             index4d: int = 0) -> tuple[list[_Slice], dict]:
    """The frames of volume ``index4d``, sorted along ``normal``, and the 4D metadata.

    Frames at one position are that position's volumes in frame order (the file's dimension
    order: time points, b-values, echoes). When every position holds the same number of frames
    ``V`` > 1, volume ``index4d`` is the ``index4d``-th frame at each position
    (``meta["n_volumes"]`` = V); otherwise the first frame at each position is shown and the
    irregular stacking is warned. A single-volume file ignores ``index4d``, as 3D NIfTI does.

    Raises:
        LoadError: ``index4d`` out of range for a file with several volumes, or a volume asked
            for where positions hold different numbers of frames.
    """
    for it in items:
        it.pos = float(it.ipp @ normal)
    items.sort(key=lambda it: (it.pos, it.extra["frame"]))
    stacks: list[list[_Slice]] = []
    for it in items:
        if not stacks or abs(it.pos - stacks[-1][0].pos) > 1e-4:
            stacks.append([])
        stacks[-1].append(it)
    counts = {len(s) for s in stacks}
    if counts == {1}:
        return [s[0] for s in stacks], {}
    if len(counts) == 1:
        n = counts.pop()
        if not 0 <= index4d < n:
            raise LoadError(path, f"{n} volumes ({len(items)} frames at {len(stacks)} positions); volume "
                                  f"{index4d + 1} out of range (1–{n})")
        report.warn(f"{path}: {n} volumes ({len(items)} frames at {len(stacks)} positions, told apart by frame "
                    "order only: echoes, time points, or image types such as magnitude and field map); "
                    f"showing volume {index4d + 1} (--volume to choose)")
        return [s[index4d] for s in stacks], {"n_volumes": n, "volume_index": int(index4d), "volume_key": "frame order"}
    if index4d:
        raise LoadError(path, f"{len(items)} frames at {len(stacks)} positions, not the same number at each; "
                              f"volume {index4d + 1} cannot be told apart")
    report.warn(f"{path}: {len(items)} frames at {len(stacks)} positions (several images per "
                "position, e.g. magnitude and phase); showing the first frame at each position")
    return [s[0] for s in stacks], {}


def _single_frame_thickness(path: Path, fg, shared, report: _Report) -> float:
    """Slice step of a one-frame volume: its SliceThickness, else 1 mm (noted)."""
    try:
        value = _group_attr(fg, shared, "PixelMeasuresSequence", "SliceThickness")
        thick = float(value) if value not in (None, "") else None
    except _HEADER_ERRORS:
        thick = float("nan")
    if thick is None:
        report.note(path, "one frame without SliceThickness; its thickness is assumed 1 mm")
        thick = 1.0
    elif not np.isfinite(thick) or thick <= 0:
        report.note(path, f"SliceThickness {thick} is not a slice thickness; assumed 1 mm")
        thick = 1.0
    return thick
