"""Bad input in discovery: empty and junk folders, malformed headers while scanning, label CSVs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from mriviewer.cli.info import dataset_info
from mriviewer.core.errors import DatasetError, LoadError
from mriviewer.data.discover import discover
from mriviewer.io.dicom.scan import scan_series
from mriviewer.io.dicom.series import read_dicom_series
from mriviewer.io.readers import load_volume

# Hypothesis keeps caches in ./.hypothesis; send them to a temporary folder (as conftest does
# with the volume cache) unless the caller chose a place.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="mriviewer-hypothesis-"))
from tests.badfiles import CORRUPTIONS, MODALITIES, _copy_dataset, _copy_series, _junk_folder


def test_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for fn in (load_volume, read_dicom_series):
        with pytest.raises(LoadError) as err:
            fn(empty)
        assert err.value.path == empty and "no DICOM files" in str(err.value)
    with pytest.raises(DatasetError) as err:
        discover(empty)
    assert str(empty) in str(err.value)
    with pytest.raises(LoadError, match="empty list"):
        read_dicom_series([])


def test_folder_with_only_non_dicom_files(tmp_path):
    junk = _junk_folder(tmp_path / "junk")
    for fn in (load_volume, read_dicom_series):
        with pytest.raises(LoadError) as err:
            fn(junk)
        assert err.value.path == junk and "no DICOM files" in str(err.value)
    assert scan_series(junk) == ([], [])
    with pytest.raises(DatasetError) as err:
        discover(junk)
    assert str(junk) in str(err.value)


def test_rsna_case_with_empty_and_junk_modality_folders(demo_dir, tmp_path):
    root = _copy_dataset(demo_dir, tmp_path / "rsna")
    case = root / "train" / "00001"
    for f in (case / "FLAIR").iterdir():
        f.unlink()
    shutil.rmtree(case / "T2w")
    _junk_folder(case / "T2w")
    ds = discover(root)
    c = ds.case("00001")
    assert sorted(c.modalities) == ["T1w", "T1wCE"]
    assert sorted(c.errors) == sorted(f"{case / m}: folder contains no DICOM files" for m in ("FLAIR", "T2w"))
    assert not ds.case("00000").errors and sorted(ds.case("00000").modalities) == sorted(MODALITIES)
    # A case with errors is not used for training, the others are.
    assert "00001" not in [x.case_id for x in ds.labelled()]


@pytest.mark.parametrize(
    "kind",
    [pytest.param(k)
     for k in ("bad-DS-value", "unknown-VR")] + ["no-Rows"],
)
def test_malformed_header_in_scan_and_discover(demo_dir, tmp_path, kind):
    """Header scanning (no pixel decoding) never fails on one bad file."""
    series = tmp_path / "s"
    files = _copy_series(demo_dir, series)
    victim = files[3]
    victim.write_bytes(CORRUPTIONS[kind](victim.read_bytes()))
    found, problems = scan_series(series)
    assert sum(len(s.files) for s in found) + len(problems) == len(files)
    assert all(str(victim) in p for p in problems)
    ds = discover(series)
    assert ds.cases


# ---------------------------------------------------------------------------- 2. label CSV
def _labelled_copy(demo_dir: Path, dest: Path, csv_text: str) -> Path:
    root = _copy_dataset(demo_dir, dest)
    (root / "train_labels.csv").write_text(csv_text)
    return root


def test_label_csv_missing_and_extra_ids(demo_dir, tmp_path):
    # Case 00000 has no row; 777 and 0099 name no case.
    root = _labelled_copy(demo_dir, tmp_path / "rsna",
                          "BraTS21ID,MGMT_value\n1,1\n2,0\n777,1\n0099,0\n")
    csv_path = root / "train_labels.csv"
    ds = discover(root)
    assert [c.case_id for c in ds.cases] == ["00000", "00001", "00002"]
    assert [c.label for c in ds.cases] == [None, 1, 0]
    assert all(c.errors == [] for c in ds.cases)
    assert ds.label_source == csv_path and ds.task == "binary"
    (warning,) = ds.warnings
    assert str(csv_path) in warning and "1 case(s) have no label" in warning
    assert [c.case_id for c in ds.labelled()] == ["00001", "00002"]


@pytest.mark.parametrize(
    "value",
    ["2", "-1", "yes", "nan", "0x1",
     pytest.param("0.5"),
     pytest.param("inf"),
     ],
)
def test_label_csv_value_not_0_or_1_is_a_case_error(demo_dir, tmp_path, value):
    root = _labelled_copy(demo_dir, tmp_path / "rsna",
                          f"BraTS21ID,MGMT_value\n0,1\n1,{value}\n2,0\n")
    csv_path = root / "train_labels.csv"
    ds = discover(root)
    bad = ds.case("00001")
    assert bad.label is None
    (error,) = bad.errors
    assert str(csv_path) in error and f"MGMT_value {value!r}" in error
    assert "00001" in error and "not 0 or 1" in error
    assert ds.case("00000").label == 1 and ds.case("00002").label == 0
    assert not ds.case("00000").errors and not ds.case("00002").errors
    assert [c.case_id for c in ds.labelled()] == ["00000", "00002"]
    # The command line reports it on the case and still describes the case's images.
    info = dataset_info(root)
    (case,) = [c for c in info["cases"] if c["case_id"] == "00001"]
    assert any(str(csv_path) in e for e in case["errors"])
    assert case["modalities"]["FLAIR"]["shape"] == [40, 40, 20]


def test_label_csv_empty_cell_is_a_warning_naming_line(demo_dir, tmp_path):
    root = _labelled_copy(demo_dir, tmp_path / "rsna", "BraTS21ID,MGMT_value\n0,1\n1,\n2,0\n")
    csv_path = root / "train_labels.csv"
    ds = discover(root)
    assert ds.case("00001").label is None
    assert f"{csv_path}: line 3 has no BraTS21ID or MGMT_value" in ds.warnings
