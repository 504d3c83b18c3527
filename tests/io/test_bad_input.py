"""Bad input: every broken file is reported by name with the reason, and nothing else is lost.

The product rule: a file that cannot be used gives a message naming the file and what is wrong;
the rest of the series, case or dataset still loads. Only :class:`MriViewerError` subclasses may
come out of ``load_volume``, ``read_dicom_series``, ``scan_series``, ``discover`` and
``dataset_info`` for bad files. Every input here is generated in a temporary folder from the demo
dataset or written with pydicom / nibabel / numpy.

Eight bugs this file found (malformed header values escaping as ValueError/AttributeError/
NotImplementedError, one undecodable slice failing a whole series, silently dropped truncated
``.dcm`` files, fractional or infinite MGMT values, ``info`` exiting 0 with nothing loaded, a
constant 1e20 volume's window, NaN shown grey) are fixed; these tests keep them fixed.

(Reading files: DICOM and NIfTI. Discovery, the command line and windowing: tests/data, tests/cli, tests/core.)
"""

from __future__ import annotations

import builtins
import json
import os
import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from mriviewer.cli import main
from mriviewer.cli.info import dataset_info
from mriviewer.core.colour import window_to_uint8
from mriviewer.core.errors import LoadError, MriViewerError
from mriviewer.core.volume import Volume, percentile_window
from mriviewer.data.discover import discover
from mriviewer.io.dicom.scan import scan_series
from mriviewer.io.dicom.series import read_dicom_series
from mriviewer.io.nifti import load_nifti
from mriviewer.io.readers import load_volume

# Hypothesis keeps caches in ./.hypothesis; send them to a temporary folder (as conftest does
# with the volume cache) unless the caller chose a place.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="mriviewer-hypothesis-"))
from tests.badfiles import CORRUPTIONS, _copy_dataset, _copy_series, _pixel_value_offset


def _warnings_text(vol: Volume) -> str:
    return "\n".join(vol.meta.get("warnings", []))


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


# ---------------------------------------------------------------------------- 1. DICOM files
def _cut_points(raw: bytes) -> dict[str, int]:
    pix = _pixel_value_offset(raw)
    return {
        "preamble": 64,  # no 'DICM' marker any more
        "after-DICM": 132,
        "file-meta": 300,
        "dataset-header": pix - 200,
        "pixel-data-element-header": pix - 6,
        "first-pixel-byte": pix + 1,
        "mid-pixel-data": pix + (len(raw) - pix) // 2,
        "last-byte": len(raw) - 1,
    }


HEADER_CUTS = ["after-DICM", "file-meta", "dataset-header", "pixel-data-element-header"]


PIXEL_CUTS = ["first-pixel-byte", "mid-pixel-data", "last-byte"]


@pytest.mark.parametrize("where", ["preamble", *HEADER_CUTS, *PIXEL_CUTS])
def test_truncated_single_dicom_file_names_file(demo_dir, tmp_path, where):
    files = _copy_series(demo_dir, tmp_path / "s")
    victim = files[3]
    raw = victim.read_bytes()
    victim.write_bytes(raw[:_cut_points(raw)[where]])
    with pytest.raises(LoadError) as err:
        load_volume(victim)
    msg = str(err.value)
    assert str(victim) in msg
    if where == "preamble":
        assert "unknown file type" in msg
    elif where in HEADER_CUTS:
        assert "no pixel data" in msg and "truncated" in msg
    else:
        assert "cannot decode pixel data" in msg and "less than expected" in msg


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("preamble"),
        *HEADER_CUTS,
        *[pytest.param(w)
          for w in PIXEL_CUTS],
    ],
)
def test_truncated_slice_is_skipped_and_reported_rest_loads(demo_dir, tmp_path, where):
    series = tmp_path / "s"
    files = _copy_series(demo_dir, series)
    victim = files[3]
    raw = victim.read_bytes()
    victim.write_bytes(raw[:_cut_points(raw)[where]])
    vol = load_volume(series)
    assert len(vol.sources) == len(files) - 1  # every other slice read (a gap is re-gridded)
    assert victim not in vol.sources
    assert str(victim) in _warnings_text(vol)


