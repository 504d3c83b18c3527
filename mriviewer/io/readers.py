"""Read any supported image source into a :class:`~mriviewer.core.volume.Volume`.

NIfTI (:mod:`mriviewer.io.nifti`), DICOM series folders and files (:mod:`mriviewer.io.dicom`) and
2D images (:mod:`mriviewer.io.image2d`), chosen by the path (:mod:`mriviewer.io.paths`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.io.dicom.scan import is_dicom_file
from mriviewer.io.dicom.series import read_dicom_series
from mriviewer.io.image2d import load_image2d
from mriviewer.io.nifti import load_nifti
from mriviewer.io.paths import IMAGE_SUFFIXES, check_source_path, is_nifti


def load_volume(source: str | Path | list[Path], modality: str = "", index4d: int = 0) -> Volume:
    """Load a NIfTI file, a 2D image, a DICOM file, a DICOM series folder or a list of DICOM
    files, choosing the reader by content. ``index4d`` picks the volume of a 4D NIfTI or a multi-volume DICOM series.

    A segmentation (``modality == "SEG"``) whose values are not whole numbers (labels that were
    interpolated when the file was resampled) loads with a warning naming the file
    (``meta["warnings"]``): the viewer, reports and ``cam-check`` round or threshold it, and nobody
    should take it for a clean label map.

    Raises:
        LoadError: the source does not exist or cannot be read; the message names it. No other
            exception type escapes for bad input (an unexpected one is wrapped, with its type).
    """
    try:
        vol = _load_volume(source, modality, index4d)
        if modality == "SEG":
            _check_label_map(vol, source)
        return vol
    except MriViewerError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # a reader's bug or an input nobody foresaw: still one clear message
        where = source[0] if isinstance(source, list) and source else source
        raise LoadError(where, f"cannot read ({type(exc).__name__}: {exc})") from exc


def _check_label_map(vol: Volume, source) -> None:
    """Warn (in ``vol.meta["warnings"]``) when a segmentation holds non-integer values."""
    data = vol.data
    if np.issubdtype(data.dtype, np.integer):
        return
    finite = data[np.isfinite(data)]
    off = np.abs(finite - np.rint(finite)) > 1e-3
    if off.any():
        where = source[0] if isinstance(source, list) and source else source
        vol.meta.setdefault("warnings", []).append(
            f"{where}: the segmentation has non-integer values in {int(off.sum())} voxels (interpolated "
            f"labels?); they are rounded to the nearest label")


def _load_volume(source: str | Path | list[Path], modality: str = "", index4d: int = 0) -> Volume:
    if isinstance(source, list):
        for f in source:
            check_source_path(f, "file")
        return read_dicom_series(source, modality, index4d=index4d)
    path = check_source_path(source)
    if path.is_dir():
        return read_dicom_series(path, modality, index4d=index4d)
    if is_nifti(path):
        return load_nifti(path, modality, index4d)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return load_image2d(path, modality)
    if is_dicom_file(path):
        return read_dicom_series([path], modality, index4d=index4d)
    raise LoadError(path, "unknown file type (expected DICOM, NIfTI or a 2D image)")
