"""Datasets assembled from several labelled folders, BraTS HGG/LGG folders, and the confound
guard."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mriviewer.core.errors import DatasetError
from mriviewer.data.assemble import assemble, parse_data_args
from mriviewer.data.discover import discover
from mriviewer.ml.confounds import confound_warnings, describe_value
from tests.conftest import real_data


def _nifti(path: Path, affine, dtype=np.float32) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.arange(8 * 8 * 8, dtype=dtype).reshape(8, 8, 8) % 100
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def _brats2018(root: Path, n: int = 2) -> Path:
    """BraTS 2018-style case folders ``case_<i>/{FLAIR,T1}.nii.gz`` at 1 mm."""
    for i in range(n):
        for name in ("FLAIR", "T1"):
            _nifti(root / f"case_{i}" / f"{name}.nii.gz", np.diag([1.0, 1.0, 1.0, 1.0]))
    return root


def _ixi(root: Path, ids=("IXI012", "IXI015")) -> Path:
    """A plain folder of IXI-style T1 files at 2 mm."""
    for i in ids:
        _nifti(root / f"{i}_T1.nii.gz", np.diag([2.0, 2.0, 2.0, 1.0]), np.uint8)
    return root


# ---------------------------------------------------------------------------- parse_data_args
def test_parse_data_args(tmp_path):
    odd = tmp_path / "run=3"
    odd.mkdir()
    parsed = parse_data_args(["A=x", str(tmp_path), str(odd), "healthy=a=b", " B =y"])
    assert parsed == [("A", Path("x")), (None, tmp_path), (None, odd), ("healthy", Path("a=b")),
                      ("B", Path("y"))]
    for bad in ("=x", "A=", "", "  = "):
        with pytest.raises(DatasetError) as err:
            parse_data_args([bad])
        assert repr(bad) in str(err.value)


# ---------------------------------------------------------------------------- assemble
def test_assemble_labels_ids_and_sources(tmp_path):
    a = _brats2018(tmp_path / "brats-a")
    b = _ixi(tmp_path / "ixi-b")
    ds = assemble([("tumour", a), ("healthy", str(b))])
    assert ds.layout == "assembled" and ds.task == "binary"
    assert ds.class_names == ["tumour", "healthy"]
    assert ds.root == tmp_path and ds.label_source is None and ds.settings == {}
    assert [c.case_id for c in ds.cases] == [
        "tumour/brats-a/case_0", "tumour/brats-a/case_1",
        "healthy/ixi-b/IXI012_T1", "healthy/ixi-b/IXI015_T1"]
    assert [c.label for c in ds.cases] == [0, 0, 1, 1]
    assert [ds.label_name(c) for c in ds.cases] == ["tumour", "tumour", "healthy", "healthy"]
    assert [c.source for c in ds.cases] == [str(a), str(a), str(b), str(b)]
    assert set(ds.case("tumour/brats-a/case_0").modalities) == {"FLAIR", "T1w"}
    assert len(ds.labelled()) == 4


def test_assemble_same_label_twice_and_own_labels_replaced(tmp_path):
    a = _brats2018(tmp_path / "one" / "set")
    b = _brats2018(tmp_path / "two" / "set")
    (b / "labels.csv").write_text("case,grade\ncase_0,HGG\ncase_1,LGG\n")
    assert discover(b).class_names == ["HGG", "LGG"]
    c = _ixi(tmp_path / "ixi")
    ds = assemble([("tumour", a), ("healthy", c), ("tumour", b)])
    assert ds.class_names == ["tumour", "healthy"]
    ids = [case.case_id for case in ds.cases]
    assert len(set(ids)) == len(ids) == 6
    assert "tumour/set-2/case_0" in ids
    assert [case.label for case in ds.cases] == [0, 0, 1, 1, 0, 0]
    assert any(w.startswith("tumour:") and "replaced" in w for w in ds.warnings)


def test_assemble_keeps_case_errors_and_fails_loudly(tmp_path):
    a = _brats2018(tmp_path / "a")
    (a / "case_1" / "FLAIR.nii.gz").unlink()
    (a / "case_1" / "T1.nii.gz").rename(a / "case_1" / "GT_W.nii.gz")  # only a segmentation
    b = _ixi(tmp_path / "b")
    ds = assemble([("tumour", a), ("healthy", b)])
    assert ds.case("tumour/a/case_1").errors
    assert len(ds.labelled()) == 3

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    for bad in (empty, tmp_path / "missing"):
        with pytest.raises(DatasetError) as err:
            assemble([("tumour", a), ("healthy", bad)])
        assert "healthy" in str(err.value) and str(bad) in str(err.value)
    with pytest.raises(DatasetError):
        assemble([])
    with pytest.raises(DatasetError):
        assemble([(None, a)])


# ---------------------------------------------------------------------------- HGG / LGG
def test_brats_hgg_lgg_folders_are_labels(tmp_path):
    root = tmp_path / "MICCAI_BraTS_2019_Data_Training"
    for grade, ids in (("HGG", ("BraTS19_A_1", "BraTS19_A_2")), ("lgg", ("BraTS19_B_1",))):
        for cid in ids:
            for suffix in ("flair", "t1", "t1ce", "t2", "seg"):
                _nifti(root / grade / cid / f"{cid}_{suffix}.nii.gz", np.eye(4))
    (root / "HGG" / "notes").mkdir()
    (root / "survival_data.csv").write_text("BraTS19ID,Age,Survival\nBraTS19_A_1,60,300\n")
    ds = discover(root)
    assert ds.layout == "brats-nifti" and ds.task == "binary"
    assert ds.class_names == ["HGG", "LGG"]
    assert [c.case_id for c in ds.cases] == ["HGG/BraTS19_A_1", "HGG/BraTS19_A_2", "LGG/BraTS19_B_1"]
    assert [c.label for c in ds.cases] == [0, 0, 1]
    assert all(c.segmentation is not None and len(c.modalities) == 4 for c in ds.cases)
    assert any("not NIfTI cases" in w for w in ds.warnings)

    # Only LGG present: one class. A parent folder sees it as one labelled dataset.
    import shutil

    shutil.rmtree(root / "HGG")
    ds = discover(root)
    assert ds.class_names == ["LGG"] and [c.label for c in ds.cases] == [0]
    coll = discover(tmp_path)
    assert [ds.label_name(c) for c in coll.cases] == ["LGG"]


# ---------------------------------------------------------------------------- confounds
def _row(i, label, source, spacing=(1.0, 1.0, 1.0), **extra):
    row = {"case_id": f"c{i}", "label": label, "source": source, "spacing_mm": spacing,
           "shape": (8, 8, 8), "modalities": ("T1w",), "scanner": None, "dtype": "float32"}
    row.update(extra)
    return row


def test_confound_source():
    rows = [_row(i, 0, "/d/ixi-t1-2mm") for i in range(3)] + \
        [_row(i, 1, "/d/brats2018-flair-t1/") for i in range(3, 6)]
    warnings = confound_warnings(rows, ["healthy", "tumour"])
    assert len(warnings) == 1
    w = warnings[0]
    assert w.startswith("Confound:") and "may learn" in w
    assert "'healthy'" in w and "ixi-t1-2mm" in w and "brats2018-flair-t1" in w
    assert "/d/" not in w


def test_confound_spacing_and_value_listing():
    rows = [_row(i, 0, "mixed-a" if i % 2 else "mixed-b", (2.0, 2.0, 2.02)) for i in range(4)]
    rows += [_row(i, 1, "mixed-a" if i % 2 else "mixed-b", (1.0, 1.0, s))
             for i, s in zip(range(4, 9), (1.0, 1.1, 1.2, 1.3, 1.0), strict=True)]
    warnings = confound_warnings(rows, ["healthy", "tumour"])
    assert len(warnings) == 1
    w = warnings[0]
    assert w.startswith("Confound: voxel spacing") and "may learn" in w
    assert "healthy: 2.0×2.0×2.0 mm" in w
    assert "tumour: 1.0×1.0×1.0 mm" in w and "…" in w  # 4 distinct spacings: 3 listed


def test_weak_confound_one_class_single_value():
    # HGG is always int16, which no other class has; the other dtypes are shared.
    rows = [_row(0, 0, "a", dtype="uint8"), _row(1, 0, "a", dtype="float32"),
            _row(2, 1, "a", dtype="int16"), _row(3, 1, "a", dtype="int16"),
            _row(4, 2, "a", dtype="float32")]
    warnings = confound_warnings(rows, ["healthy", "HGG", "LGG"])
    assert len(warnings) == 1
    assert "'HGG'" in warnings[0] and "int16" in warnings[0] and "may learn" in warnings[0]


def test_no_confound_when_mixed_or_single_class():
    rows = [_row(i, i % 2, "src-a" if i < 4 else "src-b", scanner=None, shape=None)
            for i in range(8)]
    rows.append(_row(9, None, "only-unlabelled", spacing=(9.0, 9.0, 9.0)))
    assert confound_warnings(rows, ["healthy", "tumour"]) == []
    one = [_row(i, 0, f"s{i}") for i in range(3)]
    assert confound_warnings(one, ["tumour"]) == []
    assert describe_value("modalities", ["T1w", "FLAIR"]) == "FLAIR+T1w"
    assert describe_value("source", "/x/y/ixi-t1-2mm") == "ixi-t1-2mm"


# ---------------------------------------------------------------------------- real data
def _rows_from_headers(ds) -> list[dict]:
    import nibabel as nib

    rows = []
    for case in ds.labelled():
        img = nib.load(str(case.modalities[case.first_modality()].path))
        rows.append({
            "case_id": case.case_id, "label": case.label, "source": case.source,
            "spacing_mm": tuple(float(z) for z in img.header.get_zooms()[:3]),
            "shape": img.shape[:3], "modalities": tuple(sorted(case.modalities)),
            "scanner": None, "dtype": str(img.header.get_data_dtype()),
        })
    return rows


@pytest.mark.realdata
def test_real_brats_plus_ixi_is_confounded():
    brats = real_data("brats2018-flair-t1")
    ixi = real_data("ixi-t1-2mm")
    ds = assemble([("tumour", brats), ("healthy", ixi)])
    assert ds.class_names == ["tumour", "healthy"]
    assert sum(c.label == 0 for c in ds.cases) == 10
    assert sum(c.label == 1 for c in ds.cases) == 2
    assert len({c.case_id for c in ds.cases}) == 12
    assert all(c.case_id.startswith("healthy/ixi-t1-2mm/") for c in ds.cases if c.label == 1)
    warnings = confound_warnings(_rows_from_headers(ds), ds.class_names)
    print("\n".join(warnings), file=sys.stderr)
    assert all(w.startswith("Confound:") and "may learn" in w for w in warnings)
    source = [w for w in warnings if "ixi-t1-2mm" in w and "brats2018-flair-t1" in w]
    spacing = [w for w in warnings if "voxel spacing" in w]
    assert source and spacing
    assert "healthy: 2.0×2.0×2.0 mm" in spacing[0]


def test_one_case_under_two_labels_is_refused_and_a_repeat_counts_once(tmp_path):
    from tests.phantoms import make_lesion_phantoms

    a = make_lesion_phantoms(tmp_path / "a", n_cases=3, seed=1)
    with pytest.raises(DatasetError, match="two classes"):
        assemble([("HGG", a), ("LGG", a)])
    ds = assemble([("HGG", a), ("HGG", a), ("LGG", make_lesion_phantoms(tmp_path / "b", n_cases=3, seed=2))])
    assert len(ds.cases) == 6 and any("counted once" in w for w in ds.warnings)
