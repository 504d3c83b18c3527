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


def load_nifti(path: str | Path, modality: str = "", index4d: int = 0) -> Volume:
    """Read a NIfTI-1/2 file.

    Args:
        path: ``.nii`` or ``.nii.gz`` file.
        modality: name stored on the volume.
        index4d: which volume of a 4D file to take.

    Returns:
        Volume with data ``(I, J, K)`` float32 in the file's storage order and its affine.
        Complex data become their magnitude ``|z|`` (float32) with a warning naming the file in
        ``meta["warnings"]`` (``meta["complex"] = True``).

    Raises:
        LoadError: not a regular file, unreadable or corrupt file, fewer than 2 or more than 4
            dimensions.
    """
    path = check_source_path(path, "file")
    warnings: list[str] = []
    try:
        img = nib.load(str(path))
        shape = img.shape
        is_complex = np.dtype(img.get_data_dtype()).kind == "c"
        if len(shape) == 4:
            if not 0 <= index4d < shape[3]:
                raise LoadError(path, f"4D file has {shape[3]} volumes; index {index4d} out of range")
            # Slicing the array proxy applies scl_slope/scl_inter.
            raw = np.asarray(img.dataobj[..., index4d])
            data = (np.abs(raw) if is_complex else raw).astype(np.float32)
        elif len(shape) in (2, 3):
            data = (np.abs(np.asarray(img.dataobj)).astype(np.float32) if is_complex
                    else img.get_fdata(dtype=np.float32))
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
    try:
        return Volume(data, affine, modality, [path], meta)
    except Exception as exc:
        raise LoadError(path, str(exc)) from exc
