"""NIfTI (``.nii``, ``.nii.gz``) with nibabel.

The affine is nibabel's choice of sform/qform (sform when its code is set, as the NIfTI-1 standard
recommends), ``scl_slope`` / ``scl_inter`` are applied by ``get_fdata``. 4D inputs take volume
``index4d`` (default 0). Complex data (MR phase/complex reconstructions) are shown as their
magnitude ``|z|`` with a warning naming the file (``Volume.meta["warnings"]``), never silently as
the real part.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from mriviewer.core.errors import LoadError
from mriviewer.core.volume import Volume
from mriviewer.io.paths import check_source_path


def load_nifti(path: str | Path, modality: str = "", index4d: int = 0, header_only: bool = False) -> Volume:
    """Read a NIfTI-1/2 file.

    Args:
        path: ``.nii`` or ``.nii.gz`` file.
        modality: name stored on the volume.
        index4d: which volume of a 4D file to take.
        header_only: read the header alone (for a ``.nii.gz``, the first few KiB of the stream):
            the volume's shape, affine, dtype and warnings are those of a full read, its ``data``
            a read-only array of zeros that takes no memory (``np.broadcast_to``); see
            :func:`mriviewer.io.readers.describe_source`.

    Returns:
        Volume with data ``(I, J, K)`` in the file's storage order and its affine: the stored
        integer type when ``scl_slope``/``scl_inter`` do not scale the values (an int16 BraTS
        volume stays int16, half the memory and cache of float32, like DICOM), else float32 with
        the scaling applied. Complex data become their magnitude ``|z|`` (float32) with a warning
        naming the file in ``meta["warnings"]`` (``meta["complex"] = True``).

    Raises:
        LoadError: not a regular file, unreadable or corrupt file, fewer than 2 or more than 4
            dimensions, ``index4d`` out of range.
    """
    path = check_source_path(path, "file")
    try:
        img = nib.load(str(path), mmap=False)  # never a view on the user's file (it may change)
        shape, is_complex, unscaled = _header_facts(img, path, index4d)
        if header_only:
            dtype = img.get_data_dtype() if unscaled else np.dtype(np.float32)
            data = np.broadcast_to(np.zeros((), dtype), shape[:3] if len(shape) > 2 else (*shape, 1))
        else:
            data = _voxels(img, shape, index4d, is_complex, unscaled)
        affine = img.affine
    except LoadError:
        raise
    except FileNotFoundError as exc:
        raise LoadError(path, "no such file") from exc
    except Exception as exc:  # nibabel raises many types on corrupt headers/streams
        raise LoadError(path, f"cannot read NIfTI ({type(exc).__name__}: {exc})") from exc
    if affine is None:
        affine = np.eye(4)
    meta = _meta(img, path, shape, index4d, is_complex)
    try:
        return Volume(data, affine, modality, [path], meta)
    except Exception as exc:
        raise LoadError(path, str(exc)) from exc


def _header_facts(img, path: Path, index4d: int) -> tuple[tuple[int, ...], bool, bool]:
    """``(shape, is_complex, unscaled)`` from the header; ``unscaled``: integer voxels that
    ``scl_slope``/``scl_inter`` leave as they are (nibabel's array proxy then returns the stored
    type).

    Raises:
        LoadError: dimensions other than 2 to 4, or ``index4d`` out of range.
    """
    shape = tuple(int(n) for n in img.shape)
    dtype = np.dtype(img.get_data_dtype())
    if len(shape) not in (2, 3, 4):
        raise LoadError(path, f"unsupported NIfTI dimensions {shape}")
    if len(shape) == 4 and not 0 <= index4d < shape[3]:
        raise LoadError(path, f"4D file has {shape[3]} volumes; index {index4d} out of range")
    proxy = img.dataobj
    slope, inter = getattr(proxy, "slope", 1.0), getattr(proxy, "inter", 0.0)
    unscaled = dtype.kind in "iub" and np.all(np.asarray(slope) == 1) and np.all(np.asarray(inter) == 0)
    return shape, dtype.kind == "c", bool(unscaled)


def _voxels(img, shape: tuple[int, ...], index4d: int, is_complex: bool, unscaled: bool) -> np.ndarray:
    """The voxels of volume ``index4d``: the stored integers when ``unscaled``, else float32
    (slicing the array proxy applies ``scl_slope``/``scl_inter``); complex → ``|z|``."""
    raw = img.dataobj[..., index4d] if len(shape) == 4 else img.dataobj
    data = np.asarray(raw)
    if is_complex:
        return np.abs(data).astype(np.float32)
    if unscaled:
        return data.astype(bool if data.dtype == bool else data.dtype.newbyteorder("="), copy=False)
    return data.astype(np.float32, copy=False)


def _meta(img, path: Path, shape: tuple[int, ...], index4d: int, is_complex: bool) -> dict:
    """``meta`` of the volume: format, complex and 4D facts, warnings naming the file."""
    warnings: list[str] = []
    meta: dict = {"format": "nifti"}
    if is_complex:
        meta["complex"] = True
        warnings.append(f"{path}: complex-valued data ({img.get_data_dtype()}); showing the magnitude |z|")
    if len(shape) == 4:
        meta.update(n_volumes=int(shape[3]), volume_index=int(index4d))
        if shape[3] > 1:
            warnings.append(f"{path}: 4D file with {shape[3]} volumes; showing volume {index4d + 1}")
    if warnings:
        meta["warnings"] = warnings
    return meta
