#!/usr/bin/env bash
# Installs what the end-to-end testbed needs beyond test/deps.sh: pacemaker-remoted.
# Debian's pacemaker-remote package conflicts with pacemaker (installing it removes
# pacemaker), so it is downloaded and extracted into a private directory instead,
# at the version of the installed pacemaker (they share libraries).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEST=${NOVAHA_E2E_REMOTE_DIR:-/opt/novaha-e2e/pacemaker-remote}

bash "$HERE/../deps.sh"
for t in ip unshare nsenter flock setsid; do
  command -v "$t" >/dev/null || { echo "e2e deps: $t missing (iproute2, util-linux)" >&2; exit 1; }
done

ver=$(dpkg-query -W -f='${Version}' pacemaker)
if [ -x "$DEST/usr/sbin/pacemaker-remoted" ] && [ "$(cat "$DEST/.version" 2>/dev/null)" = "$ver" ]; then
  echo "e2e deps: pacemaker-remoted $ver present in $DEST"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt's download runs as user _apt
(cd "$tmp" && apt-get -o DPkg::Lock::Timeout=900 download -q "pacemaker-remote=$ver")
rm -rf "$DEST"
mkdir -p "$DEST"
dpkg-deb -x "$tmp"/pacemaker-remote_*.deb "$DEST"
echo "$ver" >"$DEST/.version"
echo "e2e deps: extracted pacemaker-remote $ver into $DEST"