def test_corrupt_uncompressed_pixel_bytes_load_as_stored(demo_dir, tmp_path):
    """Uncompressed pixel data has no checksum: garbage bytes load as garbage values, and
    nothing else changes."""
    series = tmp_path / "s"
    files = _copy_series(demo_dir, series)
    ref = load_volume(series)
    victim = files[3]
    raw = bytearray(victim.read_bytes())
    pix = _pixel_value_offset(bytes(raw))
    raw[pix + 100:pix + 300] = b"\xff" * 200
    victim.write_bytes(bytes(raw))
    vol = load_volume(series)
    assert vol.shape == ref.shape
    np.testing.assert_allclose(vol.affine, ref.affine)
    changed = np.flatnonzero(np.any(vol.data != ref.data, axis=(0, 1)))
    assert len(changed) == 1 and vol.sources[changed[0]] == victim
    assert not vol.meta.get("warnings")


def _rle_series(demo_dir: Path, dest: Path) -> list[Path]:
    files = _copy_series(demo_dir, dest)
    for f in files:
        ds = pydicom.dcmread(f)
        ds.compress(pydicom.uid.RLELossless)
        ds.save_as(f)
    return files


def _corrupt_rle_stream(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    # 16 bytes of RLE run headers in the middle of the encoded segments (before the sequence
    # delimiter at the end): the segments decode to the wrong length.
    start = len(raw) - 200
    raw[start:start + 16] = bytes([0x7F, 0x80] * 8)
    path.write_bytes(bytes(raw))


def test_corrupt_compressed_pixel_data_single_file(demo_dir, tmp_path):
    files = _rle_series(demo_dir, tmp_path / "s")
    assert load_volume(files[3]).shape == (40, 40, 1)  # the compressed file is valid
    _corrupt_rle_stream(files[3])
    with pytest.raises(LoadError) as err:
        load_volume(files[3])
    msg = str(err.value)
    assert str(files[3]) in msg
    assert "cannot decode pixel data" in msg and pydicom.uid.RLELossless in msg


def test_corrupt_compressed_slice_is_skipped_and_reported(demo_dir, tmp_path):
    series = tmp_path / "s"
    files = _rle_series(demo_dir, series)
    _corrupt_rle_stream(files[3])
    vol = load_volume(series)
    assert len(vol.sources) == len(files) - 1  # every other slice read (a gap is re-gridded)
    assert str(files[3]) in _warnings_text(vol)
    assert "pixel data" in _warnings_text(vol)


def _strip_pixel_data(path: Path) -> None:
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)


def test_dicom_without_pixel_data(demo_dir, tmp_path):
    series = tmp_path / "s"
    files = _copy_series(demo_dir, series)
    victim = files[3]
    _strip_pixel_data(victim)
    # Alone: an error naming the file and the reason.
    with pytest.raises(LoadError) as err:
        load_volume(victim)
    assert str(victim) in str(err.value) and "no pixel data" in str(err.value)
    with pytest.raises(LoadError) as err:
        read_dicom_series([victim])
    assert str(victim) in str(err.value) and "no pixel data" in str(err.value)
    # In a series: skipped, reported by name, the rest loads.
    vol = load_volume(series)
    assert len(vol.sources) == len(files) - 1  # every other slice read (a gap is re-gridded)
    assert f"{victim}: no pixel data" in _warnings_text(vol)
    (skipped,) = vol.meta["skipped_files"]
    assert str(victim) in skipped and "no pixel data" in skipped


def test_series_with_one_slice_of_another_matrix_size(demo_dir, tmp_path):
    series = tmp_path / "s"
    files = _copy_series(demo_dir, series)
    victim = files[3]
    ds = pydicom.dcmread(victim)
    small = np.ascontiguousarray(ds.pixel_array[:32, :30])
    ds.Rows, ds.Columns = small.shape
    ds.PixelData = small.tobytes()
    ds.save_as(victim)
    # Read as one series: the odd slice is dropped with a warning naming it and both sizes; the
    # other 19 load.
    vol = read_dicom_series(series)
    assert victim not in vol.sources and len(vol.sources) == 19
    assert any(str(victim) in w and "slice size 32x30 differs from the series' 40x40" in w
               for w in vol.meta["warnings"])
    # Scanning headers splits the folder by matrix size; discovery then offers both parts,
    # and each loads.
    found, problems = scan_series(series)
    assert problems == []
    assert sorted((len(s.files), s.rows, s.columns) for s in found) == [(1, 32, 30), (19, 40, 40)]
    ds_ = discover(series)
    assert len(ds_.cases) == 2 and not any(c.errors for c in ds_.cases)
    vols = sorted((load_volume(list(src.files) or src.path) for c in ds_.cases for src in c.modalities.values()),
                  key=lambda v: v.shape)
    assert vols[0].shape == (30, 32, 1) and vols[1].shape[:2] == (40, 40) and len(vols[1].sources) == 19


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_malformed_header_single_file_is_a_load_error(demo_dir, tmp_path, kind):
    files = _copy_series(demo_dir, tmp_path / "s")
    victim = files[3]
    victim.write_bytes(CORRUPTIONS[kind](victim.read_bytes()))
    with pytest.raises(LoadError) as err:
        load_volume(victim)
    assert str(victim) in str(err.value)


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_malformed_header_slice_in_series(demo_dir, tmp_path, kind):
    """Either the slice is skipped and reported (the rest loads), or the series fails with a
    LoadError naming it; anything else is a bug."""
    series = tmp_path / "s"
    files = _copy_series(demo_dir, series)
    victim = files[3]
    victim.write_bytes(CORRUPTIONS[kind](victim.read_bytes()))
    try:
        vol = load_volume(series)
    except LoadError as exc:
        assert str(victim) in str(exc)
    else:
        assert len(vol.sources) == len(files) - 1  # every other slice read (a gap is re-gridded) and str(victim) in _warnings_text(vol)


