"""``--label-column`` alone picks a column of a BIDS dataset's own ``participants.tsv``; every
session of a subject gets the subject's label; elsewhere it asks for ``--labels FILE``."""

from __future__ import annotations

import json

import pytest

from mriviewer.cli import main
from tests.data.test_bids import make_bids


def test_label_column_alone_uses_participants_tsv(tmp_path, capsys):
    root = make_bids(tmp_path / "ds")
    assert main(["info", str(root), "--label-column", "sex", "--json", "--no-headers"]) == 0
    out = capsys.readouterr()
    info = json.loads(out.out)
    assert "participants.tsv" in out.err
    assert info["layout"] == "bids" and len(info["cases"]) == 8
    by_patient: dict = {}
    for c in info["cases"]:
        assert c["label_name"] in ("M", "F")
        by_patient.setdefault(c["patient_id"], set()).add(c["label_name"])
    assert len(by_patient) == 4 and all(len(v) == 1 for v in by_patient.values())


def test_label_column_alone_elsewhere_needs_labels(demo_dir, capsys):
    assert main(["info", str(demo_dir), "--label-column", "grade"]) == 2
    assert "needs --labels FILE" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--label-map", "1=a"], ["--id-column", "x"]])
def test_other_label_options_still_need_labels(demo_dir, capsys, option):
    assert main(["info", str(demo_dir), *option]) == 2
    assert "needs --labels FILE" in capsys.readouterr().err
