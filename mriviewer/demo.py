"""Synthetic demo data set: multi-modal brain phantoms written as DICOM series.

Everything this module writes is **synthetic** — computer-generated phantoms, not images of
any person. Use it to try the viewer, the training loop and Grad-CAM without real data, and to
check orientation handling. Research use only — not for diagnosis.

:func:`make_demo_dataset` writes the RSNA-MICCAI 2021 layout::

    out_dir/train_labels.csv                       BraTS21ID,MGMT_value (unpadded ids)
    out_dir/train/00000/{FLAIR,T1w,T1wCE,T2w}/Image-N.dcm

The phantom is a continuous function of RAS+ world coordinates in millimetres
(:func:`phantom_ras`), head centred at the origin:

* an ellipsoidal head (:data:`HEAD_SEMI_AXES_MM`, 140 × 180 × 130 mm along L-R, A-P, S-I)
  made of onion layers measured inward from the skin: scalp, skull (dark), subarachnoid CSF,
  a grey-matter rim with a wavy ("gyral") white-matter boundary, and white matter; a thin
  CSF-filled interhemispheric fissure and two lateral ventricles (CSF);
* orientation landmarks that break the symmetry: a "nose" bump at the anterior
  (:data:`NOSE_RAS_MM`) and a bright fiducial capsule (radius :data:`MARKER_RADIUS_MM`)
  taped to the skin of the patient's **right anterior superior** head, centred at
  :data:`MARKER_RAS_MM`, identical in every case and modality;
* one lesion per case, in one hemisphere (it stops at the midline) at a seeded random
  position, whose look depends on the label (the synthetic "MGMT_value"):

  - label 1: lobulated, FLAIR/T2w-bright oedema around a solid rim that enhances on T1wCE,
    with a necrotic core (dark on FLAIR, T1w and T1wCE; bright on T2w);
  - label 0: homogeneous, FLAIR/T2w-bright, no enhancement, no core.

  Both draw their radius from the same range (13–21 mm), so lesion size and the image's
  intensity statistics do not give the label away: a classifier has to look inside the lesion.

Contrasts (:data:`TISSUE_INTENSITY`) are roughly those of real scans: FLAIR (CSF dark, lesion
bright), T1w (WM > GM > CSF), T1wCE (T1w + enhancing rim) and T2w (CSF bright). Each case gets
a smooth multiplicative bias field, each series a gain and mild Gaussian noise; voxels outside
the head (and the marker) are exactly 0. Values are stored as uint16.

Each series is sampled on its own grid: ``matrix`` × ``matrix`` pixels over a
:data:`FOV_MM` field of view and ``n_slices`` slices covering :data:`SLICE_COVERAGE_MM` along
the slice normal; about 60 % of the series are axial, 20 % coronal and 20 % sagittal
(ImageOrientationPatient in :data:`PLANE_IOP`). File names and InstanceNumber follow the
spatial order in some series, the reverse order or a random order in others, so only readers
that sort by ImagePositionPatient along the normal get the anatomy right. Some cases are fixed
so that tests always find the interesting situations (when the data set is large enough):

* case 0: FLAIR numbered in reverse spatial order;
* case 1: FLAIR coronal, T1w sagittal, T2w axial (all three planes in one case), T1w
  numbered in random order;
* case 2: FLAIR sagittal, T1w coronal;
* the last case (when ``n_cases >= 4``) has no :data:`MISSING_MODALITY` folder.

Everything — pixels, labels, geometry and UIDs — is a function of ``seed`` (and the size
arguments) only.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from .datasets import DATASET_SETTINGS
from .volume import MODALITIES

__all__ = [
    "default_demo_dir",
    "ensure_demo",
    "make_lesion_phantoms",
    "CaseParams",
    "CasePlan",
    "FOV_MM",
    "HEAD_SEMI_AXES_MM",
    "IMAGE_COMMENTS",
    "MARKER_RADIUS_MM",
    "MARKER_RAS_MM",
    "MISSING_MODALITY",
    "NOSE_RAS_MM",
    "PLANE_IOP",
    "PLANE_PROBABILITIES",
    "SLICE_COVERAGE_MM",
    "SeriesGrid",
    "SeriesPlan",
    "TISSUE_INTENSITY",
    "make_demo_dataset",
    "phantom_ras",
    "plan_dataset",
    "random_case_params",
    "series_grid",
]

# ---------------------------------------------------------------------------- constants
#: Centre (RAS+ mm) of the bright fiducial capsule on the skin of the patient's right
#: anterior superior head. Present in every case and modality; use it to check orientation.
MARKER_RAS_MM: tuple[float, float, float] = (38.0, 54.0, 38.0)
#: Radius of the fiducial capsule, mm.
MARKER_RADIUS_MM: float = 6.0
#: Semi-axes (mm) of the head (skin) ellipsoid along x (L-R), y (A-P), z (S-I); centre = origin.
HEAD_SEMI_AXES_MM: tuple[float, float, float] = (70.0, 90.0, 65.0)
#: Centre (RAS+ mm) of the nose bump at the anterior of the head.
NOSE_RAS_MM: tuple[float, float, float] = (0.0, 86.0, -22.0)
_NOSE_SEMI_AXES_MM = (9.0, 11.0, 14.0)

#: In-plane field of view of every series, mm (square).
FOV_MM: float = 200.0
#: Extent covered by the slices along the slice normal, mm, per acquisition plane.
SLICE_COVERAGE_MM: dict[str, float] = {"axial": 150.0, "coronal": 192.0, "sagittal": 160.0}
#: ImageOrientationPatient (row cosine, column cosine; LPS) per acquisition plane.
PLANE_IOP: dict[str, tuple[float, ...]] = {
    "axial": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "coronal": (1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
    "sagittal": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
}
#: Probability of each acquisition plane for a series that is not fixed by the plan.
PLANE_PROBABILITIES: dict[str, float] = {"axial": 0.6, "coronal": 0.2, "sagittal": 0.2}
#: The modality missing from the last case (when ``n_cases >= 4``).
MISSING_MODALITY: str = "T1wCE"
#: DICOM ImageComments of every file.
IMAGE_COMMENTS: str = "Synthetic phantom - research use only"

# Onion layers, depth inward from the skin in mm.
_SKULL_DEPTH = 5.0
_CSF_DEPTH = 11.0
_GM_DEPTH = 13.5
_WM_DEPTH = 18.5  # mean; modulated by ±_GYRAL_AMPLITUDE
_GYRAL_AMPLITUDE = 2.5
_EDGE_MM = 1.2  # width of the linear partial-volume ramp at every boundary
_VENTRICLE_CENTRE = (9.0, 2.0, 12.0)  # right one; the left one is mirrored in x
_VENTRICLE_SEMI_AXES = (5.5, 24.0, 9.0)
_VENTRICLE_TILT_RAD = math.radians(12.0)  # posterior horns diverge
_NECROSIS_FRACTION = 0.55  # of the lesion radius (label 1)
_RIM_FRACTION = 0.70  # solid enhancing tumour out to this fraction; oedema beyond

#: Intensity (arbitrary scanner units before bias field, gain and noise) of each tissue per
#: modality. ``lesion0`` is the whole homogeneous lesion of label 0; ``oedema``, ``tumour`` (the
#: enhancing rim on T1wCE) and ``necrosis`` make up the lesion of label 1.
TISSUE_INTENSITY: dict[str, dict[str, float]] = {
    "FLAIR": {"scalp": 550, "skull": 50, "csf": 70, "gm": 620, "wm": 470, "marker": 4000,
              "oedema": 1250, "tumour": 1100, "necrosis": 380, "lesion0": 1150},
    "T1w": {"scalp": 1100, "skull": 60, "csf": 180, "gm": 560, "wm": 820, "marker": 4000,
            "oedema": 620, "tumour": 520, "necrosis": 250, "lesion0": 680},
    "T1wCE": {"scalp": 1100, "skull": 60, "csf": 180, "gm": 570, "wm": 820, "marker": 4000,
              "oedema": 620, "tumour": 2400, "necrosis": 250, "lesion0": 680},
    "T2w": {"scalp": 800, "skull": 50, "csf": 1600, "gm": 850, "wm": 620, "marker": 4000,
            "oedema": 1250, "tumour": 1100, "necrosis": 1500, "lesion0": 950},
}
_NOISE_SIGMA = 12.0  # Gaussian noise standard deviation, scanner units
_BRAIN_SEMI_AXES = tuple(a - _GM_DEPTH for a in HEAD_SEMI_AXES_MM)


# ---------------------------------------------------------------------------- case parameters
@dataclass(frozen=True)
class CaseParams:
    """The random part of one synthetic case (everything else is fixed anatomy).

    Attributes:
        label: 0 (homogeneous lesion) or 1 (ring-enhancing lesion with a necrotic core).
        lesion_centre_mm: lesion centre, RAS+ mm; its x sign is the hemisphere (+ = right).
        lesion_semi_axes_mm: lesion ellipsoid semi-axes, mm, along the rows of
            ``lesion_rotation``.
        lesion_rotation: 3×3 orthonormal matrix (rows = lesion axes in RAS).
        lesion_phases: 3 phases (radians) of the lobulation pattern of the lesion surface.
        ventricle_scale: size factor of the lateral ventricles (1 = default).
        bias_coeffs: 9 coefficients of the log bias field (linear and quadratic terms in
            x, y, z / 100 mm).
    """

    label: int
    lesion_centre_mm: tuple[float, float, float]
    lesion_semi_axes_mm: tuple[float, float, float]
    lesion_rotation: tuple[tuple[float, float, float], ...]
    lesion_phases: tuple[float, float, float]
    ventricle_scale: float
    bias_coeffs: tuple[float, ...]


def random_case_params(rng: np.random.Generator, label: int) -> CaseParams:
    """Draw the parameters of one case.

    Args:
        rng: the random generator (consumed).
        label: 0 or 1; sets the lesion size and appearance.

    Returns:
        The case parameters; the lesion centre lies in one hemisphere, inside the brain,
        far enough from the brain surface for most of the lesion to fit.

    Raises:
        ValueError: ``label`` is not 0 or 1.
    """
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    # Both labels draw from the same size range: what tells them apart is the lesion's inside
    # (necrotic core and enhancing rim for label 1, homogeneous for label 0), so that a network
    # must look at the lesion, and Grad-CAM finds it, rather than at global intensity.
    radius = rng.uniform(13.0, 21.0)
    semi = radius * rng.uniform(0.85, 1.15, size=3) if label == 1 else radius * rng.uniform(0.9, 1.1, size=3)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    side = 1.0 if rng.random() < 0.5 else -1.0
    brain = np.array(_BRAIN_SEMI_AXES)
    limit = 0.92 - 0.8 * radius / brain.min()
    for _ in range(1000):
        # Near the axial mid-level, where 2D models sample their slices.
        centre = np.array([side * rng.uniform(12.0, 38.0), rng.uniform(-45.0, 45.0),
                           rng.uniform(-5.0, 15.0)])
        if np.linalg.norm(centre / brain) <= limit:
            break
    else:  # pragma: no cover - the acceptance region is large
        centre = np.array([side * 20.0, 0.0, 10.0])
    return CaseParams(
        label=int(label),
        lesion_centre_mm=tuple(float(round(v, 3)) for v in centre),  # type: ignore[arg-type]
        lesion_semi_axes_mm=tuple(float(v) for v in semi),  # type: ignore[arg-type]
        lesion_rotation=tuple(tuple(float(v) for v in row) for row in rotation),  # type: ignore[arg-type]
        lesion_phases=tuple(float(v) for v in rng.uniform(0, 2 * np.pi, size=3)),  # type: ignore[arg-type]
        ventricle_scale=float(rng.uniform(0.8, 1.25)),
        bias_coeffs=tuple(float(v) for v in rng.normal(0.0, 0.07, size=9)),
    )


# ---------------------------------------------------------------------------- phantom
def _ramp(signed_mm: np.ndarray) -> np.ndarray:
    """Partial-volume fraction from a signed distance (mm, positive inside)."""
    return np.clip(0.5 + signed_mm * np.float32(1.0 / _EDGE_MM), 0.0, 1.0)


def _ellipsoid_alpha(x, y, z, centre, semi) -> np.ndarray:
    """Inside-fraction of an axis-aligned ellipsoid (approximate signed distance)."""
    q = ((x - np.float32(centre[0])) * np.float32(1.0 / semi[0])) ** 2
    q += ((y - np.float32(centre[1])) * np.float32(1.0 / semi[1])) ** 2
    q += ((z - np.float32(centre[2])) * np.float32(1.0 / semi[2])) ** 2
    scale = np.float32((semi[0] * semi[1] * semi[2]) ** (1.0 / 3.0))
    return _ramp((1.0 - np.sqrt(q)) * scale)


def _geometry(x: np.ndarray, y: np.ndarray, z: np.ndarray, params: CaseParams) -> dict[str, np.ndarray]:
    """Partial-volume fraction (0..1, float32) of every layer at RAS points ``x, y, z`` (mm,
    any common broadcastable shape). Layers are blended in the order of the returned dict."""
    x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float32) for v in (x, y, z)))
    a, b, c = HEAD_SEMI_AXES_MM
    rho = np.sqrt((x * np.float32(1 / a)) ** 2 + (y * np.float32(1 / b)) ** 2
                  + (z * np.float32(1 / c)) ** 2)
    r = np.sqrt(x * x + y * y + z * z)
    tiny = rho < 1e-6
    # Depth below the skin along the ray from the head centre (mm, positive inside).
    depth = np.where(tiny, np.float32(min(a, b, c)), r / np.maximum(rho, 1e-6)) - r
    geo: dict[str, np.ndarray] = {}
    geo["scalp"] = np.maximum(_ramp(depth), _ellipsoid_alpha(x, y, z, NOSE_RAS_MM, _NOSE_SEMI_AXES_MM))
    geo["skull"] = _ramp(depth - _SKULL_DEPTH)
    geo["csf"] = _ramp(depth - _CSF_DEPTH)
    brain = _ramp(depth - _GM_DEPTH)
    geo["gm"] = brain
    gyri = (np.sin(x * np.float32(1 / 5.5) + np.float32(0.3))
            * np.sin(y * np.float32(1 / 6.5)) * np.sin(z * np.float32(1 / 5.0) + np.float32(1.1)))
    geo["wm"] = _ramp(depth - _WM_DEPTH - np.float32(_GYRAL_AMPLITUDE) * gyri)
    # Interhemispheric fissure: a 2.4 mm CSF sheet at x = 0 above z = -20 mm.
    geo["fissure"] = _ramp(np.float32(1.2) - np.abs(x)) * geo["csf"] * _ramp(z + np.float32(20.0))

    s = params.ventricle_scale
    semi = tuple(v * s for v in _VENTRICLE_SEMI_AXES)
    cx, cy, cz = _VENTRICLE_CENTRE
    cos, sin = np.float32(math.cos(_VENTRICLE_TILT_RAD)), np.float32(math.sin(_VENTRICLE_TILT_RAD))
    vent = None
    for side in (1.0, -1.0):
        # Rotate about z so that the posterior horns diverge from the midline.
        dx, dy = x - np.float32(side * cx), y - np.float32(cy)
        u = cos * dx - np.float32(side) * sin * dy
        v = np.float32(side) * sin * dx + cos * dy
        alpha = _ellipsoid_alpha(u, v, z, (0.0, 0.0, cz), semi)
        vent = alpha if vent is None else np.maximum(vent, alpha)
    geo["ventricles"] = vent  # type: ignore[assignment]

    # Lesion: lobulated ellipsoid, clipped to its hemisphere and to the brain.
    rot = np.asarray(params.lesion_rotation, dtype=np.float32)
    dx = x - np.float32(params.lesion_centre_mm[0])
    dy = y - np.float32(params.lesion_centre_mm[1])
    dz = z - np.float32(params.lesion_centre_mm[2])
    q = np.zeros_like(x)
    units = []
    for n in range(3):
        un = (rot[n, 0] * dx + rot[n, 1] * dy + rot[n, 2] * dz) * np.float32(1 / params.lesion_semi_axes_mm[n])
        q += un * un
        units.append(un)
    p1, p2, p3 = (np.float32(v) for v in params.lesion_phases)
    lobes = np.float32(1.0) + np.float32(0.08 if params.label == 1 else 0.03) * (
        np.sin(np.float32(3.0) * units[0] + p1) * np.sin(np.float32(3.0) * units[1] + p2)
        + np.sin(np.float32(3.0) * units[2] + p3)
    )
    srad = np.sqrt(q) * lobes  # normalised lesion radius (1 = lesion surface)
    radius = np.float32(np.prod(params.lesion_semi_axes_mm) ** (1 / 3))
    side = np.float32(1.0 if params.lesion_centre_mm[0] >= 0 else -1.0)
    clip = brain * _ramp(side * x - np.float32(1.2))
    if params.label == 1:
        geo["oedema"] = _ramp((1.0 - srad) * radius) * clip
        geo["tumour"] = _ramp((_RIM_FRACTION - srad) * radius) * clip
        geo["necrosis"] = _ramp((_NECROSIS_FRACTION - srad) * radius) * clip
    else:
        geo["lesion0"] = _ramp((1.0 - srad) * radius) * clip
    geo["marker"] = _ellipsoid_alpha(x, y, z, MARKER_RAS_MM, (MARKER_RADIUS_MM,) * 3)
    return geo


def _layer_tissue(layer: str) -> str:
    return {"fissure": "csf", "ventricles": "csf"}.get(layer, layer)


def _bias_field(x: np.ndarray, y: np.ndarray, z: np.ndarray, params: CaseParams) -> np.ndarray:
    """Smooth multiplicative bias field (about 0.8–1.25 over the head)."""
    u, v, w = (np.asarray(t, dtype=np.float32) * np.float32(0.01) for t in (x, y, z))
    c = [np.float32(k) for k in params.bias_coeffs]
    log_b = (c[0] * u + c[1] * v + c[2] * w + c[3] * u * u + c[4] * v * v + c[5] * w * w
             + c[6] * u * v + c[7] * v * w + c[8] * u * w)
    return np.exp(np.clip(log_b, -0.25, 0.25))


def _contrast(geo: dict[str, np.ndarray], bias: np.ndarray, modality: str) -> np.ndarray:
    table = TISSUE_INTENSITY[modality]
    out = None
    for layer, alpha in geo.items():
        value = np.float32(table[_layer_tissue(layer)])
        if out is None:
            out = alpha * value
        else:
            out += (value - out) * alpha
    assert out is not None
    return out * bias


def phantom_ras(xyz_mm: np.ndarray, modality: str, case_params: CaseParams) -> np.ndarray:
    """Noise-free phantom intensity at world points.

    Args:
        xyz_mm: points, shape ``(..., 3)``, RAS+ millimetres (x → patient's Right,
            y → Anterior, z → Superior; head centred at the origin).
        modality: ``"FLAIR"``, ``"T1w"``, ``"T1wCE"`` or ``"T2w"``.
        case_params: the case (lesion, ventricle size, bias field), e.g. from
            :func:`random_case_params`.

    Returns:
        float32 intensities, shape ``(...)`` (the input shape without the last axis), in
        scanner units (tissue up to ~2000, the marker ~4000; exactly 0 outside the head and
        the marker), bias field included.

    Raises:
        ValueError: unknown modality or ``xyz_mm`` without a last axis of length 3.
    """
    if modality not in TISSUE_INTENSITY:
        raise ValueError(f"unknown modality {modality!r}; expected one of {list(TISSUE_INTENSITY)}")
    xyz = np.asarray(xyz_mm, dtype=np.float32)
    if xyz.ndim < 1 or xyz.shape[-1] != 3:
        raise ValueError(f"xyz_mm must have shape (..., 3), got {xyz.shape}")
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    return _contrast(_geometry(x, y, z, case_params), _bias_field(x, y, z, case_params), modality)


# ---------------------------------------------------------------------------- series geometry
def _fmt(v: float) -> str:
    """A DICOM DS string (at most 16 characters) for a value with ≤ 4 decimals."""
    s = f"{round(float(v), 4) + 0.0:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


@dataclass(frozen=True)
class SeriesGrid:
    """Sampling grid of one series, in DICOM terms (LPS mm).

    Attributes:
        plane: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        iop: ImageOrientationPatient, 6 floats (row cosine, column cosine; LPS).
        pixel_spacing: in-plane spacing, mm (rows and columns alike).
        slice_spacing: distance between slice centres along the normal, mm.
        ipp: shape ``(K, 3)``, ImagePositionPatient (LPS mm, centre of the first pixel) of
            each slice in spatial order (increasing along ``row × column``).
        rows, columns: pixel matrix.
    """

    plane: str
    iop: tuple[float, ...]
    pixel_spacing: float
    slice_spacing: float
    ipp: np.ndarray
    rows: int
    columns: int

    def ras_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RAS+ mm coordinates ``x, y, z`` of every pixel, each broadcastable to shape
        ``(K, rows, columns)`` — slice, row (pixel array first index), column."""
        rdir, cdir = np.array(self.iop[:3]), np.array(self.iop[3:])
        col = np.arange(self.columns, dtype=np.float64) * self.pixel_spacing
        row = np.arange(self.rows, dtype=np.float64) * self.pixel_spacing
        out = []
        for ax in range(3):
            v = (self.ipp[:, ax][:, None, None] + rdir[ax] * col[None, None, :]
                 + cdir[ax] * row[None, :, None])
            out.append(np.asarray(v if ax == 2 else -v, dtype=np.float32))  # LPS → RAS
        return out[0], out[1], out[2]


