"""Siemens mosaics (EPI, DWI: ImageType MOSAIC or a CSA NumberOfImagesInMosaic), cut into slices with
nibabel's :mod:`nibabel.nicom` (CSA reader and ``MosaicWrapper``, which also corrects the
mosaic's ImagePositionPatient); several mosaic files of one series are the volumes of a 4D
series.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.io.dicom.classic import _decode_each
from mriviewer.io.dicom.geometry import _series_spacing, _split_orientations, _validate_entries
from mriviewer.io.dicom.headers import (
    _HEADER_ERRORS,
    LPS_TO_RAS,
    _majority,
    _number,
    _optional,
    _series_meta,
)
from mriviewer.io.dicom.problems import _drop, _nothing_left, _Report, _Slice


# ----------------------------------------------------------------------------- Siemens mosaic
def _flagged_mosaic(ds: pydicom.Dataset) -> bool:
    """ImageType contains ``MOSAIC`` (Siemens EPI/DWI stored as tiles of one 2D image)."""
    image_type = _optional(ds, "ImageType") or ()
    if isinstance(image_type, str):
        image_type = (image_type,)
    return any(str(v).strip().upper() == "MOSAIC" for v in image_type)


def _csa_header(ds: pydicom.Dataset):
    """The Siemens CSA image header (nibabel.nicom.csareader), ``None`` when there is none;
    raises whatever the reader raises on a corrupt one. Parsed once per dataset (the mosaic
    check and the mosaic reader both ask), the result or the error kept on the dataset."""
    cached = ds.__dict__.get("_mriviewer_csa")
    if cached is None:
        try:
            cached = (True, _nicom()[0].get_csa_header(ds, "image"))
        except Exception as exc:  # re-raised below, on every call, as the reader raised it
            cached = (False, exc)
        ds.__dict__["_mriviewer_csa"] = cached
    ok, value = cached
    if not ok:
        raise value
    return value


def _nicom():
    """``(csareader, dicomwrappers)`` from nibabel.nicom, imported quietly (the package warns
    on import that its DICOM readers are experimental)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader, dicomwrappers
    return csareader, dicomwrappers


def _csa_mosaic_count(ds: pydicom.Dataset) -> int | None:
    """NumberOfImagesInMosaic from the CSA header of a file not flagged MOSAIC in ImageType,
    or ``None`` (no CSA header, unreadable, or not a mosaic)."""
    if (0x0029, 0x0010) not in ds:
        return None
    try:
        csareader = _nicom()[0]
        csa = _csa_header(ds)
        if csa is None or not csareader.is_mosaic(csa):
            return None
        return int(csareader.get_n_mosaic(csa))
    except Exception:
        return None


def _mosaic_wrapper(e: _Slice):
    """nibabel's MosaicWrapper for one mosaic file, or LoadError naming the file when its CSA
    header is missing or unreadable (the tiles cannot be placed without it)."""
    csareader, dicomwrappers = _nicom()
    try:
        csa = _csa_header(e.ds)
    except Exception as exc:
        raise LoadError(e.path, f"Siemens mosaic with an unreadable CSA header ({type(exc).__name__}: "
                                f"{exc}): cannot cut it into slices") from exc
    n = None
    if csa is not None:
        try:
            n = csareader.get_n_mosaic(csa)
        except Exception:
            n = None
    if csa is None or not n:
        raise LoadError(e.path, "Siemens mosaic (ImageType MOSAIC) without a CSA image header giving "
                                "NumberOfImagesInMosaic: cannot cut it into slices")
    try:
        n = int(n)
        wrapper = dicomwrappers.MosaicWrapper(e.ds, csa, n)
    except Exception as exc:
        raise LoadError(e.path, f"Siemens mosaic: unusable NumberOfImagesInMosaic {n!r} "
                                f"({type(exc).__name__}: {exc})") from exc
    if n < 1 or e.facts["rows"] % wrapper.mosaic_size or e.facts["cols"] % wrapper.mosaic_size:
        raise LoadError(e.path, f"Siemens mosaic of {e.facts['rows']}x{e.facts['cols']} pixels cannot hold "
                                f"{n} tiles ({wrapper.mosaic_size}x{wrapper.mosaic_size} grid)")
    return wrapper


