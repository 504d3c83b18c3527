"""Windowing NaN and empty volumes.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from hypothesis.configuration import set_hypothesis_home_dir

from mriviewer.core.colour import window_to_uint8
from mriviewer.core.volume import percentile_window

# Hypothesis keeps caches in ./.hypothesis; send them to a temporary folder (as conftest does
# with the volume cache) unless the caller chose a place.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="mriviewer-hypothesis-"))


def test_window_to_uint8_nan_is_black_when_window_spans_zero():
    img = np.array([[-100.0, np.nan, 100.0]], np.float32)
    np.testing.assert_array_equal(window_to_uint8(img, -100.0, 100.0), [[0, 0, 255]])


def test_percentile_window_all_nan_and_empty():
    assert percentile_window(np.full((3, 3, 3), np.nan)) == (0.0, 1.0)
    assert percentile_window(np.zeros((0, 3, 3))) == (0.0, 1.0)
    out = window_to_uint8(np.full((3, 3), np.nan, np.float32), 0.0, 1.0)
    assert out.dtype == np.uint8 and not out.any()
