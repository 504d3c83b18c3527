"""Packaging: the icon inside the package, the LICENSE, the PyInstaller recipe, and which extra
decodes which DICOM transfer syntax.

The codec table below is the one the README shows ("DICOM codecs"). Each row names a transfer
syntax, the pydicom decoder plugin that handles it, the Python modules that plugin needs, and the
extra of ``pyproject.toml`` that installs them ("core" = the default dependencies). A row whose
modules are not installed is skipped; an installed one must be offered by pydicom and decode a
sample: the shared real-data file of that syntax when there is one, otherwise a small image this
test compresses itself when an encoder is at hand.
"""

from __future__ import annotations

import importlib.util
import io
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

from tests.conftest import DATA

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# Module → the distribution that provides it.
DIST = {"PIL": "pillow", "gdcm": "python-gdcm", "jpeg_ls": "pyjpegls", "pylibjpeg": "pylibjpeg",
        "openjpeg": "pylibjpeg-openjpeg", "rle": "pylibjpeg-rle", "libjpeg": "pylibjpeg-libjpeg"}
GPL_DISTS = {"pylibjpeg-libjpeg"}

# (syntax UID, name, pydicom plugin, modules it needs, extra)
CODECS = [
    ("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", "", (), "core"),
    ("1.2.840.10008.1.2.5", "RLE Lossless", "pydicom", (), "core"),
    ("1.2.840.10008.1.2.5", "RLE Lossless", "pylibjpeg", ("pylibjpeg", "rle"), "core"),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline 8-bit", "pillow", ("PIL",), "core"),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline 8-bit", "gdcm", ("gdcm",), "core"),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline 8-bit", "pylibjpeg", ("pylibjpeg", "libjpeg"), "jpeg-gpl"),
    ("1.2.840.10008.1.2.4.51", "JPEG Extended, 8-bit samples", "pillow", ("PIL",), "core"),
    ("1.2.840.10008.1.2.4.51", "JPEG Extended, 8-bit samples", "gdcm", ("gdcm",), "core"),
    # 12-bit samples: only libjpeg (pydicom's gdcm and pillow plugins refuse them).
    ("1.2.840.10008.1.2.4.51", "JPEG Extended, 12-bit samples", "pylibjpeg", ("pylibjpeg", "libjpeg"), "jpeg-gpl"),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless P14", "gdcm", ("gdcm",), "core"),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless P14", "pylibjpeg", ("pylibjpeg", "libjpeg"), "jpeg-gpl"),
    ("1.2.840.10008.1.2.4.70", "JPEG Lossless SV1", "gdcm", ("gdcm",), "core"),
    ("1.2.840.10008.1.2.4.70", "JPEG Lossless SV1", "pylibjpeg", ("pylibjpeg", "libjpeg"), "jpeg-gpl"),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", "pyjpegls", ("jpeg_ls",), "core"),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", "gdcm", ("gdcm",), "core"),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", "pylibjpeg", ("pylibjpeg", "libjpeg"), "jpeg-gpl"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near Lossless", "pyjpegls", ("jpeg_ls",), "core"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near Lossless", "gdcm", ("gdcm",), "core"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near Lossless", "pylibjpeg", ("pylibjpeg", "libjpeg"), "jpeg-gpl"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless", "pylibjpeg", ("pylibjpeg", "openjpeg"), "core"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless", "gdcm", ("gdcm",), "core"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless", "pillow", ("PIL",), "core"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000", "pylibjpeg", ("pylibjpeg", "openjpeg"), "core"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000", "gdcm", ("gdcm",), "core"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000", "pillow", ("PIL",), "core"),
    ("1.2.840.10008.1.2.4.201", "HTJ2K Lossless", "pylibjpeg", ("pylibjpeg", "openjpeg"), "core"),
]

# Shared real-data files (one image, the same pixels in every syntax; 1.dcm is uncompressed).
REAL = DATA / "dicom-transfer-syntaxes"
REAL_FILES = {"1.2.840.10008.1.2.5": "4.dcm", "1.2.840.10008.1.2.4.70": "5.dcm",
              "1.2.840.10008.1.2.4.80": "7.dcm", "1.2.840.10008.1.2.4.90": "9.dcm"}


