"""Read any supported image source into a :class:`~mriviewer.core.volume.Volume`.

The formats are a small registry of readers in the style of MONAI's ``ImageReader``
(``verify_suffix`` + ``read``): :data:`READERS` holds one :class:`ImageReader` per format —
NIfTI (:mod:`mriviewer.io.nifti`), 2D images (:mod:`mriviewer.io.image2d`) and DICOM files and
series folders (:mod:`mriviewer.io.dicom`) — tried in that order; the first whose
:meth:`~ImageReader.verify_suffix` accepts the path reads it. Adding a format is one more entry.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume
from mriviewer.io.dicom.scan import is_dicom_file
from mriviewer.io.dicom.series import read_dicom_series
from mriviewer.io.image2d import load_image2d
from mriviewer.io.nifti import load_nifti
from mriviewer.io.paths import IMAGE_SUFFIXES, check_source_path, is_nifti

_UNKNOWN_TYPE = "unknown file type (expected DICOM, NIfTI or a 2D image)"


class ImageReader(ABC):
    """One image format: which paths it takes (:meth:`verify_suffix`) and how it reads them
    (:meth:`read`), after MONAI's ``monai.data.ImageReader``."""

    #: Name of the format, for messages and logs.
    name: str = ""

    @abstractmethod
    def verify_suffix(self, path: Path) -> bool:
        """Whether this reader takes ``path``, a regular file or a folder (already checked
        with :func:`~mriviewer.io.paths.check_source_path`). Decided by the name where the
        format has a suffix; a reader may also probe the content, but must not raise."""

    @abstractmethod
    def read(self, path: Path, modality: str = "", index4d: int = 0) -> Volume:
        """Read ``path`` as a volume ``(I, J, K)`` with its voxel → RAS mm affine.

        Args:
            path: a file or folder this reader's :meth:`verify_suffix` accepted.
            modality: name stored on the volume.
            index4d: which volume of a 4D source to take (ignored by 3D-only formats).

        Raises:
            LoadError: the source cannot be read; the message names it.
        """


class NiftiReader(ImageReader):
    """NIfTI-1/2 files, ``.nii`` and ``.nii.gz`` (:func:`~mriviewer.io.nifti.load_nifti`)."""

    name = "NIfTI"

    def verify_suffix(self, path: Path) -> bool:
        """A file (not a folder) whose name ends in ``.nii`` or ``.nii.gz``, any case."""
        return not path.is_dir() and is_nifti(path)

    def read(self, path: Path, modality: str = "", index4d: int = 0) -> Volume:
        """See :func:`~mriviewer.io.nifti.load_nifti`."""
        return load_nifti(path, modality, index4d)


class Image2DReader(ImageReader):
    """2D images with a suffix of :data:`~mriviewer.io.paths.IMAGE_SUFFIXES`
    (:func:`~mriviewer.io.image2d.load_image2d`)."""

    name = "2D image"

    def verify_suffix(self, path: Path) -> bool:
        """A file (not a folder) whose suffix, any case, is one of ``IMAGE_SUFFIXES``."""
        return not path.is_dir() and path.suffix.lower() in IMAGE_SUFFIXES

    def read(self, path: Path, modality: str = "", index4d: int = 0) -> Volume:
        """See :func:`~mriviewer.io.image2d.load_image2d` (``index4d`` is ignored)."""
        return load_image2d(path, modality)


class DicomReader(ImageReader):
    """DICOM: a series folder, or one file recognised by its content (the ``DICM`` preamble;
    :func:`~mriviewer.io.dicom.scan.is_dicom_file`), read by
    :func:`~mriviewer.io.dicom.series.read_dicom_series`."""

    name = "DICOM"

    def verify_suffix(self, path: Path) -> bool:
        """Any folder (read as one series), or a file that :func:`is_dicom_file` accepts."""
        return path.is_dir() or is_dicom_file(path)

    def read(self, path: Path | list[Path], modality: str = "", index4d: int = 0) -> Volume:
        """A folder, one file, or a list of the files of one series (see
        :func:`~mriviewer.io.dicom.series.read_dicom_series`)."""
        source = path if isinstance(path, list) or path.is_dir() else [path]
        return read_dicom_series(source, modality, index4d=index4d)


#: The readers, tried in order (the first that accepts a path reads it).
READERS: tuple[ImageReader, ...] = (NiftiReader(), Image2DReader(), DicomReader())


def reader_for(path: Path) -> ImageReader | None:
    """The first reader of :data:`READERS` that accepts ``path`` (a regular file or folder),
    or ``None``."""
    return next((r for r in READERS if r.verify_suffix(path)), None)


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
    with _one_clear_error(source):
        vol = _load_volume(source, modality, index4d)
        if modality == "SEG":
            _check_label_map(vol, source)
        return vol


@contextlib.contextmanager
def _one_clear_error(source):
    """Let mriviewer's errors and MemoryError through; anything else (a reader's bug or an input
    nobody foresaw) becomes one LoadError naming the source, with the exception's type."""
    try:
        yield
    except MriViewerError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        where = source[0] if isinstance(source, list) and source else source
        raise LoadError(where, f"cannot read ({type(exc).__name__}: {exc})") from exc


def describe_source(source: str | Path | list[Path], modality: str = "", index4d: int = 0) -> dict:
    """:meth:`Volume.describe` of a source read from its headers, without decoding its voxels
    where the format allows: a NIfTI file's header (the first few KiB of a ``.nii.gz``), a classic
    DICOM series' headers with the pixel data left on disk (pydicom ``defer_size``; the slices
    are validated, sorted and spaced as a full read does, so shape, affine and warnings agree).
    Multi-frame and mosaic DICOM and 2D images are decoded (their layout is in the pixels).
    ``mriviewer info`` uses it; ``info --decode`` decodes instead. The result has
    ``"header_only": True`` when no voxel was decoded.

    Returns:
        ``{"path", "shape", "spacing_mm", "affine", "axcodes", "acquisition_plane"[, "warnings"],
        "dtype", "header_only"}``; ``dtype`` is the voxels' type as a full read returns it.

    Raises:
        LoadError: as :func:`load_volume` (pixel-only faults, e.g. undecodable slices, are not
            seen).
    """
    with _one_clear_error(source):
        vol, header_only = _read_header(source, modality, index4d)
    return {**vol.describe(), "dtype": str(vol.data.dtype), "header_only": header_only}


def _read_header(source, modality: str, index4d: int) -> tuple[Volume, bool]:
    if isinstance(source, list):
        for f in source:
            check_source_path(f, "file")
        return read_dicom_series(source, modality, index4d=index4d, header_only=True), True
    path = check_source_path(source)
    reader = reader_for(path)
    if isinstance(reader, NiftiReader):
        return load_nifti(path, modality, index4d, header_only=True), True
    if isinstance(reader, DicomReader):
        src = path if path.is_dir() else [path]
        vol = read_dicom_series(src, modality, index4d=index4d, header_only=True)
        return vol, not any(vol.data.strides) or vol.data.size == 0
    if reader is None:
        raise LoadError(path, _UNKNOWN_TYPE)
    return reader.read(path, modality, index4d), False


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
    """Check the path (or each file of a list, always DICOM) and hand it to its reader."""
    if isinstance(source, list):
        for f in source:
            check_source_path(f, "file")
        return read_dicom_series(source, modality, index4d=index4d)
    path = check_source_path(source)
    reader = reader_for(path)
    if reader is None:
        raise LoadError(path, _UNKNOWN_TYPE)
    return reader.read(path, modality, index4d)
