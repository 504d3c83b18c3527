"""BIDS (Brain Imaging Data Structure, specification 1.9/1.10): ``<root>/sub-<label>[/ses-<label>]
/anat/sub-<label>[_ses-<label>][_<key>-<value>…]_<suffix>.nii[.gz]``, with ``dataset_description.json``,
``participants.tsv`` and ``derivatives/<pipeline>/…`` beside the subjects (layout ``bids``).

* One case per subject and session: case id ``sub-01_ses-01`` (``sub-01`` without sessions);
  :attr:`Case.patient_id` is the subject (``sub-01``), so a split keeps a subject's sessions in
  one role (the same id :func:`mriviewer.data.patients.patient_from_names` reads from names).
* ``anat`` suffixes (BIDS "Anatomical imaging data"): ``T1w``, ``T2w``, ``FLAIR``; ``T1w`` with a
  ``ce-`` entity is ``T1wCE``; any other suffix (``T2star``, ``PD``, ``T1map``, …) is an extra
  modality named by its suffix. Of several files of one modality (``run-``, ``acq-``, ``rec-``,
  ``echo-`` … variants) the one without variant entities, then ``run-1`` (or the lowest run),
  then the first by name is used, and the others are named in a warning.
* Segmentations: ``*_mask``, ``*_dseg`` or ``*_label-tumor*`` files under
  ``derivatives/<pipeline>/sub-<label>[/ses-<label>][/anat]`` (or in the raw ``anat`` folder)
  are the case's :attr:`Case.segmentation`, preferring ``label-tumor*``, then a ``desc-`` naming
  a tumour or lesion, then ``dseg``, then ``mask``; files in another ``space-`` than the
  subject's own are not used. Other derivatives are summed up in one warning.
* ``participants.tsv`` (and each subject's ``sessions.tsv``) are not applied by themselves: the
  dataset opens unlabelled and the warnings name the columns they offer. ``--labels
  participants.tsv --label-column group`` labels every session of a subject with the subject's
  row: :func:`mriviewer.data.label_table.match_labels` keys its ``participant_id`` values
  (``sub-01``) by patient id. The tables are read with the same reader
  (:func:`mriviewer.data.label_table.read_table`), checked here for repeated ids.
* Anything that cannot be used (a subject without ``anat``, a file that is not NIfTI, a name that
  is not ``sub-<label>[_<key>-<value>…]_<suffix>``, a file named for another subject) is a warning
  naming the file; ``sourcedata/``, ``code/``, ``stimuli/`` and ``phenotype/`` are named, not opened.

Library: entities are parsed with pybids (``bids.layout.utils.parse_file_entities`` with the
``bids`` and ``derivatives`` entity configs loaded once), imported only when a BIDS folder is
seen. Measured here on a generated tree of 1,000 subjects × 2 sessions × 4 NIfTI files: importing
pybids takes 0.3–0.46 s; ``BIDSLayout(validate=False)`` indexes the tree into SQLite in 8.0 s;
``parse_file_entities`` with its default configs takes 8.6 s for the 8,000 names (it reloads the
configs on every call), with the entities loaded once 0.45 s. So names are parsed file by file
and the folders listed here: discovering that tree (listing, parsing, reading participants.tsv)
takes about 2 s in all.
pybids' parse is lenient (an entity is found anywhere in the name; unknown keys are dropped), so
the name's shape is checked first and unknown keys are reported.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mriviewer.core.errors import DatasetError
from mriviewer.core.volume import MODALITIES
from mriviewer.data.cases import Case, Dataset, ModalitySource
from mriviewer.data.labels import LabelFileError
from mriviewer.data.listing import FolderListing, _isdir, _subdirs
from mriviewer.io.paths import is_nifti

#: BIDS ``anat`` suffixes that are one of mriviewer's structural modalities.
_STANDARD = {"T1w": "T1w", "T2w": "T2w", "FLAIR": "FLAIR"}
#: Suffixes that are label maps, not images.
_SEG_SUFFIXES = ("mask", "dseg")
#: Top-level folders the specification reserves; not opened as cases.
_RESERVED = ("sourcedata", "code", "stimuli", "phenotype")
#: Entities that do not make a file a variant of another of the same modality.
_PLAIN = {"subject", "session", "run", "suffix", "extension", "datatype", "ceagent"}
#: A BIDS file name: ``sub-<label>[_<key>-<value>…]_<suffix>.nii[.gz]``.
_NAME = re.compile(r"^sub-[A-Za-z0-9+]+(?:_[A-Za-z]+-[A-Za-z0-9+]+)*_[A-Za-z0-9]+\.nii(?:\.gz)?$")
#: ``space-`` values of a derivative on the subject's own grid.
_NATIVE_SPACES = {None, "orig", "native", "T1w", "individual"}
_SHOW = 3


def _some(items) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:_SHOW]) + (", …" if len(items) > _SHOW else "")


# ---------------------------------------------------------------------------- detection
def _is_label_dir(d: Path, prefix: str) -> bool:
    return d.name.startswith(prefix) and len(d.name) > len(prefix)


def _has_anat_nifti(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            return any(is_nifti(Path(e.name)) for e in it)
    except OSError:
        return False


def _holds_anat(subject: Path) -> bool:
    """Whether ``subject`` has ``anat/`` or ``ses-*/anat/`` with a NIfTI file."""
    if _has_anat_nifti(subject / "anat"):
        return True
    return any(_has_anat_nifti(s / "anat") for s in _subdirs(subject)[:20] if _is_label_dir(s, "ses-"))


def _claims_bids(listing: FolderListing) -> bool:
    """A BIDS root (``dataset_description.json`` beside ``sub-*`` folders, or ``sub-*`` folders
    holding ``anat/`` NIfTI files) or one subject's folder (``sub-*`` with ``[ses-*/]anat/``)."""
    if _is_label_dir(listing.path, "sub-"):
        return _holds_anat(listing.path)
    subjects = [d for d in listing.dirs if _is_label_dir(d, "sub-")]
    if not subjects:
        return False
    if listing.path / "dataset_description.json" in listing.files:
        return True
    return any(_holds_anat(d) for d in subjects[:50])


