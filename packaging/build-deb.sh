#!/usr/bin/env bash
# Build dist/flashml_<version>_amd64.deb with dpkg-deb from the single-file executable (dist/flashml; built first
# with packaging/build-binary.sh when missing). Usage: packaging/build-deb.sh
#   FLASHML_BINARY    the executable to package (default dist/flashml)
#   FLASHML_BUILD_DIR scratch space (default build/deb), emptied first
#   FLASHML_DIST_DIR  where the .deb goes (default dist)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEB="$ROOT/packaging/deb"
BUILD="${FLASHML_BUILD_DIR:-$ROOT/build/deb}"
DIST="${FLASHML_DIST_DIR:-$ROOT/dist}"
BINARY="${FLASHML_BINARY:-$DIST/flashml}"
[ -x "$BINARY" ] || FLASHML_DIST_DIR="$(dirname "$BINARY")" "$ROOT/packaging/build-binary.sh"

# The version the executable reports (`flashml, version 0.1.0`), so the package cannot disagree with it.
VERSION="$("$BINARY" --version | awk '{print $NF}')"
# The executable (Python's own libraries inside) needs a C library at least as new as the one it was built with.
GLIBC="$(ldd --version | awk 'NR == 1 {print $NF}')"

rm -rf "$BUILD"
STAGE="$BUILD/flashml_${VERSION}_amd64"
install -d -m 0755 "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/etc/flashml" \
    "$STAGE/usr/share/doc/flashml"
install -m 0755 "$BINARY" "$STAGE/usr/bin/flashml"
install -m 0644 "$DEB/flashml.service" "$STAGE/lib/systemd/system/flashml.service"
install -m 0600 "$DEB/flashml.env" "$STAGE/etc/flashml/flashml.env"
install -m 0644 "$ROOT/README.md" "$ROOT/docs/install.md" "$ROOT/docs/settings.md" "$STAGE/usr/share/doc/flashml/"
printf 'FlashML\nLicense: Apache-2.0 (see /usr/share/common-licenses/Apache-2.0)\n' \
    > "$STAGE/usr/share/doc/flashml/copyright"
install -m 0755 "$DEB/postinst" "$DEB/prerm" "$DEB/postrm" "$STAGE/DEBIAN/"
echo /etc/flashml/flashml.env > "$STAGE/DEBIAN/conffiles"
INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE@/$INSTALLED_SIZE/" -e "s/@GLIBC@/$GLIBC/" \
    "$DEB/control.in" > "$STAGE/DEBIAN/control"

mkdir -p "$DIST"
OUT="$DIST/flashml_${VERSION}_amd64.deb"
# The executable is compressed already (zlib, by PyInstaller): gzip's fastest level packs it in seconds and a stronger
# level would gain little.
dpkg-deb --root-owner-group -Zgzip -z1 --build "$STAGE" "$OUT" >/dev/null
echo "built $OUT: $(du -h "$OUT" | cut -f1)B" >&2
