"""Discovery reports each folder it reads and can be cancelled from its progress callback."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mriviewer.core.errors import Cancelled
from mriviewer.data.discover import discover


def _cohort(root, n: int):
    data = np.zeros((4, 4, 3), np.int16)
    for i in range(n):
        d = root / f"BraTS-GLI-{i + 1:05d}-000"
        d.mkdir(parents=True)
        for s in ("t1n", "t1c", "t2w", "t2f"):
            nib.save(nib.Nifti1Image(data, np.eye(4)), str(d / f"{d.name}-{s}.nii.gz"))
    return root


def test_progress_counts_each_folder_once(tmp_path):
    root = _cohort(tmp_path / "c", 12)
    calls = []
    ds = discover(root, progress=lambda n, folder: calls.append((n, folder)))
    assert len(ds.cases) == 12
    assert [n for n, _ in calls] == list(range(1, len(calls) + 1))
    folders = [f for _, f in calls]
    assert len(folders) == len(set(folders)) == 13  # the root and each case folder, read once


def test_cancel_stops_discovery(tmp_path):
    root = _cohort(tmp_path / "c", 12)

    def stop(n, _folder):
        if n > 5:
            raise Cancelled

    with pytest.raises(Cancelled):
        discover(root, progress=stop)
    assert len(discover(root).cases) == 12  # nothing is left behind by the cancelled run
