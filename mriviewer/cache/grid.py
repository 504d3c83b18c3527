"""A case's modalities decoded (through the cache) and resampled onto one grid, the resampled
volumes kept in the disk cache.
"""

from __future__ import annotations

from mriviewer.core.errors import MriViewerError
from mriviewer.core.resample import highest_resolution, reference_grid, resample_volume
from mriviewer.core.volume import Volume, same_grid

#: Version of the grid resampling; part of the disk-cache key of resampled volumes.
GRID_FORMAT = 1


def case_on_grid(case, cache, modalities: list[str] | None = None, reference: str = "auto",
                 processes: int | None = None) -> tuple[dict[str, Volume], str | None, Volume | None]:
    """The modalities of ``case`` on one common grid, and its segmentation (nearest neighbour).

    Args:
        case: a :class:`~mriviewer.data.cases.Case`.
        cache: a :class:`~mriviewer.cache.memory.VolumeCache`; decoded sources come from it (decoded in
            parallel when missing) and resampled volumes are stored in its disk cache, keyed by
            both sources' identities, so reopening a case does not resample again.
        modalities: which ones (default: all present).
        reference: the modality whose grid (canonical orientation) is used; ``"auto"`` the
            finest (smallest voxel volume); ``"native"`` no resampling (each canonical).

    Returns:
        ``({modality: Volume}, reference used or None, segmentation or None)``; the segmentation
        is a label :class:`Volume` on the same grid whose ``meta["warnings"]`` carries the
        loader's (e.g. non-integer labels). A modality that failed to load is left out
        (``cache.get`` on it raises the error); a segmentation that fails to load or resample
        does not hide the images: it is left out and its message, naming the file, is added to
        ``case.errors``.
    """
    from mriviewer.cache.keys import source_key
    from mriviewer.data.cases import ModalitySource

    names = list(modalities or case.modalities)
    all_names = list(case.modalities)
    loaded = cache.get_many([case.modalities[m] for m in all_names], processes)
    vols = {m: v for m, v in zip(all_names, loaded, strict=True) if isinstance(v, Volume)}
    if reference == "native" or not vols or any(v.is_2d for v in vols.values()):
        out = {m: vols[m].canonical() for m in names if m in vols}
        ref_name, shape, affine = None, None, None
    else:
        ref_name = reference if reference in vols else highest_resolution(vols)
        shape, affine = reference_grid(vols[ref_name])
        out = {}
        keys: dict[str, object] = {}  # each source's identity once (it stats, on Windows reads, its files)

        def key_of(name):
            if name not in keys:
                try:
                    keys[name] = source_key(case.modalities[name])
                except OSError:
                    keys[name] = None
            return keys[name]

        for m in names:
            if m not in vols:
                continue
            if same_grid(*vols[m].canonical_grid(), shape, affine):  # on the grid already: nothing to resample
                out[m] = vols[m].canonical(copy=False)  # a view: the viewer reads slices (no 0.3 s copy)
                continue
            key = None
            if cache.disk is not None and key_of(m) is not None and key_of(ref_name) is not None:
                key = ("grid", GRID_FORMAT, key_of(m), key_of(ref_name))
            vol = cache.disk.load(key) if key is not None else None
            if vol is None:
                vol = resample_volume(vols[m], shape, affine)
                if key is not None:
                    cache.disk.save(key, vol)
            out[m] = vol
    seg = None
    if case.segmentation is not None and out:
        try:
            seg_vol = cache.get(ModalitySource("SEG", case.segmentation, "nifti"))
            target = next(iter(out.values()))
            seg = resample_volume(seg_vol, target.shape, target.affine, nearest=True)  # keeps meta["warnings"]
        except Exception as exc:  # a broken mask must not hide the images, nor fail unseen
            msg = str(exc) if isinstance(exc, MriViewerError) else f"{type(exc).__name__}: {exc}"
            msg = f"segmentation {case.segmentation}: {msg}" if str(case.segmentation) not in msg else msg
            if msg not in case.errors:
                case.errors.append(msg)
            seg = None
    return out, ref_name, seg
