"""Classic (one image per file) series: decode each placed slice and stack them on the affine from
their positions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.io.dicom.geometry import (
    _check_ipp,
    _lps_affine,
    _plain,
    _regularize,
    _resolve_positions,
    _series_spacing,
    _single_slice_thickness,
    _split_displaced,
    _split_orientations,
    _validate_entries,
)
from mriviewer.io.dicom.headers import LPS_TO_RAS, _fmt, _majority, _series_meta
from mriviewer.io.dicom.pixels import _as_luminance, _raw_pixels
from mriviewer.io.dicom.problems import _drop, _nothing_left, _Report, _Slice, log


def _decode_each(entries: list[_Slice], folder: Path, report: _Report, n_files: int, expected,
                 note: str = "", before=None, decode: bool = True) -> list[_Slice]:
    """Position and pixels of each slice; one that cannot be placed or decoded, or whose pixel
    array is not ``expected(e)`` ``(rows, cols)``, is dropped with a warning naming its file (a
    one-file series raises instead). ``before(e)`` runs first and may raise LoadError. Without
    ``decode`` (a header-only read) only the positions are checked and ``px`` stays ``None``.

    Raises:
        LoadError: nothing is left, or the only file is unusable.
    """
    kept = []
    for e in entries:
        try:
            e.ipp = _check_ipp(e.facts["ipp"], e.path)
            if before is not None:
                before(e)
            if not decode:
                kept.append(e)
                continue
            e.px, colour = _as_luminance(e.ds, _raw_pixels(e.ds, e.path))
            if colour:
                report.note(e.path, colour)
            want = expected(e)
            if e.px.shape != want:
                raise LoadError(e.path, f"pixel array shape {e.px.shape} is not {want[0]}x{want[1]}{note}")
        except LoadError as exc:
            if n_files == 1:
                raise
            _drop(report, e, exc)
            continue
        kept.append(e)
    if not kept:
        raise _nothing_left(folder, report, n_files)
    return kept


def _read_slices(entries: list[_Slice], folder: Path, modality: str, regularize: bool,
                 index4d: int, report: _Report, header_only: bool = False) -> Volume:
    """Classic series: validate, decode and place the slices, pick volume ``index4d`` of a 4D
    series, stack them ``(I, J, K)`` on the affine from their positions, and warn about gantry
    tilt and uneven spacing (regridded when ``regularize``). ``header_only``: no pixel is decoded
    and the volume's data is a zero-memory array of zeros (see ``read_dicom_series``).

    Raises:
        LoadError: no slice is left, ``index4d`` is out of range, or the geometry is refused.
    """
    n_files = len(entries)
    entries = _validate_entries(entries, report)
    if not entries:
        raise _nothing_left(folder, report, n_files)
    entries = _split_orientations(entries, lambda e: e.iop, folder, report)
    # Pixels and positions; a slice that cannot be decoded or placed is dropped. Decoding
    # first lets the matrix-size majority count only slices whose header fits their data.
    decoded = _decode_each(entries, folder, report, n_files,
                           lambda e: (e.facts["rows"], e.facts["cols"]), " (colour or multi-frame?)",
                           decode=not header_only)
    (rows, cols), placed, others = _majority(decoded, lambda e: (e.facts["rows"], e.facts["cols"]))
    for e in others:
        _drop(report, e, f"slice size {e.facts['rows']}x{e.facts['cols']} differs from the "
                         f"series' {rows}x{cols}")
    iop = placed[0].iop
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    row_spacing, col_spacing = _series_spacing(placed, report)
    for e in placed:
        e.pos = float(e.ipp @ normal)

    slices, meta_4d = _pick_volume(placed, folder, index4d, report)
    slices.sort(key=lambda s: s.pos)
    slices = _split_displaced(slices, row_dir, col_dir, (row_spacing, col_spacing), folder, report)
    positions = np.array([s.pos for s in slices])
    data = _placeholder(slices, rows, cols) if header_only else _stack(slices, rows, cols)

    ipp0 = slices[0].ipp
    if len(slices) > 1:
        step = (slices[-1].ipp - ipp0) / (len(slices) - 1)
    else:
        step = normal * _single_slice_thickness(slices[0], report)
    affine = LPS_TO_RAS @ _lps_affine(row_dir, col_dir, row_spacing, col_spacing, step, ipp0)

    meta = _series_meta(slices[0].ds)
    meta.update(meta_4d)
    report.into(meta)
    if len(slices) > 1:
        _note_tilt(meta, folder, step, normal)
    if len(slices) > 2:
        data, affine = _check_gaps(data, affine, positions, meta, folder, regularize)
    try:
        return Volume(data, affine, modality, [s.path for s in slices], meta)
    except MriViewerError as exc:
        raise LoadError(folder, f"{exc} (PixelSpacing {_fmt([row_spacing, col_spacing])} mm, "
                                f"slice step {np.linalg.norm(step):.6g} mm)") from exc


def _pick_volume(placed: list[_Slice], folder: Path, index4d: int,
                 report: _Report) -> tuple[list[_Slice], dict]:
    """``(slices, meta_4d)``: the slices of volume ``index4d`` when several images share each
    position (a 4D series, warned; ``meta_4d`` says which), else the one volume and ``{}``.

    Raises:
        LoadError: ``index4d`` out of range for a 4D series.
    """
    volumes, key, values = _resolve_positions(placed, report)
    if len(volumes) <= 1:
        return volumes[0], {}
    if not 0 <= index4d < len(volumes):
        raise LoadError(folder, f"series has {len(volumes)} volumes (by {key}); index "
                                f"{index4d} out of range")
    meta_4d = {"n_volumes": len(volumes), "volume_index": int(index4d), "volume_key": key,
               "volume_values": [_plain(v) for v in values]}
    report.warn(f"{folder}: series with {len(volumes)} volumes at the same positions (by {key}); "
                f"showing volume {index4d + 1} ({key} {_plain(values[index4d])})")
    return volumes[index4d], meta_4d


def _stack(slices: list[_Slice], rows: int, cols: int) -> np.ndarray:
    """The slices' pixels as ``(I, J, K)`` = (cols, rows, slices), rescaled to float32 unless
    every rescale is the identity (then the stored integers)."""
    # Fill (K, rows, cols) slice by slice (contiguous writes), rescale once, and hand out the
    # (cols, rows, K) = (I, J, K) view: Fortran order, as nibabel gives NIfTI data.
    raw = np.empty((len(slices), rows, cols), dtype=slices[0].px.dtype)
    scale = np.ones((len(slices), 2))
    for k, s in enumerate(slices):
        raw[k] = s.px
        scale[k] = s.rescale
    if np.any(scale[:, 0] != 1.0) or np.any(scale[:, 1] != 0.0):
        stack = raw.astype(np.float32)
        stack *= scale[:, 0, None, None].astype(np.float32)
        stack += scale[:, 1, None, None].astype(np.float32)
    else:
        stack = raw  # identity rescale: keep the stored integers (half the memory of float32)
    return stack.transpose(2, 1, 0)


def _placeholder(slices: list[_Slice], rows: int, cols: int) -> np.ndarray:
    """What :func:`_stack` would return, as zeros that take no memory (``np.broadcast_to``):
    shape ``(cols, rows, slices)`` and the dtype the pixels would have (float32 when a rescale
    applies, else the stored integer type from BitsAllocated and PixelRepresentation)."""
    if any(s.rescale != (1.0, 0.0) for s in slices):
        dtype = np.dtype(np.float32)
    else:
        ds = slices[0].ds
        bits = int(ds.get("BitsAllocated", 16) or 16)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        dtype = np.dtype(f"{'i' if signed else 'u'}{max(1, bits // 8)}") if bits in (8, 16, 32) \
            else np.dtype(np.float32)
    return np.broadcast_to(np.zeros((), dtype), (cols, rows, len(slices)))


def _note_tilt(meta: dict, folder: Path, step: np.ndarray, normal: np.ndarray) -> None:
    """Record and warn about a slice step sheared off the normal by more than 0.5° (gantry tilt)."""
    tilt = float(np.degrees(np.arccos(np.clip(abs(step @ normal) / max(np.linalg.norm(step), 1e-9), -1, 1))))
    if tilt > 0.5:
        meta["gantry_tilt_deg"] = tilt
        meta.setdefault("warnings", []).append(
            f"{folder}: slices are sheared by {tilt:.1f}° (gantry tilt); the affine keeps the shear")


def _check_gaps(data: np.ndarray, affine: np.ndarray, positions: np.ndarray, meta: dict,
                folder: Path, regularize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Warn about uneven slice spacing (``meta["uneven_spacing_mm"]``) and, when ``regularize``,
    resample onto an even grid at the median spacing. Returns ``(data, affine)``."""
    gaps = np.diff(positions)
    med = float(np.median(gaps))
    irregular = np.abs(gaps - med) > max(0.01 * med, 1e-3)
    if not np.any(irregular):
        return data, affine
    meta["uneven_spacing_mm"] = [float(g) for g in gaps[irregular]]
    where = [float(positions[i]) for i in np.flatnonzero(irregular)]
    text = (f"{folder}: uneven slice spacing (median {med:.3f} mm; gaps of "
            f"{', '.join(f'{g:.2f}' for g in gaps[irregular][:5])} mm after the slices at "
            f"{', '.join(f'{w:.1f}' for w in where[:5])} mm along the normal)")
    if regularize:
        data, affine = _regularize(data, positions, affine, med)
        text += f"; resampled to {data.shape[2]} slices every {med:.3f} mm (linear)"
    meta.setdefault("warnings", []).append(text)
    log.warning("%s", text)
    return data, affine
