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
* A single DICOM series folder, NIfTI file or image: one case.
* **Assembled** — several folders, each given a class by the user (``--data HGG=path
  --data healthy=path``): see :func:`assemble` and :func:`parse_data_args`.

Nothing is decoded here: discovery reads folder listings and the label CSV only, so it is fast
on large trees. A case that cannot be used is kept with its ``errors``; discovery never fails
because of one bad case.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .dicom import has_dicom_file, is_dicom_file
from .errors import DatasetError
from .io import IMAGE_SUFFIXES, is_nifti
from .volume import MODALITIES

log = logging.getLogger(__name__)

__all__ = ["case_identity", "ModalitySource", "Case", "Dataset", "discover", "modality_from_name", "series_modality", "UNKNOWN_MODALITY", "DATASET_SETTINGS", "assign_modality", "parse_data_args", "assemble"]

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
    ``files`` of one series when the folder holds several), ``"nifti"`` or ``"image2d"``."""

    modality: str
    path: Path
    kind: str
    files: tuple[Path, ...] = ()
    volume_index: int = 0  # which volume of a 4D NIfTI

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
        case.modalities[new] = src
        changed += 1
    if not changed:
        raise DatasetError(f"{ds.root}: no case has modality {old!r}")
    return changed


# ---------------------------------------------------------------------------- discovery
def discover(path: str | Path) -> Dataset:
    """Find the cases under ``path`` (a dataset folder, a case, a series folder or a file).

    Cases are listed in folder order; a :data:`DATASET_SETTINGS` file in the dataset's root or
    its parent is read into :attr:`Dataset.settings`.

    Raises:
        DatasetError: the path does not exist or holds nothing mriviewer can read.
    """
    ds = _discover(Path(path).expanduser())
    for folder in (ds.root, ds.root.parent):
        f = folder / DATASET_SETTINGS
        if f.is_file():
            try:
                ds.settings = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                ds.warnings.append(f"{f}: ignored, not valid JSON ({exc})")
            break
    return ds


def _discover(root: Path, depth: int = 0) -> Dataset:
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder")
    if root.is_file():
        return _single_file(root)
    try:
        children = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    except PermissionError as exc:
        raise DatasetError(f"{root}: permission denied") from exc
    dirs = [p for p in children if p.is_dir()]

    train = root / "train"
    if train.is_dir() and _looks_rsna(train):
        return _rsna(train, label_dirs=[root, train])
    if _looks_rsna(root):
        return _rsna(root, label_dirs=[root, root.parent])
    if any(d.name in MODALITIES for d in dirs) and not _looks_image_folder(root):
        return _rsna_single_case(root)
    if _case_niftis(root):
        return _brats(root.parent, [root], label_dirs=[root.parent])
    nifti_cases = [d for d in dirs if _case_niftis(d)]
    if nifti_cases:
        return _brats(root, nifti_cases, label_dirs=[root, root.parent])
    graded = _brats_grade_dirs(dirs)
    if graded:
        return _brats_graded(root, graded)
    if _looks_image_folder(root):
        return _image_folder(root)
    if any(is_dicom_file(p) for p in children if p.is_file()):
        return _dicom_series_case(root)
    if _nifti_files(root):
        return _nifti_collection(root)
    if depth < _MAX_DEPTH:
        coll = _collection(root, dirs, depth)
        if coll.cases:
            return coll
    raise DatasetError(
        f"{root}: no DICOM series, NIfTI case, RSNA-MICCAI or image-folder layout found"
    )


_MAX_DEPTH = 4


def _collection(root: Path, dirs: list[Path], depth: int) -> Dataset:
    """A folder of datasets (like ``shared/data``): every sub-folder discovered on its own,
    case ids prefixed by the sub-folder name. Labels keep their names (``Case.label_name``);
    the collection itself has no common task."""
    coll = Dataset(root, "collection")
    for d in dirs:
        try:
            sub = _discover(d, depth + 1)
        except DatasetError:
            continue
        except OSError as exc:
            coll.warnings.append(f"{d}: cannot read ({exc})")
            continue
        rel = sub.root.relative_to(root).as_posix() if root in sub.root.parents else d.name
        for c in sub.cases:
            if c.label is not None and c.label < len(sub.class_names):
                c.label_name = sub.class_names[c.label]
            c.case_id = rel if c.case_id == rel.rsplit("/", 1)[-1] else f"{rel}/{c.case_id}"
            coll.cases.append(c)
        coll.warnings.extend(sub.warnings)
        coll.patient_ids = coll.patient_ids and sub.patient_ids
    return coll


def _nifti_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and is_nifti(f))


def _nifti_collection(folder: Path) -> Dataset:
    """A folder of NIfTI volumes that are not one case (e.g. several T1w of different
    subjects): each file is a case."""
    ds = Dataset(folder, "nifti-files")
    for f in _nifti_files(folder):
        m = modality_from_name(f.name) or "T1w"
        if m == "SEG":
            continue
        case_id = re.sub(r"\.nii(\.gz)?$", "", f.name, flags=re.IGNORECASE)
        ds.cases.append(Case(case_id, {m: ModalitySource(m, f, "nifti")}))
    return ds


def _looks_rsna(root: Path) -> bool:
    for d in sorted(root.iterdir())[:50]:
        if d.is_dir() and any((d / m).is_dir() for m in MODALITIES):
            return True
    return False


def _looks_image_folder(root: Path) -> bool:
    for d in sorted(root.iterdir()):
        if d.is_dir():
            for f in d.iterdir():
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    return True
    return False


def _case_niftis(folder: Path) -> dict[str, Path]:
    """Modality → file for a folder that is one case; empty when the folder's NIfTI files are
    not one case (a name maps to no modality, or two files to the same one)."""
    found: dict[str, Path] = {}
    for f in _nifti_files(folder):
        m = modality_from_name(f.name)
        if m is None or m in found:
            return {}
        found[m] = f
    return found


def _rsna_case(case_dir: Path) -> Case:
    case = Case(case_dir.name)
    for m in MODALITIES:
        series = case_dir / m
        if not series.is_dir():
            continue
        try:
            has_dicom = has_dicom_file(series)
        except OSError as exc:
            case.errors.append(f"{series}: cannot list folder ({exc})")
            continue
        if has_dicom:
            case.modalities[m] = ModalitySource(m, series, "dicom")
        else:
            case.errors.append(f"{series}: folder contains no DICOM files")
    if not case.modalities and not case.errors:
        case.errors.append(f"{case_dir}: no modality folder (FLAIR, T1w, T1wCE, T2w) with DICOM files")
    return case


def _rsna(case_root: Path, label_dirs: list[Path], case_dirs: list[Path] | None = None) -> Dataset:
    ds = Dataset(case_root, "rsna-miccai")
    if case_dirs is None:
        case_dirs = [d for d in sorted(case_root.iterdir()) if d.is_dir()]
    ds.cases = [_rsna_case(d) for d in case_dirs]
    csv_path = _find_csv(label_dirs, required=("BraTS21ID", "MGMT_value"))
    if csv_path is not None:
        ds.class_names = ["MGMT unmethylated", "MGMT methylated"]
        ds.label_source = csv_path
        labels = _read_label_csv(csv_path, "BraTS21ID", "MGMT_value", ds)
        by_int = {}
        for key, value in labels.items():
            try:
                by_int[int(key)] = value
            except ValueError:
                ds.warnings.append(f"{csv_path}: BraTS21ID {key!r} is not an integer")
        for c in ds.cases:
            try:
                v = by_int.get(int(c.case_id))
            except ValueError:
                v = None
            if v is not None:
                try:
                    number = float(v)
                except ValueError:
                    number = math.nan
                if number in (0.0, 1.0):
                    c.label = int(number)
                else:
                    c.label = None
                    c.errors.append(f"{csv_path}: MGMT_value {v!r} for case {c.case_id} is not 0 or 1")
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
    ds = Dataset(root, "brats-nifti")
    for d in case_dirs:
        case = Case(d.name)
        for m, f in _case_niftis(d).items():
            if m == "SEG":
                case.segmentation = f
            else:
                case.modalities[m] = ModalitySource(m, f, "nifti")
        if not case.modalities:
            case.errors.append(f"{d}: only a segmentation, no image modality")
        ds.cases.append(case)
    csv_path = _find_csv(label_dirs, id_values={c.case_id for c in ds.cases})
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
                cases = [c for c in sorted(d.iterdir())
                         if c.is_dir() and not c.name.startswith(".") and _case_niftis(c)]
            except OSError:
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
        skipped = sum(1 for d in folder.iterdir()
                      if d.is_dir() and not d.name.startswith(".") and d not in case_dirs)
        if skipped:
            ds.warnings.append(f"{folder}: {skipped} sub-folder(s) are not NIfTI cases; skipped")
    return ds


def _image_folder(root: Path) -> Dataset:
    ds = Dataset(root, "image-folder", patient_ids=False)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir()
                     and any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir()))
    ds.class_names = classes
    for idx, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                ds.cases.append(Case(
                    f"{name}/{f.name}",
                    {IMAGE_MODALITY: ModalitySource(IMAGE_MODALITY, f, "image2d")},
                    label=idx,
                    is_2d=True,
                ))
    ds.warnings.append(
        f"{root}: 2D image folder without patient IDs; each image is treated as its own case, "
        "so images of one patient may fall in both training and validation"
    )
    return ds


def _dicom_series_case(folder: Path) -> Dataset:
    """A folder of DICOM files. One series: one case. Several series of one study (same
    PatientID and StudyInstanceUID) whose descriptions name different modalities: one case with
    those modalities. Otherwise one case per series. Modalities come from SeriesDescription."""
    from .dicom import scan_series

    ds = Dataset(folder, "dicom-series")
    series, problems = scan_series(folder)
    ds.warnings.extend(problems)
    if not series:
        raise DatasetError(f"{folder}: no readable DICOM series" + (f" ({problems[0]})" if problems else ""))
    def source(info, modality):
        if len(series) == 1 and not problems:  # the one series holds every DICOM file
            return ModalitySource(modality, folder, "dicom")
        return ModalitySource(modality, info.files[0] if len(info.files) == 1 else folder, "dicom",
                              tuple(info.files))

    mods = [series_modality(info.description or folder.name) for info in series]
    one_study = len({info.study for info in series}) == 1
    if len(series) > 1 and one_study and len(set(mods)) == len(mods) and UNKNOWN_MODALITY not in mods:
        ds.cases.append(Case(folder.name, {m: source(info, m) for info, m in zip(series, mods, strict=True)}))
        return ds
    for n, (info, modality) in enumerate(zip(series, mods, strict=True), start=1):
        case_id = folder.name if len(series) == 1 else (
            info.files[0].name if len(info.files) == 1 else f"{folder.name}-{n}")
        ds.cases.append(Case(case_id, {modality: source(info, modality)}))
    return ds


def series_modality(description: str) -> str:
    """Guess the structural modality from a SeriesDescription or folder name.

    FLAIR before T2 (FLAIR is T2-weighted); contrast-enhanced T1 by a ``ce``, ``gd``, ``post``,
    ``+c`` or ``contrast`` token; T1w by ``t1``, MPRAGE, SPGR or BRAVO; otherwise
    :data:`UNKNOWN_MODALITY` (the user can assign one).
    """
    d = description.lower()
    tokens = set(re.split(r"[^a-z0-9+]+", d))
    if "flair" in d or "t2f" in tokens:
        return "FLAIR"
    if tokens & {"t1c", "t1ce", "t1gd", "t1post", "t1wce", "t1+c", "t1c+", "t1+gd"} or (
        "t1" in d and tokens & {"ce", "gd", "gad", "post", "postcontrast", "contrast", "+c", "c+"}
    ):
        return "T1wCE"
    if "t2" in d:
        return "T2w"
    if "t1" in d or "mprage" in d or "spgr" in d or "bravo" in d:
        return "T1w"
    return UNKNOWN_MODALITY


def _single_file(path: Path) -> Dataset:
    if is_nifti(path):
        m = modality_from_name(path.name) or "T1w"
        if m == "SEG":
            raise DatasetError(f"{path}: a segmentation alone cannot be opened as a case")
        case_id = re.sub(r"\.nii(\.gz)?$", "", path.name, flags=re.IGNORECASE)
        ds = Dataset(path.parent, "file")
        ds.cases = [Case(case_id, {m: ModalitySource(m, path, "nifti")})]
        return ds
    if path.suffix.lower() in IMAGE_SUFFIXES:
        ds = Dataset(path.parent, "file", patient_ids=False)
        ds.cases = [Case(path.stem, {IMAGE_MODALITY: ModalitySource(IMAGE_MODALITY, path, "image2d")}, is_2d=True)]
        return ds
    if is_dicom_file(path):
        return _dicom_series_case(path.parent)
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
            holds no case (the message names the label and the path).
    """
    if not sources:
        raise DatasetError("no data folders given; expected one or more LABEL=PATH")
    paths = [Path(p).expanduser() for _, p in sources]
    ds = Dataset(_common_parent(paths), "assembled", label_source=None)
    prefixes: set[str] = set()
    ids: set[str] = set()
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
        for c in sub.cases:
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
        ds.warnings.extend(f"{label}: {w}" for w in sub.warnings)
        ds.patient_ids = ds.patient_ids and sub.patient_ids
    if len(ds.class_names) < 2:
        ds.warnings.append(
            f"only one class ({ds.class_names[0]!r}); a classifier needs at least two labels")
    return ds


