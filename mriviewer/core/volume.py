"""The :class:`Volume`: a voxel array with its geometry.

Axis convention (used everywhere in mriviewer)
----------------------------------------------
``Volume.data`` has shape ``(I, J, K)`` and is indexed ``data[i, j, k]``. The 4×4
``Volume.affine`` maps the homogeneous voxel index ``(i, j, k, 1)`` to patient coordinates
``(x, y, z, 1)`` in millimetres in **RAS+** (x increases to the patient's Right, y to
Anterior, z to Superior) — the NIfTI / nibabel convention.

For a DICOM series ``i`` runs along the image rows' direction (the first three values of
ImageOrientationPatient, i.e. along a row, increasing column number), ``j`` along the columns'
direction (increasing row number), and ``k`` across slices, ordered by position along the slice
normal. A 2D image is a volume with ``K == 1``.

"Display" (canonical) orientation means the data re-indexed, without interpolation, so that
``i`` points closest to R, ``j`` to A and ``k`` to S (``nibabel.as_closest_canonical``).
Views then draw axial = ``data[:, :, k]``, coronal = ``data[:, j, :]``,
sagittal = ``data[i, :, :]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from mriviewer.core.errors import VolumeError

__all__ = ["Volume", "MODALITIES", "acquisition_plane", "percentile_window", "same_grid"]

#: Structural modalities, in display order.
MODALITIES: tuple[str, ...] = ("FLAIR", "T1w", "T1wCE", "T2w")


@dataclass
class Volume:
    """A scalar image volume with its voxel-to-world geometry.

    Args:
        data: voxel values, shape ``(I, J, K)``, in physical units: float32 after scaling
            (DICOM RescaleSlope/Intercept or NIfTI ``scl_slope``/``scl_inter`` applied), or the
            stored integer type when no scaling applies. Consumers that compute convert to
            float32 themselves.
        affine: 4×4 float64, voxel index ``(i, j, k, 1)`` → RAS+ mm.
        modality: ``"FLAIR"``, ``"T1w"``, ``"T1wCE"``, ``"T2w"``, ``"SEG"`` or any other name.
        sources: the file(s) the volume was read from.
        meta: free-form header facts (series description, transfer syntax, …).
    """

    data: np.ndarray
    affine: np.ndarray
    modality: str = ""
    sources: list[Path] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data)
        if self.data.ndim == 2:
            self.data = self.data[:, :, None]
        if self.data.ndim != 3:
            raise VolumeError(f"volume must be 3D (I, J, K), got shape {self.data.shape}")
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise VolumeError(f"affine must be 4x4, got {self.affine.shape}")
        if not np.all(np.isfinite(self.affine)) or abs(np.linalg.det(self.affine[:3, :3])) < 1e-9:
            raise VolumeError("affine is singular or not finite")

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel grid shape ``(I, J, K)``."""
        return self.data.shape  # type: ignore[return-value]  # numpy shapes are tuples of ints

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing in mm along ``i, j, k`` (column norms of the affine)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """Anatomical direction each voxel axis points to, e.g. ``('L', 'P', 'S')``
        (nibabel ``aff2axcodes``)."""
        return tuple(nib.orientations.aff2axcodes(self.affine))  # type: ignore[return-value]

    @property
    def is_2d(self) -> bool:
        return self.data.shape[2] == 1

    @property
    def acquisition_plane(self) -> str:
        """``"axial"``, ``"coronal"`` or ``"sagittal"``: the plane of the stored slices
        (``k`` = slice axis), from the affine; see :func:`acquisition_plane`."""
        return acquisition_plane(self.affine)

    def voxel_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Voxel indices ``(..., 3)`` → RAS mm ``(..., 3)``."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: np.ndarray) -> np.ndarray:
        """RAS mm ``(..., 3)`` → fractional voxel indices ``(..., 3)``."""
        inv = np.linalg.inv(self.affine)
        xyz = np.asarray(xyz, dtype=np.float64)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def canonical(self, copy: bool = True) -> Volume:
        """This volume re-indexed (flips and axis permutation, no interpolation) to the
        closest RAS+ orientation, as ``nibabel.as_closest_canonical``. Returns ``self`` if it
        already is. ``copy=False`` keeps the data a (strided, possibly negative-stride) view of
        this volume's: no copy (a 512×512×143 series takes 0.3 s to transpose), for the viewer,
        which reads slices; code handing the array to torch or C keeps the default."""
        ornt = nib.orientations.io_orientation(self.affine)
        ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
        if np.array_equal(ornt, ras):
            return self
        transform = nib.orientations.ornt_transform(ornt, ras)
        data = nib.orientations.apply_orientation(self.data, transform)
        affine = self.affine @ nib.orientations.inv_ornt_aff(transform, self.data.shape)
        return Volume(
            np.ascontiguousarray(data) if copy else data, affine, self.modality, list(self.sources), dict(self.meta)
        )

    def canonical_grid(self) -> tuple[tuple[int, int, int], np.ndarray]:
        """``(shape, affine)`` of :meth:`canonical`, computed from the affine alone (no data)."""
        ornt = nib.orientations.io_orientation(self.affine)
        transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt(("R", "A", "S")))
        shape = tuple(int(self.shape[int(a)]) for a in np.argsort(transform[:, 0]))
        return shape, self.affine @ nib.orientations.inv_ornt_aff(transform, self.shape)  # type: ignore[return-value]

    def to_nifti(self) -> nib.Nifti1Image:
        """This volume as a NIfTI-1 image (float32, sform = qform = affine)."""
        img = nib.Nifti1Image(self.data.astype(np.float32), self.affine)
        img.set_qform(self.affine, code=1)
        img.set_sform(self.affine, code=1)
        return img

    def describe(self) -> dict:
        """JSON-ready summary: path, shape, spacing_mm, affine, axcodes, acquisition_plane."""
        src = self.sources[0].parent if len(self.sources) > 1 else (self.sources[0] if self.sources else None)
        return {
            "path": str(src) if src is not None else None,
            "shape": list(self.shape),
            "spacing_mm": [round(s, 6) for s in self.spacing],
            "affine": [[round(float(v), 6) for v in row] for row in self.affine],
            "axcodes": "".join(self.axcodes),
            "acquisition_plane": self.acquisition_plane,
            **({"warnings": list(self.meta["warnings"])} if self.meta.get("warnings") else {}),
        }


