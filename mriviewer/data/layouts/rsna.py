"""RSNA-MICCAI 2021: ``<root>[/train]/<case id>/{FLAIR,T1w,T1wCE,T2w}/Image-N.dcm`` with a label CSV
``BraTS21ID,MGMT_value[,…]`` in the root or its parent (IDs may be unpadded integers: case folder
``00046`` is ID ``46``). Task: MGMT promoter methylation (binary).
"""

from __future__ import annotations

import math
from pathlib import Path

from mriviewer.core.errors import DatasetError
from mriviewer.core.volume import MODALITIES
from mriviewer.data.cases import Case, Dataset, ModalitySource
from mriviewer.data.labels import _find_csv, _id_key, read_label_table
from mriviewer.data.listing import FolderListing, _is_class_dir, _isdir, _subdirs
from mriviewer.io.dicom.scan import has_dicom_file


# --- layouts -------------------------------------------------------------------------------
def _looks_rsna_case(d: Path) -> bool:
    return any(_isdir(d / m) for m in MODALITIES)


def _rsna_case_dirs(listing: FolderListing) -> list[Path]:
    """Sub-folders that are RSNA cases: they hold a modality folder, or (an unreadable or
    broken case among real ones) their name is a number."""
    cases = [d for d in listing.dirs if _looks_rsna_case(d)]
    if not cases:
        return []
    return [d for d in listing.dirs if d in cases or d.name.isdigit()]


def _claims_rsna_train(listing: FolderListing) -> bool:
    train = listing.path / "train"
    return train in listing.dirs and any(_looks_rsna_case(d) for d in _subdirs(train)[:50])


def _build_rsna_train(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    train = listing.path / "train"
    ds = _rsna(train, label_dirs=[listing.path, train])
    return ds, {train}


def _claims_rsna(listing: FolderListing) -> bool:
    return any(_looks_rsna_case(d) for d in listing.dirs[:50])


def _build_rsna(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    case_dirs = _rsna_case_dirs(listing)
    ds = _rsna(listing.path, label_dirs=[listing.path, listing.path.parent], case_dirs=case_dirs)
    return ds, set(case_dirs)


def _claims_rsna_case(listing: FolderListing) -> bool:
    return any(d.name in MODALITIES and not _is_class_dir(d) for d in listing.dirs)


def _build_rsna_case(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    ds = _rsna_single_case(listing.path)
    return ds, {d for d in listing.dirs if d.name in MODALITIES}


def _rsna_case(case_dir: Path) -> Case:
    case = Case(case_dir.name, patient_id=case_dir.name)  # RSNA-MICCAI: one case per patient
    try:
        FolderListing.read(case_dir)
    except DatasetError as exc:
        case.errors.append(str(exc))
        return case
    for m in MODALITIES:
        series = case_dir / m
        if not _isdir(series):
            continue
        try:
            has_dicom = has_dicom_file(series)
        except OSError as exc:
            case.errors.append(f"{series}: cannot list folder ({exc})")
            continue
        if has_dicom:
            case.modalities[m] = ModalitySource(m, series, "dicom",
                                                reason=f"folder named {m!r} (RSNA-MICCAI layout)")
        else:
            case.errors.append(f"{series}: folder contains no DICOM files")
    if not case.modalities and not case.errors:
        case.errors.append(f"{case_dir}: no modality folder (FLAIR, T1w, T1wCE, T2w) with DICOM files")
    return case


def _rsna(case_root: Path, label_dirs: list[Path], case_dirs: list[Path] | None = None) -> Dataset:
    ds = Dataset(case_root, "rsna-miccai")
    if case_dirs is None:
        case_dirs = _rsna_case_dirs(FolderListing.read(case_root))
    ds.cases = [_rsna_case(d) for d in case_dirs]
    csv_path = _find_csv(label_dirs, required=("BraTS21ID", "MGMT_value"))
    if csv_path is not None:
        ds.class_names = ["MGMT unmethylated", "MGMT methylated"]
        ds.label_source = csv_path
        table = read_label_table(csv_path, "BraTS21ID", "MGMT_value", ds.warnings)
        for c in ds.cases:
            row = table.get(_id_key(c.case_id))
            if row is None:
                continue
            if row.conflict:
                continue  # reported by read_label_table; the case stays unlabelled
            try:
                number = float(row.value)
            except ValueError:
                number = math.nan
            if number in (0.0, 1.0):
                c.label = int(number)
            else:
                c.label = None
                c.errors.append(f"{csv_path}: MGMT_value {row.value!r} for case {c.case_id} is not 0 or 1")
        unlabelled = sum(c.label is None for c in ds.cases)
        if unlabelled:
            ds.warnings.append(f"{csv_path}: {unlabelled} case(s) have no label")
    else:
        ds.warnings.append(f"{case_root}: no label CSV with BraTS21ID,MGMT_value found")
    return ds


def _rsna_single_case(case_dir: Path) -> Dataset:
    ds = _rsna(case_dir.parent, label_dirs=[case_dir.parent, case_dir.parent.parent], case_dirs=[case_dir])
    ds.root = case_dir
    return ds