_IDX = np.arange(120).reshape(4, 5, 6)


VOLUMES = {
    "all-nan": np.full((4, 5, 6), np.nan, np.float32),
    "half-nan": np.where(_IDX % 2, np.nan, _IDX).astype(np.float32),
    "nan-and-negative": np.where(_IDX % 3 == 0, np.nan, _IDX - 60.0).astype(np.float32),
    "inf": np.where(_IDX % 3 == 0, np.inf, np.where(_IDX % 3 == 1, -np.inf, 5.0)).astype(np.float32),
    "float32-extremes": np.where(_IDX % 2, 3.4e38, -3.4e38).astype(np.float32),
    "constant-0": np.zeros((4, 5, 6), np.float32),
    "constant-int16-7": np.full((4, 5, 6), 7, np.int16),
    "constant-negative": np.full((4, 5, 6), -1024.5, np.float32),
    "constant-1e20": np.full((4, 5, 6), 1e20, np.float32),
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n)
     if n == "constant-1e20" else n for n in VOLUMES],
)
def test_nan_and_constant_volumes_load_and_window(tmp_path, name):
    arr = VOLUMES[name]
    path = _write_nifti(tmp_path / f"{name}.nii.gz", arr, np.diag([2.0, 2.0, 3.0, 1.0]))
    vol = load_volume(path)
    assert vol.shape == (4, 5, 6) and vol.spacing == (2.0, 2.0, 3.0)
    np.testing.assert_array_equal(np.isnan(vol.data), np.isnan(arr))
    low, high = percentile_window(vol.data)
    assert np.isfinite(low) and np.isfinite(high)
    assert high > low
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float32 overflow on the extremes
        img = window_to_uint8(vol.data, low, high)
    assert img.dtype == np.uint8 and img.shape == vol.shape
    finite = np.isfinite(arr)
    if finite.any():
        # In-window finite values spread over 0-255 or sit at 0 for a constant image.
        assert img[finite].min() == 0


# ---------------------------------------------------------------------------- 4. odd paths
ODD = "Patiént ö"


def test_dicom_in_path_with_spaces_and_non_ascii(demo_dir, tmp_path):
    case = tmp_path / "dätä sét" / ODD
    files = _copy_series(demo_dir, case / "FLAIR")
    renamed = [f.rename(f.with_name(f"Bild ä {f.name}")) for f in files]
    vol = load_volume(case / "FLAIR", "FLAIR")
    assert vol.shape == (40, 40, 20) and set(vol.sources) == set(renamed)
    assert load_volume(renamed[0]).shape == (40, 40, 1)
    ds = discover(case)
    assert [(c.case_id, sorted(c.modalities)) for c in ds.cases] == [(ODD, ["FLAIR"])]
    info = dataset_info(case)
    (c,) = info["cases"]
    assert c["errors"] == [] and c["modalities"]["FLAIR"]["shape"] == [40, 40, 20]
    # A broken file there is still reported by its (non-ASCII) name.
    renamed[5].write_bytes(renamed[5].read_bytes()[:600])
    vol = load_volume(case / "FLAIR")
    assert len(vol.sources) == 19 and str(renamed[5]) in _warnings_text(vol)


