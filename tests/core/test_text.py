"""One rule for numbers as text: missing, NaN and infinite values read n/a."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mriviewer.core.text import NA, finite_or_none, fmt_interval, fmt_number


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, np.float32("nan"), "x", object()])
def test_undefined_values_read_na(value):
    assert fmt_number(value) == NA and finite_or_none(value) is None
    assert fmt_interval((value, 0.7)) == NA and fmt_interval((0.5, value)) == NA


def test_numbers_and_intervals():
    assert fmt_number(0.62349) == "0.623" and fmt_number(np.float64(1), 1) == "1.0" and fmt_number(3) == "3.000"
    assert fmt_interval((0.5512, 0.7099)) == "0.55–0.71" and fmt_interval([0.5512, 0.7099], 3) == "0.551–0.710"
    assert fmt_interval(None) == NA and fmt_interval(()) == NA and fmt_interval((0.1, 0.2, 0.3)) == NA
