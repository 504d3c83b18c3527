"""Bad input at the command line: `info` on broken cases and folders with nothing readable.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from hypothesis.configuration import set_hypothesis_home_dir

from mriviewer.cli import main

# Hypothesis keeps caches in ./.hypothesis; send them to a temporary folder (as conftest does
# with the volume cache) unless the caller chose a place.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="mriviewer-hypothesis-"))
from tests.badfiles import MODALITIES, _bad_ds_value, _copy_dataset, _junk_folder


# ---------------------------------------------------------------------------- 6. command line
def test_info_json_one_broken_case(demo_dir, tmp_path, capsys):
    root = _copy_dataset(demo_dir, tmp_path / "rsna")
    victim = sorted((root / "train" / "00001" / "FLAIR").glob("*.dcm"))[3]
    ds = pydicom.dcmread(victim)
    small = np.ascontiguousarray(ds.pixel_array[:32, :30])
    ds.Rows, ds.Columns = small.shape
    ds.PixelData = small.tobytes()
    ds.save_as(victim)
    assert main(["info", str(root), "--json"]) == 0
    out = capsys.readouterr()
    info = json.loads(out.out)
    cases = {c["case_id"]: c for c in info["cases"]}
    assert sorted(cases) == ["00000", "00001", "00002"]
    broken = cases["00001"]
    assert broken["errors"] == []  # the odd slice is dropped, the series loads, and a warning says so
    flair = broken["modalities"]["FLAIR"]
    assert flair["shape"] == [40, 40, 20]
    assert any(str(victim) in w and "differs" in w for w in flair["warnings"])
    for m in ("T1w", "T1wCE", "T2w"):
        assert broken["modalities"][m]["shape"] == [40, 40, 20]
    for cid in ("00000", "00002"):
        assert cases[cid]["errors"] == []
        assert all(cases[cid]["modalities"][m]["shape"] == [40, 40, 20] for m in MODALITIES)


def test_info_json_case_with_malformed_header_slice(demo_dir, tmp_path, capsys):
    root = _copy_dataset(demo_dir, tmp_path / "rsna")
    victim = sorted((root / "train" / "00001" / "FLAIR").glob("*.dcm"))[3]
    victim.write_bytes(_bad_ds_value(victim.read_bytes()))
    assert main(["info", str(root), "--json"]) == 0
    cases = {c["case_id"]: c for c in json.loads(capsys.readouterr().out)["cases"]}
    flair = cases["00001"]["modalities"]["FLAIR"]
    reported = cases["00001"]["errors"] + flair.get("warnings", [])
    assert any(str(victim) in m for m in reported)
    assert cases["00000"]["errors"] == [] and cases["00002"]["errors"] == []


def _assert_one_line_error(err: str, path: Path) -> None:
    line = err.strip()
    assert line.startswith("mriviewer: error: ") and "\n" not in line
    assert str(path) in line and "Traceback" not in err


def test_info_on_folder_with_nothing_readable(tmp_path, capsys):
    junk = _junk_folder(tmp_path / "junk")
    assert main(["info", str(junk), "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    _assert_one_line_error(out.err, junk)


def test_info_on_dataset_where_no_case_loads(demo_dir, tmp_path, capsys):
    root = _copy_dataset(demo_dir, tmp_path / "rsna", n_cases=2)
    for f in (root / "train").rglob("*.dcm"):
        f.write_bytes(f.read_bytes()[:600])
    rc = main(["info", str(root), "--json"])
    out = capsys.readouterr()
    assert rc != 0
    _assert_one_line_error(out.err, root)
