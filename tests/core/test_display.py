"""Screen orientation of the three planes (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from mriviewer.core.colour import window_to_uint8
from mriviewer.core.planes import orientation_letters, plane_slice, screen_to_voxel, voxel_to_screen
from mriviewer.core.volume import Volume, acquisition_plane

SHAPE = (7, 9, 11)


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("radiological", [True, False])
def test_screen_voxel_round_trip(plane, radiological):
    data = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    ijk = np.array([2, 5, 8])
    axis = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
    img = plane_slice(data, plane, ijk[axis], radiological)
    row, col = voxel_to_screen(plane, ijk, SHAPE, radiological)
    assert img[int(row), int(col)] == data[tuple(ijk)]
    np.testing.assert_array_equal(screen_to_voxel(plane, row, col, ijk[axis], SHAPE, radiological), ijk)


def test_letters_match_pixels():
    """A voxel at high i (patient right) appears on the screen side labelled R."""
    data = np.zeros(SHAPE, dtype=np.float32)
    data[-1, 4, 5] = 1  # rightmost
    data[3, -1, 5] = 2  # most anterior
    data[3, 4, -1] = 3  # most superior
    for rad in (True, False):
        ax = plane_slice(data, "axial", 5, rad)
        letters = orientation_letters("axial", rad)
        r_col = np.argwhere(ax == 1)[0][1]
        assert (r_col == 0) == (letters["left"] == "R")
        assert np.argwhere(ax == 2)[0][0] == 0 and letters["top"] == "A"
    cor = plane_slice(data, "coronal", 4)
    assert np.argwhere(cor == 3)[0][0] == 0 and orientation_letters("coronal")["top"] == "S"
    sag = plane_slice(data, "sagittal", 3)
    assert np.argwhere(sag == 2)[0][1] == 0 and orientation_letters("sagittal")["left"] == "A"


def test_acquisition_plane_and_canonical():
    # Sagittal storage: i -> P, j -> I, k -> R (like a Siemens MPRAGE).
    aff = np.array([[0, 0, 1, -80], [-1, 0, 0, 120], [0, -1, 0, 100], [0, 0, 0, 1.0]])
    data = np.random.default_rng(0).random((5, 6, 4)).astype(np.float32)
    vol = Volume(data, aff)
    assert acquisition_plane(aff) == "sagittal" and "".join(vol.axcodes) == "PIR"
    can = vol.canonical()
    assert "".join(can.axcodes) == "RAS" and can.shape == (4, 5, 6)
    # Every voxel keeps its world position.
    for ijk in [(0, 0, 0), (4, 5, 3), (2, 1, 3)]:
        world = vol.voxel_to_world(ijk)
        cijk = np.round(can.world_to_voxel(world)).astype(int)
        assert can.data[tuple(cijk)] == data[ijk]


def test_window_to_uint8_clips_and_handles_nan():
    out = window_to_uint8(np.array([[-5.0, 0.0, 50.0, 100.0, np.nan]]), 0, 100)
    assert out.tolist() == [[0, 0, 127, 255, 0]]


def test_resample_to_grid_exact_on_voxel_centres():
    from mriviewer.core.resample import resample_to_grid

    rng = np.random.default_rng(0)
    d = rng.random((5, 6, 7)).astype(np.float32)
    aff = np.array([[0, 0, 2, -5], [-1.5, 0, 0, 3], [0, -1, 0, 8], [0, 0, 0, 1.0]])
    can = Volume(d, aff).canonical()
    # Another storage order of the same grid: both interpolation orders reproduce it exactly.
    np.testing.assert_allclose(resample_to_grid(d, aff, can.shape, can.affine, order=1), can.data, atol=1e-5)
    np.testing.assert_array_equal(resample_to_grid(d, aff, can.shape, can.affine, order=0), can.data)
    # Half a voxel along i: trilinear gives the mean of neighbours.
    shifted = aff.copy()
    shifted[:3, 3] += aff[:3, 0] * 0.5
    np.testing.assert_allclose(resample_to_grid(d, aff, (4, 6, 7), shifted), 0.5 * (d[:-1] + d[1:]), atol=1e-5)
    # Nearest neighbour keeps label values.
    labels = rng.integers(0, 4, size=(5, 6, 7)).astype(np.float32)
    out = resample_to_grid(labels, aff, (9, 11, 13), np.diag([0.7, 0.7, 0.7, 1]) @ np.eye(4), order=0)
    assert set(np.unique(out)) <= {0.0, 1.0, 2.0, 3.0}


def test_modalities_of_mixed_planes_share_one_world(demo_dir):
    """Case 1 of the demo has FLAIR coronal, T1w sagittal, T2w axial: on the common grid the
    marker (a bright blob fixed in world space) lands on the same voxel in every modality."""
    from mriviewer.cache.memory import VolumeCache
    from mriviewer.core.resample import highest_resolution, reference_grid, resample_volume
    from mriviewer.data.discover import discover
    from mriviewer.demo.phantom import MARKER_RAS_MM

    case = discover(demo_dir).cases[1]
    cache = VolumeCache()
    vols = {m: cache.get(s) for m, s in case.modalities.items()}
    assert {v.acquisition_plane for v in vols.values()} >= {"coronal", "sagittal", "axial"}
    shape, affine = reference_grid(vols[highest_resolution(vols)])
    expected = np.linalg.inv(affine) @ np.r_[MARKER_RAS_MM, 1.0]
    for m, v in vols.items():
        on_grid = resample_volume(v, shape, affine)
        peak = np.array(np.unravel_index(np.argmax(on_grid.data), shape))
        assert np.linalg.norm(peak - expected[:3]) <= 2.0, m
