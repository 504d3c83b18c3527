"""The disk caches (decoded volumes, training samples): checked on every read, rebuilt when
damaged, never stale, no identifying header values; ``cache_info`` / ``clear_cache`` and the
``cache`` command; temporary files of killed writers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from mriviewer.cache.admin import cache_info, clear_cache
from mriviewer.cache.disk import DiskCache
from mriviewer.cache.keys import source_key, voxel_checksum
from mriviewer.cache.memory import VolumeCache
from mriviewer.cli import main
from mriviewer.core.volume import Volume
from mriviewer.data.cases import ModalitySource


def _nifti(path, seed=0, shape=(12, 10, 8)):
    data = np.random.default_rng(seed).integers(0, 1000, shape).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), str(path))
    return ModalitySource("T1w", path, "nifti")


@pytest.fixture
def cached(tmp_path):
    """A NIfTI source, its volume written to a fresh disk cache, and the entry's files."""
    src = _nifti(tmp_path / "t1.nii")
    disk = DiskCache(tmp_path / "cache")
    vol = VolumeCache(disk=disk).get(src)
    npy, meta = disk._paths(source_key(src))
    assert npy.is_file() and meta.is_file()
    return src, disk, vol, npy, meta


def _reopen(src, disk):
    """A new session on the same disk cache: (volume, cache)."""
    cache = VolumeCache(disk=disk)
    return cache.get(src), cache


def _flip_last_byte(path):
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["empty npy", "truncated npy", "flipped voxel", "missing npy", "empty json",
                                    "keyless json", "list json", "garbage json", "shifted affine", "other shape"])
def test_damaged_entry_is_dropped_logged_and_rebuilt(cached, damage, caplog):
    src, disk, vol, npy, meta = cached
    record = json.loads(meta.read_text())
    if damage == "empty npy":
        npy.write_bytes(b"")
    elif damage == "truncated npy":
        npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])
    elif damage == "flipped voxel":
        _flip_last_byte(npy)
    elif damage == "missing npy":
        npy.unlink()
    elif damage == "empty json":
        meta.write_text("")
    elif damage == "keyless json":
        meta.write_text("{}")
    elif damage == "list json":
        meta.write_text("[1, 2]")
    elif damage == "garbage json":
        meta.write_bytes(b"\xff\x00{not json")
    elif damage == "shifted affine":
        record["affine"][0][3] += 5.0  # geometry off by 5 mm, voxels intact
        meta.write_text(json.dumps(record))
    elif damage == "other shape":
        np.save(npy, np.zeros((3, 3, 3), np.int16))
    caplog.set_level(logging.WARNING, logger="mriviewer.cache")
    again, cache = _reopen(src, disk)
    assert cache.disk_hits == 0 and cache.misses == 1  # decoded again, not served from the bad entry
    np.testing.assert_array_equal(again.data, vol.data)
    np.testing.assert_array_equal(again.affine, vol.affine)
    assert "dropping entry" in caplog.text and str(npy) in caplog.text
    # ... and written again: the next session is a (checked) disk hit.
    third, cache = _reopen(src, disk)
    assert cache.disk_hits == 1
    np.testing.assert_array_equal(third.data, vol.data)