@functools.lru_cache(maxsize=1)
def _pybids():
    """``(parse_file_entities, entities, keys)``: pybids' parser, the entities of its ``bids``
    and ``derivatives`` configs (loaded once) and their short keys (``ce`` for ``ceagent``).

    Raises:
        DatasetError: pybids is not installed.
    """
    try:
        from bids.layout.models import Config
        from bids.layout.utils import parse_file_entities
    except ImportError as exc:
        raise DatasetError(f"a BIDS dataset needs pybids to read its file names ({exc}); "
                           "install it with: pip install pybids") from None
    entities: dict = {}
    for name in ("bids", "derivatives"):
        entities.update(Config.load(name).entities)
    keys = {m.group(1) for e in entities.values() if (m := re.search(r"([A-Za-z]+)-\(", e.pattern or ""))}
    return parse_file_entities, list(entities.values()), keys


# ---------------------------------------------------------------------------- building
@dataclass
class _Candidate:
    rank: tuple
    path: Path
    entities: dict
    reason: str


@dataclass
class _Builder:
    """The state of one BIDS build: the dataset, its cases by (subject, session) and what was
    left out, summed up at the end."""

    ds: Dataset
    cases: dict[tuple[str, str | None], Case] = field(default_factory=dict)
    segs: dict[str, list[_Candidate]] = field(default_factory=dict)
    other_datatypes: dict[str, int] = field(default_factory=dict)

    def warn(self, text: str) -> None:
        self.ds.warnings.append(text)

    def read(self, folder: Path) -> FolderListing | None:
        try:
            listing = FolderListing.read(folder)
        except DatasetError as exc:
            self.warn(str(exc))
            return None
        self.ds.warnings.extend(listing.problems)
        return listing

    def entities(self, f: Path, sub: str, ses: str | None) -> dict | None:
        """pybids' entities of ``f`` (name only), or ``None`` (warned) when the name is not a
        BIDS name or names another subject or session than its folder."""
        parse, ents, keys = _pybids()
        if not _NAME.match(f.name):
            self.warn(f"{f}: not a BIDS file name (sub-<label>[_<key>-<value>…]_<suffix>.nii[.gz]); not used")
            return None
        e = parse("/" + f.name, entities=ents)
        if f"sub-{e.get('subject')}" != sub:
            self.warn(f"{f}: named for sub-{e.get('subject')} but in folder {sub}; not used")
            return None
        if ses is not None and e.get("session") is not None and f"ses-{e['session']}" != ses:
            self.warn(f"{f}: named for ses-{e['session']} but in folder {ses}; not used")
            return None
        unknown = [t.split("-", 1)[0] for t in f.name.split(".")[0].split("_")[1:-1]
                   if t.split("-", 1)[0] not in keys]
        if unknown:
            self.warn(f"{f}: unknown BIDS entit{'y' if len(unknown) == 1 else 'ies'} "
                      f"{', '.join(unknown)} (ignored)")
        return e