def _installed(modules) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _requirement_names(reqs) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in reqs}


# --- icon, LICENSE, pyproject -------------------------------------------------------------


def test_icon_is_package_data():
    icon = resources.files("mriviewer") / "resources" / "mriviewer.svg"
    assert icon.is_file(), "mriviewer/resources/mriviewer.svg is missing (package-data resources/*)"
    text = icon.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<svg") and "</svg>" in text
    assert "resources/*" in PYPROJECT["tool"]["setuptools"]["package-data"]["mriviewer"]
    assert "ml/presets/*.json" in PYPROJECT["tool"]["setuptools"]["package-data"]["mriviewer"]
    top = ROOT / "resources" / "mriviewer.svg"  # the README's copy
    if top.is_file():
        assert top.read_bytes() == icon.read_bytes(), "resources/mriviewer.svg and the packaged icon differ"


def test_app_finds_the_packaged_icon():
    from mriviewer.ui.app import app_icon_path

    path = app_icon_path()
    assert path is not None and path.name == "mriviewer.svg" and path.parent.name == "resources"


def test_license_matches_pyproject():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    project = PYPROJECT["project"]
    license_ = project["license"]
    assert (license_ if isinstance(license_, str) else license_["text"]) == "BSD-3-Clause"
    assert text.startswith("BSD 3-Clause License")
    (author,) = project["authors"]
    assert re.search(rf"Copyright \(c\) 2026, {re.escape(author['name'])}", text)
    # The three clauses and the disclaimer of the BSD-3-Clause text.
    for phrase in ("Redistributions of source code must retain",
                   "Redistributions in binary form must reproduce",
                   "Neither the name of the copyright holder",
                   'PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"'):
        assert phrase in text


def test_gpl_codec_is_only_an_extra():
    deps = _requirement_names(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert not deps & GPL_DISTS, "a GPL package is a default dependency"
    assert _requirement_names(extras["jpeg-gpl"]) == GPL_DISTS
    assert "pyinstaller" in _requirement_names(extras["packaging"])


def test_codec_table_matches_pyproject():
    """Every row's modules come from the extra the row names; every syntax but 12-bit JPEG
    Extended has a permissive ("core") decoder."""
    deps = _requirement_names(PYPROJECT["project"]["dependencies"])
    extras = {k: _requirement_names(v) for k, v in PYPROJECT["project"]["optional-dependencies"].items()}
    for _uid, name, plugin, modules, extra in CODECS:
        dists = {DIST[m] for m in modules}
        have = deps if extra == "core" else deps | extras[extra]
        assert dists <= have, f"{name} via {plugin}: {dists - have} not in {extra}"
    core = {(uid, name) for uid, name, _, _, extra in CODECS if extra == "core"}
    assert {(uid, name) for uid, name, *_ in CODECS} - core == {
        ("1.2.840.10008.1.2.4.51", "JPEG Extended, 12-bit samples")}


# --- the codec table, decoded ---------------------------------------------------------------


def _image(bits: int) -> np.ndarray:
    """A smooth 64×64 test image using ``bits`` bits (smooth, so lossy codecs stay close)."""
    y, x = np.mgrid[0:64, 0:64]
    img = (np.sin(x / 9.0) + np.cos(y / 7.0) + 2) / 4 * (2**bits - 1)
    return img.round().astype(np.uint8 if bits <= 8 else np.uint16)


def _dataset(arr: np.ndarray, bits: int):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = MRImageStorage
    ds.Modality = "MR"
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = arr.itemsize * 8, bits, bits - 1
    ds.PixelData = arr.tobytes()
    return ds


def _sample(uid: str, name: str, tmp_path: Path):
    """(file, expected pixels, tolerance) for ``uid``, or a reason to skip."""
    from pydicom import dcmread

    if uid in REAL_FILES and (REAL / REAL_FILES[uid]).is_file() and (REAL / "1.dcm").is_file():
        return REAL / REAL_FILES[uid], dcmread(REAL / "1.dcm").pixel_array, 0
    bits = 8 if uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51") else 12
    if "12-bit" in name:
        bits = 12
    arr = _image(bits)
    ds = _dataset(arr, bits)
    path = tmp_path / "sample.dcm"
    tol = 0
    if uid == "1.2.840.10008.1.2.1.99":  # deflate: pydicom inflates the dataset itself
        ds.file_meta.TransferSyntaxUID = uid
    elif uid == "1.2.840.10008.1.2.5":
        ds.compress(uid, encoding_plugin="pydicom")
    elif uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"):
        from pydicom.encaps import encapsulate

        if bits == 12:  # only imagecodecs (not a dependency) writes 12-bit JPEG here
            if not _installed(("imagecodecs",)):
                return "no 12-bit JPEG encoder (imagecodecs) and no such real-data file"
            import imagecodecs

            frame = imagecodecs.jpeg8_encode(arr, level=95, bitspersample=12)
        else:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=95)
            frame = buf.getvalue()
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = uid
        tol = 8 if bits == 8 else 64
    elif uid == "1.2.840.10008.1.2.4.81" and _installed(("jpeg_ls",)):
        ds.compress(uid, encoding_plugin="pyjpegls", jls_error=2)
        tol = 2
    elif uid in ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91") and _installed(("openjpeg",)):
        kwargs = {} if uid.endswith(".90") else {"j2k_cr": [4]}
        ds.compress(uid, encoding_plugin="pylibjpeg", **kwargs)
        tol = 0 if uid.endswith(".90") else 64
    else:
        return f"no sample of {name}: not in the real-data set and no encoder installed"
    ds.save_as(path, enforce_file_format=True)
    return path, arr, tol


