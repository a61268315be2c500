#!/usr/bin/env bash
# Installs a dxenstored .deb into a throw-away Debian 12 system and checks what the package promises.
#
#   packaging/test-install.sh PATH/TO/dxenstored_*.deb        (root; `deno task deb:test` builds first)
#
# The system is this host's root filesystem seen through an overlay in a private mount namespace
# (unshare -m): a Debian 12 with xen-utils-4.17 installed (bin/test and .ci/run install it), where
# every change lands in a temporary upper layer and disappears afterwards. Nothing is installed on
# the host. packaging/test-debootstrap.sh does the same in a fresh debootstrap'ed Debian 12 (slow:
# it downloads a system).
#
# Prints "ok <check>" or "FAIL <check>: <why>" per check, and exits non-zero if any failed.
set -uo pipefail

# ROOTFS: the Debian 12 system to install into (default: this host's root, seen through an overlay).
rootfs="${ROOTFS:-/}"
deb="$(readlink -f "${1:?usage: $0 PATH/TO/dxenstored.deb}")"
[ "$(id -u)" = 0 ] || { echo "FAIL root: needs root (mount namespace, chroot)"; exit 2; }
work="$(mktemp -d /tmp/dxdeb.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Everything below runs in a private mount namespace: the overlay and the bind mounts vanish with it.
unshare -m --propagation private bash -s "$deb" "$work" "$rootfs" <<'INNER'
set -uo pipefail
deb="$1"; work="$2"; rootfs="$3"
failed=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }
mkdir -p "$work/up" "$work/wk" "$work/root"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$work/up,workdir=$work/wk" "$work/root" ||
    { echo "FAIL overlay: cannot mount an overlay of $rootfs"; exit 2; }
R="$work/root"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

[ -f "$R/etc/debian_version" ] && grep -q '^12' "$R/etc/debian_version" &&
    ok "debian-12 ($(cat "$R/etc/debian_version"))" || fail debian-12 "not a Debian 12 root"
in_root dpkg-query -W -f '${Status}' xen-utils-4.17 2>/dev/null | grep -q "install ok installed" &&
    ok "xen-utils-4.17 installed" || fail xen-utils-4.17 "not installed in the root"
in_root dpkg-query -W dxenstored >/dev/null 2>&1 && fail clean-root "dxenstored is already installed"

# A deny-all policy-rc.d that records every service action anybody asks for.
cat >"$R/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
echo "$*" >>/var/log/policy-rc.d.calls
exit 101
EOF
chmod 755 "$R/usr/sbin/policy-rc.d"
: >"$R/var/log/policy-rc.d.calls"
default_before="$(sha256sum "$R/etc/default/xen" 2>/dev/null | cut -d' ' -f1)"
cp "$deb" "$R/tmp/dxenstored.deb"

if out="$(in_root dpkg -i /tmp/dxenstored.deb 2>&1)"; then ok "dpkg -i"; else fail "dpkg -i" "$out"; fi

# Files and conffiles as listed in docs/operations.md: the built program and Deno, no source tree.
files="$(in_root dpkg -L dxenstored)"
for f in /usr/sbin/dxenstored /usr/bin/dxenstore /usr/bin/dxenstore-guest /usr/lib/dxenstored/deno /usr/lib/dxenstored/dxenstored.js \
    /etc/xen/dxenstored.conf /etc/logrotate.d/dxenstored /lib/systemd/system/dxenstored.service \
    /usr/share/man/man8/dxenstored.8.gz /usr/share/doc/dxenstored/examples/xen.service.d/dxenstored.conf \
    /usr/share/doc/dxenstored/operations.md; do
    grep -qx "$f" <<<"$files" || fail "file $f" "not in dpkg -L"
done
ok "files listed"
if grep -E '/src/|node_modules|\.ts$' <<<"$files" >/dev/null; then
    fail "no source tree" "$(grep -E '/src/|node_modules|\.ts$' <<<"$files" | head -3 | tr '\n' ' ')"