# ---------------------------------------------------------------------------- labels
def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return []


def _find_csv(dirs: list[Path], required: tuple[str, ...] = (), id_values: set[str] | None = None) -> Path | None:
    seen = set()
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.csv")):
            if f in seen:
                continue
            seen.add(f)
            header = _csv_header(f)
            if required and all(r in header for r in required):
                return f
            if id_values and header and _generic_columns(f, header, id_values) is not None:
                return f
    return None


_LABEL_COLUMNS = ("label", "mgmt_value", "grade", "class", "diagnosis", "target", "y")


def _generic_columns(path: Path, header: list[str], id_values: set[str]) -> tuple[str, str] | None:
    rows = _read_rows(path)
    label_col = next((h for h in header if h.lower() in _LABEL_COLUMNS), None)
    for col in header:
        values = {str(r.get(col, "")).strip() for r in rows}
        if values & id_values:
            label = label_col if label_col and label_col != col else next((h for h in header if h != col), None)
            if label:
                return col, label
    return None


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _read_label_csv(path: Path, id_col: str, label_col: str, ds: Dataset) -> dict[str, str]:
    labels: dict[str, str] = {}
    try:
        rows = _read_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        ds.warnings.append(f"{path}: cannot read label CSV ({exc})")
        return labels
    for n, row in enumerate(rows, start=2):
        key, value = (row.get(id_col) or "").strip(), (row.get(label_col) or "").strip()
        if not key or not value:
            ds.warnings.append(f"{path}: line {n} has no {id_col} or {label_col}")
            continue
        labels[key] = value
    return labels


def _apply_generic_labels(ds: Dataset, csv_path: Path) -> None:
    cols = _generic_columns(csv_path, _csv_header(csv_path), {c.case_id for c in ds.cases})
    if cols is None:
        return
    id_col, label_col = cols
    labels = _read_label_csv(csv_path, id_col, label_col, ds)
    values = sorted({labels[c.case_id] for c in ds.cases if c.case_id in labels})
    try:
        if any(not float(v).is_integer() for v in values):
            raise ValueError("not integer class indices")
        numeric = sorted({int(float(v)) for v in values})
        ds.class_names = [f"{label_col}={v}" for v in range(max(numeric) + 1)] if numeric and min(numeric) >= 0 else []
        to_index = {v: int(float(v)) for v in values}
    except (ValueError, OverflowError):
        ds.class_names = values
        to_index = {v: i for i, v in enumerate(values)}
    if not ds.class_names:
        return
    ds.label_source = csv_path
    for c in ds.cases:
        if c.case_id in labels:
            c.label = to_index[labels[c.case_id]]
