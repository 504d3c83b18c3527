"""Near-duplicate images across roles (train / validation / test) in 2D image sets.

Kaggle brain-tumour sets have no patient IDs and contain the same slice more than once (copies,
re-encodes, small crops). A near-duplicate in both training and test inflates the test figure, so
the engine reports every such pair before training. Method: perceptual hash (``imagehash.phash``,
64-bit DCT hash; Zauner 2010, "Implementation and benchmarking of perceptual image hash
functions"), pairs within :data:`MAX_DISTANCE` bits.
"""

from __future__ import annotations

import logging

import numpy as np

from ..datasets import Case

log = logging.getLogger(__name__)

__all__ = ["phashes", "cross_role_duplicates", "MAX_DISTANCE"]

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


def cross_role_duplicates(cases: list[Case], splits, max_distance: int = MAX_DISTANCE) -> list[str]:
    """Warnings naming near-duplicate images that fall in different roles of any split.

    Args:
        cases: the cases the splits index.
        splits: :class:`~.splits.Split` objects.
        max_distance: Hamming distance threshold in bits.

    Returns:
        At most one warning per split, naming up to five pairs and the count.
    """
    hashes = phashes(cases)
    ids = [c.case_id for c in cases if c.case_id in hashes]
    if len(ids) < 2:
        return []
    mat = np.stack([hashes[i] for i in ids]).astype(np.uint8)  # (N, 64)
    # Hamming distances of all pairs: differing bits = a·(1−b) + (1−a)·b.
    dist = mat @ (1 - mat).T
    dist = dist + dist.T
    pos = {cid: n for n, cid in enumerate(ids)}
    warnings = []
    for split in splits:
        role = np.full(len(ids), -1)
        for r, members in enumerate((split.train, split.val, split.test)):
            for i in members:
                if cases[i].case_id in pos:
                    role[pos[cases[i].case_id]] = r
        a, b = np.nonzero(np.triu(dist <= max_distance, k=1))
        cross = [(ids[i], ids[j], int(dist[i, j])) for i, j in zip(a, b, strict=True) if role[i] != role[j] >= 0 <= role[i]]
        if cross:
            shown = "; ".join(f"{x} ~ {y} ({d} bits)" for x, y, d in cross[:5])
            more = f" and {len(cross) - 5} more" if len(cross) > 5 else ""
            warnings.append(f"{split.name}: {len(cross)} near-duplicate image pair(s) fall in different roles "
                            f"(perceptual hash within {max_distance} of 64 bits): {shown}{more} — "
                            "test figures may be optimistic.")
    return warnings