def _modality(e: dict) -> tuple[str, str, int]:
    """``(modality, reason, variant)`` of an ``anat`` image from its entities; ``variant`` 1 for a
    contrast-enhanced image of a suffix other than T1w (kept behind the plain one)."""
    suffix, ce = e["suffix"], e.get("ceagent")
    if suffix == "T1w" and ce:
        return "T1wCE", f"BIDS suffix T1w with ce-{ce} (pybids entities)", 0
    if suffix in _STANDARD:
        extra = f" with ce-{ce}" if ce else ""
        return _STANDARD[suffix], f"BIDS suffix {suffix}{extra} (pybids entities)", int(bool(ce))
    return suffix, (f"BIDS suffix {suffix}: not one of T1w, T2w, FLAIR; kept as modality {suffix!r} "
                    "(pybids entities)"), 0


def _seg_rank(e: dict) -> int | None:
    """Preference of a label map (lower first), or ``None`` when ``e`` is not one."""
    label, desc = str(e.get("label") or "").lower(), str(e.get("desc") or "").lower()
    if label.startswith(("tumor", "tumour")):
        return 0
    if e.get("suffix") not in _SEG_SUFFIXES:
        return None
    if any(w in desc for w in ("tumor", "tumour", "lesion")):
        return 1
    return 2 if e["suffix"] == "dseg" else 3


def _seg_reason(e: dict, where: str) -> str:
    ents = "".join(f"_{k}-{e[k]}" for k in ("label", "desc", "space") if e.get(k))
    return f"BIDS suffix {e['suffix']}{' (' + ents[1:] + ')' if ents else ''} in {where} (pybids entities)"


def _add_subject(b: _Builder, subject: Path) -> None:
    """The cases of one ``sub-*`` folder: its ``anat/`` and each ``ses-*/anat/``."""
    listing = b.read(subject)
    if listing is None:
        return
    units: list[tuple[str | None, Path]] = []
    for d in listing.dirs:
        if d.name == "anat":
            units.append((None, d))
        elif _is_label_dir(d, "ses-"):
            if _isdir(d / "anat"):
                units.append((d.name, d / "anat"))
            else:
                kinds = [x.name for x in _subdirs(d)]
                b.warn(f"{d}: no anat/ folder ({'holds ' + _some(kinds) if kinds else 'empty'}); not a case")
            for x in _subdirs(d):
                if x.name != "anat":
                    b.other_datatypes[x.name] = b.other_datatypes.get(x.name, 0) + 1
        else:
            b.other_datatypes[d.name] = b.other_datatypes.get(d.name, 0) + 1
    if not units:
        kinds = [d.name for d in listing.dirs]
        b.warn(f"{subject}: no anat/ folder ({'holds ' + _some(kinds) if kinds else 'empty'}); "
               "no case for this subject")
    for ses, anat in units:
        case = _anat_case(b, subject.name, ses, anat)
        b.cases[(subject.name, ses)] = case
        b.ds.cases.append(case)


