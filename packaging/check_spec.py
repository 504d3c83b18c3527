"""Quick check of the PyInstaller recipe, for CI (seconds; the full build takes ~30 min).

Checks that PyInstaller is installed (>= 6.10), that mriviewer.spec parses, that every hidden
import, data package and metadata distribution it names is installed, that PyInstaller has hooks
for the heavy packages (torch, PySide6, pydicom, monai), and that the icon, LICENSE and .desktop
file it ships exist. Exit status 1 with one line per problem.

    python packaging/check_spec.py
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def spec_constants() -> dict:
    """The constants of ``mriviewer.spec``, executed without PyInstaller (the tests read them
    through this too)."""
    path = HERE / "mriviewer.spec"
    scope = {"__file__": str(path), "SPECPATH": str(HERE)}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), scope)
    return scope


def main() -> int:
    problems: list[str] = []
    try:
        import PyInstaller
        from PyInstaller.utils.hooks import get_hook_config  # noqa: F401 - the hooks API loads
    except ImportError as exc:
        print(f"check_spec: PyInstaller missing ({exc}); pip install -e '.[packaging]'", file=sys.stderr)
        return 1
    major, minor = (int(x) for x in PyInstaller.__version__.split(".")[:2])
    if (major, minor) < (6, 10):
        problems.append(f"PyInstaller {PyInstaller.__version__} < 6.10")

    spec = spec_constants()
    for module in spec["HIDDEN_IMPORTS"]:
        if importlib.util.find_spec(module) is None:
            problems.append(f"hidden import {module} is not installed")
    for pkg in spec["DATA_PACKAGES"]:
        if importlib.util.find_spec(pkg) is None:
            problems.append(f"data package {pkg} is not installed")
    for dist in spec["METADATA"]:
        try:
            md.distribution(dist)
        except md.PackageNotFoundError:
            problems.append(f"distribution {dist} (metadata) is not installed")

    import _pyinstaller_hooks_contrib
    import PyInstaller.hooks

    hook_dirs = [Path(PyInstaller.hooks.__file__).parent,
                 Path(_pyinstaller_hooks_contrib.__file__).parent / "stdhooks"]
    for pkg in ("torch", "torchvision", "PySide6", "pydicom", "monai", "pyqtgraph", "scipy", "sklearn"):
        if not any((d / f"hook-{pkg}.py").is_file() for d in hook_dirs):
            problems.append(f"no PyInstaller hook for {pkg}")

    for path in (ROOT / "LICENSE", ROOT / "mriviewer" / "resources" / "mriviewer.svg",
                 ROOT / "mriviewer" / "resources" / "mriviewer.desktop", HERE / "mriviewer_entry.py",
                 HERE / "build.sh"):
        if not path.is_file():
            problems.append(f"missing {path.relative_to(ROOT)}")
    if "libjpeg" not in spec["EXCLUDES"]:
        problems.append("the GPL libjpeg is not excluded (MRIVIEWER_BUNDLE_GPL=1 is set?)")

    for p in problems:
        print(f"check_spec: {p}", file=sys.stderr)
    if not problems:
        print(f"check_spec: ok (PyInstaller {PyInstaller.__version__}, {len(spec['HIDDEN_IMPORTS'])} hidden "
              f"imports, {len(spec['EXCLUDES'])} excludes)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
