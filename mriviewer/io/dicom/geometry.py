"""Slice geometry from the headers (DICOM PS3.3 C.7.6.2, Image Plane Module): orientation (IOP) and
spacing checks, splitting off other orientations, ordering by position along the slice normal,
several volumes at one position, and slice spacing — never file order.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from mriviewer.core.errors import LoadError
from mriviewer.io.dicom.headers import (
    _HEADER_ERRORS,
    _IOP_MAX,
    _IOP_SILENT,
    _MAX_POS_MM,
    _ORTHO_TOL,
    _POS_TOL_MM,
    _SAME_IOP,
    VOLUME_KEYS,
    _checked_rescale,
    _fmt,
    _majority,
    _names,
    _plane,
    _spacing,
)
from mriviewer.io.dicom.pixels import _as_luminance, _raw_pixels
from mriviewer.io.dicom.problems import _drop, _Report, _Slice


# ----------------------------------------------------------------------------- validation
def _check_iop(iop: np.ndarray | None, path: Path) -> tuple[np.ndarray, str | None]:
    """Unit row and column cosines from ImageOrientationPatient (PS3.3 C.7.6.2.1.1).

    Returns ``(iop, note)``: the 6 values, normalised when a vector's length is off by more
    than 0.001 (``note`` says so). Raises LoadError when IOP is missing, not finite, a vector's
    length is off by more than 0.1 (or zero), or the vectors are not orthogonal to 0.001."""
    if iop is None:
        raise LoadError(path, "no ImageOrientationPatient: cannot place the image in space")
    if not np.isfinite(iop).all():
        raise LoadError(path, f"ImageOrientationPatient {_fmt(iop)} is not finite")
    row, col = iop[:3], iop[3:]
    lengths = np.array([np.linalg.norm(row), np.linalg.norm(col)])
    if np.any(np.abs(lengths - 1) > _IOP_MAX):
        raise LoadError(path, f"ImageOrientationPatient {_fmt(iop)} is not two unit vectors "
                              f"(lengths {lengths[0]:.3g} and {lengths[1]:.3g})")
    note = None
    if np.any(np.abs(lengths - 1) > _IOP_SILENT):
        note = (f"ImageOrientationPatient vectors have lengths {lengths[0]:.4f} and "
                f"{lengths[1]:.4f}; normalised to unit length")
        row, col = row / lengths[0], col / lengths[1]
        iop = np.concatenate([row, col])
    dot = float(row @ col)
    if abs(dot) > _ORTHO_TOL:
        angle = float(np.degrees(np.arccos(np.clip(dot, -1, 1))))
        raise LoadError(path, f"ImageOrientationPatient row and column directions are not "
                              f"orthogonal ({angle:.2f}° apart)")
    return iop, note


def _check_spacing(spacing: tuple[float, float] | None, path: Path,
                   keyword: str = "PixelSpacing") -> tuple[tuple[float, float] | None, str | None]:
    """``(spacing, note)`` in mm: ``None`` stays ``None``; a negative value is made positive
    (note); zero, NaN or infinity raise LoadError."""
    if spacing is None:
        return None, None
    s = np.array(spacing, dtype=float)
    if not np.isfinite(s).all() or np.any(s == 0):
        raise LoadError(path, f"{keyword} {_fmt(s)} is not a usable pixel size (zero or not finite)")
    if np.any(s < 0):
        return (abs(s[0]), abs(s[1])), (f"negative {keyword} {_fmt(s)}; using its absolute "
                                        "value (the sign has no meaning in DICOM)")
    return (float(s[0]), float(s[1])), None


def _check_ipp(ipp: np.ndarray | None, path: Path) -> np.ndarray:
    if ipp is None:
        raise LoadError(path, "no ImagePositionPatient: cannot place the slice")
    if not np.isfinite(ipp).all() or np.any(np.abs(ipp) > _MAX_POS_MM):
        raise LoadError(path, f"ImagePositionPatient {_fmt(ipp)} is not a usable position")
    return ipp


def _orientation_groups(iops: list[np.ndarray]) -> list[int]:
    """Group index of each orientation (cosines equal to 1e-3)."""
    reps: list[np.ndarray] = []
    out = []
    for iop in iops:
        for g, rep in enumerate(reps):
            if np.allclose(iop, rep, atol=_SAME_IOP):
                out.append(g)
                break
        else:
            reps.append(iop)
            out.append(len(reps) - 1)
    return out


def _split_orientations(items: list, iop_of, where: Path, report: _Report, what: str = "file"):
    """Keep the items of the majority orientation; warn about the others (localizers, scouts)
    naming how many, which orientation and which files/frames."""
    groups = _orientation_groups([iop_of(it) for it in items])
    major, kept, _ = _majority(list(range(len(items))), lambda i: groups[i])
    if len(kept) == len(items):
        return items
    others: dict[int, list] = defaultdict(list)
    for i, g in enumerate(groups):
        if g != major:
            others[g].append(items[i])
    main_iop = iop_of(items[kept[0]])
    for members in others.values():
        iop = iop_of(members[0])
        plane = _plane(np.cross(iop[:3], iop[3:]))
        names = _names([m.path for m in members]) if what == "file" else \
            ", ".join(str(m.extra["frame"] + 1) for m in members[:8]) + ("…" if len(members) > 8 else "")
        report.warn(
            f"{where}: split off {len(members)} {what}{'s' if len(members) > 1 else ''} with another "
            f"orientation ({plane}, ImageOrientationPatient {_fmt(iop)}; a localizer or scout?) "
            f"than the {len(kept)} of this series ({_plane(np.cross(main_iop[:3], main_iop[3:]))}, "
            f"{_fmt(main_iop)}): {names}")
    return [items[i] for i in kept]


def _cluster_positions(positions: list[float]) -> list[int]:
    """Position cluster index (ascending) of each position: positions within 0.01 mm of the
    previous one along the normal belong to one cluster."""
    order = np.argsort(positions, kind="stable")
    out = [0] * len(positions)
    cluster, last = -1, None
    for i in order:
        if last is None or positions[i] - last > _POS_TOL_MM:
            cluster += 1
        out[i] = cluster
        last = positions[i]
    return out


def _sort_value(v) -> tuple:
    if v is None:
        return (2, "")
    first = v[0] if isinstance(v, tuple) else v
    if isinstance(first, tuple):
        first = first[0] if first else ""
    try:
        return (0, float(first), str(v))
    except (TypeError, ValueError):
        return (1, str(v))


def _acquisition_order(groups: dict, values: list) -> list:
    """Diffusion volumes in the order they were acquired (each volume's first InstanceNumber), as
    dcm2niix writes them and FSL's ``.bval``/``.bvec`` expect: sorted by b-value, a Toshiba DTI's
    b0 came last and "volume 1" was a b = 1500 direction. Left in value order when a file has no
    InstanceNumber."""
    first = {v: min(it.order for it in groups[v]) for v in values}
    if not all(np.isfinite(first[v][0]) for v in values):
        return values
    return sorted(values, key=lambda v: first[v])


def _split_volumes(items: list, cluster_of: dict, n_clusters: int, keys_of):
    """Several images at some positions: the first :data:`VOLUME_KEYS` attribute whose values
    split ``items`` into volumes, each with at most one image per position and covering at
    least half of the positions. Returns ``(keyword, [volume items, …], [values, …])``
    ordered by the attribute's value, or ``None`` when no attribute does."""
    for key in VOLUME_KEYS:
        groups: dict = defaultdict(list)
        for it in items:
            groups[keys_of(it).get(key)].append(it)
        if len(groups) < 2:
            continue
        if all(len({cluster_of[id(it)] for it in g}) == len(g) and 2 * len(g) >= n_clusters
               for g in groups.values()):
            values = sorted(groups, key=_sort_value)
            if key == "DiffusionBValue":
                values = _acquisition_order(groups, values)
            return key, [groups[v] for v in values], values
    return None


def _validate_entries(entries: list[_Slice], report: _Report) -> list[_Slice]:
    """Per-file placement checks: matrix size, orientation, position, pixel spacing, rescale.
    A file that fails is dropped (reported); repairs are noted."""
    good = []
    for e in entries:
        f = e.facts
        try:
            if f["rows"] <= 0 or f["cols"] <= 0:
                raise LoadError(e.path, f"image has {f['rows']} rows and {f['cols']} columns")
            e.iop, note = _check_iop(f["iop"], e.path)
            if note:
                report.note(e.path, note)
            e.spacing, note = _check_spacing(f["spacing"], e.path)
            if note:
                report.note(e.path, note)
            e.rescale, note = _checked_rescale(*f["rescale"])
            if note:
                report.note(e.path, note)
        except LoadError as exc:
            _drop(report, e, exc)
            continue
        good.append(e)
    return good


def _series_spacing(entries: list[_Slice], report: _Report) -> tuple[float, float]:
    """The series' (row, column) spacing: the majority PixelSpacing (files with another are
    dropped, files without one are noted), else ImagerPixelSpacing, else 1 mm (warned)."""
    have = [e for e in entries if e.spacing is not None]
    if have:
        value, _, others = _majority(have, lambda e: tuple(np.round(e.spacing, 4)))
        for e in others:
            _drop(report, e, f"PixelSpacing {_fmt(e.spacing)} differs from the series' {_fmt(value)}")
            entries.remove(e)
        for e in entries:
            if e.spacing is None:
                report.note(e.path, f"no PixelSpacing; using the series' {_fmt(value)} mm")
        return value  # type: ignore[return-value]
    imager = []
    for e in entries:
        try:
            s, _ = _check_spacing(_spacing(e.ds, "ImagerPixelSpacing"), e.path, "ImagerPixelSpacing")
        except (LoadError, *_HEADER_ERRORS):
            s = None
        if s is not None:
            imager.append(tuple(np.round(s, 4)))
    if imager:
        value = _majority(imager, lambda s: s)[0]
        report.warn(f"{entries[0].path} (and every file of the series): no PixelSpacing; using "
                    f"ImagerPixelSpacing {_fmt(value)} mm (spacing at the detector, not in the "
                    "patient)")
        return value
    report.warn(f"{entries[0].path} (and every file of the series): no PixelSpacing; assumed 1 mm "
                "(distances and sizes in this volume are not in mm)")
    return 1.0, 1.0


def _plain(v):
    """A JSON-friendly form of a volume key value."""
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _single_slice_thickness(s: _Slice, report: _Report) -> float:
    """Slice step for a one-slice volume: SpacingBetweenSlices, else SliceThickness, else 1 mm
    (noted); a non-positive or non-finite value is noted and replaced by 1 mm."""
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        value = "(unreadable)"
        try:
            value = s.ds.get(key, None)
            if value in (None, ""):
                continue
            thick = float(value)
        except _HEADER_ERRORS:
            thick = float("nan")
        if np.isfinite(thick) and thick > 0:
            return thick
        report.note(s.path, f"{key} {value} is not a slice thickness; assumed 1 mm")
        return 1.0
    report.note(s.path, "one slice without SpacingBetweenSlices or SliceThickness; its thickness is "
                        "assumed 1 mm")
    return 1.0


def _pixels_of(s: _Slice) -> np.ndarray:
    """``s.px``, decoded now when a header-only read left it on disk."""
    if s.px is None:
        s.px, _ = _as_luminance(s.ds, _raw_pixels(s.ds, s.path))
    return s.px


def _same_pixels(a: _Slice, b: _Slice) -> bool:
    _pixels_of(a), _pixels_of(b)
    return (a.px.shape == b.px.shape and a.rescale == b.rescale
            and a.facts["keys"] == b.facts["keys"] and np.array_equal(a.px, b.px))


def _warn_uid_clash(s: _Slice, unique: list[_Slice], report: _Report) -> None:
    """Say when ``s`` shares its SOPInstanceUID with an image of different pixels at its position."""
    clash = next((u for u in unique if s.facts["sop"] and s.facts["sop"] == u.facts["sop"]), None)
    if clash is None:
        return
    diff = (f" by up to {float(np.max(np.abs(s.px.astype(np.float64) - clash.px))):g}"
            if s.px.shape == clash.px.shape else f" (shape {s.px.shape} vs {clash.px.shape})")
    report.warn(f"{s.path}: shares its SOPInstanceUID with {clash.path.name} but its pixels differ{diff}; "
                "not a duplicate: both are images at this position")


def _resolve_positions(placed: list[_Slice], report: _Report):
    """Drop exact duplicates; split several images per position into volumes by a
    :data:`VOLUME_KEYS` attribute, or keep one per position (reporting the others).

    Returns ``(volumes, key, values)``: a list of slice lists (one per volume), the attribute
    that told them apart (``None`` for one volume) and its values."""
    clusters = _cluster_positions([s.pos for s in placed])
    by_cluster: dict[int, list[_Slice]] = defaultdict(list)
    for s, c in zip(placed, clusters, strict=True):
        by_cluster[c].append(s)
    kept: list[_Slice] = []
    doubled = False
    for members in by_cluster.values():
        members.sort(key=lambda s: s.order)
        unique: list[_Slice] = []
        for s in members:
            # A duplicate is judged by its pixels, never by a UID alone: two files that share a
            # SOPInstanceUID but differ are two images (the second is named, not dropped unseen).
            twin = next((u for u in unique if _same_pixels(s, u)), None)
            if twin is None:
                _warn_uid_clash(s, unique, report)
                unique.append(s)
                continue
            why = "same SOPInstanceUID" if s.facts["sop"] and s.facts["sop"] == twin.facts["sop"] \
                else "same position and same pixels"
            _drop(report, s, f"exact duplicate of {twin.path.name} ({why})")
        doubled |= len(unique) > 1
        kept.extend(unique)
    if not doubled:
        return [kept], None, [None]
    cluster_of = {id(s): c for s, c in zip(placed, clusters, strict=True)}
    split = _split_volumes(kept, cluster_of, len(by_cluster), lambda s: s.facts["keys"])
    if split is not None:
        key, volumes, values = split
        return volumes, key, values
    one_each: dict[int, _Slice] = {}
    for s in sorted(kept, key=lambda s: s.order):
        c = cluster_of[id(s)]
        if c not in one_each:
            one_each[c] = s
            continue
        _drop(report, s, f"another image at the position of {one_each[c].path.name} ({s.pos:.2f} mm "
                         f"along the normal) with different pixels, and no "
                         f"{'/'.join(VOLUME_KEYS)} tells them apart; kept {one_each[c].path.name}")
    return [list(one_each.values())], None, [None]


def _regularize(data: np.ndarray, positions: np.ndarray, affine: np.ndarray, step_mm: float):
    """Resample slices at uneven ``positions`` (mm along the normal, ascending) onto an even
    grid every ``step_mm`` (linear between the two neighbouring slices; a missing slice is
    interpolated from its neighbours). Returns ``(data, affine)``."""
    n = int(round((positions[-1] - positions[0]) / step_mm)) + 1
    new = affine.copy()
    new[:3, 2] = affine[:3, 2] * ((positions[-1] - positions[0]) / (len(positions) - 1)) ** -1 * step_mm
    if data.ndim == 3 and not any(data.strides):  # a header-only read's zeros: the grid alone
        return np.broadcast_to(np.zeros((), np.float32), (*data.shape[:2], n)), new
    target = positions[0] + step_mm * np.arange(n)
    hi = np.clip(np.searchsorted(positions, target), 1, len(positions) - 1)
    lo = hi - 1
    w = ((target - positions[lo]) / np.maximum(positions[hi] - positions[lo], 1e-9)).astype(np.float32)
    w = np.clip(w, 0, 1)
    src = np.asarray(data, dtype=np.float32)
    out = src[:, :, lo] * (1 - w) + src[:, :, hi] * w
    return out, new


def _lps_affine(row_dir: np.ndarray, col_dir: np.ndarray, row_spacing: float, col_spacing: float,
                step: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Voxel ``(i, j, k)`` = (column, row, slice) → LPS mm (PS3.3 C.7.6.2.1.1): ``i`` along the
    row direction every column spacing, ``j`` along the column direction every row spacing,
    ``k`` by ``step``, from ``origin`` (the first slice's ImagePositionPatient)."""
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing
    lps[:3, 1] = col_dir * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = origin
    return lps


def _split_displaced(slices: list[_Slice], row_dir: np.ndarray, col_dir: np.ndarray,
                     spacing: tuple[float, float], folder: Path, report: _Report) -> list[_Slice]:
    """Drop slices displaced in-plane from the rest of the series (``slices`` sorted along the
    normal; at least three): each slice's in-plane offset is compared with the line the others
    follow (constant, or a steady shift under gantry tilt: the median offset and slope), and one
    farther than a quarter pixel (at least 0.01 mm) is split off with a warning naming it, as a
    localizer is, instead of being stacked into the volume and hidden by the re-gridding."""
    if len(slices) < 3:
        return slices
    ipp0 = slices[0].ipp
    pos = np.array([s.pos for s in slices])
    offsets = np.array([[(s.ipp - ipp0) @ row_dir, (s.ipp - ipp0) @ col_dir] for s in slices])
    dpos = np.diff(pos)
    ok = np.abs(dpos) > 1e-6
    slope = np.median(np.diff(offsets, axis=0)[ok] / dpos[ok, None], axis=0) if ok.any() else np.zeros(2)
    base = np.median(offsets - pos[:, None] * slope, axis=0)
    residual = np.linalg.norm(offsets - (base + pos[:, None] * slope), axis=1)
    tol = max(0.01, 0.25 * min(spacing))
    far = residual > tol
    if not far.any() or far.sum() * 2 >= len(slices):
        return slices
    for s, r in zip(slices, residual, strict=True):
        if r > tol:
            _drop(report, s, f"displaced in-plane by {r:.2f} mm from the rest of the series (same orientation and "
                             "matrix); split off, as a localizer is")
    return [s for s, f in zip(slices, far, strict=True) if not f]
