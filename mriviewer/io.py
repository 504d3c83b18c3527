"""Read any supported image source into a :class:`~mriviewer.volume.Volume`.

* NIfTI (``.nii``, ``.nii.gz``) with nibabel: the affine is nibabel's choice of sform/qform
  (sform when its code is set, as the NIfTI-1 standard recommends), ``scl_slope`` /
  ``scl_inter`` are applied by ``get_fdata``. 4D inputs take volume ``index4d`` (default 0).
* DICOM series folders and files with pydicom (:mod:`mriviewer.dicom`).
* 2D images (JPEG, PNG) with Pillow, converted to greyscale (ITU-R 601-2 luma), as a volume
  of shape ``(W, H, 1)`` with an identity in-plane affine: ``i`` runs left→right and ``j``
  top→bottom on screen. The image carries no patient geometry, so it is declared as an axial
  slice seen from below in radiological convention (x = −column, y = −row), which puts it on
  screen exactly as stored.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from .dicom import is_dicom_file, read_dicom_series
from .errors import LoadError, MriViewerError
from .volume import Volume

__all__ = ["load_volume", "load_nifti", "load_image2d", "IMAGE_SUFFIXES", "is_nifti"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def is_nifti(path: Path) -> bool:
    name = Path(path).name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def load_nifti(path: str | Path, modality: str = "", index4d: int = 0) -> Volume:
    """Read a NIfTI-1/2 file.

    Args:
        path: ``.nii`` or ``.nii.gz`` file.
        modality: name stored on the volume.
        index4d: which volume of a 4D file to take.

    Returns:
        Volume with data ``(I, J, K)`` float32 in the file's storage order and its affine.

    Raises:
        LoadError: unreadable or corrupt file, fewer than 2 or more than 4 dimensions.
    """
    path = Path(path)
    try:
        img = nib.load(str(path))
        shape = img.shape
        if len(shape) == 4:
            if not 0 <= index4d < shape[3]:
                raise LoadError(path, f"4D file has {shape[3]} volumes; index {index4d} out of range")
            # Slicing the array proxy applies scl_slope/scl_inter.
            data = np.asarray(img.dataobj[..., index4d], dtype=np.float32)
        elif len(shape) in (2, 3):
            data = img.get_fdata(dtype=np.float32)
        else:
            raise LoadError(path, f"unsupported NIfTI dimensions {shape}")
        affine = img.affine
    except LoadError:
        raise
    except FileNotFoundError as exc:
        raise LoadError(path, "no such file") from exc
    except Exception as exc:  # nibabel raises many types on corrupt headers/streams
        raise LoadError(path, f"cannot read NIfTI ({type(exc).__name__}: {exc})") from exc
    if affine is None:
        affine = np.eye(4)
    meta = {"format": "nifti"}
    if len(shape) == 4:
        meta.update(n_volumes=int(shape[3]), volume_index=int(index4d))
        if shape[3] > 1:
            meta["warnings"] = [f"{path}: 4D file with {shape[3]} volumes; showing volume {index4d + 1}"]
    try:
        return Volume(data, affine, modality, [path], meta)
    except Exception as exc:
        raise LoadError(path, str(exc)) from exc


def load_image2d(path: str | Path, modality: str = "") -> Volume:
    """Read a 2D image (JPEG/PNG/…) as a single-slice greyscale volume ``(W, H, 1)``.

    Raises:
        LoadError: the file cannot be decoded.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            grey = np.asarray(im.convert("L"), dtype=np.float32)  # (rows, cols)
    except Exception as exc:
        raise LoadError(path, f"cannot read image ({type(exc).__name__}: {exc})") from exc
    data = grey.T[:, :, None]  # (cols, rows, 1) = (I, J, 1)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    return Volume(data, affine, modality, [path], {"format": "image2d"})


def load_volume(source: str | Path | list[Path], modality: str = "", index4d: int = 0) -> Volume:
    """Load a NIfTI file, a 2D image, a DICOM file, a DICOM series folder or a list of DICOM
    files, choosing the reader by content. ``index4d`` picks the volume of a 4D NIfTI.

    Raises:
        LoadError: the source does not exist or cannot be read; the message names it. No other
            exception type escapes for bad input (an unexpected one is wrapped, with its type).
    """
    try:
        return _load_volume(source, modality, index4d)
    except MriViewerError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # a reader's bug or an input nobody foresaw: still one clear message
        where = source[0] if isinstance(source, list) and source else source
        raise LoadError(where, f"cannot read ({type(exc).__name__}: {exc})") from exc


def _load_volume(source: str | Path | list[Path], modality: str = "", index4d: int = 0) -> Volume:
    if isinstance(source, list):
        return read_dicom_series(source, modality)
    path = Path(source)
    if not path.exists():
        raise LoadError(path, "no such file or folder")
    if path.is_dir():
        return read_dicom_series(path, modality)
    if is_nifti(path):
        return load_nifti(path, modality, index4d)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return load_image2d(path, modality)
    if is_dicom_file(path):
        return read_dicom_series([path], modality)
    raise LoadError(path, "unknown file type (expected DICOM, NIfTI or a 2D image)")
