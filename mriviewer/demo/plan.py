"""The demo's plan: which cases, labels, series and grids it writes, drawn from a seed.

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

from dataclasses import dataclass

import numpy as np

from mriviewer.core.volume import MODALITIES
from mriviewer.demo.phantom import CaseParams, random_case_params

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
