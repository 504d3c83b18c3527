"""``mriviewer info`` reads headers only (NIfTI headers, DICOM tags without pixel data) and agrees
with ``info --decode``, which decodes every volume; a damaged file the headers cannot show is
found by ``--decode``."""

from __future__ import annotations

import json

from mriviewer.cli import main


def _info(capsys, *args: str) -> dict:
    assert main(["info", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _geometry(case: dict) -> dict:
    return {m: d and {k: d.get(k) for k in ("shape", "affine", "spacing_mm", "axcodes", "acquisition_plane", "dtype")}
            for m, d in case["modalities"].items()}


def test_info_reads_headers_and_agrees_with_decode(tmp_path, capsys):
    from mriviewer.demo.dataset import make_demo_dataset

    data = make_demo_dataset(tmp_path / "d", n_cases=3, seed=5, matrix=24, n_slices=8)
    head, full = _info(capsys, str(data)), _info(capsys, str(data), "--decode")
    assert [c["case_id"] for c in head["cases"]] == [c["case_id"] for c in full["cases"]]
    for h, f in zip(head["cases"], full["cases"], strict=True):
        assert all(d is None or d["header_only"] for d in h["modalities"].values())
        assert all(d is None or "header_only" not in d for d in f["modalities"].values())
        geo_h, geo_f = _geometry(h), _geometry(f)
        for m in geo_f:  # --decode has no dtype key; compare the rest
            if geo_f[m]:
                geo_f[m]["dtype"] = geo_h[m]["dtype"]
        assert geo_h == geo_f


def test_info_decode_finds_what_headers_cannot(tmp_path, capsys):
    """A slice whose pixel data cannot be decoded: the header pass lists the series, --decode
    names the file."""
    from mriviewer.demo.dataset import make_demo_dataset

    data = make_demo_dataset(tmp_path / "d", n_cases=3, seed=5, matrix=24, n_slices=8)
    victim = sorted((data / "train" / "00000" / "FLAIR").glob("*.dcm"))[3]
    raw = bytearray(victim.read_bytes())
    del raw[-200:]  # truncated pixel data
    victim.write_bytes(bytes(raw))
    full = _info(capsys, str(data), "--decode")
    flair = full["cases"][0]["modalities"]["FLAIR"]
    assert any(victim.name in w for w in flair.get("warnings", [])), flair.get("warnings")
