"""Read any supported image source into a :class:`~mriviewer.volume.Volume`.

* NIfTI (``.nii``, ``.nii.gz``) with nibabel: the affine is nibabel's choice of sform/qform
  (sform when its code is set, as the NIfTI-1 standard recommends), ``scl_slope`` /
  ``scl_inter`` are applied by ``get_fdata``. 4D inputs take volume ``index4d`` (default 0).
  Complex data (MR phase/complex reconstructions) are shown as their magnitude ``|z|`` with a
  warning naming the file (``Volume.meta["warnings"]``), never silently as the real part.
* Anything that is not a regular file or folder (``/dev/null``, a FIFO, a socket, a broken
  symbolic link) is refused before it is opened (:func:`check_source_path`), so a FIFO never
  blocks the reader.
* DICOM series folders and files with pydicom (:mod:`mriviewer.dicom`).
* 2D images (JPEG, PNG, BMP, TIFF) with Pillow, as a volume of shape ``(W, H, 1)``. 8-bit
  greyscale, palette and colour images are converted to greyscale (ITU-R 601-2 luma, 0–255);
  16-bit, 32-bit integer and float images (Pillow modes ``I;16*``, ``I``, ``F``: 16-bit PNG,
  scientific TIFF) keep their values (``uint16`` or ``float32``), so nothing is clipped to 255
  and the display window comes from their percentiles. The in-plane affine is an identity: ``i`` runs left→right and ``j``
  top→bottom on screen. The image carries no patient geometry, so it is declared as an axial
  slice seen from below in radiological convention (x = −column, y = −row), which puts it on
  screen exactly as stored.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import nibabel as nib
import numpy as np

from .dicom import is_dicom_file, read_dicom_series
from .errors import LoadError, MriViewerError
from .volume import Volume

__all__ = ["load_volume", "load_nifti", "load_image2d", "IMAGE_SUFFIXES", "is_nifti", "path_kind",
           "check_source_path"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def is_nifti(path: Path) -> bool:
    name = Path(path).name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def path_kind(path: str | Path) -> str:
    """What ``path`` is, from ``os.stat`` (follows symbolic links; opens nothing).

    Returns:
        ``"file"`` (regular file), ``"folder"``, ``"missing"``, ``"broken symbolic link"``,
        ``"symbolic link loop"``, ``"FIFO (named pipe)"``, ``"socket"``, ``"character device"``,
        ``"block device"``, ``"unreadable (<reason>)"`` or ``"special file"``.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symbolic link" if os.path.lexists(path) else "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    for test, name in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def check_source_path(path: str | Path, want: str = "any") -> Path:
    """``path`` as a :class:`~pathlib.Path` when it is a regular file or a folder (``want``:
    ``"any"``, ``"file"`` or ``"folder"``); checked with ``stat`` before anything is opened, so
    a FIFO or device is never read.

    Raises:
        LoadError: missing, or not what is wanted (``/dev/null``, a FIFO, a socket, a broken
            link, a folder where a file is expected); the message names the path and what it is.
    """
    path = Path(path)
    kind = path_kind(path)
    if kind == "missing":
        raise LoadError(path, "no such file or folder")
    if kind not in ("file", "folder"):
        raise LoadError(path, f"not a regular file or folder: a {kind}; nothing was read")
    if want == "file" and kind != "file":
        raise LoadError(path, "is a folder; a file was expected")
    if want == "folder" and kind != "folder":
        raise LoadError(path, "is a file; a folder was expected")
    return path


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


#: Pillow modes whose values are kept as they are (16/32-bit integers, 32-bit float).
_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _colour_notes(im) -> list[str]:
    """What converting a Pillow image to 8-bit luma loses, in words: real colour (channels that
    differ; MR exports are usually grey stored as RGB, which loses nothing) and transparency."""
    notes = []
    bands = im.getbands()
    if len(bands) >= 3:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
        if np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).max() > 8:  # beyond JPEG chroma noise
            notes.append(f"colour image ({im.mode}) shown as greyscale luma (ITU-R 601-2)")
    if "A" in bands and np.asarray(im.getchannel("A")).min() < 255:
        notes.append("transparency (alpha channel) ignored")
    return notes


def load_image2d(path: str | Path, modality: str = "") -> Volume:
    """Read a 2D image (JPEG/PNG/BMP/TIFF) as a single-slice volume ``(W, H, 1)``.

    8-bit greyscale, palette and colour images become greyscale float32 0–255 (Pillow
    ``convert("L")``, ITU-R 601-2 luma). High-depth images keep their values: 16-bit
    (``I;16*`` → ``uint16``), 32-bit integer (``I`` → float32) and float (``F`` → float32), so
    a 16-bit PNG or float TIFF is not clipped to 255. ``meta["pil_mode"]`` records the mode; a
    multi-page file shows its first page, real colour and transparency are lost, each with a
    warning naming the file.

    Raises:
        LoadError: not a regular file, or it cannot be decoded (zero bytes, truncated, not an
            image); the message names the file.
    """
    from PIL import Image

    path = check_source_path(path, "file")
    meta: dict = {"format": "image2d"}
    notes: list[str] = []
    try:
        if path.stat().st_size == 0:
            raise LoadError(path, "empty file (0 bytes)")
        with Image.open(path) as im:
            mode = im.mode
            frames = int(getattr(im, "n_frames", 1) or 1)
            if mode in _HIGH_DEPTH_MODES:
                arr = np.asarray(im)
                if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
                    pixels = arr.astype(np.uint16)  # native byte order
                else:
                    pixels = arr.astype(np.float32)
            else:
                notes = _colour_notes(im)
                pixels = np.asarray(im.convert("L"), dtype=np.float32)  # (rows, cols)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(path, f"cannot read image ({type(exc).__name__}: {exc})") from exc
    if pixels.ndim != 2:
        raise LoadError(path, f"unexpected image array shape {pixels.shape} (mode {mode})")
    meta["pil_mode"] = mode
    warnings = [f"{path}: {n}" for n in notes]
    if frames > 1:
        warnings.append(f"{path}: {frames} pages/frames; showing the first")
    if warnings:
        meta["warnings"] = warnings
    data = pixels.T[:, :, None]  # (cols, rows, 1) = (I, J, 1)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    return Volume(data, affine, modality, [path], meta)


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