def _anat_case(b: _Builder, sub: str, ses: str | None, anat: Path) -> Case:
    """One subject's (and session's) ``anat`` folder as a case."""
    case = Case(f"{sub}_{ses}" if ses else sub, patient_id=sub)
    listing = b.read(anat)
    if listing is None:
        case.errors.append(f"{anat}: cannot read folder")
        return case
    found: dict[str, list[_Candidate]] = {}
    for f in listing.files:
        if f.suffix.lower() == ".json":
            continue  # sidecars
        if not is_nifti(f):
            b.warn(f"{f}: not a NIfTI file (BIDS anat images are .nii/.nii.gz); not used")
            continue
        if listing.sizes.get(f) == 0:
            b.warn(f"{f}: empty file (0 bytes); not used")
            continue
        e = b.entities(f, sub, ses)
        if e is None:
            continue
        rank = _seg_rank(e)
        if rank is not None:
            b.segs.setdefault(case.case_id, []).append(
                _Candidate((rank, f.name), f, e, _seg_reason(e, f"{anat.parent.name}/anat")))
            continue
        if e["suffix"] == "defacemask":
            b.warn(f"{f}: a defacing mask (BIDS suffix defacemask), not an image or a segmentation; not used")
            continue
        mod, reason, variant = _modality(e)
        run = int(e["run"]) if e.get("run") is not None else 1
        extra = sorted(k for k in e if k not in _PLAIN)
        found.setdefault(mod, []).append(_Candidate((variant, bool(extra), run, f.name), f, e, reason))
    for mod in [m for m in MODALITIES if m in found] + sorted(set(found) - set(MODALITIES)):
        case.modalities[mod] = _choose(b, anat, mod, found[mod])
    if not case.modalities:
        case.errors.append(f"{anat}: no usable NIfTI image (see the warnings)")
    return case


def _choose(b: _Builder, anat: Path, mod: str, cands: list[_Candidate]) -> ModalitySource:
    """The source of ``mod`` among its files; the others are named in a warning."""
    cands = sorted(cands, key=lambda c: c.rank)
    first, rest = cands[0], cands[1:]
    reason = first.reason
    if rest:
        if first.rank[0] < max(c.rank[0] for c in rest):
            why = "not contrast-enhanced"
        elif not first.rank[1] and any(c.rank[1] for c in rest):
            why = "no acq-/rec-/other variant entity"
        elif any(c.rank[2] != first.rank[2] for c in rest):
            why = f"run-{first.entities['run']}" if first.entities.get("run") is not None else "no run- entity"
        else:
            why = "the first by name"
        b.warn(f"{anat}: {len(cands)} {mod} files; using {first.path.name} ({why}); not used: "
               + ", ".join(c.path.name for c in rest))
        reason += f"; used of {len(cands)} {mod} files ({why})"
    return ModalitySource(mod, first.path, "nifti", reason=reason)


def _add_derivatives(b: _Builder, deriv: Path, only: set[str] | None) -> None:
    """Label maps under ``derivatives/<pipeline>/sub-*/[ses-*/][anat/]`` (see the module
    docstring) of the subjects ``only`` (all when ``None``); every other derivative file is
    counted in one summary warning."""
    if not _isdir(deriv):
        return
    unused: list[Path] = []
    for pipeline in _subdirs(deriv):
        for subject in _subdirs(pipeline):
            if not _is_label_dir(subject, "sub-") or (only is not None and subject.name not in only):
                continue
            for folder, ses in _derivative_folders(subject):
                listing = b.read(folder)
                for f in listing.files if listing else []:
                    if not is_nifti(f) or not _derivative_seg(b, pipeline, subject.name, ses, f):
                        if f.suffix.lower() != ".json":
                            unused.append(f)
    if unused:
        b.warn(f"{deriv}: {len(unused)} derivative file(s) not used (only anat masks, dseg and "
               f"label-tumor label maps are read; e.g. {_some(f.relative_to(deriv) for f in unused)})")


