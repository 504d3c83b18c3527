"""One colouring path: the PDF's Grad-CAM colours are the pixels the viewer's ImageItem paints."""

from __future__ import annotations

import numpy as np
import pytest

from mriviewer.core.colour import overlay_lut, overlay_rgba


@pytest.mark.parametrize("cmap", ["inferno", "jet"])
@pytest.mark.parametrize("threshold", [0.0, 0.15, 0.5, 0.9])
def test_overlay_rgba_matches_pyqtgraph_rendering_of_the_viewer_lut(cmap, threshold):
    fn = pytest.importorskip("pyqtgraph.functions")
    values = np.linspace(0.0, 1.0, 1001, dtype=np.float32).reshape(1, -1)
    # What the viewer's ImageItem draws: levels (0, 1) and overlay_lut (pyqtgraph's makeARGB).
    argb, _ = fn.makeARGB(values, lut=overlay_lut(cmap, threshold), levels=(0.0, 1.0))
    screen_rgb = argb[..., [2, 1, 0]]  # makeARGB returns BGRA byte order
    screen_visible = argb[..., 3] > 0
    pdf = overlay_rgba(values, cmap, opacity=1.0, threshold=threshold)
    assert np.array_equal(pdf[..., :3], screen_rgb)
    assert np.array_equal(pdf[..., 3] > 0, screen_visible)


def test_overlay_rgba_opacity_is_the_viewers_and_the_threshold_cuts():
    rgba = overlay_rgba(np.array([0.0, 0.1, 0.2, 0.6, 1.0, np.nan]), "inferno", opacity=0.4, threshold=0.15)
    assert list(rgba[:, 3]) == [0, 0, 102, 102, 102, 0]
