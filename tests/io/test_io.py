"""Readers and discovery on generated files, including bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mriviewer.core.errors import DatasetError, LoadError
from mriviewer.data.discover import discover
from mriviewer.data.modality import modality_from_name
from mriviewer.io.nifti import load_nifti
from mriviewer.io.readers import load_volume


def _nifti(path, data, affine):
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def test_nifti_scaling_and_affine(tmp_path):
    import nibabel as nib

    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    img = nib.Nifti1Image(data, np.diag([2.0, 3.0, 4.0, 1.0]))
    img.header.set_slope_inter(0.5, 10)
    nib.save(img, str(tmp_path / "a.nii.gz"))
    vol = load_nifti(tmp_path / "a.nii.gz")
    np.testing.assert_allclose(vol.data, data * 0.5 + 10)
    assert vol.spacing == (2.0, 3.0, 4.0)


def test_nifti_4d_takes_first_volume(tmp_path):
    data = np.stack([np.zeros((3, 3, 3)), np.ones((3, 3, 3))], axis=-1).astype(np.float32)
    p = _nifti(tmp_path / "four.nii", data, np.eye(4))
    assert load_nifti(p).data.max() == 0
    assert load_nifti(p, index4d=1).data.min() == 1
    with pytest.raises(LoadError, match="out of range"):
        load_nifti(p, index4d=5)


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti at all")
    with pytest.raises(LoadError) as err:
        load_volume(bad)
    assert "broken.nii.gz" in str(err.value)
    with pytest.raises(LoadError, match="no such file"):
        load_volume(tmp_path / "missing.nii")
    empty = tmp_path / "series"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(LoadError, match="no DICOM files"):
        load_volume(empty)
    with pytest.raises(DatasetError):
        discover(tmp_path / "nothing-here")



def test_reader_registry_picks_by_name_then_content_and_takes_a_new_format(tmp_path, monkeypatch):
    from mriviewer.core.volume import Volume
    from mriviewer.io import readers

    assert [r.name for r in readers.READERS] == ["NIfTI", "2D image", "DICOM"]
    nifti = _nifti(tmp_path / "a.nii.gz", np.zeros((2, 2, 2), np.float32), np.eye(4))
    assert readers.reader_for(nifti).name == "NIfTI"
    (tmp_path / "b.PNG").write_bytes(b"")
    assert readers.reader_for(tmp_path / "b.PNG").name == "2D image"
    folder = tmp_path / "series.nii"  # a folder is a DICOM series whatever its name
    folder.mkdir()
    assert readers.reader_for(folder).name == "DICOM"
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert readers.reader_for(text) is None
    with pytest.raises(LoadError, match="unknown file type"):
        load_volume(text)

    class TextReader(readers.ImageReader):
        name = "text"

        def verify_suffix(self, path):
            return path.suffix == ".txt"

        def read(self, path, modality="", index4d=0):
            return Volume(np.zeros((2, 2, 1), np.float32), np.eye(4), modality, [path])

    monkeypatch.setattr(readers, "READERS", (*readers.READERS, TextReader()))  # one entry
    vol = load_volume(text, "T1w")
    assert vol.shape == (2, 2, 1) and vol.modality == "T1w" and vol.sources == [text]

def test_truncated_dicom_is_reported(tmp_path, demo_dir):
    src = sorted((demo_dir / "train").glob("*/FLAIR"))[0]
    series = tmp_path / "s"
    series.mkdir()
    files = sorted(src.glob("*.dcm"))
    for f in files:
        (series / f.name).write_bytes(f.read_bytes())
    victim = series / files[3].name
    victim.write_bytes(victim.read_bytes()[:600])
    # The rest of the series loads; the bad file and the resulting gap are reported by name.
    vol = load_volume(series)
    assert len(vol.sources) == len(files) - 1
    assert any(files[3].name in w for w in vol.meta["warnings"])
    assert any("uneven slice spacing" in w for w in vol.meta["warnings"])
    # A series made only of broken files is an error that names the folder and a file.
    for f in series.iterdir():
        f.write_bytes(f.read_bytes()[:600])
    with pytest.raises(LoadError) as err:
        load_volume(series)
    assert str(series) in str(err.value)


@pytest.mark.parametrize(
    "name,modality",
    [("BraTS19_2013_10_1_t1post.nii.gz", "T1wCE"), ("BraTS-GLI-00001-000-t2f.nii.gz", "FLAIR"),
     ("BraTS-GLI-00001-000-t1n.nii.gz", "T1w"), ("x_t1ce.nii.gz", "T1wCE"), ("FLAIR.nii.gz", "FLAIR"),
     ("T1.nii.gz", "T1w"), ("GT_W.nii.gz", "SEG"), ("case_seg.nii.gz", "SEG"), ("t2.nii.gz", "T2w"),
     ("T1wCE", "T1wCE"), ("readme.nii.gz", None)],
)
def test_modality_names(name, modality):
    assert modality_from_name(name) == modality


def test_rsna_labels_unpadded_ids_extra_columns_and_missing(tmp_path, demo_dir):
    import shutil

    root = tmp_path / "rsna"
    shutil.copytree(demo_dir / "train", root / "train")
    ids = sorted(d.name for d in (root / "train").iterdir())
    # Labels for all but the first case, unpadded, extra column, one unknown id.
    lines = ["BraTS21ID,MGMT_value,fold"] + [f"{int(i)},{n % 2},0" for n, i in enumerate(ids[1:])] + ["99999,1,0"]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    ds = discover(root)
    assert ds.layout == "rsna-miccai" and ds.task == "binary"
    assert ds.case(ids[0]).label is None
    assert [ds.case(i).label for i in ids[1:]] == [n % 2 for n in range(len(ids) - 1)]
    assert any("no label" in w for w in ds.warnings)


def test_brats_folder_with_label_csv(tmp_path):
    for cid in ("c1", "c2", "c3"):
        d = tmp_path / cid
        d.mkdir()
        _nifti(d / f"{cid}_flair.nii.gz", np.zeros((4, 4, 4), np.float32), np.eye(4))
        _nifti(d / f"{cid}_seg.nii.gz", np.zeros((4, 4, 4), np.uint8), np.eye(4))
    (tmp_path / "grades.csv").write_text("subject,grade\nc1,HGG\nc2,LGG\nc3,HGG\n")
    ds = discover(tmp_path)
    assert ds.layout == "brats-nifti" and ds.class_names == ["HGG", "LGG"]
    assert [c.label for c in ds.cases] == [0, 1, 0]
    assert all(c.segmentation is not None for c in ds.cases)


def test_series_split_by_uid_and_orientation(tmp_path, demo_dir):
    """Two series mixed in one folder are found as two cases, each loading its own slices."""
    import shutil

    from mriviewer.cache.memory import VolumeCache

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    case = sorted((demo_dir / "train").iterdir())[1]
    for m in ("FLAIR", "T2w"):
        for f in (case / m).glob("*.dcm"):
            shutil.copy(f, mixed / f"{m}-{f.name}")
    (mixed / "readme.nfo").write_text("not dicom")
    ds = discover(mixed)
    # Two series of one study with different modalities: one case with both.
    (found,) = ds.cases
    assert sorted(found.modalities) == ["FLAIR", "T2w"]
    cache = VolumeCache()
    for m, src in found.modalities.items():
        vol = cache.get(src)
        assert vol.shape[2] == len(list((case / m).glob("*.dcm")))
        assert all(p.name.startswith(m) for p in vol.sources)


@pytest.mark.parametrize(
    "description,modality",
    [("AX FLAIR", "FLAIR"), ("t2_tse_tra", "T2w"), ("T1 MPRAGE +C", "T1wCE"), ("t1_se_post", "T1wCE"),
     ("T1wCE", "T1wCE"), ("t1_mprage_sag", "T1w"), ("T1w", "T1w"), ("ep2d_bold", "other"),
     ("sag_t1_cube", "T1w")],
)
def test_series_description_modality(description, modality):
    from mriviewer.data.modality import series_modality

    assert series_modality(description) == modality


def test_disk_cache_serves_identical_volume_and_never_stale(tmp_path, demo_dir):
    import os
    import shutil
    import time

    from mriviewer.cache.disk import DiskCache
    from mriviewer.cache.memory import VolumeCache

    series = tmp_path / "FLAIR"
    shutil.copytree(sorted((demo_dir / "train").iterdir())[0] / "FLAIR", series)
    ds = discover(series)
    (src,) = ds.cases[0].modalities.values()
    disk = DiskCache(tmp_path / "cache")
    first = VolumeCache(disk=disk).get(src)
    again = VolumeCache(disk=disk)  # a new session: memory empty, disk warm
    cached = again.get(src)
    assert again.disk_hits == 1 and again.misses == 0
    np.testing.assert_array_equal(cached.data, first.data)
    np.testing.assert_allclose(cached.affine, first.affine)
    assert cached.sources == first.sources
    # Rewriting one file (new size or mtime) is a miss: the edited pixels are served.
    victim = sorted(series.glob("*.dcm"))[0]
    import pydicom

    dcm = pydicom.dcmread(victim)
    arr = dcm.pixel_array.copy()
    arr[:] = 60000  # far above any phantom intensity
    dcm.PixelData = arr.tobytes()
    dcm.save_as(victim)
    os.utime(victim, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = VolumeCache(disk=disk)
    fresh = third.get(src)
    assert third.misses == 1
    assert np.any(fresh.data == 60000) and not np.any(first.data == 60000)


def test_prefetch_decodes_in_worker_processes(tmp_path, demo_dir):
    from mriviewer.cache.disk import DiskCache
    from mriviewer.cache.memory import VolumeCache

    ds = discover(demo_dir)
    sources = [c.modalities["FLAIR"] for c in ds.cases[:4]]
    cache = VolumeCache(disk=DiskCache(tmp_path / "cache"))
    progress = list(cache.prefetch_iter(sources, processes=2))
    assert [p[:2] for p in progress] == [(n, 4) for n in range(1, 5)]
    assert all(err is None for _, _, err in progress)
    vols = [cache.get(s) for s in sources]
    assert cache.disk_hits == 4 and cache.misses == 0
    assert all(v.shape[2] > 1 for v in vols)


def test_parallel_case_load_matches_serial(demo_dir, tmp_path):
    from mriviewer.cache.memory import VolumeCache
    from mriviewer.io.readers import load_volume

    case = discover(demo_dir).cases[1]
    sources = list(case.modalities.values())
    bad = type(sources[0])("FLAIR", tmp_path / "nothing-here", "dicom")
    got = VolumeCache().get_many(sources + [bad], processes=2)
    for src, vol in zip(sources, got, strict=False):
        ref = load_volume(src.path, src.modality)
        np.testing.assert_array_equal(vol.data, ref.data)
        np.testing.assert_allclose(vol.affine, ref.affine)
        assert vol.modality == src.modality
    assert isinstance(got[-1], LoadError) and "nothing-here" in str(got[-1])


def test_missing_slice_is_regridded_so_voxels_stay_in_place(tmp_path, demo_dir):
    """A series with a slice missing in the middle: reported with its position, re-gridded at
    the median spacing so that every voxel sits where the affine says (the marker is found at
    the same world position as in the complete series)."""
    import shutil

    from mriviewer.io.dicom.series import read_dicom_series

    src = sorted((demo_dir / "train").iterdir())[0] / "T2w"
    full = read_dicom_series(src)
    series = tmp_path / "gap"
    shutil.copytree(src, series)
    middle = full.sources[full.shape[2] // 2]
    (series / middle.name).unlink()
    vol = read_dicom_series(series)
    assert vol.shape == full.shape
    np.testing.assert_allclose(vol.affine, full.affine, atol=1e-4)
    text = " ".join(vol.meta["warnings"])
    assert "uneven slice spacing" in text and "resampled" in text
    k = full.shape[2] // 2
    np.testing.assert_allclose(vol.data[:, :, k], 0.5 * (full.data[:, :, k - 1].astype(np.float32) + full.data[:, :, k + 1]), atol=1e-3)
    np.testing.assert_allclose(vol.data[:, :, k + 2], full.data[:, :, k + 2])
    kept = read_dicom_series(series, regularize=False)
    assert kept.shape[2] == full.shape[2] - 1 and "uneven" in " ".join(kept.meta["warnings"])


def test_gantry_tilt_is_reported_and_kept_in_the_affine(tmp_path, demo_dir):
    """Slices shifted along y in proportion to their position (a tilted gantry) give a sheared
    affine: every slice's first voxel lands on its own ImagePositionPatient."""
    import shutil

    import pydicom

    from mriviewer.io.dicom.series import read_dicom_series

    src = sorted((demo_dir / "train").iterdir())[0] / "T2w"
    series = tmp_path / "tilt"
    shutil.copytree(src, series)
    upright = read_dicom_series(series)
    shear = 0.2  # mm of y per mm along the normal: ~11 degrees
    for f in series.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ipp = [float(v) for v in ds.ImagePositionPatient]
        normal = np.cross([float(v) for v in ds.ImageOrientationPatient[:3]], [float(v) for v in ds.ImageOrientationPatient[3:]])
        ipp[1] += shear * float(np.dot(ipp, normal))
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
        ds.save_as(f)
    vol = read_dicom_series(series)
    assert vol.meta["gantry_tilt_deg"] == pytest.approx(np.degrees(np.arctan(shear)), abs=0.5)
    assert any("gantry tilt" in w for w in vol.meta["warnings"])
    np.testing.assert_array_equal(vol.data, upright.data)
    for k, f in enumerate(vol.sources):
        ipp = np.array([float(v) for v in pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient])
        np.testing.assert_allclose(vol.voxel_to_world([0, 0, k]), ipp * [-1, -1, 1], atol=1e-2)


