"""A researcher's own label table: columns chosen, ids detected, values mapped, doubts said."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from mriviewer.cli import main
from mriviewer.data.discover import discover
from mriviewer.data.label_table import (
    LabelSpec,
    apply_labels,
    match_labels,
    parse_label_map,
    read_table,
)
from mriviewer.data.labels import LabelFileError

SHEET = [("PatientID", "age", "sex", "IDH", "MGMT", "grade")] + [
    (str(n), str(40 + n), "MF"[n % 2], "mutant" if n % 3 == 0 else "wildtype", str(n % 2), str(2 + n % 3))
    for n in range(12)]


def _write(path, rows, sep=","):
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_any_column_of_a_clinical_sheet_is_a_label(demo_dir, tmp_path):
    ds = discover(demo_dir)
    sheet = _write(tmp_path / "clinical.csv", SHEET)
    m = apply_labels(ds, LabelSpec(sheet, label_column="IDH"))
    assert m.id_column == "PatientID" and m.keyed_by == "case" and "detected" in m.notes[0]
    assert ds.class_names == ["mutant", "wildtype"] and ds.label_source == sheet
    assert [ds.label_name(c) for c in ds.cases[:4]] == ["mutant", "wildtype", "wildtype", "mutant"]
    assert ds.label_record["sha256"] and ds.label_record["label_column"] == "IDH"


def test_grades_mapped_to_classes_and_values_excluded(demo_dir, tmp_path):
    ds = discover(demo_dir)
    sheet = _write(tmp_path / "clinical.csv", SHEET)
    apply_labels(ds, LabelSpec(sheet, label_column="grade", label_map=parse_label_map("2=LGG,3=LGG,4=HGG")))
    assert ds.class_names == ["HGG", "LGG"]
    assert [ds.label_name(c) for c in ds.cases[:3]] == ["LGG", "LGG", "HGG"]
    ds = discover(demo_dir)
    m = apply_labels(ds, LabelSpec(sheet, label_column="grade", exclude=("3",)))
    assert len(m.excluded) == 4 and ds.class_names == ["grade=2", "grade=4"]
    assert any("excluded" in w for w in ds.warnings)


def test_tsv_and_excel_read_like_csv(tmp_path):
    pytest.importorskip("openpyxl")
    import pandas as pd

    csv = read_table(_write(tmp_path / "t.csv", SHEET))
    tsv = read_table(_write(tmp_path / "t.tsv", SHEET, "\t"))
    pd.DataFrame(SHEET[1:], columns=SHEET[0]).to_excel(tmp_path / "t.xlsx", index=False)
    xlsx = read_table(tmp_path / "t.xlsx")
    assert csv.equals(tsv) and csv.equals(xlsx) and list(csv["PatientID"][:2]) == ["0", "1"]


def test_doubts_are_said_and_conflicts_unlabelled(demo_dir, tmp_path):
    ds = discover(demo_dir)
    rows = [("id", "label"), ("0", "1"), ("0", "1"), ("1", "0"), ("1", "1"), ("99", "0"), ("", "1"), ("11", "")]
    rows += [(str(n), str(n % 2)) for n in range(2, 10)]
    m = apply_labels(ds, LabelSpec(_write(tmp_path / "l.csv", rows)))
    assert m.repeated == ["0"] and m.conflicts == ["1"] and m.rows_without_case == ["99"]
    assert sorted(m.cases_without_row) == ["00001", "00010", "00011"]
    assert ds.case("00001").label is None
    text = "\n".join(ds.warnings)
    assert "conflicting labels" in text and "match no case" in text and "no usable row" in text
    assert m.blank_rows == [7, 8] and "2 row(s) without an id or a label value (line(s) 7, 8)" in text


def test_rows_keyed_by_patient_label_each_time_point(tmp_path):
    for case in ("BraTS-GLI-00001-000", "BraTS-GLI-00001-001", "BraTS-GLI-00002-000"):
        (tmp_path / "d" / case).mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)),
                 str(tmp_path / "d" / case / f"{case}-t2f.nii.gz"))
    ds = discover(tmp_path / "d")
    sheet = _write(tmp_path / "p.csv", [("subject", "IDH"), ("BraTS-GLI-00001", "mutant"), ("BraTS-GLI-00002", "wt")])
    m = apply_labels(ds, LabelSpec(sheet, label_column="IDH"))
    assert m.keyed_by == "patient" and len(m.labels) == 3


def test_unusable_choices_are_errors_naming_the_file(demo_dir, tmp_path):
    ds = discover(demo_dir)
    sheet = _write(tmp_path / "clinical.csv", SHEET)
    plain = _write(tmp_path / "plain.csv", [r[:4] for r in SHEET])  # no column named like a label
    with pytest.raises(LabelFileError, match="plain.csv.*which column is the label"):
        match_labels(ds, LabelSpec(plain))
    assert match_labels(ds, LabelSpec(sheet)).label_column == "grade"  # named like a label: detected, said
    with pytest.raises(LabelFileError, match="no column 'IDH1'"):
        match_labels(ds, LabelSpec(sheet, label_column="IDH1"))
    with pytest.raises(LabelFileError, match="not VALUE=CLASS"):
        parse_label_map("2:LGG")
    with pytest.raises(LabelFileError, match="not a label table"):
        read_table(tmp_path / "x.json")


def test_labels_command_and_info_with_labels(demo_dir, tmp_path, capsys):
    sheet = _write(tmp_path / "clinical.csv", SHEET)
    assert main(["labels", str(sheet), "--data", str(demo_dir), "--label-column", "MGMT", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["id_column"] == "PatientID" and report["labelled"] == 12
    assert {c["name"]: c["type"] for c in report["columns"]}["age"] == "number"
    assert main(["info", str(demo_dir), "--no-headers", "--json", "--labels", str(sheet), "--label-column", "IDH"]) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["class_names"] == ["mutant", "wildtype"] and info["labels"]["file"] == "clinical.csv"
    assert "labels from clinical.csv: column 'IDH'" in captured.err
    assert main(["info", str(demo_dir), "--label-column", "IDH"]) == 2  # needs --labels
