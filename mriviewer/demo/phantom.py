"""Synthetic demo data set: multi-modal brain phantoms written as DICOM series.

Everything this module writes is **synthetic** — computer-generated phantoms, not images of
any person. Use it to try the viewer, the training loop and Grad-CAM without real data, and to
check orientation handling. Research use only — not for diagnosis.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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
