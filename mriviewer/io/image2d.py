"""2D images (JPEG, PNG, BMP, TIFF) with Pillow, as a volume of shape ``(W, H, 1)``.

8-bit greyscale, palette and colour images are converted to greyscale (ITU-R 601-2 luma, 0–255);
16-bit, 32-bit integer and float images (Pillow modes ``I;16*``, ``I``, ``F``: 16-bit PNG,
scientific TIFF) keep their values (``uint16`` or ``float32``), so nothing is clipped to 255 and
the display window comes from their percentiles. The in-plane affine is an identity: ``i`` runs
left→right and ``j`` top→bottom on screen. The image carries no patient geometry, so it is
declared as an axial slice seen from below in radiological convention (x = −column, y = −row),
which puts it on screen exactly as stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mriviewer.core.errors import LoadError
from mriviewer.core.volume import Volume
from mriviewer.io.paths import check_source_path

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