def test_disk_cache_keeps_to_its_budget(tmp_path):
    from mriviewer.cache.disk import DiskCache
    from mriviewer.core.volume import Volume

    disk = DiskCache(tmp_path / "c", max_bytes=3 * 4000)
    vols = [Volume(np.full((10, 10, 10), n, np.float32), np.eye(4)) for n in range(5)]  # 4000 B each
    for n, v in enumerate(vols):
        disk.save(("k", n), v)
    assert len(list((tmp_path / "c").glob("*.npy"))) <= 3
    assert disk.load(("k", 4)) is not None and disk.load(("k", 0)) is None  # oldest went first


def test_interpolated_or_broken_segmentation_is_named_and_images_still_load(tmp_path):
    """A label map with fractions (resampled with interpolation) loads with a warning naming it;
    an unreadable one leaves the images on screen and its message in the case's errors."""
    from mriviewer.cache.grid import case_on_grid
    from mriviewer.cache.memory import VolumeCache

    for cid in ("c1", "c2"):
        d = tmp_path / cid
        d.mkdir()
        _nifti(d / f"{cid}_flair.nii.gz", np.ones((6, 6, 6), np.float32), np.eye(4))
    seg = np.zeros((6, 6, 6), np.float32)
    seg[2:4, 2:4, 2:4] = 2.0
    seg[2, 2, 2] = 1.4
    _nifti(tmp_path / "c1" / "c1_seg.nii.gz", seg, np.eye(4))
    (tmp_path / "c2" / "c2_seg.nii.gz").write_bytes(b"not a nifti")
    ds = discover(tmp_path)
    cache = VolumeCache()
    vols, _, seg_vol = case_on_grid(ds.case("c1"), cache)
    (warning,) = seg_vol.meta["warnings"]
    assert "c1_seg.nii.gz" in warning and "non-integer values in 1 voxels" in warning
    assert "FLAIR" in vols and not ds.case("c1").errors
    case2 = ds.case("c2")
    vols, _, seg_vol = case_on_grid(case2, cache)
    assert "FLAIR" in vols and seg_vol is None
    assert any("c2_seg.nii.gz" in e for e in case2.errors)