def test_nifti_in_path_with_spaces_and_non_ascii(tmp_path, capsys):
    case = tmp_path / "dätä sét" / ODD
    data = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    path = _write_nifti(case / f"{ODD}_flair.nii.gz", data)
    _write_nifti(case / f"{ODD}_t1.nii", data + 1)
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.data, data)
    assert load_nifti(case / f"{ODD}_t1.nii").data[0, 0, 0] == 1
    ds = discover(case)
    assert ds.layout == "brats-nifti"
    assert [(c.case_id, sorted(c.modalities)) for c in ds.cases] == [(ODD, ["FLAIR", "T1w"])]
    assert main(["info", str(case), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    (c,) = info["cases"]
    assert c["case_id"] == ODD and c["modalities"]["FLAIR"]["path"] == str(path)
    bad = case / f"{ODD} broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(LoadError) as err:
        load_volume(bad)
    assert str(bad) in str(err.value) and "cannot read NIfTI" in str(err.value)


# ---------------------------------------------------------------------------- 5. permissions
def test_permission_denied_file_in_series(demo_dir, tmp_path):
    root = _copy_dataset(demo_dir, tmp_path / "rsna", n_cases=2)
    series = root / "train" / "00001" / "FLAIR"
    files = sorted(series.glob("*.dcm"))
    victim = files[3]
    victim.chmod(0)
    try:
        if os.access(victim, os.R_OK):
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 is still readable")
        vol = load_volume(series)
        assert len(vol.sources) == len(files) - 1  # every other slice read (a gap is re-gridded)
        assert str(victim) in _warnings_text(vol) and "Permission" in _warnings_text(vol)
        info = dataset_info(root)
        (case,) = [c for c in info["cases"] if c["case_id"] == "00001"]
        assert case["modalities"]["FLAIR"]["shape"][2] in (len(files) - 1, len(files))
        assert any(str(victim) in w for w in case["modalities"]["FLAIR"]["warnings"])
    finally:
        victim.chmod(0o644)


def test_unreadable_file_in_series_simulated(demo_dir, tmp_path, monkeypatch):
    """The same as above when running as root: opening the file raises PermissionError."""
    series = tmp_path / "s"
    files = _copy_series(demo_dir, series)
    victim = files[3]
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file) == victim:
            raise PermissionError(13, "Permission denied", str(victim))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    vol = load_volume(series)
    assert len(vol.sources) == len(files) - 1  # every other slice read (a gap is re-gridded) and victim not in vol.sources
    (skipped,) = vol.meta["skipped_files"]
    assert str(victim) in skipped and "Permission denied" in skipped
    assert skipped in _warnings_text(vol)
    with pytest.raises(LoadError) as err:
        read_dicom_series([victim])
    assert str(victim) in str(err.value) and "Permission denied" in str(err.value)


# ---------------------------------------------------------------------------- 7. fuzzing
FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,  # the same examples on every run
    database=None,  # stores no examples
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _mutations(size: int):
    return st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=12)


def _load_mutated(base: bytes, mutations, name: str) -> None:
    data = bytearray(base)
    for index, value in mutations:
        data[index] = value
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The readers themselves, not load_volume: its last-resort wrapper would turn any
            # exception into a LoadError and hide a reader that fails to say what is wrong.
            reader = read_dicom_series if name.endswith(".dcm") else load_nifti
            try:
                vol = reader(path)
            except MriViewerError:
                return
        assert isinstance(vol, Volume)


DICOM_FUZZ_BYTES = 2048


@FUZZ
@given(mutations=_mutations(DICOM_FUZZ_BYTES))
def test_fuzz_dicom_header(demo_dir, mutations):
    base = sorted((demo_dir / "train").iterdir())[0] / "FLAIR" / "Image-1.dcm"
    _load_mutated(base.read_bytes(), mutations, "Image-1.dcm")


_NIFTI_BASE: list[bytes] = []


def _nifti_base() -> bytes:
    if not _NIFTI_BASE:
        with tempfile.TemporaryDirectory() as d:
            data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
            img = nib.Nifti1Image(data, np.diag([2.0, 3.0, 4.0, 1.0]))
            p = Path(d) / "small.nii"
            nib.save(img, str(p))
            _NIFTI_BASE.append(p.read_bytes())
    return _NIFTI_BASE[0]


@settings(FUZZ, max_examples=400)
@given(mutations=_mutations(348))
def test_fuzz_nifti_header(mutations):
    _load_mutated(_nifti_base(), mutations, "small.nii")