def series_grid(plane: str, matrix: int, n_slices: int,
                centre_ras_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> SeriesGrid:
    """The sampling grid of a series.

    Args:
        plane: ``"axial"``, ``"coronal"`` or ``"sagittal"`` (orientation from
            :data:`PLANE_IOP`).
        matrix: pixels per row and per column; pixel spacing = :data:`FOV_MM` / ``matrix``
            (rounded to 0.1 µm so the headers are exact).
        n_slices: number of slices; spacing = :data:`SLICE_COVERAGE_MM` ``[plane]`` /
            ``n_slices``.
        centre_ras_mm: centre of the grid, RAS+ mm.

    Returns:
        The grid; the positions are rounded to 0.1 µm and are exactly what the headers say.

    Raises:
        ValueError: unknown plane.
    """
    if plane not in PLANE_IOP:
        raise ValueError(f"unknown plane {plane!r}; expected one of {list(PLANE_IOP)}")
    iop = PLANE_IOP[plane]
    rdir, cdir = np.array(iop[:3]), np.array(iop[3:])
    normal = np.cross(rdir, cdir)
    ps = round(FOV_MM / matrix, 4)
    ss = round(SLICE_COVERAGE_MM[plane] / n_slices, 4)
    centre_lps = np.array(centre_ras_mm, dtype=np.float64) * np.array([-1.0, -1.0, 1.0])
    corner = (centre_lps - rdir * ps * (matrix - 1) / 2 - cdir * ps * (matrix - 1) / 2
              - normal * ss * (n_slices - 1) / 2)
    corner = np.round(corner, 4)
    ipp = np.round(corner[None, :] + normal[None, :] * ss * np.arange(n_slices)[:, None], 4)
    return SeriesGrid(plane, iop, ps, ss, ipp, matrix, matrix)


# ---------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class SeriesPlan:
    """One series to write: modality, plane, FOV centre (RAS mm), numbering
    (``"forward"``, ``"reverse"`` or ``"shuffled"``) and gain."""

    modality: str
    plane: str
    centre_ras_mm: tuple[float, float, float]
    numbering: str
    gain: float


@dataclass(frozen=True)
class CasePlan:
    """One case to write: integer id, label, phantom parameters, series and noise seed."""

    case_id: int
    label: int
    params: CaseParams
    series: tuple[SeriesPlan, ...]
    noise_seed: int


def plan_dataset(n_cases: int, seed: int = 0) -> list[CasePlan]:
    """Decide everything random about a demo data set (no pixels computed).

    Args:
        n_cases: number of cases (≥ 1).
        seed: random seed; the plan is a function of ``(n_cases, seed)`` only.

    Returns:
        One :class:`CasePlan` per case, ids ``0 .. n_cases - 1``; labels balanced
        (``n_cases // 2`` ones) and shuffled.

    Raises:
        ValueError: ``n_cases < 1``.
    """
    if n_cases < 1:
        raise ValueError(f"n_cases must be at least 1, got {n_cases}")
    root = np.random.default_rng(seed)
    labels = np.array([0] * (n_cases - n_cases // 2) + [1] * (n_cases // 2))
    labels = root.permutation(labels)
    case_seeds = np.random.SeedSequence(seed).spawn(n_cases)
    forced_plane = {(1, "FLAIR"): "coronal", (1, "T1w"): "sagittal", (1, "T2w"): "axial",
                    (2, "FLAIR"): "sagittal", (2, "T1w"): "coronal"}
    forced_numbering = {(0, "FLAIR"): "reverse", (1, "T1w"): "shuffled"}
    planes = list(PLANE_PROBABILITIES)
    probs = np.array([PLANE_PROBABILITIES[p] for p in planes])
    plans = []
    for cid in range(n_cases):
        rng = np.random.default_rng(case_seeds[cid])
        params = random_case_params(rng, int(labels[cid]))
        # One FOV centre per plane and case (the scanner's table position).
        centres = {p: tuple(float(v) for v in np.round(rng.uniform(-4.0, 4.0, size=3), 1))
                   for p in planes}
        series = []
        for m in MODALITIES:
            plane = planes[int(rng.choice(len(planes), p=probs))]
            numbering = ("forward", "reverse", "shuffled")[int(rng.choice(3, p=[0.4, 0.3, 0.3]))]
            gain = float(rng.uniform(0.9, 1.1))
            if n_cases >= 4 and cid == n_cases - 1 and m == MISSING_MODALITY:
                continue
            plane = forced_plane.get((cid, m), plane)
            numbering = forced_numbering.get((cid, m), numbering)
            series.append(SeriesPlan(m, plane, centres[plane], numbering, gain))  # type: ignore[arg-type]
        plans.append(CasePlan(cid, int(labels[cid]), params, tuple(series),
                              int(rng.integers(0, 2**31 - 1))))
    return plans


# ---------------------------------------------------------------------------- DICOM writing
def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=["mriviewer-demo", str(seed), *(str(p) for p in parts)])


#: Tags of the elements written per file (SOPInstanceUID, InstanceNumber,
#: ImagePositionPatient, SliceLocation, PixelData), ascending.
_PER_FILE_TAGS = (0x00080018, 0x00200013, 0x00200032, 0x00201041, 0x7FE00010)


def _new_buffer() -> DicomBytesIO:
    fp = DicomBytesIO()
    fp.is_little_endian = True  # Explicit VR Little Endian
    fp.is_implicit_VR = False
    return fp


def _encode(elements: list) -> bytes:
    fp = _new_buffer()
    for elem in elements:
        write_data_element(fp, elem)
    return fp.getvalue()


def _write_series(folder: Path, pixels: np.ndarray, grid: SeriesGrid, numbering: str,
                  rng: np.random.Generator, header: dict) -> None:
    """Write ``pixels`` (uint16, shape ``(K, rows, columns)``, spatial order) as
    ``Image-N.dcm`` files, N = InstanceNumber assigned by ``numbering``."""
    folder.mkdir(parents=True, exist_ok=True)
    k = pixels.shape[0]
    if numbering == "forward":
        numbers = np.arange(1, k + 1)
    elif numbering == "reverse":
        numbers = np.arange(k, 0, -1)
    else:
        numbers = rng.permutation(k) + 1
    seed, case_id, modality = header["seed"], header["case_id"], header["modality"]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    ds.SOPClassUID = MRImageStorage
    ds.StudyDate = "20210101"
    ds.SeriesDate = "20210101"
    ds.StudyTime = "120000"
    ds.Modality = "MR"
    ds.Manufacturer = "mriviewer synthetic phantom"
    ds.PatientName = "Demo^Phantom"
    ds.PatientID = f"{case_id:05d}"
    ds.BodyPartExamined = "BRAIN"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = _uid(seed, case_id, "study")
    ds.SeriesInstanceUID = _uid(seed, case_id, modality, "series")
    ds.FrameOfReferenceUID = _uid(seed, case_id, "frame")
    ds.StudyID = f"{case_id}"
    ds.SeriesNumber = header["series_number"]
    ds.SeriesDescription = modality
    ds.ImageComments = IMAGE_COMMENTS
    ds.SliceThickness = _fmt(grid.slice_spacing)
    ds.SpacingBetweenSlices = _fmt(grid.slice_spacing)
    ds.ImageOrientationPatient = [_fmt(v) for v in grid.iop]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = grid.rows
    ds.Columns = grid.columns
    ds.PixelSpacing = [_fmt(grid.pixel_spacing), _fmt(grid.pixel_spacing)]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    # Only five elements change from file to file. pydicom encodes the others once per series
    # and these five per file; each file is the concatenation in tag order — the bytes
    # ``ds.save_as(path, enforce_file_format=True)`` writes, about three times faster.
    normal = np.cross(grid.iop[:3], grid.iop[3:])
    elements = list(ds)  # in ascending tag order
    segments, start = [], 0
    for tag in _PER_FILE_TAGS:
        stop = start
        while stop < len(elements) and elements[stop].tag < tag:
            stop += 1
        segments.append(_encode(elements[start:stop]))
        start = stop
    segments.append(_encode(elements[start:]))
    for kk in range(k):
        number = int(numbers[kk])
        sop = _uid(seed, case_id, modality, number, "image")
        meta.MediaStorageSOPInstanceUID = sop
        per_file = (
            DataElement(0x00080018, "UI", sop),  # SOPInstanceUID
            DataElement(0x00200013, "IS", str(number)),  # InstanceNumber
            DataElement(0x00200032, "DS", [_fmt(v) for v in grid.ipp[kk]]),  # ImagePositionPatient
            DataElement(0x00201041, "DS", _fmt(float(grid.ipp[kk] @ normal))),  # SliceLocation
            DataElement(0x7FE00010, "OW", np.ascontiguousarray(pixels[kk], dtype="<u2").tobytes()),
        )
        fp = _new_buffer()
        fp.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(fp, meta, enforce_standard=True)
        for segment, elem in zip(segments[:-1], per_file, strict=True):
            fp.write(segment)
            write_data_element(fp, elem)
        fp.write(segments[-1])
        (folder / f"Image-{number}.dcm").write_bytes(fp.getvalue())


def make_demo_dataset(
    out_dir: str | Path,
    n_cases: int = 32,
    seed: int = 0,
    matrix: int = 96,
    n_slices: int = 40,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a synthetic brain-MRI data set (DICOM, RSNA-MICCAI 2021 layout).

    See the module docstring for what the phantoms contain. Series are sampled on grids of
    ``matrix`` × ``matrix`` pixels (:data:`FOV_MM` field of view) and ``n_slices`` slices;
    the pixel array of each file is indexed ``[row, column]``; values are uint16 scanner
    units (RescaleSlope 1, RescaleIntercept 0), 0 outside the head.

    Args:
        out_dir: output folder; created if needed. It must not already hold ``train/`` or
            ``train_labels.csv``.
        n_cases: number of cases (≥ 1); case folders ``00000`` … and ids 0 … ``n_cases - 1``.
        seed: random seed; the output (pixels, labels, geometry, UIDs) depends only on the
            arguments, not on ``out_dir``.
        matrix: in-plane pixels per row and per column (≥ 8).
        n_slices: slices per series (≥ 2).
        progress: called as ``progress(cases_done, n_cases)`` after each case.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: a size argument is out of range.
        FileExistsError: ``out_dir`` already holds ``train/`` or ``train_labels.csv``.
    """
    if n_cases < 1:
        raise ValueError(f"n_cases must be at least 1, got {n_cases}")
    if matrix < 8:
        raise ValueError(f"matrix must be at least 8, got {matrix}")
    if n_slices < 2:
        raise ValueError(f"n_slices must be at least 2, got {n_slices}")
    out = Path(out_dir).expanduser()
    train, labels_csv = out / "train", out / "train_labels.csv"
    for p in (train, labels_csv):
        if p.exists():
            raise FileExistsError(f"{p}: already exists; choose an empty output folder")
    train.mkdir(parents=True)

    plans = plan_dataset(n_cases, seed)
    for done, case in enumerate(plans, start=1):
        case_dir = train / f"{case.case_id:05d}"
        rng = np.random.default_rng(case.noise_seed)
        cache: dict[str, tuple[SeriesGrid, dict[str, np.ndarray], np.ndarray]] = {}
        for number, sp in enumerate(case.series, start=1):
            if sp.plane not in cache:
                grid = series_grid(sp.plane, matrix, n_slices, sp.centre_ras_mm)
                x, y, z = grid.ras_points()
                cache[sp.plane] = (grid, _geometry(x, y, z, case.params),
                                   _bias_field(x, y, z, case.params))
            grid, geo, bias = cache[sp.plane]
            clean = _contrast(geo, bias, sp.modality)
            clean *= np.float32(sp.gain)
            noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.float32(_NOISE_SIGMA)
            noisy = np.where(clean > 0, np.abs(noisy), np.float32(0))
            pixels = np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)
            header = {"seed": seed, "case_id": case.case_id, "modality": sp.modality,
                      "series_number": number}
            _write_series(case_dir / sp.modality, pixels, grid, sp.numbering, rng, header)
        if progress is not None:
            progress(done, n_cases)

    with open(labels_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["BraTS21ID", "MGMT_value"])
        for case in plans:
            writer.writerow([case.case_id, case.label])
    # Suggested training settings, read by the GUI's Train panel (see datasets.DATASET_SETTINGS):
    # the label shows most on T1wCE (ring enhancement), so that is the suggested input.
    (out / DATASET_SETTINGS).write_text(json.dumps({
        "description": "mriviewer synthetic demo (phantoms; research use only)",
        "train": {"model": "resnet18-2d", "modalities": ["T1wCE"], "epochs": 10, "image_size": 128},
    }, indent=2) + "\n")
    return out


def make_lesion_phantoms(out: str | Path, n_cases: int = 40, shape: tuple[int, int, int] = (32, 32, 24),
                         seed: int = 0, spacing_mm: float = 2.0) -> Path:
    """A small NIfTI dataset whose label is visible in the image, for model and benchmark checks.

    Layout (BraTS 2018): ``<out>/case_NNN/{FLAIR.nii.gz, GT_W.nii.gz}`` and ``<out>/labels.csv``
    (``case,label``). Each volume ``(I, J, K)`` float32 on an RAS grid of ``spacing_mm`` voxels
    holds a noisy ellipsoidal "head" with a bright scalp; cases with label 1 carry a bright sphere (radius ≈ 3.5
    voxels) at a random position in the central part of the head, which ``GT_W`` marks; label-0
    cases have none (empty mask). Balanced labels, deterministic for a ``seed``.

    Returns:
        ``out``.
    """
    import nibabel as nib

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ii, jj, kk = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    centre = (np.array(shape, dtype=np.float32) - 1) / 2
    radius = ((ii - centre[0]) / (shape[0] * 0.42)) ** 2 + ((jj - centre[1]) / (shape[1] * 0.45)) ** 2 \
        + ((kk - centre[2]) / (shape[2] * 0.42)) ** 2
    head = radius <= 1.0
    # A bright scalp in every case, as bright as a lesion: per-case intensity scaling (percentiles,
    # min-max) then sees the same range in both classes, and only the lesion tells them apart.
    scalp = head & (radius > 0.78)
    affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    rows = ["case,label"]
    for n in range(n_cases):
        label = n % 2
        img = np.where(head, 100.0 + rng.normal(0, 8, shape), rng.normal(0, 2, shape)).astype(np.float32)
        img[scalp] += 120.0
        mask = np.zeros(shape, dtype=np.uint8)
        if label:
            c = centre + rng.uniform(-0.14, 0.14, 3) * np.array(shape)
            c[2] = centre[2] + rng.uniform(-0.08, 0.08) * shape[2]
            lesion = (ii - c[0]) ** 2 + (jj - c[1]) ** 2 + (kk - c[2]) ** 2 <= 3.5 ** 2
            img[lesion] += 120.0
            mask[lesion] = 1
        case = out / f"case_{n:03d}"
        case.mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(img, affine), str(case / "FLAIR.nii.gz"))
        nib.save(nib.Nifti1Image(mask, affine), str(case / "GT_W.nii.gz"))
        rows.append(f"case_{n:03d},{label}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")
    return out


def default_demo_dir() -> Path:
    """Where ``mriviewer view --demo`` keeps its generated demo (``~/.cache/mriviewer/demo``)."""
    return Path.home() / ".cache" / "mriviewer" / "demo"


def ensure_demo(path: Path | None = None) -> Path:
    """The demo dataset at ``path`` (default :func:`default_demo_dir`), generated if absent."""
    path = path or default_demo_dir()
    if not (path / "train_labels.csv").is_file():
        make_demo_dataset(path)
    return path