@pytest.mark.parametrize(("uid", "name", "plugin", "modules", "extra"), CODECS,
                         ids=[f"{c[1]}-{c[2] or 'native'}" for c in CODECS])
def test_codec_table(uid, name, plugin, modules, extra, tmp_path):
    if not _installed(modules):
        pytest.skip(f"{plugin} for {name} needs {', '.join(DIST[m] for m in modules)} "
                    f"(extra: {extra}), not installed")
    from pydicom import dcmread
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    if plugin in ("", "pydicom") and uid != "1.2.840.10008.1.2.5":
        assert not UID(uid).is_compressed
    else:
        decoder = get_decoder(uid)
        assert plugin in decoder.available_plugins, (
            f"pydicom offers {decoder.available_plugins} for {name}, not {plugin}")
    sample = _sample(uid, name, tmp_path)
    if isinstance(sample, str):
        pytest.skip(sample)
    path, expected, tol = sample
    ds = dcmread(path)  # as mriviewer reads it (pixel_array(path) does not inflate Deflate)
    if plugin:
        ds.pixel_array_options(decoding_plugin=plugin)
    got = ds.pixel_array
    assert got.shape == expected.shape
    diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= tol, f"{name} via {plugin}: max difference {diff.max()} > {tol}"


# --- the PyInstaller recipe -----------------------------------------------------------------


def _spec() -> dict:
    """The constants of packaging/mriviewer.spec (executed without PyInstaller), read as
    ``packaging/check_spec.py`` reads them."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_spec", ROOT / "packaging" / "check_spec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.spec_constants()


def test_spec_lists_what_exists():
    spec = _spec()
    assert (ROOT / "packaging" / "mriviewer_entry.py").is_file()
    for module in spec["HIDDEN_IMPORTS"]:
        # A missing optional codec only shrinks the table above; the recipe must not name typos.
        if module.split(".")[0] in ("gdcm", "_gdcm", "jpeg_ls", "openjpeg", "rle"):
            if not _installed((module.split(".")[0],)):
                continue
        assert importlib.util.find_spec(module) is not None, f"hidden import {module} not found"
    assert "libjpeg" in spec["GPL_MODULES"]
    assert "triton" in spec["EXCLUDES"] and "mriviewer" not in spec["EXCLUDES"]
    desktop = (ROOT / "mriviewer" / "resources" / "mriviewer.desktop").read_text(encoding="utf-8")
    assert re.search(r"^Exec=mriviewer\b", desktop, re.M) and re.search(r"^Icon=mriviewer$", desktop, re.M)
