"""Hostile inputs that real archives contain: one table, one test body.

Every row builds its input in ``tmp_path`` (nibabel, Pillow, pydicom, csv; nothing committed)
and states the outcome: the input **loads** and each named problem is a warning naming the
file, or it is **refused** with one :class:`MriViewerError` naming the path, and the command
line prints one line and exits 2. Never a traceback, never a silent wrong result. Each row runs
through :func:`discover`, ``mriviewer info`` (and ``convert`` where relevant).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mriviewer.cli import main
from mriviewer.cli.info import dataset_info
from mriviewer.core.errors import DatasetError, LoadError, MriViewerError
from mriviewer.data.discover import discover
from mriviewer.io.readers import load_volume


# ---------------------------------------------------------------------------- writers
def _nii(path: Path, shape=(4, 4, 3), zoom=1.0, dtype=np.float32, data=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) if data is None else data
    nib.save(nib.Nifti1Image(arr.astype(dtype), np.diag([zoom, zoom, zoom, 1.0])), str(path))
    return path


def _case(folder: Path, names=("FLAIR", "T1")) -> Path:
    for n in names:
        _nii(folder / f"{n}.nii.gz")
    return folder


def _png(path: Path, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 5), value, np.uint8)).save(path)
    return path


def _dicom_series(folder: Path, description: str, n: int = 3, series_uid: str | None = None,
                  prefix: str = "IM") -> list[Path]:
    """``n`` axial 4×4 MR slices of one series (Explicit VR Little Endian)."""
    folder.mkdir(parents=True, exist_ok=True)
    uid, study = series_uid or generate_uid(), "1.2.3.4"
    out = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = pydicom.uid.MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "MR", "P1", study, uid
        ds.SeriesDescription, ds.InstanceNumber = description, k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, float(k) * 2]
        ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 2.0
        ds.Rows = ds.Columns = 4
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 0
        ds.PixelData = (np.arange(16, dtype=np.uint16).reshape(4, 4) + 10 * k).tobytes()
        p = folder / f"{prefix}{k + 1}.dcm"
        ds.save_as(p, enforce_file_format=True)
        out.append(p)
    return out


def _labelled(root: Path, csv_bytes: bytes, ids=("00001", "00002", "00003", "00004")) -> Path:
    for i in ids:
        _case(root / i)
    (root / "labels.csv").write_bytes(csv_bytes)
    return root


# ---------------------------------------------------------------------------- builders
def mixed_layouts(t: Path, mp) -> Path:
    root = t / "mixed"
    _case(root / "caseA")
    _dicom_series(root / "series", "AX T2")
    _png(root / "glioma" / "a.jpg")
    _png(root / "glioma" / "b.png")
    return root


def zero_byte_png(t: Path, mp) -> Path:
    root = t / "coll"
    _case(root / "brats" / "case_0")
    (root / "thumbs").mkdir(parents=True)
    (root / "thumbs" / "empty.png").write_bytes(b"")
    return root


def unreadable_case_folder(t: Path, mp) -> Path:
    root = t / "brats"
    for i in range(3):
        _case(root / f"case_{i}")
    victim = root / "case_1"
    real = os.scandir

    def guarded(p="."):
        if Path(os.fsdecode(p)) == victim:
            raise PermissionError(13, "Permission denied", str(victim))
        return real(p)

    mp.setattr(os, "scandir", guarded)
    return root


def symlink_loop_and_annex(t: Path, mp) -> Path:
    root = t / "brats"
    _case(root / "case_0")
    os.symlink("loop", root / "loop")  # a link to itself
    os.symlink("../.git/annex/objects/xx/sub-01_T1w.nii.gz", root / "case_0" / "T2.nii.gz")
    return root


def fifo_in_case(t: Path, mp) -> Path:
    root = t / "brats"
    _case(root / "case_0")
    os.mkfifo(root / "case_0" / "T2.nii.gz")
    return root


def raw_export(t: Path, mp) -> Path:
    root = t / "raw" / "patient7"
    _nii(root / "3_AX_T2_FLAIR.nii.gz", (4, 4, 3), 1.0)
    _nii(root / "T1_MPRAGE_SAG_5.nii.gz", (6, 6, 6), 0.5)
    _nii(root / "AX_T1_POST_GD.nii.gz")
    _nii(root / "PD.nii.gz")
    _nii(root / "tumor_mask.nii.gz", dtype=np.uint8)
    return root


def bids_subject(t: Path, mp) -> Path:
    root = t / "sub-01" / "anat"
    for n in ("sub-01_ses-1_FLAIR", "sub-01_ses-1_T1w", "sub-01_ses-1_ce-gd_T1w", "sub-01_ses-1_T2w",
              "sub-01_ses-1_desc-tumor_dseg"):
        _nii(root / f"{n}.nii.gz")
    return root


def dup_identical(t, mp):
    return _labelled(t / "ds", b"id,label\n1,0\n2,1\n3,0\n4,1\n00002,1.0\n")


def dup_conflict(t, mp):
    return _labelled(t / "ds", b"id,label\n1,0\n2,1\n3,0\n4,1\n00001,1\n")


def numeric_forms(t, mp):
    return _labelled(t / "ds", b"id,label\n1,1\n2,1.0\n3, 1 \n4,0\n")


def negative_label(t, mp):
    return _labelled(t / "ds", b"id,label\n1,1\n2,0\n3,-1\n4,0\n")


def non_utf8_label(t, mp):
    return _labelled(t / "ds", b"id,label\n1,1\n2,0\n3,1\xff\n4,0\n")


def latin1_file(t, mp):
    return _labelled(t / "ds", "id,label\n1,café\n2,thé\n3,café\n4,thé\n".encode("latin-1"))


def continuous_label(t, mp):
    return _labelled(t / "ds", b"id,label\n1,0.13\n2,0.57\n3,0.92\n4,1.4\n")


def huge_class(t, mp):
    return _labelled(t / "ds", b"id,label\n1,0\n2,1\n3,10000000\n4,0\n")


def long_field(t, mp):
    return _labelled(t / "ds", b"id,label\n1,0\n2,1\n3," + b"1" * 140_000 + b"\n4,0\n")


def png16(t, mp):
    p = t / "img16.png"
    Image.fromarray(np.arange(30, dtype=np.uint16).reshape(6, 5) * 2000).save(p)
    return p


def float_tiff(t, mp):
    p = t / "map.tif"
    Image.fromarray(np.linspace(-5.5, 3000.25, 30, dtype=np.float32).reshape(6, 5)).save(p)
    return p


def complex_nifti(t, mp):
    data = (np.ones((4, 4, 3)) * (3 + 4j)).astype(np.complex64)
    return _nii(t / "phase_t2.nii.gz", data=data, dtype=np.complex64)


def loose_images_one_broken(t, mp):
    root = t / "pngs"
    _png(root / "a.png")
    (root / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def dicom_file_among_series(t, mp):
    folder = t / "dump"
    files = _dicom_series(folder, "AX FLAIR", 3, prefix="A")
    _dicom_series(folder, "SAG T1", 4, prefix="B")
    return files[1]


def dev_null(t, mp):
    return Path(os.devnull)


def fifo(t, mp):
    p = t / "pipe.nii.gz"
    os.mkfifo(p)
    return p


def unix_socket(t, mp):
    p = t / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    _SOCKETS.append(s)  # keep it open while the test runs
    return p


_SOCKETS: list[socket.socket] = []


def folder_named_like_nifti(t, mp):
    p = t / "scan.nii.gz"
    p.mkdir()
    return p


def nothing_loads(t, mp):
    root = t / "junk"
    root.mkdir()
    (root / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


# ---------------------------------------------------------------------------- checks
def _ids(ds):
    return sorted(c.case_id for c in ds.cases)


def chk_mixed(ds, info, t):
    assert "caseA" in _ids(ds) and "glioma/a.jpg" in _ids(ds)
    assert any(c.case_id.startswith("series") for c in ds.cases)
    assert ds.class_names == ["glioma"]  # the class folder keeps its labels …
    assert ds.case("caseA").label is None  # … the other layouts are listed unlabelled


def chk_unreadable(ds, info, t):
    assert _ids(ds) == ["case_0", "case_2"]


def chk_raw(ds, info, t):
    (case,) = ds.cases
    assert ds.layout == "raw-nifti"
    assert sorted(case.modalities) == ["FLAIR", "T1w", "T1wCE", "other"]
    assert case.segmentation.name == "tumor_mask.nii.gz"
    assert "'flair'" in case.modalities["FLAIR"].reason
    assert "'post'" in case.modalities["T1wCE"].reason
    (c,) = info["cases"]
    assert "flair" in c["modalities"]["FLAIR"]["reason"].lower()
    assert c["modalities"]["other"]["reason"]


def chk_bids(ds, info, t):
    (case,) = ds.cases
    assert sorted(case.modalities) == ["FLAIR", "T1w", "T1wCE", "T2w"]
    assert case.modalities["T1wCE"].path.name == "sub-01_ses-1_ce-gd_T1w.nii.gz"
    assert case.segmentation.name.endswith("_dseg.nii.gz")


def _labels(ds):
    return {c.case_id: c.label for c in ds.cases}


def chk_dup_identical(ds, info, t):
    assert _labels(ds) == {"00001": 0, "00002": 1, "00003": 0, "00004": 1}


def chk_dup_conflict(ds, info, t):
    assert _labels(ds) == {"00001": None, "00002": 1, "00003": 0, "00004": 1}


def chk_two_classes_all(ds, info, t):
    assert ds.class_names == ["label=0", "label=1"]
    assert _labels(ds) == {"00001": 1, "00002": 1, "00003": 1, "00004": 0}


def chk_row_dropped(ds, info, t):
    assert ds.class_names == ["label=0", "label=1"]
    assert _labels(ds) == {"00001": 1, "00002": 0, "00003": None, "00004": 0}


def chk_latin1(ds, info, t):
    assert ds.class_names == ["café", "thé"]


def chk_long(ds, info, t):
    assert _labels(ds) == {"00001": 0, "00002": 1, "00003": None, "00004": 0}


def chk_png16(ds, info, t):
    vol = load_volume(ds.cases[0].modalities["image"].path)
    assert vol.data.dtype == np.uint16 and vol.data.max() == 29 * 2000
    assert info["cases"][0]["modalities"]["image"]["shape"] == [5, 6, 1]


def chk_float_tiff(ds, info, t):
    vol = load_volume(ds.cases[0].modalities["image"].path)
    assert vol.data.dtype == np.float32
    assert vol.data.min() == pytest.approx(-5.5) and vol.data.max() == pytest.approx(3000.25)


def chk_complex(ds, info, t):
    vol = load_volume(ds.cases[0].modalities["T2w"].path)
    np.testing.assert_allclose(vol.data, 5.0)
    assert any("phase_t2.nii.gz" in w and "magnitude" in w for w in vol.meta["warnings"])
    assert any("magnitude" in w for w in info["cases"][0]["modalities"]["T2w"]["warnings"])


def chk_loose(ds, info, t):
    assert _ids(ds) == ["a.png", "b.png"]
    (bad,) = [c for c in info["cases"] if c["case_id"] == "b.png"]
    assert len(bad["errors"]) == 1 and "b.png" in bad["errors"][0]


def chk_dicom_file(ds, info, t):
    ((m, src),) = ds.cases[0].modalities.items()
    assert m == "FLAIR" and "SeriesDescription" in src.reason
    assert sorted(f.name for f in src.files) == ["A1.dcm", "A2.dcm", "A3.dcm"]
    assert info["cases"][0]["modalities"]["FLAIR"]["shape"] == [4, 4, 3]
    out = t / "one.nii.gz"
    assert main(["convert", str(t / "dump" / "A2.dcm"), "--out", str(out)]) == 0
    assert nib.load(str(out)).shape == (4, 4, 3)


# ---------------------------------------------------------------------------- the table
@dataclass
class Row:
    name: str
    build: Callable[[Path, pytest.MonkeyPatch], Path]
    outcome: str  # "loads" or "error"
    #: (text, file) pairs: a warning of the dataset contains both (the file relative to tmp_path)
    warn: list[tuple[str, str]] = field(default_factory=list)
    check: Callable | None = None
    error: str = ""  # text the one-line error contains (besides the path)
    convert: bool = False  # also run `convert` and expect status 2


ROWS = [
    Row("mixed-nifti-dicom-jpeg", mixed_layouts, "loads",
        [("listed without labels", "mixed")], chk_mixed),
    Row("zero-byte-png-in-collection", zero_byte_png, "loads",
        [("0 bytes", "coll/thumbs/empty.png")]),
    Row("unreadable-case-folder", unreadable_case_folder, "loads",
        [("Permission denied", "brats/case_1")], chk_unreadable),
    Row("symlink-loop-and-unfetched-annex-file", symlink_loop_and_annex, "loads",
        [("symbolic link", "brats/loop"), ("git-annex", "brats/case_0/T2.nii.gz")]),
    Row("fifo-inside-a-case", fifo_in_case, "loads", [("FIFO", "brats/case_0/T2.nii.gz")]),
    Row("raw-export-different-grids", raw_export, "loads",
        [("different voxel grids", "raw/patient7")], chk_raw),
    Row("bids-subject", bids_subject, "loads", [], chk_bids),
    Row("labels-duplicate-identical", dup_identical, "loads",
        [("same label", "ds/labels.csv")], chk_dup_identical),
    Row("labels-duplicate-conflict-1-vs-00001", dup_conflict, "loads",
        [("conflicting labels", "ds/labels.csv"), ("line 2", "ds/labels.csv"), ("line 6", "ds/labels.csv")],
        chk_dup_conflict),
    Row("labels-1-1.0-space", numeric_forms, "loads", [], chk_two_classes_all),
    Row("labels-one-negative", negative_label, "loads",
        [("line 4: label '-1' is negative", "ds/labels.csv")], chk_row_dropped),
    Row("labels-one-non-utf8", non_utf8_label, "loads",
        [("Latin-1", "ds/labels.csv"), ("line 4: label", "ds/labels.csv")], chk_row_dropped),
    Row("labels-latin1-file", latin1_file, "loads", [("Latin-1", "ds/labels.csv")], chk_latin1),
    Row("labels-over-long-field", long_field, "loads",
        [("line 4: label has 140000 characters", "ds/labels.csv")], chk_long),
    Row("labels-continuous", continuous_label, "error", error="continuous"),
    Row("labels-10000000-classes", huge_class, "error", error="10000001 classes"),
    Row("png-16-bit", png16, "loads", [], chk_png16),
    Row("tiff-float", float_tiff, "loads", [], chk_float_tiff),
    Row("nifti-complex", complex_nifti, "loads", [], chk_complex),
    Row("loose-images-one-undecodable", loose_images_one_broken, "loads", [], chk_loose),
    Row("dicom-file-in-folder-of-two-series", dicom_file_among_series, "loads",
        [("only its own series", "dump/A2.dcm")], chk_dicom_file),
    Row("dev-null", dev_null, "error", error="character device", convert=True),
    Row("fifo", fifo, "error", error="FIFO", convert=True),
    Row("socket", unix_socket, "error", error="socket", convert=True),
    Row("folder-named-like-a-file", folder_named_like_nifti, "error", convert=True),
    Row("nothing-loads", nothing_loads, "error", error="no case could be loaded"),
]


def _one_line_error(err: str, path: Path, text: str) -> None:
    line = err.strip()
    assert "Traceback" not in err
    assert line.startswith("mriviewer: error: ") and "\n" not in line, err
    assert str(path) in line and text in line, line


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_hostile_input(row: Row, tmp_path, monkeypatch, capsys):
    path = row.build(tmp_path, monkeypatch)
    # The GUI's open path (the app model, no window): a dataset with the same warnings, or one
    # error message naming the path, and the model keeps working.
    from mriviewer.app.model import AppModel

    app = AppModel()
    errors: list[str] = []
    app.error.connect(errors.append)
    opened = app.open_path(path)
    if row.outcome == "error" and row.name != "nothing-loads":
        assert not opened and len(errors) == 1 and str(path) in errors[0] and app.dataset is None
    else:
        assert opened and errors == [] and app.dataset.cases
    if row.outcome == "error":
        if row.name == "nothing-loads":  # discovery finds a case; no case decodes
            assert main(["info", str(path)]) == 2
            _one_line_error(capsys.readouterr().err, path, row.error)
            return
        with pytest.raises(DatasetError) as err:
            discover(path)
        assert str(path) in str(err.value) and row.error in str(err.value)
        if path.is_dir():
            with pytest.raises(MriViewerError):
                load_volume(path / "missing.nii.gz")
        elif row.convert:
            with pytest.raises(LoadError) as lerr:
                load_volume(path)
            assert str(path) in str(lerr.value)
        for argv in (["info", str(path)], ["info", str(path), "--json"]):
            assert main(argv) == 2
            out = capsys.readouterr()
            assert out.out == "" or "--json" not in argv
            _one_line_error(out.err, path, row.error)
        if row.convert:
            assert main(["convert", str(path), "--out", str(tmp_path / "x.nii.gz")]) == 2
            _one_line_error(capsys.readouterr().err, path, row.error)
        return
    ds = discover(path)
    assert ds.cases
    for text, rel in row.warn:
        named = str(tmp_path / rel)
        assert any(text in w and named in w for w in ds.warnings), (text, named, ds.warnings)
    assert main(["info", str(path), "--json"]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    info = json.loads(out.out)
    assert info["warnings"] == ds.warnings
    assert main(["info", str(path)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    if row.check is not None:
        row.check(ds, dataset_info(path), tmp_path)
    if ds.task != "none":  # and `train` on what loaded: a run, or one line and status 2
        rc = main(["train", "--data", str(path), "--out", str(tmp_path / "run"), "--epochs", "1",
                   "--model", "cnn3d" if not any(c.is_2d for c in ds.cases) else "resnet18-2d",
                   "--set", "image_size=16", "--set", "depth=4", "--set", "batch_size=2",
                   "--set", "pretrained=none", "--set", "device=cpu", "--set", "slices_per_case=1"])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if rc == 2:
            assert err.strip().splitlines()[-1].startswith("mriviewer: error: "), err
        else:
            assert rc == 0 and (tmp_path / "run" / "metrics.json").is_file(), err


def test_assign_corrects_a_guessed_modality(tmp_path, monkeypatch, capsys):
    root = raw_export(tmp_path, monkeypatch)
    assert main(["info", str(root), "--json", "--assign", "other=T2w"]) == 0
    (case,) = json.loads(capsys.readouterr().out)["cases"]
    assert case["modalities"]["T2w"]["path"].endswith("PD.nii.gz")
    assert case["modalities"]["T2w"]["reason"].startswith("assigned by the user")


def test_parent_of_a_labelled_image_folder_keeps_its_labels(tmp_path):
    """kaggle-4class/ holds only Testing/<class>/*.jpg: opening the parent is the same task
    (case ids prefixed by Testing/), not an unlabelled collection."""
    from PIL import Image

    for cls in ("glioma", "notumor"):
        d = tmp_path / "kaggle" / "Testing" / cls
        d.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(d / f"{i}.png")
    ds = discover(tmp_path / "kaggle")
    assert ds.task == "binary" and ds.class_names == ["glioma", "notumor"]
    assert sorted(c.case_id for c in ds.cases)[0] == "Testing/glioma/0.png"
    assert {ds.label_name(c) for c in ds.cases} == {"glioma", "notumor"}


@pytest.mark.parametrize("csv_bytes,expected", [
    (b"id,site\n1,A\n2,B\n3,A\n4,B\n", "using 'site' as the class column"),  # a guessed column
    (b"id,label\n1,0\n2,1\n3,0\n", "1 case(s) have no usable label row"),  # case 4 has no row
    (b"id,label\n1,0\n2,1\n3,0\n4,1\n9,1\n", "1 labelled row(s) match no case"),
    (b"id,label\n1,0\n2,1\n3,0\n4,7\n", "have no case"),  # a typo makes classes 2..6 empty
])
def test_doubtful_label_files_are_said_out_loud(tmp_path, csv_bytes, expected):
    ds = discover(_labelled(tmp_path / "ds", csv_bytes))
    assert any(expected in w and "labels.csv" in w for w in ds.warnings), ds.warnings


def test_colour_and_transparency_lost_in_greyscale_are_said(tmp_path):
    from PIL import Image

    from mriviewer.io.image2d import load_image2d

    grey = np.repeat(np.arange(64, dtype=np.uint8).reshape(8, 8)[..., None], 3, axis=2)
    Image.fromarray(grey).save(tmp_path / "grey_as_rgb.png")
    assert not load_image2d(tmp_path / "grey_as_rgb.png").meta.get("warnings")
    red = grey.copy()
    red[2:4, 2:4] = (255, 0, 0)  # an annotation in colour
    Image.fromarray(red).save(tmp_path / "annotated.png")
    (w,) = load_image2d(tmp_path / "annotated.png").meta["warnings"]
    assert "annotated.png" in w and "colour" in w
    rgba = np.dstack([grey, np.full((8, 8), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "half_transparent.png")
    (w,) = load_image2d(tmp_path / "half_transparent.png").meta["warnings"]
    assert "half_transparent.png" in w and "alpha" in w