def _read_mosaic_series(entries: list[_Slice], folder: Path, modality: str, index4d: int,
                        report: _Report) -> Volume:
    """Siemens mosaics: each file a 3D volume cut into slices by nibabel's MosaicWrapper
    (affine with the mosaic position correction and the slice direction of the CSA
    SliceNormalVector; see nibabel's ``dicom_mosaic`` notes); several files of one series are
    the volumes of a 4D series in AcquisitionNumber order."""
    n_files = len(entries)
    kept = []
    for e in entries:
        if not (_flagged_mosaic(e.ds) or _csa_mosaic_count(e.ds)):
            _drop(report, e, "not a mosaic in a series of Siemens mosaics")
            continue
        kept.append(e)
    entries = _validate_entries(kept, report)
    if not entries:
        raise _nothing_left(folder, report, n_files)
    entries = _split_orientations(entries, lambda e: e.iop, folder, report)
    (rows, cols), _, others = _majority(entries, lambda e: (e.facts["rows"], e.facts["cols"]))
    for e in others:
        _drop(report, e, f"mosaic size {e.facts['rows']}x{e.facts['cols']} differs from the "
                         f"series' {rows}x{cols}")
        entries.remove(e)
    spacing = _series_spacing(entries, report)
    def read_csa(e: _Slice) -> None:
        e.extra["wrapper"] = _mosaic_wrapper(e)

    usable = _decode_each(entries, folder, report, n_files, lambda e: (rows, cols), before=read_csa)
    usable.sort(key=lambda e: (_number(_optional(e.ds, "AcquisitionNumber")), e.order))
    volumes: list[_Slice] = []
    for e in usable:
        twin = next((v for v in volumes if (e.facts["sop"] and e.facts["sop"] == v.facts["sop"])
                     or (np.array_equal(e.px, v.px) and e.rescale == v.rescale)), None)
        if twin is not None:
            _drop(report, e, f"exact duplicate of {twin.path.name} (same mosaic image)")
            continue
        volumes.append(e)
    meta_4d: dict = {}
    if len(volumes) > 1:
        if not 0 <= index4d < len(volumes):
            raise LoadError(folder, f"series has {len(volumes)} mosaic volumes; index {index4d} out of range")
        meta_4d = {"n_volumes": len(volumes), "volume_index": int(index4d),
                   "volume_key": "AcquisitionNumber"}
        report.warn(f"{folder}: series of {len(volumes)} mosaic volumes (time points or diffusion "
                    f"directions); showing volume {index4d + 1} ({volumes[index4d].path.name})")
        chosen = volumes[index4d]
    else:
        chosen = volumes[0]
    data, lps = _demosaic(chosen, spacing, report)
    (slope, intercept) = chosen.rescale
    if slope != 1.0 or intercept != 0.0:
        data = data.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    meta = _series_meta(chosen.ds)
    meta.update(meta_4d)
    meta["mosaic_tiles"] = int(data.shape[2])
    report.into(meta)
    try:
        return Volume(data, LPS_TO_RAS @ lps, modality, [chosen.path], meta)
    except MriViewerError as exc:
        raise LoadError(chosen.path, str(exc)) from exc


def _demosaic(e: _Slice, spacing: tuple[float, float], report: _Report) -> tuple[np.ndarray, np.ndarray]:
    """``(data (I, J, K), LPS affine)`` of one mosaic through nibabel's MosaicWrapper: its
    ``get_unscaled_data`` reshape (rows, columns, slices) and ``affine`` (row index, column
    index, slice → LPS), re-indexed to mriviewer's (column, row, slice)."""
    wrapper = e.extra["wrapper"]
    # The wrapper reads geometry from the dataset: give it the validated values (unit IOP,
    # positive spacing) and the decoded pixels.
    e.ds.ImageOrientationPatient = [float(v) for v in e.iop]
    e.ds.PixelSpacing = [float(v) for v in spacing]
    try:
        thick = e.ds.get("SpacingBetweenSlices", None)
        if thick in (None, ""):
            thick = e.ds.get("SliceThickness", None)
        thick = None if thick in (None, "") else float(thick)
    except _HEADER_ERRORS:
        thick = float("nan")
    if thick is None:
        report.note(e.path, "mosaic without SpacingBetweenSlices or SliceThickness; slice step "
                            "assumed 1 mm")
    elif not np.isfinite(thick) or thick <= 0:
        raise LoadError(e.path, f"mosaic slice spacing {thick} mm (SpacingBetweenSlices / "
                                "SliceThickness) is not positive")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapper.get_pixel_array = lambda: e.px  # decoded once, by _raw_pixels
            data = np.asarray(wrapper.get_unscaled_data())
            affine = np.asarray(wrapper.affine, dtype=float)
    except AssertionError as exc:  # SiemensWrapper.slice_normal checks the CSA normal so
        raise LoadError(e.path, "Siemens mosaic: the CSA SliceNormalVector is not the normal of "
                                "ImageOrientationPatient") from exc
    except Exception as exc:
        raise LoadError(e.path, f"Siemens mosaic cannot be cut into slices "
                                f"({type(exc).__name__}: {exc})") from exc
    if thick is None:
        affine[:3, 2] /= max(np.linalg.norm(affine[:3, 2]), 1e-12)
    data = data.transpose(1, 0, 2)  # (rows, cols, K) -> (cols, rows, K) = (I, J, K)
    lps = affine[:, [1, 0, 2, 3]]
    return data, lps