def _derivative_folders(subject: Path) -> list[tuple[Path, str | None]]:
    out: list[tuple[Path, str | None]] = [(subject, None)]
    if _isdir(subject / "anat"):
        out.append((subject / "anat", None))
    for s in _subdirs(subject):
        if _is_label_dir(s, "ses-"):
            out.append((s, s.name))
            if _isdir(s / "anat"):
                out.append((s / "anat", s.name))
    return out


def _derivative_seg(b: _Builder, pipeline: Path, sub: str, ses: str | None, f: Path) -> bool:
    """Add ``f`` as a segmentation candidate of its case; ``False`` when it is not a label map."""
    if not _NAME.match(f.name):
        return False
    parse, ents, _ = _pybids()
    e = parse("/" + f.name, entities=ents)
    rank = _seg_rank(e)
    if rank is None or f"sub-{e.get('subject')}" != sub:
        return False
    ses = ses or (f"ses-{e['session']}" if e.get("session") else None)
    if e.get("space") not in _NATIVE_SPACES:
        b.warn(f"{f}: a label map in space-{e['space']}, not on the subject's own grid; not used")
        return True
    case = b.cases.get((sub, ses))
    if case is None and ses is None:
        own = [c for (s, _), c in b.cases.items() if s == sub]
        case = own[0] if len(own) == 1 else None
    if case is None:
        b.warn(f"{f}: a label map for {sub}{'_' + ses if ses else ''}, which has no anat case "
               "(or several sessions and the name says none); not used")
        return True
    where = f"derivatives/{pipeline.name}"
    b.segs.setdefault(case.case_id, []).append(_Candidate((rank, f.name), f, e, _seg_reason(e, where)))
    return True


def _set_segmentations(b: _Builder) -> None:
    """Each case's preferred label map; one warning per kind of source (how many cases, which
    files), and one per case that had several."""
    kinds: dict[str, list[str]] = {}
    for case in b.ds.cases:
        cands = sorted(b.segs.get(case.case_id, []), key=lambda c: c.rank)
        if not cands:
            continue
        case.segmentation = cands[0].path
        kinds.setdefault(cands[0].reason, []).append(case.case_id)
        if cands[1:]:
            b.warn(f"{case.case_id}: segmentation {cands[0].path.name} ({cands[0].reason}); not used: "
                   + ", ".join(c.path.name for c in cands[1:]))
    for reason, ids in kinds.items():
        b.warn(f"{b.ds.root}: segmentation of {len(ids)} case(s) ({_some(ids)}) from {reason}")


# ---------------------------------------------------------------------------- tables
def _table(b: _Builder, path: Path):
    """``path`` read as the label tables are (:func:`mriviewer.data.label_table.read_table`), or
    ``None`` (warned) when it cannot be."""
    from mriviewer.data.label_table import read_table

    try:
        return read_table(path)
    except LabelFileError as exc:
        b.warn(f"{exc}; not offered as labels")
        return None


def _repeated(values) -> list[str]:
    seen: dict[str, int] = {}
    for v in values:
        if v:
            seen[v] = seen.get(v, 0) + 1
    return sorted(v for v, n in seen.items() if n > 1)


def _participants(b: _Builder, root: Path, subjects: list[Path], single: bool) -> None:
    """Check ``participants.tsv`` (BIDS "Participants file") and say which columns it offers."""
    path = root / "participants.tsv"
    if not os.path.isfile(path):
        if not single:
            b.warn(f"{root}: no participants.tsv; the dataset opens unlabelled (--labels FILE to label it)")
        return
    df = _table(b, path)
    if df is None:
        return
    if "participant_id" not in df.columns:
        b.warn(f"{path}: no participant_id column (columns: {', '.join(df.columns)}); BIDS keys "
               "participants.tsv by participant_id")
        return
    ids = [v.strip() for v in df["participant_id"]]
    dup = _repeated(ids)
    if dup:
        b.warn(f"{path}: {len(dup)} participant_id(s) on several rows ({_some(dup)}); with --labels, an id "
               "whose rows differ leaves its sessions unlabelled")
    bare = [i for i in ids if i and not i.startswith("sub-")]
    if bare:
        b.warn(f"{path}: {len(bare)} participant_id(s) without the 'sub-' prefix ({_some(bare)}); BIDS writes "
               "sub-<label>, and only such ids match the subjects")
    names = {s.name for s in subjects}
    missing = sorted(names - set(ids))
    if missing:
        b.warn(f"{path}: no row for {len(missing)} subject(s) ({_some(missing)})")
    extra = sorted(set(ids) - names - set(bare)) if not single else []
    if extra:
        b.warn(f"{path}: {len(extra)} row(s) for subjects without a folder ({_some(extra)})")
    cols = [c for c in df.columns if c != "participant_id"]
    na = [c for c in cols if (df[c].str.strip() == "n/a").any()]
    b.warn(f"{path}: columns {', '.join(cols)}; choose one with --labels {path} --label-column NAME "
           "(GUI: File ▸ Load labels…)"
           + (f"; {', '.join(na)} hold n/a (BIDS: no value): add --exclude-label n/a" if na else ""))


