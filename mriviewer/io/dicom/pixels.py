"""Pixel data: a fast path for uncompressed little-endian data (no pydicom pixel handler), pydicom's
decoders otherwise, excess-bytes detection, and the modality rescale (PS3.3 C.11.1.1.2).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom

from mriviewer.core.errors import LoadError
from mriviewer.io.dicom.headers import _HEADER_ERRORS, _UNCOMPRESSED, _UNCOMPRESSED_LE


def _fast_pixels(ds: pydicom.Dataset) -> np.ndarray | None:
    """Single-frame, single-sample, uncompressed little-endian pixels straight from the byte
    buffer — the common MR case — or ``None`` to use pydicom's pixel handlers. Unsigned data
    keep only their BitsStored low bits; signed data with unused high bits (which need sign
    extension) go to pydicom."""
    try:
        if str(ds.file_meta.TransferSyntaxUID) not in _UNCOMPRESSED_LE:
            return None
        bits, stored = int(ds.BitsAllocated), int(ds.BitsStored)
        signed = int(ds.PixelRepresentation) == 1
        if int(ds.get("SamplesPerPixel", 1)) != 1 or int(ds.get("NumberOfFrames", 1) or 1) != 1:
            return None
        if bits not in (8, 16) or (signed and stored != bits):
            return None
        rows, cols = int(ds.Rows), int(ds.Columns)
        buf = ds.PixelData
        dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
        if len(buf) < rows * cols * dtype.itemsize:
            return None  # truncated: let pydicom say so
        px = np.frombuffer(buf, dtype=dtype, count=rows * cols).reshape(rows, cols)
        if stored < bits:  # bits above BitsStored are not pixel data (PS3.5 8.1.1; pydicom masks)
            mask = (1 << stored) - 1
            if px.max() > mask:
                px = px & np.array(mask, dtype=dtype)
        return px
    except _HEADER_ERRORS:
        return None


def _raw_pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """Stored pixel values (no rescale): :func:`_fast_pixels`, else pydicom's pixel handlers
    (compressed syntaxes through the pydicom plugins: gdcm, pylibjpeg, pyjpegls, Pillow).

    Raises:
        LoadError: no pixel data, more uncompressed bytes than the header describes
            (:func:`_excess_pixel_bytes`; the data would load as garbage), or undecodable.
    """
    if "PixelData" not in ds:
        raise LoadError(path, "DICOM file has no pixel data")
    excess = _excess_pixel_bytes(ds)
    if excess:
        raise LoadError(path, excess)
    fast = _fast_pixels(ds)
    if fast is not None:
        return fast
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ds.pixel_array
    except Exception as exc:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        hint = ""
        if str(ts) == "1.2.840.10008.1.2.4.51" and int(ds.get("BitsStored", 8) or 8) > 8:
            hint = ('; 12-bit JPEG Extended needs the GPL decoder: pip install "mriviewer[jpeg-gpl]"')
        raise LoadError(
            path, f"cannot decode pixel data (transfer syntax {ts}: {type(exc).__name__}: {exc}){hint}"
        ) from exc


def _excess_pixel_bytes(ds: pydicom.Dataset) -> str | None:
    """For uncompressed pixel data longer than Rows × Columns × frames × samples ×
    BitsAllocated / 8 (plus one byte of padding): why the header does not describe the data
    (e.g. a wrong BitsAllocated or Rows), which would otherwise load as garbage."""
    try:
        if str(ds.file_meta.TransferSyntaxUID) not in _UNCOMPRESSED:
            return None
        bits = int(ds.BitsAllocated)
        n = (int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
             * int(ds.get("SamplesPerPixel", 1) or 1))
        expected = (n * bits + 7) // 8
        actual = len(ds.PixelData)
    except (*_HEADER_ERRORS, KeyError):
        return None
    if actual > expected + 1:
        return (f"pixel data holds {actual} bytes but Rows, Columns and BitsAllocated describe "
                f"{expected}: the header does not describe the image")
    return None


#: ITU-R BT.601 luma weights (as Pillow's "L" conversion and :mod:`mriviewer.io.image2d`).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _as_luminance(ds: pydicom.Dataset, px: np.ndarray) -> tuple[np.ndarray, str | None]:
    """A colour image's pixels ``(..., 3)`` (SamplesPerPixel 3: RGB, or YBR that pydicom decoded
    to RGB) as luminance ``(...)`` float32 (ITU-R BT.601), with the note that says so; greyscale
    pixels are returned as they are, with ``None``. The viewer and the models take one channel
    per series, so a colour FA map or secondary capture is shown as its brightness, not refused."""
    if int(ds.get("SamplesPerPixel", 1) or 1) != 3 or px.ndim < 3 or px.shape[-1] != 3:
        return px, None
    photometric = str(ds.get("PhotometricInterpretation", "RGB") or "RGB")
    kind = "RGB" if photometric == "RGB" else f"RGB decoded from {photometric}"
    note = (f"colour image ({kind}, SamplesPerPixel 3); shown as luminance (ITU-R BT.601): "
            "mriviewer reads one channel per series")
    return px.astype(np.float32) @ _LUMA, note
