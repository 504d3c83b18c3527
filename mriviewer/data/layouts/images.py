"""2D images: ``<root>/<class name>/*.{jpg,jpeg,png}`` (each image a case with a single slice, its
class the folder name), or loose images in a folder (one unlabelled case each, layout ``images``).
"""

from __future__ import annotations

from pathlib import Path

from mriviewer.data.cases import IMAGE_MODALITY, Case, Dataset, ModalitySource
from mriviewer.data.listing import FolderListing, _is_class_dir, _subdirs


def _claims_image_folder(listing: FolderListing) -> bool:
    return any(_is_class_dir(d) for d in listing.dirs)


def _build_image_folder(listing: FolderListing) -> tuple[Dataset, set[Path]]:
    dirs = [d for d in listing.dirs if _is_class_dir(d)]
    return _image_folder(listing.path, dirs), set(dirs)


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