def test_same_size_edit_with_mtime_restored_is_not_served_stale(tmp_path):
    src = _nifti(tmp_path / "t1.nii")
    disk = DiskCache(tmp_path / "cache")
    first = VolumeCache(disk=disk).get(src)
    st = os.stat(src.path)
    img = nib.load(str(src.path))
    data = np.asarray(img.dataobj).copy()
    data[0, 0, 0] = data[0, 0, 0] + 1
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(tmp_path / "edit.nii"))
    # Same size, same name, old mtime put back: only inode/ctime tell the difference.
    with open(src.path, "r+b") as fh:
        fh.write((tmp_path / "edit.nii").read_bytes())
    os.utime(src.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(src.path).st_size == st.st_size and os.stat(src.path).st_mtime_ns == st.st_mtime_ns
    fresh, cache = _reopen(src, disk)
    assert cache.misses == 1 and cache.disk_hits == 0
    assert fresh.data[0, 0, 0] == first.data[0, 0, 0] + 1


def test_identifying_header_values_are_not_cached(tmp_path, demo_dir):
    from mriviewer.data.discover import discover

    disk = DiskCache(tmp_path / "cache")
    vol = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4), "T1w", [],
                 {"PatientID": "SECRET-0042", "PatientName": "Doe^Jane", "PatientBirthDate": "19700101",
                  "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.1", "Manufacturer": "ACME",
                  "TransferSyntaxUID": "1.2.840.10008.1.2.1", "warnings": ["w"]})
    disk.save(("k",), vol)
    text = disk._paths(("k",))[1].read_text()
    for secret in ("SECRET-0042", "Doe^Jane", "19700101", "1.2.826.0.1.3680043.8.498.1"):
        assert secret not in text
    back = disk.load(("k",))
    assert back.meta["Manufacturer"] == "ACME" and back.meta["warnings"] == ["w"]
    assert "PatientID" not in back.meta and back.meta["SeriesInstanceUID"].startswith("sha256:")
    assert back.meta["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
    # A real DICOM series: the reader's PatientID reaches Volume.meta, never the cache file.
    src = discover(demo_dir).cases[0].modalities["FLAIR"]
    cache = VolumeCache(disk=DiskCache(tmp_path / "cache2"))
    decoded = cache.get(src)
    assert decoded.meta.get("PatientID")
    record = json.loads(cache.disk._paths(source_key(src))[1].read_text())
    assert "PatientID" not in record["meta"] and decoded.meta["PatientID"] not in json.dumps(record["meta"])


def test_voxel_checksum_follows_memory_order_and_costs_little():
    a = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    assert voxel_checksum(np.asfortranarray(a)) == voxel_checksum(np.asfortranarray(a).copy(order="F"))
    assert voxel_checksum(a[:, ::2]) == voxel_checksum(np.ascontiguousarray(a[:, ::2]))
    assert voxel_checksum(a) != voxel_checksum(a + 1) and voxel_checksum(np.zeros(0)) == 0


def test_fortran_volume_round_trips(tmp_path):
    disk = DiskCache(tmp_path / "c")
    data = np.asfortranarray(np.random.default_rng(1).random((5, 6, 7)).astype(np.float32))
    disk.save(("f",), Volume(data, np.eye(4)))
    np.testing.assert_array_equal(disk.load(("f",)).data, data)


def test_failed_cache_write_leaves_nothing_and_does_not_raise(tmp_path, monkeypatch, caplog):
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    disk = DiskCache(tmp_path / "c")
    caplog.set_level(logging.WARNING, logger="mriviewer.cache")
    disk.save(("k",), Volume(np.zeros((3, 3, 3), np.float32), np.eye(4)))
    assert list((tmp_path / "c").iterdir()) == [] and "No space left" in caplog.text


def test_sample_store_rebuilds_damaged_samples(tmp_path, caplog):
    from mriviewer.ml.config import TrainConfig
    from mriviewer.ml.store import SampleStore

    cfg = TrainConfig(model="resnet18-2d", image_size=8, slices_per_case=2)
    samples = np.random.default_rng(0).random((2, 1, 8, 8)).astype(np.float32)
    caplog.set_level(logging.WARNING, logger="mriviewer.ml.store")
    for damage in ("empty", "truncated", "flipped", "keyless", "shape"):
        store = SampleStore(cfg, tmp_path / "samples")
        key = "0" * 24
        store.put(key, samples, {"spacing_mm": [1, 1, 1]})
        arr, facts = store.get(key)
        np.testing.assert_array_equal(arr, samples.astype(np.float16))
        npy, meta = store.paths(key)
        if damage == "empty":
            npy.write_bytes(b"")
        elif damage == "truncated":
            npy.write_bytes(npy.read_bytes()[:-10])
        elif damage == "flipped":
            _flip_last_byte(npy)
        elif damage == "keyless":
            meta.write_text("{}")
        else:
            np.save(npy, np.zeros((1, 1, 8, 8), np.float16))
        fresh = SampleStore(cfg, tmp_path / "samples")  # another run: checks the file again
        assert fresh.get(key) is None, damage
        assert not npy.exists() and not meta.exists()
    assert caplog.text.count("sample store: dropping") == 5


def test_training_prepares_a_corrupt_sample_again(tmp_path, demo_dir, caplog, monkeypatch):
    """A sample file damaged between two runs is prepared again, not fed to training."""
    monkeypatch.setenv("MRIVIEWER_PROCESSES", "1")  # decode in-process: no worker pool to start
    from mriviewer.data.discover import discover
    from mriviewer.ml.config import TrainConfig
    from mriviewer.ml.engine import Trainer
    from mriviewer.ml.events import ProgressEvent
    from mriviewer.ml.store import SampleStore

    ds = discover(demo_dir)
    cfg = TrainConfig(model="cnn3d", modalities=["FLAIR"], image_size=16, depth=4, batch_size=4, epochs=1,
                      pretrained="none", device="cpu", augment={}, num_threads=1)

    def run(out):
        events, gen = [], Trainer(cfg, ds, tmp_path / out, store_root=tmp_path / "samples").run()
        while True:
            try:
                events.append(next(gen))
            except StopIteration:
                return events

    run("a")
    store = SampleStore(cfg, tmp_path / "samples")
    victim = sorted(store.folder.glob("*.npy"))[0]
    _flip_last_byte(victim)
    caplog.set_level(logging.WARNING, logger="mriviewer.ml.store")
    events = run("b")
    prepared = [e for e in events if isinstance(e, ProgressEvent) and e.stage == "prepare"]
    assert prepared and prepared[-1].total == 1  # only the damaged case
    assert "checksum mismatch" in caplog.text and victim.is_file()


def test_cache_info_and_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MRIVIEWER_CACHE_DIR", str(tmp_path / "c" / "volumes"))
    from mriviewer.ml.config import TrainConfig
    from mriviewer.ml.store import SampleStore

    disk = DiskCache(tmp_path / "c" / "volumes")
    for n in range(3):
        disk.save(("k", n), Volume(np.full((4, 4, 4), n, np.float32), np.eye(4)))
    SampleStore(TrainConfig(image_size=8)).put("a" * 24, np.zeros((1, 1, 8, 8)), {})
    (tmp_path / "c" / "volumes" / "notes.txt").write_text("not ours")
    info = cache_info()
    assert info["volumes"]["entries"] == 3 and info["samples"]["entries"] == 1
    assert info["volumes"]["path"] == str(tmp_path / "c" / "volumes") and info["volumes"]["limit_bytes"] > 0
    assert info["total_bytes"] == info["volumes"]["bytes"] + info["samples"]["bytes"] > 3 * 256

    assert main(["cache", "--info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["volumes"]["entries"] == 3
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "3 entries" in out and str(tmp_path / "c" / "samples") in out
    assert main(["cache", "--clear"]) == 0
    out = capsys.readouterr().out
    assert "removed 3 volume entries" in out and "1 sample entries" in out
    after = cache_info()
    assert after["volumes"]["entries"] == after["samples"]["entries"] == 0 and after["total_bytes"] == 0
    assert (tmp_path / "c" / "volumes" / "notes.txt").is_file()  # only cache files are removed
    assert clear_cache() == 0


def test_stale_temporary_files_are_removed(tmp_path):
    from mriviewer.core.files import remove_stale_temps, temp_name

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    mine = temp_name(tmp_path / "best.pt")
    mine.write_bytes(b"x")
    theirs = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{dead_pid}."))
    theirs.write_bytes(b"x")
    legacy = tmp_path / f".best.pt.{dead_pid}.tmp"  # older checkpoint temporary names
    legacy.write_bytes(b"x")
    old = tmp_path / ".metrics.json.otherhost.1.tmp"  # another machine's, a day old
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    keep = tmp_path / "best.pt"
    keep.write_bytes(b"x")
    assert sorted(remove_stale_temps(tmp_path)) == sorted([theirs, legacy, old])
    assert mine.exists() and keep.exists()


def test_atomic_write_interrupted_leaves_old_file(tmp_path):
    from mriviewer.core.files import atomic_path, write_text

    target = write_text(tmp_path / "a.json", "old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
