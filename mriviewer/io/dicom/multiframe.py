"""Enhanced (multi-frame) MR (PS3.3 C.8.13): geometry per frame and frames into volumes.

Geometry comes from the multi-frame functional groups (PS3.3 C.7.6.16): each frame's
PlanePositionSequence, PlaneOrientationSequence, PixelMeasuresSequence and
PixelValueTransformationSequence, per frame before shared. Frames whose orientation or
PixelSpacing differs from the majority are split off, frames without a usable position
dropped, each with the file and the frame numbers named.

A file may hold several volumes — time points, b-values and gradients, echoes, image types
(magnitude and phase, a magnitude and its field map). They are told apart the way the standard
organises them, as dcm2niix does: by the Multi-frame Dimension Module (PS3.3 C.7.6.17:
DimensionIndexSequence and each frame's FrameContentSequence DimensionIndexValues; the spatial
dimensions StackID, InStackPositionNumber and ImagePositionPatient place a frame within its
volume, the others tell volumes apart), and by the functional groups that label a frame:
MRImageFrameTypeSequence (FrameType values 3 and 4, ComplexImageComponent), MRDiffusionSequence
(DiffusionBValue and DiffusionGradientOrientation), FrameContentSequence TemporalPositionIndex,
MREchoSequence EffectiveEchoTime. An attribute that changes from slice to slice but never
between frames at one position places frames, not volumes, and is ignored. Volumes are ordered
by their dimension index values (the scanner's order), then TemporalPositionIndex, then frame
order; frames that no attribute tells apart are split by their order at each position (said in
the warning). ``index4d`` picks the volume, as for 4D NIfTI; a file with one volume ignores it.
RGB files (a colour FA map) are read as luminance, with a warning.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.io.dicom.geometry import (
    _check_iop,
    _check_ipp,
    _check_spacing,
    _cluster_positions,
    _lps_affine,
    _plain,
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
        if src is not None and seq in src and len(src[seq].value) and attr in src[seq][0]:
            return src[seq][0][attr].value
    return None


def _read_multiframe(path: Path, ds: pydicom.Dataset, modality: str,
                     report: _Report | None = None, index4d: int = 0) -> Volume:
    """Enhanced (multi-frame) MR image: volume ``index4d`` of the file, each frame placed by its
    functional groups (PS3.3 C.7.6.16) and the frames split into volumes by the file's dimension
    organisation (PS3.3 C.7.6.17) and frame labels (see the module docstring).

    Frames whose orientation or PixelSpacing differs from the majority are split off, frames
    without a usable position dropped (warnings name the file and the frame numbers).
    ``meta["n_volumes"]``, ``["volume_index"]``, ``["volume_key"]`` (what tells the volumes apart)
    and ``["volume_values"]`` describe a file with several volumes.

    Raises:
        LoadError: no per-frame functional groups, or not one per frame; a frame without
            orientation or spacing; no frame can be placed; ``index4d`` out of range for a file
            with several volumes (the message names the file and the number of volumes).
    """
    report = report or _Report()
    shared = ds.get("SharedFunctionalGroupsSequence", [None])
    shared = shared[0] if len(shared) else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])
    if not per_frame:
        raise LoadError(path, "multi-frame DICOM without per-frame functional groups")
    frames = _decoded_frames(path, ds, len(per_frame), report)
    dims = _dimensions(ds)
    items = _placed_frames(path, ds, per_frame, shared, report, dims)
    items = _split_orientations(items, lambda it: it.iop, path, report, what="frame")
    spacing, items = _split_spacing(items, path, report)
    iop = items[0].iop
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    for it in items:
        it.pos = float(it.ipp @ normal)
    split = _split_volumes(items, dims, path, report)
    unique, meta_4d = _pick_volume(split, len(items), path, report, index4d)
    meta = {**_series_meta(ds), **meta_4d}

    def rescaled(it: _Slice) -> np.ndarray:
        slope, inter = it.rescale
        return frames[it.extra["frame"]].astype(np.float32) * np.float32(slope) + np.float32(inter)

    data = np.stack([rescaled(it).T for it in unique], axis=-1)
    ipp0 = unique[0].ipp
    if len(unique) > 1:
        step = (unique[-1].ipp - ipp0) / (len(unique) - 1)
    else:
        step = normal * _single_frame_thickness(path, per_frame[unique[0].extra["frame"]], shared, report)
    lps = _lps_affine(row_dir, col_dir, float(spacing[0]), float(spacing[1]), step, ipp0)
    report.into(meta)
    try:
        return Volume(data, LPS_TO_RAS @ lps, modality, [path], meta)
    except MriViewerError as exc:
        raise LoadError(path, str(exc)) from exc


def _decoded_frames(path: Path, ds: pydicom.Dataset, n_groups: int, report: _Report) -> np.ndarray:
    """The stored pixels ``(frames, rows, cols)``; an RGB file (SamplesPerPixel 3: a colour FA
    map, a secondary capture) as its luminance, warned.

    Raises:
        LoadError: undecodable, or not one frame per per-frame functional group.
    """
    frames, colour = _as_luminance(ds, _raw_pixels(ds, path))
    if colour:
        report.note(path, colour)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[0] != n_groups:
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        got = (f"{frames.shape[0]} frames of {frames.shape[1]}x{frames.shape[2]}" if frames.ndim == 3
               else f"pixel data of shape {frames.shape}")
        raise LoadError(path, f"{n_groups} per-frame functional groups but {got} "
                              f"(NumberOfFrames {ds.get('NumberOfFrames', '?')}, SamplesPerPixel {samples})")
    return frames


def _placed_frames(path: Path, ds: pydicom.Dataset, per_frame, shared, report: _Report,
                   dims: list[_Dimension]) -> list[_Slice]:
    """One :class:`_Slice` per frame with a usable position (the others dropped, warned), each
    with its volume labels in ``extra["labels"]`` (:func:`_frame_labels`).

    Raises:
        LoadError: a frame without orientation or spacing, or that cannot be trusted; no frame
            can be placed.
    """
    top_rescale = _rescale(ds)
    items = []
    for f, fg in enumerate(per_frame):
        item = _frame(path, ds, f, fg, shared, top_rescale, report)
        if item is not None:
            item.extra["labels"] = _frame_labels(fg, shared, dims)
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


# ----------------------------------------------------------------------------- dimensions
#: Dimension index pointers that place a frame within its volume (PS3.3 C.7.6.17.1): StackID,
#: InStackPositionNumber, ImagePositionPatient. Every other dimension tells volumes apart.
_SPATIAL_DIMENSIONS = (0x00209056, 0x00209057, 0x00200032)


#: Frame labels that may tell volumes apart, in the order volumes are grouped and named:
#: the non-spatial DimensionIndexValues first (the file's own organisation), then the
#: functional-group attributes (PS3.3 C.8.13.5: MR Image Frame Type, MR Diffusion, Frame
#: Content, MR Echo).
_LABELS = ("DimensionIndexValues", "FrameType", "ComplexImageComponent", "DiffusionBValue",
           "TemporalPositionIndex", "EffectiveEchoTime")


@dataclass(frozen=True)
class _Dimension:
    """One item of DimensionIndexSequence: what its index points at, and whether it is spatial."""

    name: str
    spatial: bool


def _dimensions(ds: pydicom.Dataset) -> list[_Dimension]:
    """The file's dimensions (DimensionIndexSequence, PS3.3 C.7.6.17), ``[]`` when absent or
    unreadable (they only help to tell volumes apart; they never fail a file)."""
    out = []
    try:
        for item in ds.get("DimensionIndexSequence", []):
            pointer = int(item.DimensionIndexPointer)
            label = str(item.get("DimensionDescriptionLabel", "") or "")
            name = label or keyword_for_tag(pointer) or f"({pointer >> 16:04X},{pointer & 0xFFFF:04X})"
            out.append(_Dimension(name, pointer in _SPATIAL_DIMENSIONS))
    except _HEADER_ERRORS:
        return []
    return out


def _frame_labels(fg, shared, dims: list[_Dimension]) -> dict:
    """The labels of one frame that may tell its volume apart (:data:`_LABELS`; hashable
    values, ``None`` when absent or malformed)."""
    def get(fn):
        try:
            return fn()
        except (*_HEADER_ERRORS, ArithmeticError):
            return None

    def frame_type():
        value = _group_attr(fg, shared, "MRImageFrameTypeSequence", "FrameType")
        values = [str(v) for v in (value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value])]
        return "\\".join(values[2:4]) if value is not None and len(values) > 2 else None

    def dimension_values():
        values = _group_attr(fg, None, "FrameContentSequence", "DimensionIndexValues")
        if values is None or not dims:
            return None
        values = list(values) if isinstance(values, (list, tuple, pydicom.multival.MultiValue)) else [values]
        if len(values) != len(dims):
            return None
        return tuple(int(v) for v, d in zip(values, dims, strict=True) if not d.spatial) or None

    def text(seq, attr):
        value = _group_attr(fg, shared, seq, attr)
        return None if value in (None, "") else str(value)

    def number(seq, attr, digits=4):
        value = _group_attr(fg, shared, seq, attr)
        return None if value in (None, "") else round(float(value), digits)

    return {
        "DimensionIndexValues": get(dimension_values),
        "FrameType": get(frame_type),
        "ComplexImageComponent": get(lambda: text("MRImageFrameTypeSequence", "ComplexImageComponent")),
        "DiffusionBValue": get(lambda: _diffusion(fg, shared)),
        "TemporalPositionIndex": get(lambda: number("FrameContentSequence", "TemporalPositionIndex", 0)),
        "EffectiveEchoTime": get(lambda: number("MREchoSequence", "EffectiveEchoTime")),
    }


def _diffusion(fg, shared) -> tuple | None:
    """``(b-value, gradient)`` of a frame's MRDiffusionSequence (PS3.3 C.8.13.5.9), the gradient
    ``None`` for a b = 0 or isotropic frame."""
    b = _group_attr(fg, shared, "MRDiffusionSequence", "DiffusionBValue")
    if b in (None, ""):
        return None
    for src in (fg, shared):
        if src is None or "MRDiffusionSequence" not in src:
            continue
        grad = _group_attr(src["MRDiffusionSequence"][0], None, "DiffusionGradientDirectionSequence",
                           "DiffusionGradientOrientation")
        if grad is not None and len(grad) == 3:
            return round(float(b), 3), tuple(round(float(g), 4) for g in grad)
    return round(float(b), 3), None


# ----------------------------------------------------------------------------- volumes
@dataclass
class _Split:
    """A file's frames as volumes: ``key`` says what tells them apart (``None`` for one
    volume), ``values`` its value for each volume."""

    volumes: list[list[_Slice]]
    key: str | None
    values: list
    n_positions: int


def _split_volumes(items: list[_Slice], dims: list[_Dimension], path: Path, report: _Report) -> _Split:
    """The frames as volumes: grouped by every :data:`_LABELS` label that tells volumes apart
    (:func:`_tells_volumes_apart`), ordered by dimension index, temporal position, then frame
    order; frames at one position that no label tells apart split by their order."""
    clusters = _cluster_positions([it.pos for it in items])
    for it, c in zip(items, clusters, strict=True):
        it.extra["cluster"] = c
    n_pos = max(clusters) + 1
    keys = [k for k in _LABELS if _tells_volumes_apart(items, k, n_pos)]
    groups: dict[tuple, list[_Slice]] = defaultdict(list)
    for it in sorted(items, key=lambda it: it.extra["frame"]):
        groups[tuple(it.extra["labels"][k] for k in keys)].append(it)

    def order(label: tuple) -> tuple:
        lab = dict(zip(keys, label, strict=True))
        return tuple((1,) if lab.get(k) is None else (0, lab[k])
                     for k in ("DimensionIndexValues", "TemporalPositionIndex")) + (groups[label][0].extra["frame"],)

    labels = sorted(groups, key=order)
    key, values = _volume_key(keys, labels, dims)
    volumes, out_values, by_order = [], [], False
    for label, value in zip(labels, values, strict=True):
        parts = _by_frame_order(groups[label], path, report)
        by_order |= len(parts) > 1
        volumes.extend(parts)
        out_values.extend([value] * len(parts) if len(parts) == 1 else [(value, i + 1) for i in range(len(parts))])
    if len(volumes) == 1:
        return _Split(volumes, None, [None], n_pos)
    if by_order:
        key = f"{key} and frame order" if key else "frame order"
        if len(labels) == 1:
            out_values = [i + 1 for i in range(len(volumes))]
    return _Split(volumes, key, out_values, n_pos)


def _tells_volumes_apart(items: list[_Slice], key: str, n_pos: int) -> bool:
    """True when label ``key`` takes several values and each value's frames cover at least half
    of the positions (a volume's worth; a label that changes from slice to slice places frames
    within a volume and is not a volume label)."""
    where: dict = defaultdict(set)
    for it in items:
        where[it.extra["labels"][key]].add(it.extra["cluster"])
    return len(where) > 1 and all(2 * len(c) >= n_pos for c in where.values())


def _volume_key(keys: list[str], labels: list[tuple], dims: list[_Dimension]) -> tuple[str | None, list]:
    """``(key, values)``: the name of what tells the volume groups ``labels`` apart and its
    value for each — the first functional-group label that alone does, else all of them, else
    the non-spatial dimensions."""
    named = [k for k in keys if k != "DimensionIndexValues"]
    for k in named:
        vals = [lab[keys.index(k)] for lab in labels]
        if len(set(vals)) == len(vals):
            return k, vals
    if named:
        return " and ".join(named), [tuple(lab[keys.index(k)] for k in named) for lab in labels]
    if keys:
        names = ", ".join(d.name for d in dims if not d.spatial)
        return f"DimensionIndexValues ({names})", [lab[0] for lab in labels]
    return None, [None] * len(labels)


def _by_frame_order(group: list[_Slice], path: Path, report: _Report) -> list[list[_Slice]]:
    """``group`` (frames in frame order) as volumes of one frame per position: itself; or, when
    every position holds the same number ``n`` > 1 of frames that nothing tells apart, ``n``
    volumes by their order at each position; else the first frame at each position (the others
    dropped, warned)."""
    at: dict[int, list[_Slice]] = defaultdict(list)
    for it in group:
        at[it.extra["cluster"]].append(it)
    counts = {len(v) for v in at.values()}
    if counts == {1}:
        return [group]
    if len(counts) == 1:
        return [[frames[i] for frames in at.values()] for i in range(counts.pop())]
    dropped = [it for frames in at.values() for it in frames[1:]]
    report.warn(f"{path}: {len(group)} frames at {len(at)} positions, not the same number at each, and "
                f"nothing tells them apart (several images per position, e.g. magnitude and phase); "
                f"showing the first frame at each position (dropped frames "
                f"{', '.join(str(it.extra['frame'] + 1) for it in dropped[:8])}"
                f"{'…' if len(dropped) > 8 else ''})")
    return [[frames[0] for frames in at.values()]]


#: What a volume label means, for the warnings.
_MEANING = {"FrameType": "image type", "ComplexImageComponent": "image type",
            "DiffusionBValue": "b-value and gradient", "TemporalPositionIndex": "time point",
            "EffectiveEchoTime": "echo time", "DimensionIndexValues": "dimension index"}


def _show(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, tuple):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _pick_volume(split: _Split, n_frames: int, path: Path, report: _Report,
                 index4d: int = 0) -> tuple[list[_Slice], dict]:
    """The frames of volume ``index4d`` sorted along the normal, and the 4D metadata (``{}``
    for a file with one volume, which ignores ``index4d`` as 3D NIfTI does).

    Raises:
        LoadError: ``index4d`` out of range for a file with several volumes.
    """
    n = len(split.volumes)
    if n == 1:
        return sorted(split.volumes[0], key=lambda it: it.pos), {}
    what = next((f"{words} ({k})" for k, words in _MEANING.items() if split.key.startswith(k)), split.key)
    how = f"{n_frames} frames at {split.n_positions} positions, told apart by {what}"
    if not 0 <= index4d < n:
        raise LoadError(path, f"{n} volumes; --volume {index4d + 1} out of range (1–{n}; {how})")
    if split.key == "frame order":
        how += " only: echoes, time points, or image types such as magnitude and field map"
    else:
        shown = ", ".join(_show(v) for v in split.values[:6]) + ("…" if n > 6 else "")
        how += f": {shown}"
    sizes = sorted({len(v) for v in split.volumes})
    if len(sizes) > 1:
        how += f"; the volumes hold {', '.join(map(str, sizes))} slices"
    report.warn(f"{path}: {n} volumes ({how}); showing volume {index4d + 1} "
                f"({_show(split.values[index4d])}) (--volume to choose)")
    meta = {"n_volumes": n, "volume_index": int(index4d), "volume_key": split.key,
            "volume_values": [_plain(v) for v in split.values]}
    return sorted(split.volumes[index4d], key=lambda it: it.pos), meta


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
