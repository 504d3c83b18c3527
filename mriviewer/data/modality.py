"""Modality from a file or series name (FLAIR, T1w, T1wCE, T2w, a segmentation, or ``other``), with
the reason kept, as archives and converters (dcm2niix, BIDS) name series.
"""

from __future__ import annotations

import re

from mriviewer.core.volume import MODALITIES
from mriviewer.data.cases import UNKNOWN_MODALITY

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
