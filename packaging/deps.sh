#!/usr/bin/env bash
# Installs the Debian packages that `make packages` needs: the Debian package tools
# (dpkg-buildpackage, debhelper, lintian) and Debian's rpm for rpmbuild.
# Go is not among them: Debian 12's golang is 1.19 and novaha needs Go 1.26, so the
# build uses the Go toolchain at /usr/local/go (or $GO); see packaging/README.md.
# Idempotent: packages already present are skipped.
set -euo pipefail

pkgs=(dpkg-dev debhelper fakeroot lintian rpm)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "packaging deps: all ${#pkgs[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "packaging deps: installing ${missing[*]}"
$sudo apt-get -o DPkg::Lock::Timeout=900 update -q
$sudo apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