def _sessions_tables(b: _Builder, subjects: list[Path]) -> None:
    """Check each subject's ``sub-<label>_sessions.tsv`` (BIDS "Sessions file") and say, once,
    which columns they offer."""
    files: list[Path] = []
    cols: dict[str, None] = {}
    for s in subjects:
        path = s / f"{s.name}_sessions.tsv"
        if not os.path.isfile(path):
            continue
        df = _table(b, path)
        if df is None:
            continue
        files.append(path)
        if "session_id" not in df.columns:
            b.warn(f"{path}: no session_id column (columns: {', '.join(df.columns)})")
            continue
        dup = _repeated(v.strip() for v in df["session_id"])
        if dup:
            b.warn(f"{path}: session_id(s) on several rows: {_some(dup)}")
        cols.update((c, None) for c in df.columns if c != "session_id")
    if files:
        b.warn(f"{len(files)} sessions.tsv file(s) ({_some(f.name for f in files)}): columns {', '.join(cols)}; "
               "not applied: to label by session, give --labels a table keyed by case id (sub-01_ses-01)")


# ---------------------------------------------------------------------------- the layout
def _build_bids(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    """A BIDS root or one subject's folder as a dataset of layout ``bids`` (see the module
    docstring).

    Returns:
        ``(dataset, used)``: the cases (one per subject and session, unlabelled) and the entries
        of ``listing`` it used (``sub-*``, ``derivatives`` and the reserved folders, the
        dataset's own files).

    Raises:
        DatasetError: pybids is not installed (the folder is then discovered folder by folder).
    """
    _pybids()
    single = _is_label_dir(listing.path, "sub-")
    root = listing.path.parent if single else listing.path
    subjects = [listing.path] if single else [d for d in listing.dirs if _is_label_dir(d, "sub-")]
    b = _Builder(Dataset(listing.path, "bids"))
    for s in subjects:
        _add_subject(b, s)
    _add_derivatives(b, root / "derivatives", {s.name for s in subjects} if single else None)
    _set_segmentations(b)
    if b.other_datatypes:
        b.warn(f"{listing.path}: BIDS datatype folder(s) not read (mriviewer opens anat only): "
               + ", ".join(f"{k} ({n})" for k, n in sorted(b.other_datatypes.items())))
    reserved = [] if single else [d for d in listing.dirs if d.name in _RESERVED]
    if reserved:
        b.warn(f"{root}: BIDS folder(s) not opened with the dataset: "
               + ", ".join(f"{d.name}/" for d in reserved) + " (open one on its own to see what it holds)")
    _participants(b, root, subjects, single)
    _sessions_tables(b, subjects)
    if single:
        return b.ds, set(listing.dirs) | {f for f in listing.files if f.suffix.lower() in (".tsv", ".json")}
    own = {root / n for n in ("dataset_description.json", "participants.tsv", "participants.json",
                              "README", "README.md", "CHANGES", "LICENSE")}
    used = set(subjects) | set(reserved) | {d for d in listing.dirs if d.name == "derivatives"}
    return b.ds, used | (own & set(listing.files))
