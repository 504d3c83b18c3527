"""Streamed decoding (``decode_stream``): cases come back in order as soon as their series are on
disk, a few ahead of the consumer, and the disk cache's budget holds while it decodes (it was
only enforced after the whole cohort: 33.7 GB written against a 20 GiB budget)."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from mriviewer.cache.disk import DiskCache
from mriviewer.cache.memory import VolumeCache
from mriviewer.cache.stream import decode_stream
from mriviewer.data.cases import ModalitySource

SHAPE = (24, 24, 16)  # int16: 18 KiB of voxels per series


def _cohort(root, n_cases: int, n_series: int = 2):
    rng = np.random.default_rng(0)
    groups = []
    for c in range(n_cases):
        group = []
        for s in range(n_series):
            path = root / f"case{c:02d}_s{s}.nii"
            nib.save(nib.Nifti1Image(rng.integers(0, 900, SHAPE).astype(np.int16), np.eye(4)), str(path))
            group.append(ModalitySource(f"M{s}", path, "nifti"))
        groups.append(group)
    return groups


def _disk_bytes(folder) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.npy")) if folder.exists() else 0


def test_stream_keeps_order_and_the_budget_while_decoding(tmp_path):
    groups = _cohort(tmp_path, 12)
    entry = SHAPE[0] * SHAPE[1] * SHAPE[2] * 2 + 128
    disk = DiskCache(tmp_path / "cache", max_bytes=6 * entry)  # 3 cases of 2 series
    cache = VolumeCache(disk=disk)
    seen, sizes = [], []
    for step in decode_stream(cache, groups, ahead=2, processes=2):
        assert not step.errors
        # What the consumer is about to read is on disk now, decoded by a worker.
        vols = [cache.get(src) for src in groups[step.index]]
        assert all(v.data.dtype == np.int16 for v in vols)
        seen.append(step.index)
        sizes.append(_disk_bytes(disk.root))
    assert seen == list(range(12))
    assert cache.misses == 0  # nothing decoded in this process
    # Budget plus the window (this case and two ahead): never the whole cohort (24 entries).
    assert max(sizes) <= 6 * entry + 3 * 2 * entry
    assert _disk_bytes(disk.root) <= 6 * entry


def test_stream_names_a_broken_file_and_goes_on(tmp_path):
    groups = _cohort(tmp_path, 4)
    groups[1][0].path.write_bytes(b"not a nifti file at all")
    cache = VolumeCache(disk=DiskCache(tmp_path / "cache"))
    steps = list(decode_stream(cache, groups, ahead=2, processes=2))
    assert [s.index for s in steps] == [0, 1, 2, 3]
    assert len(steps[1].errors) == 1 and groups[1][0].path.name in steps[1].errors[0]
    assert not any(s.errors for s in steps if s.index != 1)


def test_stream_without_disk_cache_yields_every_case(tmp_path):
    groups = _cohort(tmp_path, 3)
    assert [s.index for s in decode_stream(VolumeCache(disk=None), groups)] == [0, 1, 2]


def test_stream_says_when_the_cohort_does_not_fit(tmp_path):
    groups = _cohort(tmp_path, 8)
    entry = SHAPE[0] * SHAPE[1] * SHAPE[2] * 2 + 128
    small = list(decode_stream(VolumeCache(disk=DiskCache(tmp_path / "small", max_bytes=6 * entry)), groups,
                               ahead=2, processes=2))
    assert all(not s.note for s in small[:-1])
    assert "more than the disk cache's" in small[-1].note and "8 cases" in small[-1].note
    roomy = list(decode_stream(VolumeCache(disk=DiskCache(tmp_path / "roomy")), groups, ahead=2, processes=2))
    assert not any(s.note for s in roomy)