def same_grid(shape, affine, other_shape, other_affine, atol: float = 1e-4) -> bool:
    """True when two voxel grids are the same: equal shapes and affines equal within ``atol``
    (mm; header round-off), so one voxel index means one position in both."""
    return tuple(shape) == tuple(other_shape) and np.allclose(affine, other_affine, atol=atol)


def acquisition_plane(affine: np.ndarray) -> str:
    """Name the plane of the slices stored along ``k`` from a voxel→RAS affine.

    The slice normal is the third affine column; the plane is named after the world axis it
    is closest to (x → sagittal, y → coronal, z → axial), as DICOM viewers do for oblique
    series.

    Args:
        affine: 4×4 voxel → RAS mm.

    Returns:
        ``"sagittal"``, ``"coronal"`` or ``"axial"``.
    """
    normal = np.asarray(affine, dtype=np.float64)[:3, 2]
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(normal)))]


def percentile_window(data: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> tuple[float, float]:
    """Default display window: the ``lower``/``upper`` percentiles of the finite voxels.

    Uses at most ~1M voxels (a strided sample) so it costs milliseconds on any volume.

    Returns:
        ``(low, high)`` with ``high > low`` (a constant image gets ``(v, v + 1)``).
    """
    data = np.asarray(data)
    if data.ndim and not (data.flags.c_contiguous or data.flags.f_contiguous):
        # A strided view (a re-oriented volume): sample whole planes first, so ravel copies ~1M
        # voxels, not the volume (0.2 s for a 512×512×143 series).
        data = data[:: max(1, min(data.shape[0], data.size // 1_000_000))]
    flat = data.ravel()
    step = max(1, flat.size // 1_000_000)
    sample = flat[::step]
    sample = sample[np.isfinite(sample)]
    if sample.size and np.issubdtype(sample.dtype, np.floating):
        sample = sample[np.abs(sample) < np.finfo(np.float32).max]  # float32 extremes are not data
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [lower, upper])
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        hi = lo + max(1.0, abs(lo) * 1e-6)  # still > lo for huge constant values
    return lo, hi
