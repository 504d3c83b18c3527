"""Helpers shared by the bad-input tests: copies of the demo's series and datasets, junk folders, header corruptions.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps caches in ./.hypothesis; send them to a temporary folder (as conftest does
# with the volume cache) unless the caller chose a place.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="mriviewer-hypothesis-"))


MODALITIES = ("FLAIR", "T1w", "T1wCE", "T2w")


# Bytes of an explicit-VR little-endian data element header (tag group, element, VR).
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010)


IPP_ELEMENT = b"\x20\x00\x32\x00DS"  # (0020,0032) ImagePositionPatient


IOP_ELEMENT = b"\x20\x00\x37\x00DS"  # (0020,0037) ImageOrientationPatient


ROWS_ELEMENT = b"\x28\x00\x10\x00US"  # (0028,0010) Rows


# ---------------------------------------------------------------------------- helpers
def _copy_series(demo_dir: Path, dest: Path, case: int = 0, modality: str = "FLAIR") -> list[Path]:
    """Copy one demo series to ``dest``; returns the copies sorted by name."""
    src = sorted((demo_dir / "train").iterdir())[case] / modality
    shutil.copytree(src, dest)
    return sorted(dest.glob("*.dcm"))


def _copy_dataset(demo_dir: Path, dest: Path, n_cases: int = 3) -> Path:
    """An RSNA-layout copy of the first ``n_cases`` demo cases with the demo's label CSV
    (which also lists the cases not copied)."""
    for case in sorted((demo_dir / "train").iterdir())[:n_cases]:
        shutil.copytree(case, dest / "train" / case.name)
    shutil.copy(demo_dir / "train_labels.csv", dest / "train_labels.csv")
    return dest


def _pixel_value_offset(raw: bytes) -> int:
    """Offset of the first pixel byte (explicit VR OW: tag 4 + VR 2 + reserved 2 + length 4)."""
    at = raw.rfind(PIXEL_DATA_TAG)
    assert at > 132
    return at + 12


def _set_byte(raw: bytes, element: bytes, offset: int, value: bytes) -> bytes:
    """``raw`` with ``value`` written at ``offset`` bytes after the first ``element`` header."""
    at = raw.find(element)
    assert at > 0, f"element {element!r} not found"
    out = bytearray(raw)
    out[at + offset:at + offset + len(value)] = value
    return bytes(out)


def _bad_ds_value(raw: bytes) -> bytes:
    # First character of ImagePositionPatient's value becomes 'X' ('-100.5' -> 'X100.5').
    return _set_byte(raw, IPP_ELEMENT, 8, b"X")


def _bad_vr(raw: bytes) -> bytes:
    # VR of ImageOrientationPatient 'DS' becomes 'D\x9d' (unknown VR).
    return _set_byte(raw, IOP_ELEMENT, 5, b"\x9d")


def _no_rows(raw: bytes) -> bytes:
    # Rows (0028,0010) becomes (0028,0012): the file has no Rows any more.
    return _set_byte(raw, ROWS_ELEMENT, 2, b"\x12")


def _junk_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("scanner notes\n")
    (folder / "series.nfo").write_bytes(bytes(range(256)) * 4)
    (folder / "Image-1.dcm").write_bytes(b"\0" * 50)  # named like DICOM, too short for one
    (folder / "thumb.bin").write_bytes(b"\x89PNG\r\n" + b"\0" * 300)
    return folder


# Malformed header values, found by the fuzz test below and pinned here.
CORRUPTIONS = {"bad-DS-value": _bad_ds_value, "unknown-VR": _bad_vr, "no-Rows": _no_rows}
