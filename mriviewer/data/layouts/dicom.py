"""DICOM trees: every series found by its headers (:func:`mriviewer.io.dicom.scan.scan_series`),
one case per study, each series' modality guessed from its description.
"""

from __future__ import annotations

from pathlib import Path

from mriviewer.core.errors import DatasetError
from mriviewer.data.cases import UNKNOWN_MODALITY, Case, Dataset, ModalitySource
from mriviewer.data.listing import FolderListing
from mriviewer.data.modality import guess_modality
from mriviewer.io.dicom.scan import is_dicom_file


def _claims_dicom(listing: FolderListing) -> bool:
    return any(listing.sizes.get(f, 0) >= 132 and is_dicom_file(f) for f in listing.files)


def _build_dicom(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    ds = _dicom_series_case(listing.path)
    used = {f for c in ds.cases for s in c.modalities.values() for f in (s.files or ())}
    if any(not s.files for c in ds.cases for s in c.modalities.values()):  # one series: every DICOM file
        used |= {f for f in listing.files if listing.sizes.get(f, 0) >= 132 and is_dicom_file(f)}
    used |= {f for f in listing.files if any(w.startswith(f"{f}:") for w in ds.warnings)}
    return ds, used


def _dicom_series_case(folder: Path, only: Path | None = None) -> Dataset:
    """A folder of DICOM files. One series: one case. Several series of one study (same
    PatientID and StudyInstanceUID) whose descriptions name different modalities: one case with
    those modalities. Otherwise one case per series. Modalities come from SeriesDescription
    (the reason is kept on each :class:`ModalitySource`).

    With ``only`` (a DICOM file of the folder), just the series holding that file: a single
    file argument never opens unrelated series that share its folder.
    """
    from mriviewer.io.dicom.scan import scan_series

    ds = Dataset(folder, "dicom-series")
    series, problems = scan_series(folder)
    if only is not None:
        idx = next((i for i, s in enumerate(series) if any(f.name == only.name for f in s.files)), None)
        if idx is None:
            problem = next((p for p in problems if p.startswith(f"{folder / only.name}:")), None)
            raise DatasetError(problem or f"{only}: not part of any readable DICOM series")
        info = series[idx]
        m, reason = _series_guess(info, folder)
        if len(series) == 1 and not problems:  # the folder is this one series
            src = ModalitySource(m, folder, "dicom", reason=reason)
        else:
            src = ModalitySource(m, info.files[0] if len(info.files) == 1 else folder, "dicom",
                                 tuple(info.files), reason=reason)
            ds.warnings.extend(problems)
            if len(series) > 1:
                ds.warnings.append(
                    f"{only}: only its own series is opened ({len(info.files)} file(s)); "
                    f"{len(series) - 1} other series in {folder} are not (open the folder for them)")
        ds.cases.append(Case(_series_case_id(folder, info, idx + 1, len(series)), {m: src},
                             patient_id=info.patient_id))
        return ds
    ds.warnings.extend(problems)
    if not series:
        raise DatasetError(f"{folder}: no readable DICOM series" + (f" ({problems[0]})" if problems else ""))

    def source(info, modality, reason):
        if len(series) == 1 and not problems:  # the one series holds every DICOM file
            return ModalitySource(modality, folder, "dicom", reason=reason)
        return ModalitySource(modality, info.files[0] if len(info.files) == 1 else folder, "dicom",
                              tuple(info.files), reason=reason)

    guesses = [_series_guess(info, folder) for info in series]
    mods = [m for m, _ in guesses]
    one_study = len({info.study for info in series}) == 1
    if len(series) > 1 and one_study and len(set(mods)) == len(mods) and UNKNOWN_MODALITY not in mods:
        ds.cases.append(Case(folder.name, {m: source(info, m, r)
                                           for info, (m, r) in zip(series, guesses, strict=True)},
                             patient_id=series[0].patient_id))
        return ds
    for n, (info, (modality, reason)) in enumerate(zip(series, guesses, strict=True), start=1):
        ds.cases.append(Case(_series_case_id(folder, info, n, len(series)),
                             {modality: source(info, modality, reason)}, patient_id=info.patient_id))
    return ds


def _series_case_id(folder: Path, info, n: int, n_series: int) -> str:
    if n_series == 1:
        return folder.name
    return info.files[0].name if len(info.files) == 1 else f"{folder.name}-{n}"


def _series_guess(info, folder: Path) -> tuple[str, str]:
    if info.description:
        return guess_modality(info.description, "SeriesDescription")
    return guess_modality(folder.name, "folder name (no SeriesDescription)")
