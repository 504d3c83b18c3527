"""Finding DICOM files and grouping a folder's files into series from their headers alone.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from mriviewer.core.errors import LoadError
from mriviewer.io.dicom.geometry import _check_iop
from mriviewer.io.dicom.headers import _POS_TOL_MM, VOLUME_KEYS, _facts


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` starts with the DICOM preamble ``DICM`` at byte 128 (PS3.10 7.1).

    Files without a preamble (rare, old) are not recognised here; use
    :func:`read_dicom_series` with explicit file lists for those.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def has_dicom_file(folder: Path) -> bool:
    """True when ``folder`` holds at least one DICOM file (stops at the first one found)."""
    return any(p.is_file() and is_dicom_file(p) for p in Path(folder).iterdir())


@dataclass
class SeriesInfo:
    """One image series found by :func:`scan_series` (headers only).

    Attributes:
        files: the series' files (one for a multi-frame image).
        uid: SeriesInstanceUID.
        description: SeriesDescription (may be empty).
        rows, columns: in-plane matrix.
        multiframe: an enhanced (multi-frame) image.
        study: ``"PatientID|StudyInstanceUID"`` of its first file.
    """

    files: list[Path]
    uid: str
    description: str
    rows: int
    columns: int
    multiframe: bool = False
    study: str = ""

    @property
    def patient_id(self) -> str | None:
        """The series' PatientID (0010,0020), or ``None`` when the files have none."""
        return self.study.split("|", 1)[0] or None


def scan_series(folder: Path) -> tuple[list[SeriesInfo], list[str]]:
    """Group the DICOM files directly in ``folder`` into series, reading headers only.

    Files are grouped by SeriesInstanceUID, then split where orientation
    (ImageOrientationPatient, normalised, to 1e-3) or matrix size differ; a multi-frame file is
    a series of its own. Files at one ImagePositionPatient stay together when they are copies
    (same SOPInstanceUID) or the volumes of a 4D series (told apart by one of
    :data:`VOLUME_KEYS`), and when only some positions hold several files
    (:func:`read_dicom_series` then keeps one per position and names the others). Only a group
    whose files *all* sit at one position with nothing to tell them apart (the same image stored
    several times, e.g. in different transfer syntaxes) is split into one series per file.

    A file that holds no image (Rows or Columns 0) is never a series: it is a problem of the
    folder, named, and left out. So is a file that cannot be placed (no usable
    ImageOrientationPatient; NumberOfFrames > 1 without per-frame functional groups) when it
    shares its SeriesInstanceUID with a series that can: a damaged file, not a series of its
    own. Without such a series it stays one, so that reading it says what is wrong.

    Returns:
        ``(series, problems)``: series in file-name order of their first file, and messages
        naming DICOM files whose header could not be read or that were left out (so when
        ``problems`` is empty the series hold every DICOM file of the folder).
    """
    groups: dict[tuple, list[tuple[Path, dict]]] = defaultdict(list)
    problems: list[str] = []
    singles: list[SeriesInfo] = []
    loose: list[tuple[Path, dict, str, tuple]] = []  # (path, facts, why unplaceable, fallback group)
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        got = _header_facts(path, problems)
        if got is None:
            continue
        hdr, facts = got
        uid, rows, cols = facts["uid"], facts["rows"], facts["cols"]
        if rows <= 0 or cols <= 0:  # no image: a problem of the folder's series, not a series of its own
            problems.append(f"{path}: Rows {rows}, Columns {cols}: the file holds no image; left out of its series")
            continue
        if facts["frames"] > 1:
            if "PerFrameFunctionalGroupsSequence" not in hdr:
                loose.append((path, facts, f"NumberOfFrames {facts['frames']} without per-frame "
                                           "functional groups: its frames cannot be placed", ()))
                continue
            singles.append(SeriesInfo([path], uid, facts["description"], rows, cols, multiframe=True,
                                      study=facts["study"]))
            continue
        iop_key, why, raw_key = _orientation_key(facts["iop"], path)
        if why:
            loose.append((path, facts, why, (uid, raw_key, rows, cols)))
            continue
        groups[(uid, iop_key, rows, cols)].append((path, facts))
    series = singles + _grouped(groups)
    good = defaultdict(int)
    for info in series:
        good[info.uid] += len(info.files)
    alone: dict[tuple, list[tuple[Path, dict]]] = defaultdict(list)
    for path, facts, why, fallback in loose:
        if good.get(facts["uid"]):
            name = f"'{facts['description']}'" if facts["description"] else facts["uid"]
            problems.append(f"{path}: {why}; a damaged file, left out of its series ({name}, "
                            f"{good[facts['uid']]} files)")
        elif fallback:
            alone[fallback].append((path, facts))
        else:
            series.append(SeriesInfo([path], facts["uid"], facts["description"], facts["rows"],
                                     facts["cols"], multiframe=True, study=facts["study"]))
    series.extend(_grouped(alone))
    series.sort(key=lambda s: s.files[0].name)
    return series, problems


