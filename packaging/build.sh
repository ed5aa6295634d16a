#!/usr/bin/env bash
# Builds the binary packages from the `make dist` tarball, offline (vendor/ is in it).
#   packaging/build.sh deb|rpm <tarball> <outdir>
# Go: Debian 12 has no Go 1.26 package, so both builds use $GO (default /usr/local/go/bin/go):
# the Debian build through the pkg.novaha.local-go build profile, the RPM build with
# --nodeps and --define "go $GO" (see packaging/README.md).
set -euo pipefail

kind=$1 tarball=$(realpath "$2") out=$(realpath -m "$3")
GO=${GO:-/usr/local/go/bin/go}
export GO
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$tarball" .tar.gz)          # novaha-0.1.0
version=${name#novaha-}
mkdir -p "$out"

case $kind in
deb)
  deb_upstream=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version | sed 's/-[^-]*$//')
  if [ "$deb_upstream" != "$version" ]; then
    echo "packaging/debian/changelog is at $deb_upstream but VERSION is $version: add a changelog entry (dch -v $version-1)" >&2
    exit 1
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  ln -s "$tarball" "$work/novaha_$version.orig.tar.gz"
  tar -xzf "$tarball" -C "$work"
  cp -a "$here/debian" "$work/$name/debian"
  (cd "$work/$name" && dpkg-buildpackage -b -us -uc -Ppkg.novaha.local-go)
  cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
  # Errors fail the build; warnings are printed (see packaging/README.md for the known ones).
  lintian --fail-on error "$work"/*.changes
  ls -l "$out"/*.deb
  ;;
rpm)
  spec_version=$(sed -n 's/^Version:[[:space:]]*//p' "$here/rpm/novaha.spec")
  if [ "$spec_version" != "$version" ]; then
    echo "packaging/rpm/novaha.spec is at $spec_version but VERSION is $version" >&2
    exit 1
  fi
  top=$(mktemp -d)
  trap 'rm -rf "$top"' EXIT
  mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
  cp "$tarball" "$top/SOURCES/"
  cp "$here/rpm/novaha.spec" "$top/SPECS/"
  # --nodeps: Debian's rpm database knows no packages, so BuildRequires cannot be met here.
  rpmbuild -bb --nodeps --define "_topdir $top" --define "go $GO" "$top/SPECS/novaha.spec"
  find "$top/RPMS" -name '*.rpm' -exec cp {} "$out"/ \;
  ls -l "$out"/*.rpm
  ;;
*)
  echo "usage: $0 deb|rpm <tarball> <outdir>" >&2
  exit 2
  ;;
esac
