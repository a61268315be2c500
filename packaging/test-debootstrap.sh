#!/usr/bin/env bash
# The package test in a fresh Debian 12: debootstrap bookworm (from the Debian mirror), install
# xen-utils-4.17, xenstore-utils and systemd into it, then run packaging/test-install.sh with that
# system as the root (ROOTFS). Slow (it downloads and installs a system: minutes), so it is not part
# of bin/test; bin/test's package test uses this host's own Debian 12 root instead.
#
#   packaging/test-debootstrap.sh PATH/TO/dxenstored_*.deb [ROOTFS_DIR]
#
# ROOTFS_DIR (default .build/debootstrap-bookworm) is kept for the next run.
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
deb="$(readlink -f "${1:?usage: $0 PATH/TO/dxenstored.deb [ROOTFS_DIR]}")"
rootfs="${2:-$here/../.build/debootstrap-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
if [ ! -f "$rootfs/.complete" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap >&2
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2
    mount -t proc proc "$rootfs/proc"
    trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
    chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends xen-utils-4.17 xenstore-utils systemd >&2
    chroot "$rootfs" apt-get clean
    umount "$rootfs/proc"
    trap - EXIT
    touch "$rootfs/.complete"
fi
ROOTFS="$rootfs" exec "$here/test-install.sh" "$deb"
