"""Find cases, modalities and labels in a folder.

Supported layouts (:func:`discover` picks one by looking at the folder):

* **RSNA-MICCAI 2021** — ``<root>[/train]/<case id>/{FLAIR,T1w,T1wCE,T2w}/Image-N.dcm`` with a
  label CSV ``BraTS21ID,MGMT_value[,…]`` in the root or its parent (IDs may be unpadded
  integers: case folder ``00046`` is ID ``46``). Task: MGMT promoter methylation (binary).
* **BraTS NIfTI** — one folder per case with files named as in BraTS 2018 (``FLAIR.nii.gz``,
  ``T1.nii.gz``, ``GT_W.nii.gz``), 2019 (``<id>_{flair,t1,t1ce|t1post,t2,seg}.nii.gz``) or 2023
  (``<id>-{t2f,t1n,t1c,t2w,seg}.nii.gz``); an optional CSV with a case-id column and a label
  column. A folder with BraTS 2018/2019 ``HGG/`` and ``LGG/`` sub-folders of such cases is one
  dataset labelled by the sub-folder (classes ``HGG``, ``LGG``; case ids ``HGG/<case>``).
* **2D image folder** — ``<root>/<class name>/*.{jpg,jpeg,png}``; each image is a case with a
  single slice, its class the folder name.
* **Raw NIfTI export** — one folder holding one NIfTI file per series, named as archives and
  converters write them (dcm2niix ``3_AX_T2_FLAIR.nii.gz``, ``T1_MPRAGE_SAG_5.nii.gz``,
  ``t2_tse_tra.nii``, ``AX_T1_POST_GD.nii.gz``; BIDS ``sub-01_ses-1_FLAIR.nii.gz``,
  ``sub-01_ce-gd_T1w.nii.gz``): one case (layout ``raw-nifti``); the modality of each file is
  guessed from its name (:func:`guess_modality`) and the reason kept on its
  :class:`ModalitySource`; names that say none of the four structural modalities are
  ``other``, ``other-2``, …; segmentations (``seg``, ``mask``, ``label``, ``GlistrBoost``,
  ``aseg``) are the case's labels. Files on different voxel grids are reported (the viewer
  resamples them onto one grid).
* A single DICOM series folder, NIfTI file or image: one case. A single DICOM *file* opens only
  its own series (the files of its folder with the same SeriesInstanceUID and geometry).
* Loose 2D images in a folder (no class folders): one unlabelled case each (layout ``images``).
* Anything else: every sub-folder discovered on its own (layout ``collection``).
* **Assembled** — several folders, each given a class by the user (``--data HGG=path
  --data healthy=path``): see :func:`assemble` and :func:`parse_data_args`.

Each folder is judged on its own by the :data:`LAYOUTS` registry, and what no layout claims is
reported or discovered further, so mixed folders lose nothing (see :func:`discover`).

Nothing is decoded here: discovery reads folder listings, the label CSV and, for raw NIfTI
exports only, NIfTI headers, so it is fast on large trees. A case that cannot be used is kept
with its ``errors``; discovery never fails because of one bad case or one unreadable folder.
Label files are checked row by row (:func:`read_label_table`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .dicom import has_dicom_file, is_dicom_file
from .errors import DatasetError, MriViewerError
from .io import IMAGE_SUFFIXES, is_nifti
from .volume import MODALITIES

log = logging.getLogger(__name__)

__all__ = ["case_identity", "ModalitySource", "Case", "Dataset", "discover", "modality_from_name",
           "series_modality", "guess_modality", "UNKNOWN_MODALITY", "DATASET_SETTINGS", "assign_modality",
           "parse_data_args", "assemble", "Layout", "LAYOUTS", "FolderListing", "LabelRow",
           "read_label_table", "MAX_CLASSES", "MAX_LABEL_FIELD", "LabelFileError"]

#: Modality name used for the single channel of a 2D image case.
IMAGE_MODALITY = "image"

#: Modality of a series whose description names none of the structural ones.
UNKNOWN_MODALITY = "other"

#: Optional JSON file in a dataset folder (or its parent) with suggested settings, e.g.
#: ``{"train": {"model": "resnet18-2d", "modalities": ["T1wCE"], "epochs": 10}}``; the GUI's
#: Train panel starts from them.
DATASET_SETTINGS = "mriviewer.json"

_NIFTI_TOKENS = {
    "flair": "FLAIR", "t2f": "FLAIR", "t2flair": "FLAIR",
    "t1": "T1w", "t1n": "T1w", "t1w": "T1w",
    "t1ce": "T1wCE", "t1c": "T1wCE", "t1post": "T1wCE", "t1gd": "T1wCE", "t1wce": "T1wCE",
    "t2": "T2w", "t2w": "T2w",
    "seg": "SEG", "gt_w": "SEG", "mask": "SEG", "gt": "SEG",
}


def modality_from_name(name: str) -> str | None:
    """Map a BraTS-style file name or an RSNA folder name to a modality.

    ``"BraTS19_2013_10_1_t1post.nii.gz"`` → ``"T1wCE"``, ``"BraTS-GLI-00001-000-t2f.nii.gz"``
    → ``"FLAIR"``, ``"GT_W.nii.gz"`` → ``"SEG"``, ``"T1wCE"`` → ``"T1wCE"``; ``None`` when
    nothing matches.
    """
    stem = re.sub(r"\.(nii(\.gz)?|dcm)$", "", name, flags=re.IGNORECASE)
    if stem in MODALITIES:
        return stem
    low = stem.lower()
    if low in _NIFTI_TOKENS:
        return _NIFTI_TOKENS[low]
    token = re.split(r"[_\-. ]", low)[-1]
    return _NIFTI_TOKENS.get(token)


@dataclass
class ModalitySource:
    """Where one modality of a case lives. ``kind`` is ``"dicom"`` (a series folder, or the
    ``files`` of one series when the folder holds several), ``"nifti"`` or ``"image2d"``.
    ``reason`` says why it is this modality, in words (``"file name '3_AX_T2_FLAIR' contains
    'flair'"``, ``"folder named 'FLAIR' (RSNA-MICCAI layout)"``, ``"assigned by the user"``);
    ``mriviewer info`` shows it."""

    modality: str
    path: Path
    kind: str
    files: tuple[Path, ...] = ()
    volume_index: int = 0  # which volume of a 4D NIfTI
    reason: str = ""

    def load(self):
        """Decode this source (no caching): :func:`mriviewer.io.load_volume` on its files or
        path, with its modality name and 4D volume index.

        Raises:
            LoadError: the source cannot be read; the message names the file.
        """
        from .io import load_volume

        return load_volume(list(self.files) if self.files else self.path, self.modality, self.volume_index)


@dataclass
class Case:
    """One patient (or one image, for 2D sets).

    ``label`` is the class index into :attr:`Dataset.class_names`, or ``None`` when unknown.
    ``errors`` holds messages naming files that could not be used; the case stays listed.
    ``source`` is the folder (as the user gave it) the case came from when the dataset was
    put together by :func:`assemble`, else ``None``.
    """

    case_id: str
    modalities: dict[str, ModalitySource] = field(default_factory=dict)
    label: int | None = None
    segmentation: Path | None = None
    errors: list[str] = field(default_factory=list)
    is_2d: bool = False
    label_name: str | None = None
    source: str | None = None

    def first_modality(self, preferred: tuple[str, ...] = MODALITIES) -> str | None:
        """The first present modality in ``preferred`` order, else any present one."""
        for m in preferred:
            if m in self.modalities:
                return m
        return next(iter(self.modalities), None)


@dataclass
class Dataset:
    """Cases found under ``root`` with the task their labels define.

    ``task`` is ``"binary"``, ``"multiclass"`` or ``"none"`` (no labels). ``patient_ids``
    says whether case ids identify patients (False for 2D image sets, where one patient's
    images may be several cases).
    """

    root: Path
    layout: str
    cases: list[Case] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    label_source: Path | None = None
    warnings: list[str] = field(default_factory=list)
    patient_ids: bool = True
    settings: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        if self.layout == "collection" or not self.class_names or all(c.label is None for c in self.cases):
            return "none"
        return "binary" if len(self.class_names) == 2 else "multiclass"

    @property
    def modalities(self) -> list[str]:
        """Modalities present in at least one case, standard ones first (SEG excluded)."""
        found = {m for c in self.cases for m in c.modalities}
        ordered = [m for m in MODALITIES if m in found]
        return ordered + sorted(found - set(MODALITIES) - {"SEG"})

    def case(self, case_id: str) -> Case:
        """The case called ``case_id``; a number also finds a zero-padded id (``0`` →
        ``00000``, as RSNA-MICCAI's label files write them) when exactly one matches.

        Raises:
            DatasetError: no such case.
        """
        for c in self.cases:
            if c.case_id == case_id:
                return c
        if str(case_id).isdigit():
            same = [c for c in self.cases if c.case_id.isdigit() and int(c.case_id) == int(case_id)]
            if len(same) == 1:
                return same[0]
        raise DatasetError(f"{self.root}: no case {case_id!r}")

    def labelled(self) -> list[Case]:
        if self.task == "none":
            return []
        return [c for c in self.cases if c.label is not None and not c.errors and c.modalities]

    def label_name(self, case: Case) -> str | None:
        """The class name of ``case``'s label, or ``None``."""
        if case.label_name is not None:
            return case.label_name
        if case.label is not None and 0 <= case.label < len(self.class_names):
            return self.class_names[case.label]
        return None


def case_identity(case: Case) -> str:
    """A stable identity of ``case`` however it was opened (alone, in its dataset, assembled with
    others under another id): a hash of its image files' resolved paths. Checkpoints record it per
    role so a training case is recognised under any case id; hashed, so no path (which may hold
    a patient's name) is stored in clear."""
    import hashlib

    paths = sorted(str(Path(s.path).resolve()) + "|" + "|".join(sorted(str(f) for f in s.files))
                   for s in case.modalities.values())
    return hashlib.sha1("\n".join(paths).encode()).hexdigest()[:20]


def assign_modality(ds: Dataset, old: str, new: str, case_id: str | None = None) -> int:
    """Rename modality ``old`` to ``new`` in every case (or only ``case_id``): the user's
    override when a SeriesDescription or file name was not recognised.

    Returns:
        number of cases changed.

    Raises:
        DatasetError: ``new`` is already present in a case that has ``old``, or no case has
            ``old``.
    """
    changed = 0
    for case in ds.cases:
        if case_id is not None and case.case_id != case_id:
            continue
        if old not in case.modalities:
            continue
        if new in case.modalities:
            raise DatasetError(f"case {case.case_id}: already has {new}; cannot rename {old} to it")
        src = case.modalities.pop(old)
        src.modality = new
        src.reason = f"assigned by the user ({old}={new}; was: {src.reason or old})"
        case.modalities[new] = src
        changed += 1
    if not changed:
        raise DatasetError(f"{ds.root}: no case has modality {old!r}")
    return changed


# ---------------------------------------------------------------------------- discovery
def discover(path: str | Path) -> Dataset:
    """Find the cases under ``path`` (a dataset folder, a case, a series folder or a file).

    Every folder is judged on its own: the :data:`LAYOUTS` are tried in order on the folder's
    entries, each claiming the entries it understands; what no layout claims is looked at again
    (sub-folders are discovered on their own, like a collection), so a folder that mixes
    layouts (a NIfTI case, a DICOM series and a JPEG class folder side by side) loads every case
    it can. Whatever cannot be used — an unreadable folder, a zero-byte image, a broken link, a
    FIFO, a file no layout understands — is named in :attr:`Dataset.warnings`, never dropped
    silently, and never stops the other cases from opening. When one part has labels (a task)
    and others do not, the others' cases are listed without labels (and the warning says so).

    Cases are listed in folder order; a :data:`DATASET_SETTINGS` file in the dataset's root or
    its parent is read into :attr:`Dataset.settings`.

    Raises:
        DatasetError: the path does not exist, is not a regular file or folder (``/dev/null``,
            a FIFO, a socket), or holds nothing mriviewer can read; or its label file is
            unusable (see :func:`read_label_table`).
    """
    ds = _discover(Path(path).expanduser())
    for folder in (ds.root, ds.root.parent):
        f = folder / DATASET_SETTINGS
        if os.path.isfile(f):
            try:
                ds.settings = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                ds.warnings.append(f"{f}: ignored, not valid JSON ({exc})")
            break
    return ds


#: File suffixes that hold no image (notes, label tables, sidecars): never reported as unused.
_AUX_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".md", ".nfo", ".xml", ".html", ".pdf", ".log",
                 ".bval", ".bvec", ".yaml", ".yml", ".ini", ".py", ".sh", ".zip", ".tar", ".gz")


@dataclass
class FolderListing:
    """One folder's entries, read once with ``os.scandir`` (hidden names skipped).

    ``dirs`` and ``files`` (regular files, with ``sizes`` in bytes) are sorted by name;
    ``problems`` names entries that are neither (broken links, FIFOs, sockets, devices) or
    could not be stat-ed. :meth:`without` gives the entries a layout has not claimed.
    """

    path: Path
    dirs: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    sizes: dict[Path, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    depth: int = 0

    @classmethod
    def read(cls, folder: Path, depth: int = 0) -> FolderListing:
        """List ``folder``.

        Raises:
            DatasetError: the folder cannot be listed (permission, I/O error); names it.
        """
        from .io import path_kind

        out = cls(Path(folder), depth=depth)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise DatasetError(f"{folder}: cannot read folder ({exc.strerror or exc})") from exc
        for e in entries:
            if e.name.startswith("."):
                continue
            p = Path(e.path)
            try:
                if e.is_dir():
                    out.dirs.append(p)
                    continue
                if e.is_file():
                    out.sizes[p] = e.stat().st_size
                    out.files.append(p)
                    continue
            except OSError as exc:
                kind = path_kind(p)
                if kind in ("file", "folder", "missing"):
                    kind = f"unreadable entry ({exc.strerror or exc})"
                out.problems.append(f"{p}: not a regular file or folder: a {kind}; skipped")
                continue
            kind = path_kind(p)
            hint = " (a git-annex/DataLad file not fetched?)" if kind == "broken symbolic link" else ""
            out.problems.append(f"{p}: not a regular file or folder: a {kind}{hint}; skipped")
        return out

    def without(self, used: set[Path]) -> FolderListing:
        """The entries not in ``used``."""
        return FolderListing(self.path, [d for d in self.dirs if d not in used],
                             [f for f in self.files if f not in used],
                             {f: s for f, s in self.sizes.items() if f not in used}, [], self.depth)

    def nifti_files(self) -> list[Path]:
        return [f for f in self.files if is_nifti(f)]

    def image_files(self) -> list[Path]:
        return [f for f in self.files if f.suffix.lower() in IMAGE_SUFFIXES]


@dataclass(frozen=True)
class Layout:
    """A folder layout :func:`discover` recognises (in the spirit of MONAI's ``ImageReader``:
    each says whether it claims a folder before it reads it).

    Attributes:
        name: the layout's name (``Dataset.layout`` of what it builds).
        claims: ``claims(listing) -> bool``: whether this layout understands (part of) the
            folder; cheap (folder listings, at most a few file headers).
        build: ``build(listing) -> (Dataset, used)``: the cases and the entries (files and
            folders of the listing) it used; the rest is offered to the next layouts and then
            discovered folder by folder. May raise :class:`DatasetError` (reported as a
            warning when other parts of the folder load).
    """

    name: str
    claims: Callable[[FolderListing], bool]
    build: Callable[[FolderListing], tuple[Dataset, set[Path]]]


def _isdir(p: Path) -> bool:
    return os.path.isdir(p)  # False (not an exception) for unreadable or looping paths


def _discover(root: Path, depth: int = 0) -> Dataset:
    from .io import path_kind

    kind = path_kind(root)
    if kind == "missing":
        raise DatasetError(f"{root}: no such file or folder")
    if kind == "file":
        return _single_file(root)
    if kind != "folder":
        raise DatasetError(f"{root}: not a regular file or folder: a {kind}; nothing was read")
    listing = FolderListing.read(root, depth)
    warnings = list(listing.problems)
    parts: list[Dataset] = []
    remaining = listing
    for layout in LAYOUTS:
        if not (remaining.dirs or remaining.files):
            break
        try:
            if not layout.claims(remaining):
                continue
            ds, used = layout.build(remaining)
        except LabelFileError:
            raise  # an unusable label file is the dataset's problem, not one folder's
        except DatasetError as exc:
            warnings.append(str(exc))
            continue
        except OSError as exc:
            warnings.append(f"{root}: {layout.name}: cannot read ({exc})")
            continue
        if ds.cases:
            parts.append(ds)
        else:
            warnings.extend(ds.warnings)
        remaining = remaining.without(used)
    subs: list[tuple[Path, Dataset]] = []
    for d in remaining.dirs:
        if depth >= _MAX_DEPTH:
            warnings.append(f"{d}: not searched (more than {_MAX_DEPTH} folder levels down)")
            continue
        try:
            sub = _discover(d, depth + 1)
        except _NothingHere:
            continue
        except DatasetError as exc:
            warnings.append(f"{d}: skipped: {exc}" if str(d) not in str(exc) else str(exc))
            continue
        except OSError as exc:
            warnings.append(f"{d}: cannot read ({exc.strerror or exc}); skipped")
            continue
        if sub.cases:
            subs.append((d, sub))
        else:
            warnings.extend(sub.warnings)
    for f in remaining.files:
        if f.suffix.lower() in _AUX_SUFFIXES and not is_nifti(f):
            continue
        if remaining.sizes.get(f) == 0:
            warnings.append(f"{f}: empty file (0 bytes); skipped")
        elif f.suffix.lower() in IMAGE_SUFFIXES + (".dcm", ".nii", ".ima", ".mgz", ".nrrd", ".mha", ".mhd"):
            warnings.append(f"{f}: not used: no layout understands it (format not recognised)")
    ds = _merge(root, parts, subs, warnings)
    if ds is None:
        if warnings:
            raise DatasetError(f"{root}: nothing could be opened; " + "; ".join(warnings[:3])
                               + (f" (and {len(warnings) - 3} more)" if len(warnings) > 3 else ""))
        raise _NothingHere(
            f"{root}: no DICOM series, NIfTI case, RSNA-MICCAI or image-folder layout found")
    return ds


class LabelFileError(DatasetError):
    """A label file whose label column is not class labels (continuous, absurdly many
    classes); the whole dataset is refused rather than trained on nonsense."""


class _NothingHere(DatasetError):
    """A folder with nothing that looks like data (only notes, tables, empty folders)."""


_MAX_DEPTH = 4


def _merge(root: Path, parts: list[Dataset], subs: list[tuple[Path, Dataset]],
           warnings: list[str]) -> Dataset | None:
    """One dataset from the parts built from ``root``'s own entries and the datasets of its
    sub-folders; ``None`` when there is no case at all."""
    if not parts and not subs:
        return None
    if len(parts) == 1 and not subs:
        parts[0].warnings.extend(warnings)
        return parts[0]
    primary = next((p for p in parts if p.class_names and any(c.label is not None for c in p.cases)), None)
    labelled = [s for _, s in subs if s.task != "none"]
    alike = primary is None and not parts and labelled and all(
        s.class_names == labelled[0].class_names and s.layout == labelled[0].layout for s in labelled)
    if alike:
        # Sub-folders labelled alike (kaggle-4class/Testing, or Training + Testing): one task,
        # case ids prefixed by their folder; sub-folders without labels are listed unlabelled.
        first = labelled[0]
        out = Dataset(root, first.layout, class_names=list(first.class_names), label_source=first.label_source,
                      patient_ids=first.patient_ids, settings=dict(first.settings))
        groups = list(subs)
    elif primary is None:
        out = Dataset(root, "collection")
        groups = [(None, p) for p in parts] + list(subs)
    else:
        out = primary
        groups = [(None, p) for p in parts if p is not primary] + list(subs)
    out.warnings.extend(warnings)
    ids = {c.case_id for c in out.cases}
    for d, sub in groups:
        keeps_labels = any(sub is s for s in labelled) if alike else primary is None
        rel = ""
        if d is not None:
            rel = sub.root.relative_to(root).as_posix() if root in sub.root.parents else d.name
        for c in sub.cases:
            if not keeps_labels:
                c.label, c.label_name = None, None
            elif c.label is not None and c.label_name is None and c.label < len(sub.class_names):
                c.label_name = sub.class_names[c.label]
            if rel:
                c.case_id = rel if c.case_id == rel.rsplit("/", 1)[-1] else f"{rel}/{c.case_id}"
            base, k = c.case_id, 1
            while c.case_id in ids:
                k += 1
                c.case_id = f"{base}-{k}"
            ids.add(c.case_id)
            out.cases.append(c)
        out.warnings.extend(sub.warnings)
        out.patient_ids = out.patient_ids and sub.patient_ids
        if alike and not keeps_labels:
            out.warnings.append(f"{d}: {len(sub.cases)} case(s) without labels ({sub.layout}), listed unlabelled")
        elif primary is not None:
            where = d if d is not None else root
            out.warnings.append(
                f"{where}: {len(sub.cases)} case(s) of another layout ({sub.layout}) listed without "
                f"labels; the task comes from {primary.label_source or primary.root}")
    return out


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


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in Path(folder).iterdir() if not p.name.startswith(".") and _isdir(p))
    except OSError:
        return []


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


def _claims_nifti_case(listing: FolderListing) -> bool:
    return _nifti_case_plan(listing.path, listing.nifti_files()) is not None


def _build_nifti_case(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    root = listing.path
    ds = _brats(root.parent, [root], label_dirs=[root.parent])
    return ds, set(listing.nifti_files())


def _nifti_case_dirs(listing: FolderListing) -> list[Path]:
    out = []
    for d in listing.dirs:
        try:
            files = FolderListing.read(d).nifti_files()
        except DatasetError:
            continue
        if _nifti_case_plan(d, files) is not None:
            out.append(d)
    return out


def _claims_nifti_cases(listing: FolderListing) -> bool:
    return bool(_nifti_case_dirs(listing))


def _build_nifti_cases(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    dirs = _nifti_case_dirs(listing)
    return _brats(listing.path, dirs, label_dirs=[listing.path, listing.path.parent]), set(dirs)


def _claims_graded(listing: FolderListing) -> bool:
    return bool(_brats_grade_dirs(listing.dirs))


def _build_graded(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    graded = _brats_grade_dirs(listing.dirs)
    return _brats_graded(listing.path, graded), {folder for folder, _ in graded.values()}


def _claims_image_folder(listing: FolderListing) -> bool:
    return any(_is_class_dir(d) for d in listing.dirs)


def _build_image_folder(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    dirs = [d for d in listing.dirs if _is_class_dir(d)]
    return _image_folder(listing.path, dirs), set(dirs)


def _claims_dicom(listing: FolderListing) -> bool:
    return any(listing.sizes.get(f, 0) >= 132 and is_dicom_file(f) for f in listing.files)


def _build_dicom(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    ds = _dicom_series_case(listing.path)
    used = {f for c in ds.cases for s in c.modalities.values() for f in (s.files or ())}
    if any(not s.files for c in ds.cases for s in c.modalities.values()):  # one series: every DICOM file
        used |= {f for f in listing.files if listing.sizes.get(f, 0) >= 132 and is_dicom_file(f)}
    used |= {f for f in listing.files if any(w.startswith(f"{f}:") for w in ds.warnings)}
    return ds, used


def _claims_nifti_files(listing: FolderListing) -> bool:
    return bool(listing.nifti_files())


def _build_nifti_files(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    files = listing.nifti_files()
    return _nifti_collection(listing.path, files), set(files)


def _claims_images(listing: FolderListing) -> bool:
    return bool(listing.image_files())


def _build_images(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    """Loose 2D images in a folder (no class folders): each a case, unlabelled."""
    ds = Dataset(listing.path, "images", patient_ids=False)
    files = listing.image_files()
    for f in files:
        if listing.sizes.get(f) == 0:
            ds.warnings.append(f"{f}: empty file (0 bytes); skipped")
            continue
        ds.cases.append(Case(f.name, {IMAGE_MODALITY: _image_source(f)}, is_2d=True))
    return ds, set(files)


def _image_source(f: Path) -> ModalitySource:
    return ModalitySource(IMAGE_MODALITY, f, "image2d", reason="2D image")


#: Layout detectors, tried in this order on every folder (see :class:`Layout`).
LAYOUTS: list[Layout] = [
    Layout("rsna-miccai", _claims_rsna_train, _build_rsna_train),
    Layout("rsna-miccai", _claims_rsna, _build_rsna),
    Layout("rsna-miccai", _claims_rsna_case, _build_rsna_case),
    Layout("nifti-case", _claims_nifti_case, _build_nifti_case),
    Layout("nifti-cases", _claims_nifti_cases, _build_nifti_cases),
    Layout("brats-graded", _claims_graded, _build_graded),
    Layout("image-folder", _claims_image_folder, _build_image_folder),
    Layout("dicom-series", _claims_dicom, _build_dicom),
    Layout("nifti-files", _claims_nifti_files, _build_nifti_files),
    Layout("images", _claims_images, _build_images),
]


def _is_class_dir(d: Path) -> bool:
    """A 2D image class folder: no sub-folders, at least one non-empty image, and images make
    at least half of its non-auxiliary files (a DICOM folder with a thumbnail is not one)."""
    try:
        listing = FolderListing.read(d)
    except DatasetError:
        return False
    if listing.dirs:
        return False
    images = [f for f in listing.image_files() if listing.sizes.get(f, 0) > 0]
    data = [f for f in listing.files if f.suffix.lower() not in _AUX_SUFFIXES or is_nifti(f)]
    return bool(images) and 2 * len(images) >= len(data)


def _nifti_collection(folder: Path, files: list[Path] | None = None) -> Dataset:
    """NIfTI volumes in a folder that are not one case (several of one modality, e.g. T1w of
    different subjects, or names that name no modality): each file is a case. Segmentations
    alone are reported, not opened as images."""
    ds = Dataset(folder, "nifti-files")
    files = FolderListing.read(folder).nifti_files() if files is None else files
    guesses = [(f, *guess_modality(f.name)) for f in files]
    by_mod: dict[str, list[Path]] = {}
    for f, m, _ in guesses:
        by_mod.setdefault(m, []).append(f)
    for m, fs in by_mod.items():
        if m in MODALITIES and len(fs) > 1 and len(fs) <= 6:
            ds.warnings.append(f"{folder}: {len(fs)} files look like {m} ({', '.join(f.name for f in fs)}); "
                               "each is opened as its own case")
    for f, m, reason in guesses:
        if m == "SEG":
            ds.warnings.append(f"{f}: a segmentation ({reason}) without its image; not opened as a case")
            continue
        case_id = re.sub(r"\.nii(\.gz)?$", "", f.name, flags=re.IGNORECASE)
        ds.cases.append(Case(case_id, {m: ModalitySource(m, f, "nifti", reason=reason)}))
    return ds


@dataclass
class _NiftiPlan:
    modalities: dict[str, ModalitySource]
    segmentations: list[tuple[Path, str]]
    strict: bool  # every image file named as BraTS/BIDS name them


def _nifti_case_plan(folder: Path, files: list[Path]) -> _NiftiPlan | None:
    """The NIfTI files of ``folder`` as one case, or ``None`` when they are not one case (no
    file names a structural modality, or two name the same one).

    Files whose name names no structural modality become ``other``, ``other-2``, … of the case
    when at least one file does (a raw archive export: localisers, DWI, PD next to T1 and
    FLAIR); segmentations (``seg``, ``mask``, ``label``, ``GlistrBoost``, ``aseg``, …) are the
    case's labels, not images.
    """
    if not files:
        return None
    guesses = [(f, *guess_modality(f.name)) for f in files]
    segs = [(f, r) for f, m, r in guesses if m == "SEG"]
    images = [(f, m, r) for f, m, r in guesses if m != "SEG"]
    known = [m for _, m, _ in images if m in MODALITIES]
    if images and not known:
        return None
    if len(known) != len(set(known)):
        return None
    mods: dict[str, ModalitySource] = {}
    n_other = 0
    for f, m, r in images:
        if m not in MODALITIES:
            n_other += 1
            m = UNKNOWN_MODALITY if n_other == 1 else f"{UNKNOWN_MODALITY}-{n_other}"
        mods[m] = ModalitySource(m, f, "nifti", reason=r)
    strict = all(modality_from_name(f.name) == m for f, m, _ in images)
    return _NiftiPlan(mods, segs, strict)


def _grid_warning(folder: Path, sources: list[ModalitySource]) -> str | None:
    """A warning when the NIfTI files of one case are on different voxel grids (headers only)."""
    import nibabel as nib
    import numpy as np

    grids = []
    for s in sources:
        try:
            img = nib.load(str(s.path))
            shape = tuple(int(n) for n in img.shape[:3])
            grids.append((s, shape, np.asarray(img.affine, dtype=float)))
        except Exception:  # noqa: BLE001 - the load reports it, naming the file
            continue
    if len(grids) < 2:
        return None
    _, shape0, aff0 = grids[0]
    if all(sh == shape0 and np.allclose(a, aff0, atol=1e-3) for _, sh, a in grids[1:]):
        return None

    def describe(s, shape, aff):
        mm = "x".join(f"{v:g}" for v in np.round(np.linalg.norm(aff[:3, :3], axis=0), 2))
        return f"{s.modality} {s.path.name} {'x'.join(map(str, shape))} at {mm} mm"

    return (f"{folder}: the case's files are on different voxel grids ("
            + "; ".join(describe(*g) for g in grids)
            + "); the viewer resamples every modality onto one grid (the finest by default)")


def _rsna_case(case_dir: Path) -> Case:
    case = Case(case_dir.name)
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


def _brats(root: Path, case_dirs: list[Path], label_dirs: list[Path]) -> Dataset:
    """NIfTI case folders: BraTS-named (layout ``brats-nifti``) or raw archive exports with the
    series description in the file names (layout ``raw-nifti`` when any case's modalities were
    guessed from free names; those cases are checked for files on different grids)."""
    ds = Dataset(root, "brats-nifti")
    for d in case_dirs:
        case = Case(d.name)
        try:
            listing = FolderListing.read(d)
        except DatasetError as exc:
            case.errors.append(str(exc))
            ds.cases.append(case)
            continue
        ds.warnings.extend(listing.problems)
        plan = _nifti_case_plan(d, listing.nifti_files())
        if plan is None:
            case.errors.append(f"{d}: its NIfTI files are not one case")
            ds.cases.append(case)
            continue
        case.modalities = plan.modalities
        if plan.segmentations:
            case.segmentation = plan.segmentations[0][0]
            for f, _ in plan.segmentations[1:]:
                ds.warnings.append(f"{f}: another segmentation in {d}; only {case.segmentation.name} is used")
        if not plan.strict:
            ds.layout = "raw-nifti"
            w = _grid_warning(d, list(plan.modalities.values()))
            if w:
                ds.warnings.append(w)
        if not case.modalities:
            case.errors.append(f"{d}: only a segmentation, no image modality")
        ds.cases.append(case)
    csv_path = _find_csv(label_dirs, id_values={_id_key(c.case_id) for c in ds.cases})
    if csv_path is not None:
        _apply_generic_labels(ds, csv_path)
    return ds


#: BraTS 2018/2019 training sets keep their cases in one sub-folder per tumour grade.
_GRADES = ("HGG", "LGG")


def _brats_grade_dirs(dirs: list[Path]) -> dict[str, tuple[Path, list[Path]]]:
    """Grade → (folder, its NIfTI case folders) for sub-folders named ``HGG`` / ``LGG`` (any
    case) that hold at least one BraTS NIfTI case; empty when there are none."""
    found: dict[str, tuple[Path, list[Path]]] = {}
    for grade in _GRADES:
        for d in dirs:
            if d.name.upper() != grade or grade in found:
                continue
            try:
                cases = _nifti_case_dirs(FolderListing.read(d))
            except DatasetError:
                continue
            if cases:
                found[grade] = (d, cases)
    return found


def _brats_graded(root: Path, graded: dict[str, tuple[Path, list[Path]]]) -> Dataset:
    """BraTS 2018/2019 ``HGG/`` and ``LGG/`` folders: the sub-folder is the label (a label CSV
    is not looked for; the grade folders are the labels)."""
    ds = Dataset(root, "brats-nifti")
    ds.class_names = [g for g in _GRADES if g in graded]
    for idx, grade in enumerate(ds.class_names):
        folder, case_dirs = graded[grade]
        sub = _brats(folder, case_dirs, label_dirs=[])
        for c in sub.cases:
            c.case_id = f"{grade}/{c.case_id}"
            c.label = idx
            ds.cases.append(c)
        ds.warnings.extend(sub.warnings)
        skipped = [d for d in _subdirs(folder) if d not in case_dirs]
        if skipped:
            names = ", ".join(d.name for d in skipped[:5]) + (", …" if len(skipped) > 5 else "")
            ds.warnings.append(f"{folder}: {len(skipped)} sub-folder(s) are not NIfTI cases; skipped ({names})")
    return ds


def _image_folder(root: Path, class_dirs: list[Path] | None = None) -> Dataset:
    ds = Dataset(root, "image-folder", patient_ids=False)
    if class_dirs is None:
        class_dirs = [d for d in _subdirs(root) if _is_class_dir(d)]
    ds.class_names = sorted(d.name for d in class_dirs)
    for idx, name in enumerate(ds.class_names):
        listing = FolderListing.read(root / name)
        ds.warnings.extend(listing.problems)
        for f in listing.image_files():
            if listing.sizes.get(f) == 0:
                ds.warnings.append(f"{f}: empty file (0 bytes); skipped")
                continue
            ds.cases.append(Case(f"{name}/{f.name}", {IMAGE_MODALITY: _image_source(f)}, label=idx, is_2d=True))
    ds.warnings.append(
        f"{root}: 2D image folder without patient IDs; each image is treated as its own case, "
        "so images of one patient may fall in both training and validation"
    )
    return ds


def _dicom_series_case(folder: Path, only: Path | None = None) -> Dataset:
    """A folder of DICOM files. One series: one case. Several series of one study (same
    PatientID and StudyInstanceUID) whose descriptions name different modalities: one case with
    those modalities. Otherwise one case per series. Modalities come from SeriesDescription
    (the reason is kept on each :class:`ModalitySource`).

    With ``only`` (a DICOM file of the folder), just the series holding that file: a single
    file argument never opens unrelated series that share its folder.
    """
    from .dicom import scan_series

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
        ds.cases.append(Case(_series_case_id(folder, info, idx + 1, len(series)), {m: src}))
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
                                           for info, (m, r) in zip(series, guesses, strict=True)}))
        return ds
    for n, (info, (modality, reason)) in enumerate(zip(series, guesses, strict=True), start=1):
        ds.cases.append(Case(_series_case_id(folder, info, n, len(series)),
                             {modality: source(info, modality, reason)}))
    return ds


def _series_case_id(folder: Path, info, n: int, n_series: int) -> str:
    if n_series == 1:
        return folder.name
    return info.files[0].name if len(info.files) == 1 else f"{folder.name}-{n}"


def _series_guess(info, folder: Path) -> tuple[str, str]:
    if info.description:
        return guess_modality(info.description, "SeriesDescription")
    return guess_modality(folder.name, "folder name (no SeriesDescription)")


# ---------------------------------------------------------------------------- modality names
#: Tokens that make a NIfTI file a segmentation (label map), not an image: BraTS ``seg``,
#: BraTS 2018 ``GT_W``, ``GlistrBoost`` (TCIA BraTS pre-operative labels), FreeSurfer ``aseg``,
#: BIDS ``dseg``/``probseg``/``mask``, and the usual ``mask``/``label(s)``/``tumor_mask``.
_SEG_TOKENS = ("seg", "segmentation", "dseg", "probseg", "mask", "brainmask", "label", "labels",
               "glistrboost", "aseg", "gt", "tumormask", "tumor_mask")
#: Tokens that mark a post-contrast series (GE/Siemens/Philips protocol names, BIDS ``ce-gd``).
_CONTRAST_TOKENS = ("ce", "gd", "gad", "gado", "gadolinium", "post", "postcontrast", "postgd", "contrast",
                    "+c", "c+", "+gd", "gd+", "mdc", "km")
_T1CE_TOKENS = ("t1c", "t1ce", "t1gd", "t1post", "t1wce", "t1+c", "t1c+", "t1+gd", "t1+", "t1gad", "t1w+c")
#: 3D T1-weighted sequence names (Siemens MPRAGE/MP2RAGE/TFL/VIBE, GE SPGR/FSPGR/BRAVO, Philips TFE).
_T1_WORDS = ("mprage", "mp2rage", "spgr", "fspgr", "bravo", "tfl", "vibe", "tfe")
#: Series that are none of the four structural contrasts.
_OTHER_TOKENS = ("pd", "pdw", "dwi", "adc", "diff", "dti", "trace", "tensor", "bold", "fmri", "perf", "asl",
                 "pwi", "dsc", "dce", "cbf", "rest", "loc", "localizer", "localiser", "scout", "survey", "3plane",
                 "fa", "swi", "swan", "mra", "tof", "angio")


def guess_modality(text: str, what: str = "file name") -> tuple[str, str]:
    """Guess the modality of a NIfTI file name, a SeriesDescription or a folder name, with the
    reason in words.

    Recognised, in this order: the modality names themselves; segmentations (``seg``,
    ``_seg``, ``mask``, ``label(s)``, ``GlistrBoost``, ``aseg``, ``GT_W``, ``dseg``) → ``SEG``;
    BraTS and BIDS suffixes (``t2f``/``flair``, ``t1n``/``t1``/``T1w``, ``t1c``/``t1ce``/
    ``t1gd``/``t1post``, ``t2w``/``t2``; BIDS ``ce-gd`` with ``T1w`` → ``T1wCE``); then what
    scanners and dcm2niix write (``3_AX_T2_FLAIR``, ``T1_MPRAGE_SAG_5``, ``t2_tse_tra``,
    ``AX_T1_POST_GD``, ``T1+C``, ``t2_tirm_tra_dark-fluid``): FLAIR before T2 (FLAIR is
    T2-weighted); T2*/SWI, PD, diffusion, perfusion and localisers are ``other``; a T1 word
    (``t1``, MPRAGE, SPGR, BRAVO, TFE …) with a contrast token (``ce``, ``gd``, ``gad``,
    ``post``, ``+c``, ``contrast``) → ``T1wCE``; ``t2`` → ``T2w``; ``t1`` or a T1 word →
    ``T1w``; otherwise :data:`UNKNOWN_MODALITY`.

    Args:
        text: the name (NIfTI/DICOM extensions are ignored).
        what: how the reason names the text (``"file name"``, ``"SeriesDescription"``, …).

    Returns:
        ``(modality, reason)``, e.g. ``("FLAIR", "file name '3_AX_T2_FLAIR' contains 'FLAIR'")``.
    """
    stem = re.sub(r"\.(nii(\.gz)?|dcm|ima)$", "", str(text).strip(), flags=re.IGNORECASE)
    q = f"{what} {stem!r}"
    if stem in MODALITIES:
        return stem, f"{q} is the modality's name"
    low = stem.lower()
    tokens = [t for t in re.split(r"[^a-z0-9+]+", low) if t]
    tokset = set(tokens)
    seg = next((t for t in re.split(r"[^a-z0-9]+", low) if t in _SEG_TOKENS), None)
    if seg is None and ("tumor_mask" in low or "gt_w" in low):
        seg = "tumor_mask" if "tumor_mask" in low else "GT_W"
    if seg is not None:
        return "SEG", f"{q} contains {seg!r} (a segmentation, not an image)"
    contrast = next((t for t in tokens if t in _CONTRAST_TOKENS), None)
    strict = modality_from_name(stem)
    if strict is not None and strict != "SEG":
        last = re.split(r"[_\-. ]", low)[-1]
        if strict == "T1w" and contrast:
            return "T1wCE", f"{q} ends in {last!r} with {contrast!r} (BIDS ce- entity: post-contrast)"
        return strict, f"{q} ends in {last!r} (BraTS/BIDS naming)"
    if "flair" in low or "t2f" in tokset or re.search(r"dark.?fluid", low):
        word = "flair" if "flair" in low else ("t2f" if "t2f" in tokset else "dark-fluid")
        return "FLAIR", f"{q} contains {word!r}"
    star = re.search(r"t2\s*\*|t2_?star|t2s(?![a-z])|swi|swan|susc", low)
    if star:
        return UNKNOWN_MODALITY, f"{q} contains {star.group(0)!r} (T2*/susceptibility, not a structural modality)"
    ce = next((t for t in tokens if t in _T1CE_TOKENS), None)
    if ce:
        return "T1wCE", f"{q} contains {ce!r} (post-contrast T1)"
    has_t1 = re.search(r"(?:(?<![a-z0-9])|(?<=3d))t1(?![0-9])", low) is not None  # not rest1, t10
    has_t2 = re.search(r"(?<![a-z0-9])t2(?![0-9])", low) is not None
    t1word = "t1" if has_t1 else next((w for w in _T1_WORDS if w in low), None)
    if t1word and contrast:
        return "T1wCE", f"{q} contains {t1word!r} and {contrast!r} (post-contrast T1)"
    other = next((t for t in tokens if t in _OTHER_TOKENS), None)
    if other and not (has_t2 or t1word):
        return UNKNOWN_MODALITY, f"{q} contains {other!r} (not one of FLAIR, T1, T1 post-contrast, T2)"
    if has_t2:
        return "T2w", f"{q} contains 't2'"
    if t1word:
        return "T1w", f"{q} contains {t1word!r}"
    return UNKNOWN_MODALITY, f"{q} names none of FLAIR, T1, T1 post-contrast, T2"


def series_modality(description: str) -> str:
    """Guess the structural modality from a SeriesDescription or folder name: the modality of
    :func:`guess_modality` (``SEG`` counts as :data:`UNKNOWN_MODALITY` here), so the user can
    assign one with ``--assign``."""
    m = guess_modality(description, "SeriesDescription")[0]
    return UNKNOWN_MODALITY if m == "SEG" else m


def _single_file(path: Path) -> Dataset:
    if is_nifti(path):
        m, reason = guess_modality(path.name)
        if m == "SEG":
            raise DatasetError(f"{path}: a segmentation alone cannot be opened as a case ({reason})")
        case_id = re.sub(r"\.nii(\.gz)?$", "", path.name, flags=re.IGNORECASE)
        ds = Dataset(path.parent, "file")
        ds.cases = [Case(case_id, {m: ModalitySource(m, path, "nifti", reason=reason)})]
        return ds
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if path.stat().st_size == 0:
            raise DatasetError(f"{path}: empty file (0 bytes)")
        ds = Dataset(path.parent, "file", patient_ids=False)
        ds.cases = [Case(path.stem, {IMAGE_MODALITY: _image_source(path)}, is_2d=True)]
        return ds
    if is_dicom_file(path):
        return _dicom_series_case(path.parent, only=path)
    raise DatasetError(f"{path}: unknown file type (expected DICOM, NIfTI or a 2D image)")


# ---------------------------------------------------------------------------- assembled
def parse_data_args(values: list[str]) -> list[tuple[str | None, Path]]:
    """Parse ``--data`` values: ``LABEL=PATH`` or ``PATH``.

    A value that contains ``=`` but names an existing file or folder as a whole is a path
    (folder names may contain ``=``); otherwise it is split at the first ``=``. The label is
    stripped of surrounding blanks.

    Returns:
        ``(label, path)`` per value, in order; ``label`` is ``None`` for a plain path.

    Raises:
        DatasetError: a value is empty, or its label or path is empty; the message names the
            value.
    """
    out: list[tuple[str | None, Path]] = []
    for value in values:
        if not value or not value.strip():
            raise DatasetError(f"--data {value!r}: empty value; expected LABEL=PATH or PATH")
        if "=" not in value or Path(value).expanduser().exists():
            out.append((None, Path(value).expanduser()))
            continue
        label, path = value.split("=", 1)
        label = label.strip()
        if not label:
            raise DatasetError(f"--data {value!r}: empty label before '='; expected LABEL=PATH")
        if not path.strip():
            raise DatasetError(f"--data {value!r}: empty path after '='; expected LABEL=PATH")
        out.append((label, Path(path).expanduser()))
    return out


def _folder_name(path: Path) -> str:
    name = Path(os.path.abspath(path)).name
    return re.sub(r"\.nii(\.gz)?$", "", name, flags=re.IGNORECASE) or str(path)


def _common_parent(paths: list[Path]) -> Path:
    parents = [Path(os.path.abspath(p)).parent for p in paths]
    try:
        return Path(os.path.commonpath([str(p) for p in parents]))
    except ValueError:  # different drives
        return parents[0]


def assemble(sources: list[tuple[str, str | Path]]) -> Dataset:
    """Build one labelled dataset from several folders, the class of each given by the user.

    For ``--data HGG=path --data LGG=path --data healthy=path``: each path is
    :func:`discover`-ed on its own and every case found there (labelled or not; its own label
    is replaced) gets the label of its source. Class names are the distinct labels in
    first-seen order, so one label may be given to several paths (``tumour=a tumour=b``).

    Case ids are ``<label>/<folder name>/<case id in its folder>`` (e.g.
    ``healthy/ixi-t1-2mm/t1/IXI012-HH-1211_T1``), made unique with a ``-2``, ``-3`` … suffix on
    the folder name when two sources share label and folder name; :attr:`Case.source` is the
    path as given. Cases keep their ``errors``; each source's warnings are kept, prefixed with
    its label. The dataset's layout is ``"assembled"``, its root the common parent of the
    paths, ``label_source`` ``None`` and ``settings`` empty; ``patient_ids`` holds when it holds
    for every source.

    Args:
        sources: ``(label, path)`` pairs, e.g. from :func:`parse_data_args`.

    Returns:
        the assembled :class:`Dataset`.

    Raises:
        DatasetError: no sources; a label is missing or empty; a source cannot be discovered or
            holds no case (the message names the label and the path); one case's files are given
            under two labels. Given twice under one label, a case counts once (a warning says so).
    """
    if not sources:
        raise DatasetError("no data folders given; expected one or more LABEL=PATH")
    paths = [Path(p).expanduser() for _, p in sources]
    ds = Dataset(_common_parent(paths), "assembled", label_source=None)
    prefixes: set[str] = set()
    ids: set[str] = set()
    seen: dict[str, tuple[str, str]] = {}  # case identity -> (label, case id) of its first source
    for (label, given), path in zip(sources, paths, strict=True):
        if label is None or not str(label).strip():
            raise DatasetError(f"{given}: no label; give it as LABEL={given}")
        label = str(label).strip()
        try:
            sub = discover(path)
        except DatasetError as exc:
            raise DatasetError(f"data {label}={given}: {exc}") from exc
        except OSError as exc:
            raise DatasetError(f"data {label}={given}: cannot read ({exc})") from exc
        if not sub.cases:
            raise DatasetError(f"data {label}={given}: no cases found")
        if label not in ds.class_names:
            ds.class_names.append(label)
        idx = ds.class_names.index(label)
        base = f"{label}/{_folder_name(path)}"
        prefix, n = base, 1
        while prefix in prefixes:
            n += 1
            prefix = f"{base}-{n}"
        prefixes.add(prefix)
        if sub.label_source is not None or sub.class_names:
            ds.warnings.append(f"{label}: {given}: its own labels are replaced by {label!r}")
        repeated = 0
        for c in sub.cases:
            if c.modalities:  # the same files reached through two sources (nested or repeated paths)
                key = case_identity(c)
                if key in seen:
                    first_label, first_id = seen[key]
                    if first_label != label:
                        raise DatasetError(f"data {label}={given}: case {c.case_id} is also {first_id} "
                                           f"({first_label}); one case cannot have two classes")
                    repeated += 1
                    continue
                seen[key] = (label, f"{prefix}/{c.case_id}")
            case_id = f"{prefix}/{c.case_id}"
            k = 1
            while case_id in ids:  # two cases of one source with one id
                k += 1
                case_id = f"{prefix}/{c.case_id}-{k}"
            ids.add(case_id)
            c.case_id = case_id
            c.label = idx
            c.label_name = None
            c.source = str(given)
            ds.cases.append(c)
        if repeated:
            ds.warnings.append(f"{label}: {given}: {repeated} case(s) already given by another {label} "
                               "source; counted once")
        ds.warnings.extend(f"{label}: {w}" for w in sub.warnings)
        ds.patient_ids = ds.patient_ids and sub.patient_ids
    if len(ds.class_names) < 2:
        ds.warnings.append(
            f"only one class ({ds.class_names[0]!r}); a classifier needs at least two labels")
    return ds


# ---------------------------------------------------------------------------- labels
#: Longest ID or label cell accepted (longer: the row is reported and ignored).
MAX_LABEL_FIELD = 256
#: Most classes a label column may define (more: refused as not a class label).
MAX_CLASSES = 1000


@dataclass
class LabelRow:
    """One row of a label table (see :func:`read_label_table`).

    Attributes:
        raw_id: the ID as written (first row when it is repeated).
        value: the label, normalised: blanks stripped, a number written as an integer when it
            is one (``" 1 "``, ``"1.0"`` and ``"1"`` are all ``"1"``).
        line: line number in the file (1 = header).
        conflict: the ID appears on several rows with different labels; the case is left
            unlabelled (:attr:`Dataset.warnings` names the rows).
    """

    raw_id: str
    value: str
    line: int
    conflict: bool = False


def _id_key(case_id: str) -> str:
    """Case ID as matched against label tables: blanks stripped, a zero-padded number is the
    number (``00001`` ≡ ``1``, as RSNA-MICCAI writes them)."""
    s = str(case_id).strip()
    return str(int(s)) if s.isdigit() and len(s) <= 30 else s


def _number(value: str) -> float | None:
    try:
        v = float(value)
    except (ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def _norm_value(value: str) -> str:
    v = value.strip()
    n = _number(v)
    if n is not None and n.is_integer():
        return str(int(n))
    return v


def _decode_table(path: Path, warnings: list[str]) -> str:
    """Text of a label file: UTF-8 (with or without BOM); lines that are not UTF-8 are read
    as Latin-1 and named in a warning."""
    from .io import check_source_path

    try:
        check_source_path(path, "file")
    except MriViewerError as exc:
        raise OSError(str(exc)) from None
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    lines = raw.split(b"\n")
    bad: list[int] = []
    out = []
    for n, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8-sig" if n == 1 else "utf-8"))
        except UnicodeDecodeError:
            bad.append(n)
            out.append(line.decode("latin-1"))
    shown = ", ".join(map(str, bad[:10])) + (", …" if len(bad) > 10 else "")
    warnings.append(f"{path}: not valid UTF-8 on line(s) {shown}; read as Latin-1 (check those labels)")
    return "\n".join(out)


class _FieldLimit:
    """Raise the csv module's field size limit (131,072 characters) for one read: an over-long
    cell is then reported by line instead of failing the whole file."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __enter__(self):
        self.old = csv.field_size_limit()
        csv.field_size_limit(max(self.old, self.size + 1))

    def __exit__(self, *exc):
        csv.field_size_limit(self.old)


def _read_rows(path: Path, warnings: list[str] | None = None) -> list[tuple[int, dict]]:
    """``(line, row)`` for every data row of a CSV file (see :func:`_decode_table`).

    Raises:
        OSError: the file cannot be read.
    """
    text = _decode_table(path, warnings if warnings is not None else [])
    rows: list[tuple[int, dict]] = []
    with _FieldLimit(len(text)):
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            for row in reader:
                rows.append((reader.line_num, row))
        except csv.Error as exc:
            if warnings is not None:
                warnings.append(f"{path}: line {reader.line_num}: {exc}; the rest of the file is not read")
    return rows


def _csv_header(path: Path) -> list[str]:
    try:
        text = _decode_table(path, [])
        with _FieldLimit(len(text)):
            return next(csv.reader(io.StringIO(text, newline="")), [])
    except (OSError, csv.Error):
        return []


def read_label_table(path: Path, id_col: str, label_col: str, warnings: list[str]) -> dict[str, LabelRow]:
    """Read and check the ``id_col`` → ``label_col`` pairs of a CSV label file.

    Every problem is reported in ``warnings`` by file and line, and only the rows concerned are
    left out: an empty ID or label; a cell over :data:`MAX_LABEL_FIELD` characters (the csv
    module's 131,072-character limit is raised for the read, so no field fails the file);
    text that is not UTF-8 (read as Latin-1, see :func:`_decode_table`). IDs are matched after
    normalisation (``00001`` ≡ ``1``, blanks stripped) and labels compared normalised
    (``1`` ≡ ``1.0`` ≡ `` 1 ``). An ID on several rows with the same label is one warning and
    used once; with different labels it is a warning naming every row, and the case is left
    **unlabelled** (``conflict``): a guess between conflicting labels would be silent label
    noise.

    Returns:
        normalised ID (:func:`_id_key`) → :class:`LabelRow`.

    Raises:
        OSError: the file cannot be read.
    """
    out: dict[str, LabelRow] = {}
    seen: dict[str, list[tuple[int, str, str]]] = {}
    for n, row in _read_rows(path, warnings):
        key_raw, value_raw = row.get(id_col) or "", row.get(label_col) or ""
        if not isinstance(key_raw, str) or not isinstance(value_raw, str):
            continue
        long = next(((c, v) for c, v in ((id_col, key_raw), (label_col, value_raw)) if len(v) > MAX_LABEL_FIELD), None)
        if long is not None:
            warnings.append(f"{path}: line {n}: {long[0]} has {len(long[1])} characters (at most "
                            f"{MAX_LABEL_FIELD}); row ignored")
            continue
        key, value = key_raw.strip(), value_raw.strip()
        if not key or not value:
            warnings.append(f"{path}: line {n} has no {id_col} or {label_col}")
            continue
        if "\ufffd" in key + value:
            warnings.append(f"{path}: line {n}: undecodable bytes in {id_col} or {label_col}; row ignored")
            continue
        k = _id_key(key)
        seen.setdefault(k, []).append((n, key, _norm_value(value)))
        if k not in out:
            out[k] = LabelRow(key, _norm_value(value), n)
    for k, rows in seen.items():
        if len(rows) < 2:
            continue
        where = ", ".join(f"line {n} ({rid!r}: {v!r})" for n, rid, v in rows[:6]) + (", …" if len(rows) > 6 else "")
        if len({v for _, _, v in rows}) == 1:
            warnings.append(f"{path}: {id_col} {k!r} appears on {len(rows)} rows with the same label: {where}; used once")
        else:
            out[k].conflict = True
            warnings.append(f"{path}: {id_col} {k!r} has conflicting labels: {where}; the case is left unlabelled")
    return out


def _find_csv(dirs: list[Path], required: tuple[str, ...] = (), id_values: set[str] | None = None) -> Path | None:
    seen = set()
    for d in dirs:
        if not _isdir(d):
            continue
        for f in sorted(d.glob("*.csv")):
            if f in seen or not os.path.isfile(f):
                continue
            seen.add(f)
            header = _csv_header(f)
            if required and all(r in header for r in required):
                return f
            if id_values and header and _generic_columns(f, header, id_values) is not None:
                return f
    return None


_LABEL_COLUMNS = ("label", "mgmt_value", "grade", "class", "diagnosis", "target", "y")


def _generic_columns(path: Path, header: list[str], id_values: set[str]) -> tuple[str, str, bool] | None:
    """``(id column, label column, named)`` of a label file whose column holds some of
    ``id_values`` (normalised IDs); ``named`` when the label column has a label's name
    (:data:`_LABEL_COLUMNS`) rather than being the next column."""
    try:
        rows = [r for _, r in _read_rows(path)]
    except OSError:
        return None
    label_col = next((h for h in header if h.lower() in _LABEL_COLUMNS), None)
    for col in header:
        values = {_id_key(v) for r in rows if isinstance(v := r.get(col), str) and len(v) <= MAX_LABEL_FIELD}
        if values & id_values:
            if label_col and label_col != col:
                return col, label_col, True
            other = next((h for h in header if h != col), None)
            if other:
                return col, other, False
    return None


def _apply_generic_labels(ds: Dataset, csv_path: Path) -> None:
    """Label ``ds``'s cases from a CSV with an ID column and a label column.

    A column of numbers is a class index (classes ``<column>=0 … <column>=max``); a row whose
    value is not a whole number ≥ 0 there is reported by line and left out. A column of text
    gives one class per distinct value. Refused — :class:`DatasetError` when the column has a
    label's name (``label``, ``class``, ``grade`` …), a warning and no labels when it was only
    the next column — when it does not look like class labels: continuous (3 or more distinct
    non-integer numbers making over 10 % of the rows), or more than :data:`MAX_CLASSES`
    classes, or more than 20 classes and more than half the rows.
    """
    cols = _generic_columns(csv_path, _csv_header(csv_path), {_id_key(c.case_id) for c in ds.cases})
    if cols is None:
        return
    id_col, label_col, named = cols
    try:
        table = read_label_table(csv_path, id_col, label_col, ds.warnings)
    except OSError as exc:
        ds.warnings.append(f"{csv_path}: cannot read label CSV ({exc})")
        return
    rows = [r for r in table.values() if not r.conflict]
    numbers = {id(r): _number(r.value) for r in rows}
    numeric = rows and sum(v is not None for v in numbers.values()) * 2 >= len(rows)

    def refuse(why: str) -> None:
        msg = (f"{csv_path}: column {label_col!r} does not look like class labels: {why}; "
               "mriviewer trains classifiers (give a column of class names or indices)")
        if named:
            raise LabelFileError(msg)
        ds.warnings.append(msg + "; not used as labels")

    valid: dict[str, str] = {}
    if numeric:
        fractional = [numbers[id(r)] for r in rows if numbers[id(r)] is not None and not numbers[id(r)].is_integer()]
        if len(set(fractional)) >= 3 and len(fractional) * 10 > len(rows):
            examples = ", ".join(f"{v:g}" for v in sorted(set(fractional))[:4])
            return refuse(f"{len(set(fractional))} distinct non-integer values (e.g. {examples}) — continuous")
        for k, r in table.items():
            if r.conflict:
                continue
            v = numbers[id(r)]
            why = ("is not a number" if v is None else "is negative" if v < 0
                   else "is not a whole number" if not v.is_integer() else None)
            if why:
                ds.warnings.append(f"{csv_path}: line {r.line}: {label_col} {r.value!r} {why} "
                                   "(the column holds class numbers); row ignored")
                continue
            valid[k] = r.value
        if not valid:
            return
        n_classes = max(int(v) for v in valid.values()) + 1
    else:
        valid = {k: r.value for k, r in table.items() if not r.conflict}
        n_classes = len(set(valid.values()))
    if n_classes > MAX_CLASSES or (n_classes > 20 and n_classes * 2 > len(valid)):
        return refuse(f"it would make {n_classes} classes for {len(valid)} labelled rows")
    present = {_id_key(c.case_id) for c in ds.cases} & set(valid)
    if not present:
        return
    if numeric:
        ds.class_names = [f"{label_col}={v}" for v in range(n_classes)]
        to_index = {v: int(v) for v in valid.values()}
    else:
        names = sorted({valid[k] for k in present})
        ds.class_names = names
        to_index = {v: i for i, v in enumerate(names)}
    ds.label_source = csv_path
    for c in ds.cases:
        k = _id_key(c.case_id)
        if k in valid and valid[k] in to_index:
            c.label = to_index[valid[k]]
    # Nothing doubtful silently: a guessed column, cases without a row, rows without a case,
    # classes that no case has (a typo "7" in a 0/1 column makes eight classes).
    if not named:
        ds.warnings.append(f"{csv_path}: no column named like a label ({', '.join(sorted(_LABEL_COLUMNS))}); "
                           f"using {label_col!r} as the class column — check that it is the label")
    unlabelled = [c.case_id for c in ds.cases if c.label is None]
    if unlabelled:
        ds.warnings.append(f"{csv_path}: {len(unlabelled)} case(s) have no usable label row "
                           f"(e.g. {', '.join(unlabelled[:3])})")
    unmatched = sorted(set(valid) - {_id_key(c.case_id) for c in ds.cases})
    if unmatched:
        ds.warnings.append(f"{csv_path}: {len(unmatched)} labelled row(s) match no case "
                           f"(e.g. {', '.join(unmatched[:3])})")
    counts = Counter(c.label for c in ds.cases if c.label is not None)
    empty = [n for i, n in enumerate(ds.class_names) if counts[i] == 0]
    if empty:
        ds.warnings.append(f"{csv_path}: class(es) {', '.join(empty)} have no case "
                           f"({len(ds.class_names)} classes from the largest number in {label_col!r})")