else ok "no source tree"; fi
# The documents operations.md links to are installed beside it (relative links resolve).
missing=""
for d in "$R"/usr/share/doc/dxenstored/*.md; do
    for l in $(grep -oE '\]\([^()#[:space:]]+\.md' "$d" | sed 's/^](//'); do
        [ -f "$(dirname "$d")/$l" ] || missing="$missing $(basename "$d")->$l"
    done
done
[ -z "$missing" ] && ok "doc links resolve" || fail "doc links resolve" "$missing"
# The man page: man finds it by name, and it renders without groff warnings.
if [ -x "$R/usr/bin/man" ]; then
    if w="$(in_root man -w dxenstored 2>&1)" && [ "$w" = /usr/share/man/man8/dxenstored.8.gz ]; then
        ok "man -w dxenstored"
    else fail "man -w dxenstored" "$w"; fi
    if out="$(in_root env MANWIDTH=80 man --warnings -l /usr/share/man/man8/dxenstored.8.gz 2>&1 >/dev/null)" &&
        [ -z "$out" ] && in_root env MANWIDTH=80 man -l /usr/share/man/man8/dxenstored.8.gz 2>/dev/null | grep -q -- '--pid-file'; then
        ok "man -l dxenstored.8.gz"
    else fail "man -l dxenstored.8.gz" "$out"; fi
else
    echo "skip man (man-db not installed)"
fi
conffiles="$(in_root dpkg-query -W -f '${Conffiles}\n' dxenstored | awk 'NF {print $1}' | sort | tr '\n' ' ')"
[ "$conffiles" = "/etc/logrotate.d/dxenstored /etc/xen/dxenstored.conf " ] && ok "conffiles: $conffiles" ||
    fail conffiles "got '$conffiles'"
grep -q "/etc/default/xen" <<<"$files" && fail "no /etc/default/xen" "the package ships it"
[ -L "$R/etc/systemd/system/multi-user.target.wants/dxenstored.service" ] &&
    fail "unit disabled" "dxenstored.service got enabled" || ok "unit disabled"
[ -e "$R/etc/systemd/system/xen.service.d/dxenstored.conf" ] &&
    fail "drop-in inactive" "the xen.service.d drop-in is active" || ok "drop-in inactive"

# The installed daemon runs: configuration check, and the init script's start and readiness probe.
if out="$(in_root /usr/sbin/dxenstored --config-test 2>&1)"; then ok "config-test: $out"; else fail config-test "$out"; fi
if out="$(in_root /usr/sbin/dxenstored --config-file /etc/xen/oxenstored.conf --config-test 2>&1)"; then
    ok "config-test oxenstored.conf"
else fail "config-test oxenstored.conf" "$out"; fi
if out="$(in_root env XENSTORED_PATH=/run/xs.sock XENSTORED_RUNDIR=/run/xenstored XENSTORED_ROOTDIR=/run/xenstored \
    start-stop-daemon --start --quiet --pidfile /run/xenstore.pid --exec /usr/bin/choom -- \
    -n 0 /usr/sbin/dxenstored -- --pid-file /run/xenstore.pid --log-file /run/dxenstored.log 2>&1)"; then
    ok "start-stop-daemon start"
else fail "start-stop-daemon start" "$out $(cat "$R/run/dxenstored.log" 2>/dev/null)"; fi
if in_root env XENSTORED_PATH=/run/xs.sock xenstore-read -s / >/dev/null 2>&1; then ok "xenstore-read -s /"
else fail "xenstore-read -s /" "no answer"; fi
if out="$(in_root env XENSTORED_PATH=/run/xs.sock sh -c 'dxenstore write /pkg/x installed && dxenstore read /pkg/x' 2>&1)" &&
    [ "$out" = installed ]; then ok "dxenstore write+read"
else fail "dxenstore write+read" "$out"; fi
# The package's configuration keeps the store on disk (issue 17): no flag was given for it.
if [ -e "$R/var/lib/xenstored/dxenstored/lock" ] && ls "$R/var/lib/xenstored/dxenstored" | grep -q .; then
    ok "store under /var/lib/xenstored/dxenstored"
else fail "store under /var/lib/xenstored/dxenstored" "$(ls -la "$R/var/lib/xenstored/dxenstored" 2>&1)"; fi
pid="$(cat "$R/run/xenstore.pid" 2>/dev/null)"
if [ -n "$pid" ] && grep -qs /usr/lib/dxenstored/dxenstored.js "/proc/$pid/cmdline"; then ok "pid file: $pid"
else fail "pid file" "'$pid' is not the installed daemon"; fi
# It looks like a xenstored to the tools around it: argv[0] (pidof) and comm (pgrep) are dxenstored.
if [ -n "$pid" ] && [ "$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n1)" = dxenstored ] &&
    [ "$(cat "/proc/$pid/comm")" = dxenstored ] && in_root pidof dxenstored | tr ' ' '\n' | grep -qx "$pid" &&
    in_root pgrep -x dxenstored | grep -qx "$pid"; then
    ok "process name dxenstored"
else fail "process name dxenstored" "cmdline '$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)' comm '$(cat "/proc/$pid/comm" 2>/dev/null)'"; fi
[ -n "$pid" ] && kill "$pid" 2>/dev/null
for _ in $(seq 1 100); do [ -e "$R/run/xs.sock" ] || break; sleep 0.05; done

# systemd units: the shipped one, and xen.service with the example drop-in activated.
if command -v systemd-analyze >/dev/null; then
    if out="$(in_root systemd-analyze verify /lib/systemd/system/dxenstored.service 2>&1)" && [ -z "$out" ]; then
        ok "systemd-analyze verify dxenstored.service"
    else fail "systemd-analyze verify dxenstored.service" "$out"; fi
    # Debian's xen.service is generated from /etc/init.d/xen at boot; verify a unit like the generated one.
    cat >"$R/etc/systemd/system/xen.service" <<'EOF'
[Unit]
Description=LSB: Xen daemons
SourcePath=/etc/init.d/xen
[Service]
Type=forking
RemainAfterExit=yes
ExecStart=/etc/init.d/xen start
ExecStop=/etc/init.d/xen stop
EOF
    mkdir -p "$R/etc/systemd/system/xen.service.d"
    cp "$R/usr/share/doc/dxenstored/examples/xen.service.d/dxenstored.conf" "$R/etc/systemd/system/xen.service.d/"
    if out="$(in_root systemd-analyze verify /etc/systemd/system/xen.service 2>&1)" && [ -z "$out" ]; then
        ok "systemd-analyze verify xen.service + drop-in"
    else fail "systemd-analyze verify xen.service + drop-in" "$out"; fi
    grep -qx "Environment=XENSTORED=/usr/sbin/dxenstored" "$R/etc/systemd/system/xen.service.d/dxenstored.conf" &&
        ok "drop-in sets XENSTORED" || fail "drop-in sets XENSTORED" "no Environment=XENSTORED line"
    rm -rf "$R/etc/systemd/system/xen.service.d" "$R/etc/systemd/system/xen.service"
else
    echo "skip systemd-analyze (not installed)"
fi

# Removal: conffiles stay until purge, /etc/default/xen is untouched, no service action ever.
if out="$(in_root dpkg -r dxenstored 2>&1)"; then ok "dpkg -r"; else fail "dpkg -r" "$out"; fi
[ -e "$R/usr/sbin/dxenstored" ] && fail "removed" "/usr/sbin/dxenstored still there" || ok "binary removed"
[ -e "$R/etc/xen/dxenstored.conf" ] && ok "conffile kept after remove" || fail "conffile kept" "gone after dpkg -r"
if out="$(in_root dpkg -P dxenstored 2>&1)"; then ok "dpkg -P"; else fail "dpkg -P" "$out"; fi
[ -e "$R/etc/xen/dxenstored.conf" ] && fail purge "conffile left after purge" || ok "conffile purged"
default_after="$(sha256sum "$R/etc/default/xen" 2>/dev/null | cut -d' ' -f1)"
[ "$default_before" = "$default_after" ] && ok "/etc/default/xen unchanged" ||
    fail "/etc/default/xen unchanged" "$default_before -> $default_after"
calls="$(cat "$R/var/log/policy-rc.d.calls")"
[ -z "$calls" ] && ok "no service action attempted (policy-rc.d)" || fail "no service action" "$calls"

umount "$R/tmp" "$R/run" "$R/dev" "$R/proc" "$R" 2>/dev/null
exit $failed
INNER
