#!/usr/bin/env bash
# The Debian package, built and installed on this machine: `cargo deb` makes a .deb with the
# binary, the systemd unit, /etc/backfeed/backfeed.toml and a postinst that creates the
# `backfeed` system user and /var/lib/backfeed; dpkg installs it; the binary runs as that user;
# the installed unit passes systemd-analyze's offline security check. Needs root (CI is).
#   bash tests/deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) != 0 ]]; then echo "tests/deb.sh: skipped (needs root for dpkg -i)"; exit 0; fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet
deb=$(cargo deb --quiet 2>/dev/null | tail -1)
[[ -f "$deb" ]] || { echo "FAIL: cargo deb made no package"; exit 1; }
dpkg -i "$deb" >/dev/null
trap 'dpkg --purge backfeed >/dev/null 2>&1 || true' EXIT
fail() { echo "FAIL: $*"; exit 1; }
getent passwd backfeed >/dev/null || fail "no backfeed user"
[[ $(stat -c %U /var/lib/backfeed) == backfeed ]] || fail "/var/lib/backfeed is not backfeed's"
[[ -f /etc/backfeed/backfeed.toml ]] || fail "no /etc/backfeed/backfeed.toml"
version=$(runuser -u backfeed -- /usr/bin/backfeed --version) || fail "backfeed --version as backfeed"
[[ $version == backfeed* ]] || fail "unexpected version line: $version"
# The packaged config is one the binary accepts (as the backfeed user, who can read it).
runuser -u backfeed -- /usr/bin/backfeed --config /etc/backfeed/backfeed.toml migrate >/dev/null \
  || fail "the packaged config does not run"
unit=$(dpkg -L backfeed | grep '/backfeed.service$' | head -1)
[[ -n $unit ]] || fail "no systemd unit in the package"
exposure=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null \
  | grep 'Overall exposure level' | grep -o '[0-9]\+\.[0-9]\+' | head -1)
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e + 0 <= 2.0) }' \
  || fail "systemd-analyze exposure ${exposure:-unknown} (expected 2.0 or less)"
echo "deb: $version installed and run as backfeed; unit exposure $exposure"
echo "deb: 1 passed, 0 failed"
