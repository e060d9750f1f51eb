#!/usr/bin/env bash
# Build dist/flashml: the whole server as one executable file (PyInstaller, onefile), templates and static files
# inside. Needs Python 3.11+ with venv and pip, Node.js and npm (the console's htmx and uPlot, as for any build from
# source), and the network or a pip cache for the dependencies. Usage: packaging/build-binary.sh
#   PYTHON            the Python that builds (default python3); the executable runs where its glibc is as new
#   FLASHML_BUILD_DIR scratch space (default build/binary), emptied first
#   FLASHML_DIST_DIR  where the executable goes (default dist)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
BUILD="${FLASHML_BUILD_DIR:-$ROOT/build/binary}"
DIST="${FLASHML_DIST_DIR:-$ROOT/dist}"
rm -rf "$BUILD"
mkdir -p "$BUILD" "$DIST"
started=$SECONDS

# The wheel, as `pip install .` builds it (hatch_build.py copies the npm files into static/vendor/).
"$PYTHON" -m pip wheel --no-deps --quiet --wheel-dir "$BUILD/wheel" "$ROOT"
# A throw-away environment with only that wheel, its dependencies and PyInstaller: what the executable may contain.
"$PYTHON" -m venv "$BUILD/venv"
"$BUILD/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$BUILD"/wheel/flashml-*.whl \
    "pyinstaller>=6.10"
"$BUILD/venv/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$DIST" --workpath "$BUILD/work" \
    "$ROOT/packaging/binary/flashml.spec"

echo "built $DIST/flashml: $(du -h "$DIST/flashml" | cut -f1)B in $((SECONDS - started)) s" >&2
