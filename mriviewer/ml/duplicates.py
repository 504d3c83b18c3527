"""Near-duplicate images in 2D image sets: kept in one role, and any across roles reported.

Kaggle brain-tumour sets have no patient IDs and contain the same slice more than once (copies,
re-encodes, small crops). A near-duplicate in both training and test inflates the test figure, so
the engine joins near-duplicates into one group before splitting (the splitter keeps a group in
one role, as it does a patient's cases) and still reports any pair found in different roles.
Method: perceptual hash (``imagehash.phash``, 64-bit DCT hash; Zauner 2010, "Implementation and
benchmarking of perceptual image hash functions"), pairs within :data:`MAX_DISTANCE` bits; groups
are the connected components of the pair graph (``scipy.sparse.csgraph``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mriviewer.data.cases import Case

log = logging.getLogger(__name__)

__all__ = ["phashes", "near_duplicate_pairs", "merge_duplicate_groups", "cross_role_duplicates", "MAX_DISTANCE"]

#: Hamming distance (of 64 bits) at or under which two images count as near-duplicates.
MAX_DISTANCE = 4


def phashes(cases: list[Case]) -> dict[str, np.ndarray]:
    """``{case_id: 64-bool hash}`` of each 2D case's image; unreadable images are left out."""
    import imagehash
    from PIL import Image

    out = {}
    for c in cases:
        src = next(iter(c.modalities.values()), None)
        if src is None:
            continue
        try:
            with Image.open(src.path) as im:
                out[c.case_id] = imagehash.phash(im.convert("L")).hash.reshape(-1)
        except Exception as exc:  # reported by the loader when training reaches the case
            log.debug("no hash for %s: %s", src.path, exc)
    return out


def near_duplicate_pairs(cases: list[Case], max_distance: int = MAX_DISTANCE) -> list[tuple[int, int, int]]:
    """Pairs of near-duplicate images: ``(i, j, bits)`` with ``i < j`` indices into ``cases`` and
    the Hamming distance of their perceptual hashes (at most ``max_distance`` of 64 bits).
    Cases whose image cannot be read are in no pair."""
    hashes = phashes(cases)
    idx = [n for n, c in enumerate(cases) if c.case_id in hashes]
    if len(idx) < 2:
        return []
    mat = np.stack([hashes[cases[n].case_id] for n in idx]).astype(np.float32)  # (N, 64)
    pairs = []
    for start in range(0, len(idx), 1024):  # (1024, N) blocks: bounded memory for large sets
        block = mat[start:start + 1024]
        # Hamming distance = bits set in one hash only: a·(1−b) + (1−a)·b.
        dist = np.rint(block @ (1 - mat).T + (1 - block) @ mat.T).astype(np.int32)
        a, b = np.nonzero(dist <= max_distance)
        pairs += [(idx[start + i], idx[j], int(dist[i, j])) for i, j in zip(a, b, strict=True) if start + i < j]
    return pairs


def merge_duplicate_groups(groups: Sequence[str], pairs: list[tuple[int, int, int]]
                           ) -> tuple[list[str], list[list[int]]]:
    """Join the groups (patients, or images without patient IDs) that near-duplicates connect.

    Args:
        groups: ``(N,)`` group id per case.
        pairs: :func:`near_duplicate_pairs` of the same cases.

    Returns:
        ``(new_groups, clusters)``: a group id per case, equal for all cases of one connected
        component of groups and pairs (the component's first group id), and the joined
        components as lists of case indices (only those that joined two or more groups).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    groups = [str(g) for g in groups]
    if not pairs:
        return groups, []
    names = {g: n for n, g in enumerate(dict.fromkeys(groups))}
    gi = np.array([names[g] for g in groups])
    rows = [gi[i] for i, _, _ in pairs]
    cols = [gi[j] for _, j, _ in pairs]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names),) * 2)
    _, comp = connected_components(graph, directed=False)
    first: dict[int, str] = {}
    for g, n in names.items():
        first.setdefault(int(comp[n]), g)
    new = [first[int(comp[gi[k]])] for k in range(len(groups))]
    members: dict[str, list[int]] = {}
    for k, g in enumerate(new):
        members.setdefault(g, []).append(k)
    clusters = [m for m in members.values() if len({groups[k] for k in m}) > 1]
    return new, clusters


def cross_role_duplicates(cases: list[Case], splits, pairs: list[tuple[int, int, int]] | None = None,
                          max_distance: int = MAX_DISTANCE) -> list[str]:
    """Warnings naming near-duplicate images that fall in different roles of any split.

    Args:
        cases: the cases the splits index.
        splits: :class:`~.splits.Split` objects.
        pairs: :func:`near_duplicate_pairs` of ``cases`` (computed when ``None``).
        max_distance: Hamming distance threshold in bits (when ``pairs`` is computed here).

    Returns:
        At most one warning per split, naming up to five pairs and the count.
    """
    if pairs is None:
        pairs = near_duplicate_pairs(cases, max_distance)
    warnings = []
    for split in splits:
        role = np.full(len(cases), -1)
        for r, members in enumerate((split.train, split.val, split.test)):
            role[list(members)] = r
        cross = [(cases[i].case_id, cases[j].case_id, d) for i, j, d in pairs if role[i] != role[j] >= 0 <= role[i]]
        if cross:
            shown = "; ".join(f"{x} ~ {y} ({d} bits)" for x, y, d in cross[:5])
            more = f" and {len(cross) - 5} more" if len(cross) > 5 else ""
            warnings.append(f"{split.name}: {len(cross)} near-duplicate image pair(s) fall in different roles "
                            f"(perceptual hash within {max_distance} of 64 bits): {shown}{more} — "
                            "test figures may be optimistic.")
    return warnings


def duplicate_messages(cases, pairs, clusters, class_names) -> list[tuple[str, str]]:
    """``(text, level)`` messages about near-duplicate images joined before the split: how many
    and the largest group, and pairs whose labels differ (in the Kaggle 44-class set: one
    patient's slice as "T1" and as "T1C+"; elsewhere label noise, or one image filed twice)."""
    out = []
    if clusters:
        big = max(clusters, key=len)
        out.append((f"{len(pairs)} near-duplicate image pair(s) (perceptual hash within {MAX_DISTANCE} of 64 bits) "
                    f"join {sum(map(len, clusters))} images into {len(clusters)} group(s); each group stays in one "
                    f"role, so no copy of a test image is trained on. Largest: {len(big)} images (e.g. "
                    f"{', '.join(cases[k].case_id for k in big[:3])}).", "warning"))
    conflict = [(i, j) for i, j, _ in pairs if cases[i].label != cases[j].label]
    if conflict:
        i, j = conflict[0]
        out.append((f"{len(conflict)} near-duplicate image pair(s) carry different labels, e.g. {cases[i].case_id} "
                    f"({class_names[cases[i].label]}) ~ {cases[j].case_id} ({class_names[cases[j].label]}): one "
                    "patient's slice in two sequences (e.g. before and after contrast), label noise, or one image "
                    "filed under two classes; each pair is kept in one role.", "warning"))
    return out
