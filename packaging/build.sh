#!/usr/bin/env bash
# Build the one-folder Linux bundle of mriviewer (GUI + CLI) with PyInstaller.
#
#   packaging/build.sh [OUT_DIR]          default OUT_DIR: /tmp/mriviewer-bundle
#
# Uses the Python of the active virtual environment (or $PYTHON), which must have mriviewer
# installed (pip install -e ".[packaging]"). Output: OUT_DIR/dist/mriviewer/ (run
# OUT_DIR/dist/mriviewer/mriviewer), plus OUT_DIR/mriviewer-<version>-linux-x86_64.tar.gz unless
# MRIVIEWER_BUNDLE_TAR=0. The source is copied to OUT_DIR/src first and built from there; build
# files go to OUT_DIR/work; nothing is written into the source tree.
# Smoke test at the end (offscreen): --version, `demo`, `info` and one tiny `train` epoch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${1:-/tmp/mriviewer-bundle}"
py="${PYTHON:-python}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
case "$out/" in "$root/"*) echo "build.sh: put OUT_DIR outside the source tree ($root)" >&2; exit 2;; esac

"$py" -m PyInstaller --version >/dev/null 2>&1 || {
    echo "build.sh: PyInstaller is missing; pip install -e \"$root[packaging]\"" >&2; exit 2; }

# Freeze a snapshot of the source tree (tracked and untracked, not ignored files), so that edits
# made while PyInstaller runs cannot mix into the bundle. PYTHONPATH puts the snapshot's
# mriviewer ahead of the installed (editable) one, in the analysis and in its helper processes.
src="$out/src"
rm -rf "$src" && mkdir -p "$src"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -C "$src" -xf -
else
    cp -a "$root/." "$src/" && rm -rf "$src/.venv"
fi
export PYTHONPATH="$src${PYTHONPATH:+:$PYTHONPATH}"
cd "$src"  # `python -c` and PyInstaller put the working directory first on sys.path
version="$("$py" -c 'import mriviewer; print(mriviewer.__version__)')"
"$py" -c 'import mriviewer, sys; sys.exit(not mriviewer.__file__.startswith(sys.argv[1]))' "$src/" || {
    echo "build.sh: the snapshot's mriviewer is not the one imported" >&2; exit 2; }

start=$SECONDS
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$out/dist" --workpath "$out/work" "$src/packaging/mriviewer.spec"
echo "build.sh: built in $((SECONDS - start)) s: $out/dist/mriviewer ($(du -sh "$out/dist/mriviewer" | cut -f1))"

# Smoke test: the frozen program starts, writes a small demo dataset, reads it back (DICOM and
# NIfTI decoding) and trains one tiny epoch on the CPU (torch, torchvision, monai).
bundle="$out/dist/mriviewer/mriviewer"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
smoke="$(mktemp -d)"
"$bundle" --version
"$bundle" demo --out "$smoke/demo" --cases 8
"$bundle" info "$smoke/demo" | tail -n 3
"$bundle" train --data "$smoke/demo" --model resnet18-2d --out "$smoke/run" --epochs 1 \
    --image-size 32 --batch-size 2 --slices-per-case 1 --device cpu 2>/dev/null | tail -n 1
test -s "$smoke/run/best.pt"
rm -rf "$smoke"

if [ "${MRIVIEWER_BUNDLE_TAR:-1}" != 0 ]; then
    tarball="$out/mriviewer-$version-linux-$(uname -m).tar.gz"
    tar -C "$out/dist" -czf "$tarball" mriviewer
    echo "build.sh: archive $tarball ($(du -sh "$tarball" | cut -f1))"
fi