def _header_facts(path: Path, problems: list[str]) -> tuple[pydicom.Dataset, dict] | None:
    """``(header, facts)`` of a DICOM file (no pixel data read); ``None`` for a file without the
    DICOM preamble (silently) or whose header cannot be read (added to ``problems``)."""
    try:  # one open per file: a file without the DICOM preamble is skipped silently
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdr = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        return None
    except Exception as exc:
        problems.append(f"{path}: cannot read DICOM header ({type(exc).__name__}: {exc})")
        return None
    try:
        return hdr, _facts(hdr, path)
    except LoadError as exc:
        problems.append(str(exc))
        return None


def _orientation_key(iop: np.ndarray | None, path: Path) -> tuple[tuple | None, str | None, tuple | None]:
    """``(key, why, raw key)``: the orientation to group by (the checked, normalised cosines to
    1e-3), or why the file cannot be placed (then ``key`` is ``None``); ``raw key`` is the
    cosines as stored (to 1e-3), to group unplaceable files among themselves."""
    raw = tuple(np.round(iop, 3)) if iop is not None and np.isfinite(iop).all() else None
    try:
        checked, _ = _check_iop(iop, path)
    except LoadError as exc:
        return None, exc.reason, raw
    return tuple(np.round(checked, 3)), None, raw


def _grouped(groups: dict[tuple, list[tuple[Path, dict]]]) -> list[SeriesInfo]:
    """One :class:`SeriesInfo` per group, or one per file for the same image stored several times."""
    series = []
    for (uid, iop_key, rows, cols), members in groups.items():
        desc, study = members[0][1]["description"], members[0][1]["study"]
        if _same_image_several_times(members, iop_key):
            series.extend(SeriesInfo([p], uid, desc, rows, cols, study=study) for p, _ in members)
        else:
            series.append(SeriesInfo([p for p, _ in members], uid, desc, rows, cols, study=study))
    return series


def _same_image_several_times(members: list[tuple[Path, dict]], iop_key) -> bool:
    """True when every file of a group sits at one position, they are not copies of one
    SOP instance, and no :data:`VOLUME_KEYS` attribute tells them apart."""
    if len(members) < 2 or iop_key is None:
        return False
    normal = np.cross(np.array(iop_key[:3]), np.array(iop_key[3:]))
    positions = []
    for _, f in members:
        ipp = f["ipp"]
        if ipp is None or not np.isfinite(ipp).all():
            return False
        positions.append(float(ipp @ normal))
    if np.ptp(positions) > _POS_TOL_MM:
        return False  # a stack: at most some positions doubled; read_dicom_series sorts it out
    sops = {f["sop"] for _, f in members}
    if len(sops) == 1 and "" not in sops:
        return False  # copies of one file
    return not any(len({f["keys"].get(k) for _, f in members}) > 1 for k in VOLUME_KEYS)
