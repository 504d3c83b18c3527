"""Numbers as text, one rule everywhere (report, panels, log, command line): a missing, NaN or
infinite value reads ``n/a``, never ``nan`` or ``inf``."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: What a value that does not exist (or is undefined: NaN, ±inf) reads as.
NA = "n/a"


def finite_or_none(value) -> float | None:
    """``value`` as a float when it is a finite number, else ``None`` (None, NaN, ±inf, text)."""
    if isinstance(value, bool):
        return float(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt_number(value, digits: int = 3, na: str = NA) -> str:
    """``value`` with ``digits`` decimals (``0.623``), or ``na`` when it is not a finite number."""
    v = finite_or_none(value)
    return na if v is None else f"{v:.{digits}f}"


def fmt_interval(interval: Sequence | None, digits: int = 2, na: str = NA) -> str:
    """A ``(low, high)`` interval as ``0.55–0.71``, or ``na`` when it is absent, not a pair, or
    either end is not a finite number."""
    if not interval or len(interval) != 2:
        return na
    lo, hi = (finite_or_none(v) for v in interval)
    return na if lo is None or hi is None else f"{lo:.{digits}f}–{hi:.{digits}f}"
