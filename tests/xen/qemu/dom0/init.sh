#!/bin/sh
# PID 1 of dom0 for the real-Xen E2E (tests/xen/qemu; overlaid as /init through build.sh's
# EXTRA_DOM0_DIR, booted by ../shared/xen-qemu/run.sh). Brings dom0 up like the shared init, starts
# the xenstore daemon under test as a dom0 xenstored, then runs the scenarios of one boot plan.
#
# Kernel command line (run.sh): xsd=cxenstored|oxenstored|/usr/sbin/dxenstored   guest=A|B|P|P1|L
#   A: scenario 0 (dxenstored only: the packaged daemon as installed, started as /etc/init.d/xen does)
#      scenario 1 (PV + PVH guests: read/write/list/watch/transaction over the ring; dom0 tools)
#      scenario 2 (two guests: EACCES on each other's nodes, SET_PERMS grant)
#      scenario 3 (xl shutdown / xl reboot / xl destroy: @releaseDomain, cleanup)
#   B: benchmark (guest READ round trip, xl create -> first xenstore access) and
#      scenario 4 (SIGKILL + restart of the daemon while a guest runs; a new xl create)
#   P: scenario 5, performance (10 guests: one reading alone, then all at once; the daemon's system
#      calls per request counted with strace when the image has it: e2e:xen --plans P adds it)
#   P1: scenario 5 with its one-guest part only
#   L: scenario 6, live update dx → dx twice under real Xen while a PV and a PVH guest are busy
#      (live_update.sh)
#   LC: the same starting from cxenstored: cx → dx, dx → dx, dx → cx (dom0 starts Debian's daemon)
# Lines the runner (scripts/e2e-xen.ts) parses, all "[dom0 <uptime>] ...":
#   E2E-SCENARIO <s> BEGIN <title> | E2E-SCENARIO <s> PASS|FAIL
#   E2E-MS <s> <seconds since the scenario began> <milestone>
#   E2E-CPU xsd=... phase=... hz=... main_user= main_sys= other_user= other_sys= (ticks; plan P/P1)
#   E2E-CHECK <s> ok|FAIL|note <what> :: <detail>
#   E2E-BENCH <key>=<value>...
#   E2E-STRACE xsd=<daemon> phase=<p> requests=<n> <syscall>=<calls>[/<failed>]...
#   [xsd] <line>                     (the daemon's own log, streamed while it runs)
#   E2E-RESULT: PASS|FAIL (...)      (last; run.sh stops waiting there)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts -o ptmxmode=0666 devpts /dev/pts # xenconsoled needs ptys
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "[dom0 $(up)] $*"; }

XSD=cxenstored PLAN=A MODE=auto
for a in $(cat /proc/cmdline); do
  case $a in
  xsd=*) XSD=${a#xsd=} ;;
  guest=*) PLAN=${a#guest=} ;;
  e2e=*) MODE=${a#e2e=} ;;
  esac
done
[ "$PLAN" = LC ] && XSD=cxenstored # live_update.sh switches it to the packaged dxenstored
case $XSD in cxenstored | oxenstored) REF=$XSD ;; *) REF= ;; esac
say "DOM0-INIT-OK kernel $(uname -r) xsd=$XSD plan=$PLAN"

XSDLOG=/var/log/xen/xsd.log
finish() { # $1 = 0 pass, else fail; $2 reason
  pump
  sleep 0.3 # the last daemon log lines (streamed by start_xsd)
  if [ "$1" = 0 ]; then say "E2E-RESULT: PASS"; else say "E2E-RESULT: FAIL ($2)"; fi
  [ "$MODE" = shell ] && exec setsid cttyhack sh
  sync
  if [ "$1" = 0 ]; then v='\000'; else v='\001'; fi # QEMU isa-debug-exit
  printf "$v" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
  sleep 2
  poweroff -f
}

for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc; do
  insmod /lib/modules/$m.ko || say "insmod $m failed"
done
mount -t xenfs xenfs /proc/xen || finish 1 "no xenfs"
mkdir -p /run/xenstored /run/xen /run/lock /var/log/xen/console /var/lib/xen /var/lib/xenstored
[ -e /var/lock ] || ln -s /run/lock /var/lock # xl locks /var/lock/xl

# ------------------------------------------------------------------ helpers
GUESTS=
pump() { # copy new guest console lines to the serial log
  local pg pf pn ps
  for pg in $GUESTS; do
    pf=/var/log/xen/console/guest-$pg.log
    [ -f $pf ] || continue
    pn=$(wc -l < $pf)
    ps=$(cat /tmp/shown-$pg 2>/dev/null || echo 0)
    if [ "$pn" -gt "$ps" ]; then
      sed -n "$((ps + 1)),${pn}p" $pf | tr -d '\r' | sed "s/^/[guest $pg] /"
      echo "$pn" > /tmp/shown-$pg
    fi
  done
}
# wait_guest NAME PATTERN SECONDS: until the guest's console log has PATTERN
wait_guest() {
  local i=0
  while [ $i -lt $(($3 * 5)) ]; do
    pump
    grep -q "$2" /var/log/xen/console/guest-$1.log 2>/dev/null && return 0
    i=$((i + 1)); sleep 0.2
  done
  pump; return 1
}
# wait_for SECONDS CMD...: until CMD succeeds
wait_for() {
  local t=$1 i=0
  shift
  until "$@"; do i=$((i + 1)); [ $i -gt $((t * 5)) ] && return 1; sleep 0.2; done
}
lines() { wc -l < "$1" 2>/dev/null || echo 0; }
SCN= T0= CURFAIL=0 FAILED=
begin() { SCN=$1; T0=$(up); CURFAIL=0; say "E2E-SCENARIO $1 BEGIN $2"; }
ms() { say "E2E-MS $SCN $(awk "BEGIN{printf \"%.1f\", $(up) - $T0}") $*"; }
ok() { say "E2E-CHECK $SCN ok $1 :: $2"; }
bad() { say "E2E-CHECK $SCN FAIL $1 :: $2"; CURFAIL=1; }
note() { say "E2E-CHECK $SCN note $1 :: $2"; }
# chk WHAT WANT GOT
chk() { if [ "$2" = "$3" ]; then ok "$1" "$3"; else bad "$1" "want [$2] got [$3]"; fi; }
end() {
  pump
  local eg en
  for eg in $GUESTS; do # a guest's failed check fails the scenario
    if grep -q "GUEST-CHECK $SCN FAIL" /var/log/xen/console/guest-$eg.log 2>/dev/null; then CURFAIL=1; fi
    en=$(grep -c "GUEST-CHECK $SCN ok" /var/log/xen/console/guest-$eg.log 2>/dev/null)
    [ "${en:-0}" -gt 0 ] && say "E2E-GUESTCHECKS $SCN $eg $en ok"
  done
  if [ $CURFAIL = 0 ]; then say "E2E-SCENARIO $SCN PASS"; else say "E2E-SCENARIO $SCN FAIL"; FAILED="$FAILED $SCN"; fi
}
xsd_pid() { cat /run/xenstore.pid 2>/dev/null; }
START_RC=
start_xsd() {
  case $XSD in
  cxenstored) xenstored --pid-file /run/xenstore.pid ;;
  oxenstored) oxenstored --pid-file /run/xenstore.pid ;;
  *) # the packaged daemon ($XSD = /usr/sbin/dxenstored, the .deb's files), started the way Debian's
    # /etc/init.d/xen starts a xenstored (xenstored_start): start-stop-daemon without --background
    # execs it through choom, with /etc/default/xen's XENSTORED_ARGS (empty unless the runner got
    # --daemon-arg) and --pid-file, nothing else; the daemon forks and the start returns once it serves.
    # Its log (stderr, a file here: the detached daemon keeps it) is streamed to the serial log as
    # "[xsd] ..." lines, so a hung boot still shows it.
    touch $XSDLOG
    if [ ! -e /run/xsd-tail ]; then
      : > /run/xsd-tail
      (tail -n +1 -f $XSDLOG | while read -r l; do echo "[xsd] $l"; done) &
    fi
    XENSTORED_ARGS=
    [ -f /etc/default/xen ] && . /etc/default/xen
    mkdir -p /run/xenstored
    XENSTORED_ROOTDIR=/run/xenstored start-stop-daemon --start --quiet --pidfile /run/xenstore.pid \
      --exec /usr/bin/choom -- -n -1000 "$XSD" -- $XENSTORED_ARGS --pid-file /run/xenstore.pid \
      < /dev/null >> $XSDLOG 2>&1
    START_RC=$?
    [ $START_RC = 0 ] || return 1
    ;;
  esac
  wait_for 60 xenstore-read -s / > /dev/null 2>&1
}
start_consoled() {
  xenconsoled --pid-file /run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
}
# guest_cfg NAME TYPE ROLE [MEMORY_MB]: an xl config (no disk, no network, console only)
guest_cfg() {
  cat > /tmp/$1.cfg << EOF
name = "$1"
type = "$2"
kernel = "/guest/vmlinuz"
ramdisk = "/e2e/guest-initrd.gz"
extra = "console=hvc0 rdinit=/init loglevel=4 pci=off role=$3"
memory = ${4:-160}
vcpus = 1
on_poweroff = "destroy"
on_crash = "destroy"
EOF
  if [ "$2" = pvh ]; then
    # TCG SVM reports an intercepted RDTSCP as RDTSC; Xen then loops (../shared/xen-qemu/README.md).
    # A PVH guest that probed PCI config space (port 0xcfc) triple-faulted once under TCG (pci=off
    # above); "reboot" (a triple fault) destroys it, so such a failure shows instead of a new domid.
    printf 'tsc_mode = "native"\non_reboot = "destroy"\n' >> /tmp/$1.cfg
  else
    echo 'on_reboot = "restart"' >> /tmp/$1.cfg # scenario 3: xl reboot
  fi
}
# create NAME TYPE ROLE [MEMORY_MB]: xl create; prints the domid (the caller adds NAME to GUESTS: this runs in $(...))
create() {
  guest_cfg "$1" "$2" "$3" "$4"
  xl create /tmp/$1.cfg > /tmp/xl-create-$1.log 2>&1 || { cat /tmp/xl-create-$1.log; return 1; }
  xl domid "$1"
}
# create_checked NAME TYPE ROLE: xl create, then wait for the guest kernel's first xenstore write.
# A PVH guest sometimes triple-faults in early boot under TCG's nested SVM (Xen: "d<N>v0 Triple
# fault", before it touches xenstore; its on_reboot is "destroy"): noted, and created once more.
# Sets CREATED_DOMID and CREATED_T (dom0 uptime when xl create started).
create_checked() {
  local try=1 tf
  while :; do
    CREATED_T=$(up)
    CREATED_DOMID=$(create "$1" "$2" "$3") || { bad "xl create $1" "$CREATED_DOMID"; return 1; }
    ms "xl create $1 done (domid $CREATED_DOMID)"
    wait_for 60 sh -c "grep -q /local/domain/$CREATED_DOMID/control/feature-poweroff /tmp/first-access.log || ! xl domid $1 > /dev/null 2>&1"
    if grep -q "/local/domain/$CREATED_DOMID/control/feature-poweroff" /tmp/first-access.log; then
      ms "$1: the guest kernel's first xenstore write"
      return 0
    fi
    tf=$(xl dmesg | grep "d${CREATED_DOMID}v0 Triple fault")
    if [ $try = 1 ] && [ -n "$tf" ]; then
      note "$1 (domid $CREATED_DOMID) triple-faulted in early boot before touching xenstore (TCG nested SVM); created again" "$tf"
      try=2
      continue
    fi
    bad "$1's kernel wrote control/feature-poweroff" "none within 60 s; $(xl list | tr '\n' ';') $tf"
    return 1
  done
}
# first-access watchers: the guest kernel's first write (control/feature-poweroff = 1, written by its
# xenbus driver as soon as xenstore answers; libxl creates the node empty long before) and
# @introduceDomain (xl's INTRODUCE), each seen by a dom0 watch and stamped with dom0's uptime
# (no fork per event: xl create fires dozens of events, and a fork per event under TCG made the stamps
# lag by seconds; "read < /proc/uptime" is a shell builtin)
start_fa_watch() {
  (xenstore-watch /local/domain 2>/dev/null | while read -r p; do
    case $p in */control/feature-poweroff)
      read -r u _ < /proc/uptime
      [ "$(xenstore-read "$p" 2>/dev/null)" = 1 ] && echo "$u $p" ;;
    esac
  done) > /tmp/first-access.log &
  # (the watch's first event is its registration's, not an INTRODUCE: skipped, or a late one would be
  # taken for xl's INTRODUCE when it comes after the create's stamp)
  (xenstore-watch @introduceDomain 2>/dev/null | {
    read -r _
    while read -r p; do
      read -r u _ < /proc/uptime && echo "$u $p"
    done
  }) > /tmp/introduce.log &
}
# first_access DOMID CREATE_T: "create_to_first_access_s=A create_to_introduce_s=B introduce_to_first_access_s=C"
first_access() {
  local t i
  wait_for 60 grep -q "/local/domain/$1/control/feature-poweroff" /tmp/first-access.log || return 1
  t=$(grep "/local/domain/$1/control/feature-poweroff" /tmp/first-access.log | head -1 | cut -d' ' -f1)
  i=$(awk -v t0="$2" '$1 > t0 { print $1; exit }' /tmp/introduce.log)
  awk "BEGIN{printf \"create_to_first_access_s=%.2f\", $t - $2}"
  [ -n "$i" ] && awk "BEGIN{printf \" create_to_introduce_s=%.2f introduce_to_first_access_s=%.2f\", $i - $2, $t - $i}"
  echo
  say "first-access stamps: xl create at $2; @introduceDomain: $(tr '\n' ' ' < /tmp/introduce.log); first write: $t" >&2
}
# gone DOMID: the domain's home, its owned node outside it and xl's entry are gone
node_gone() { ! xenstore-exists "$1" 2> /dev/null; }
# quota_of DOMID: "xenstore-control quota <domid>" flattened, or "ERR ..."
XSCONTROL=/e2e/bin/xenstore-control # Debian's real one (dom0's /usr/bin/xenstore-control is the multi-call xenstore)
quota_of() {
  local q
  q=$($XSCONTROL quota "$1" 2>&1) && echo "$q" | tr '\n' ' ' | tr -s ' ' || echo "ERR $(echo "$q" | tr '\n' ' ')"
}
# quota_zero "QUOTA-OUTPUT": the domain is unknown to the daemon (an error, or no "name : count"
# line), or every count is 0 (cxenstored "nodes : 0"; oxenstored "dom5 quota: 0/1000")
quota_zero() {
  case $1 in ERR*) return 0 ;; esac
  [ -z "$(echo "$1" | grep -oE ':[[:space:]]*[0-9]+' | grep -vE ':[[:space:]]*0$')" ]
}
# release_checks DOMID HOW OWNEDNODE: after the domain died
release_checks() {
  local d=$1 how=$2 q
  if wait_for 20 sh -c "[ \$(wc -l < /tmp/rel.all) -gt $RELBASE ]"; then
    ok "@releaseDomain fired ($how of $d)" "$(($(lines /tmp/rel.all) - RELBASE)) event(s)"
  else bad "@releaseDomain fired ($how of $d)" "no event; watcher: $(tr '\n' ' ' < /tmp/rel.all)"; fi
  if [ -n "$REF" ]; then
    note "@releaseDomain/$d ($how)" "not checked: $REF 4.17 has no @releaseDomain/<domid> (a 4.22 feature); $(lines /tmp/rel.$d) line(s)"
  elif wait_for 20 sh -c "[ \$(wc -l < /tmp/rel.$d) -ge 2 ]"; then
    ok "@releaseDomain/$d fired ($how)" "$(tr '\n' ' ' < /tmp/rel.$d)"
  else bad "@releaseDomain/$d fired ($how)" "watcher: $(tr '\n' ' ' < /tmp/rel.$d)"; fi
  if wait_for 20 node_gone /local/domain/$d; then ok "/local/domain/$d gone ($how)" ""; else bad "/local/domain/$d gone ($how)" "$(xenstore-ls /local/domain/$d 2>&1 | head -5 | tr '\n' ' ')"; fi
  if wait_for 20 node_gone "$3"; then ok "owned node $3 deleted ($how)" ""; else bad "owned node $3 deleted ($how)" "$(xenstore-ls -p "$3" 2>&1 | head -3 | tr '\n' ' ') perms $(xenstore-read "$3" > /dev/null 2>&1; xenstore-ls -p /e2e/s3 2>&1 | tr '\n' ' ')"; fi
  q=$(quota_of $d)
  if quota_zero "$q"; then ok "quota accounting of $d back to zero ($how)" "$q"; else bad "quota accounting of $d back to zero ($how)" "$q"; fi
  if xl list | awk '{print $2}' | grep -qx "$d"; then bad "xl list no longer shows $d" "$(xl list | tr '\n' ';')"; else ok "xl list no longer shows $d" ""; fi
}
watch_release() { # DOMID: a dom0 watcher on @releaseDomain/<domid>, registered before returning
  xenstore-watch @releaseDomain/$1 > /tmp/rel.$1 2>&1 &
  wait_for 10 sh -c "[ -s /tmp/rel.$1 ]"
}

# ------------------------------------------------------------------ dom0 up
say "starting xenstore daemon: $XSD"
T_XSD=$(up)
start_xsd || { cat $XSDLOG 2>/dev/null; finish 1 "xenstored did not come up"; }
say "xenstore is up ($(awk "BEGIN{printf \"%.1f\", $(up) - $T_XSD}") s after start, pid $(xsd_pid))"
xen-init-dom0 || say "xen-init-dom0 failed"
start_consoled || finish 1 "xenconsoled"
# the guests' initramfs: the shared one + our /init and xse2e (a later cpio archive overrides files)
cat /guest/initrd.gz /e2e/guest-overlay.cpio.gz > /e2e/guest-initrd.gz || finish 1 "no guest initramfs"
xenstore-write /e2e/mode "" && xenstore-chmod /e2e/mode r0 # guests may read /e2e/mode/*
xenstore-write /e2e/s3/watched 0 && xenstore-chmod /e2e/s3/watched r0
say "xl list:"; xl list

packaged_checks() {
  # ---------------------------------------------------------------- scenario 0 (dxenstored only)
  begin s0 "packaged dxenstored as installed: the .deb's files, /etc/init.d/xen's start, no extra flags"
  p=$(xsd_pid)
  chk "start-stop-daemon returned success once the daemon served" "0" "$START_RC"
  if [ -n "$p" ] && kill -0 "$p" 2> /dev/null; then ok "the pid file names the live daemon" "pid $p"; else bad "the pid file names the live daemon" "pid [$p]"; fi
  chk "the daemon's name (comm)" "dxenstored" "$(cat /proc/$p/comm 2>&1)"
  chk "its command line: the init script's, nothing added" \
    "$(echo dxenstored $XENSTORED_ARGS --pid-file /run/xenstore.pid)" "$(tr '\0' ' ' < /proc/$p/cmdline | sed 's/ run .* \/usr\/lib\/dxenstored\/dxenstored.js / /; s/ *$//; s/  */ /g')"
  if [ -f /etc/xen/dxenstored.conf ]; then ok "the package's /etc/xen/dxenstored.conf is in place" "$(grep -E '^[a-z]' /etc/xen/dxenstored.conf | tr '\n' ';')"; else bad "the package's /etc/xen/dxenstored.conf is in place" "absent"; fi
  l=$(grep -m1 -- "--xen real" $XSDLOG)
  if [ -n "$l" ]; then ok "Xen host detected: guests are served by default" "$l"; else bad "Xen host detected: guests are served by default" "no '--xen real' line in the daemon's log"; fi
  xenstore-write /e2e/s0/persisted yes
  n=$(ls /var/lib/xenstored/dxenstored 2>/dev/null | wc -l)
  if [ "$n" -gt 0 ]; then ok "the store persists under /var/lib/xenstored/dxenstored" "$(ls /var/lib/xenstored/dxenstored | tr '\n' ' ')"; else bad "the store persists under /var/lib/xenstored/dxenstored" "empty or absent"; fi
  # dom0's INTRODUCE of itself: xen-init-dom0 ran against the daemon (scenario 1's guests need the rest)
  chk "xen-init-dom0 wrote /local/domain/0/name" "Domain-0" "$(xenstore-read /local/domain/0/name 2>&1)"
  end
}

plan_a() {
  [ -z "$REF" ] && packaged_checks
  # ---------------------------------------------------------------- scenario 1
  begin s1 "PV + PVH guests over the real ring"
  start_fa_watch
  sleep 0.5
  GUESTS="$GUESTS e2e-pv"
  create_checked e2e-pv pv s123; D1=$CREATED_DOMID t=$CREATED_T
  GUESTS="$GUESTS e2e-pvh"
  create_checked e2e-pvh pvh s123; D2=$CREATED_DOMID t2=$CREATED_T
  say "xl list:"; xl list
  if fa=$(first_access "$D1" "$t"); then say "E2E-BENCH xsd=$XSD guest=pv $fa"; else bad "PV guest kernel wrote control/feature-poweroff" "none within 60 s"; fi
  if fa=$(first_access "$D2" "$t2"); then say "E2E-BENCH xsd=$XSD guest=pvh $fa"; else bad "PVH guest kernel wrote control/feature-poweroff" "none within 60 s"; fi
  for g in e2e-pv e2e-pvh; do
    d=$(xl domid $g)
    if wait_guest $g "GUEST-S1-WAITACK domid=$d " 120; then
      ms "$g waits for dom0's ack"
      xenstore-write /local/domain/$d/data/s1/ack ack-from-dom0
    else bad "$g reached the ack step" "no GUEST-S1-WAITACK"; fi
  done
  for g in e2e-pv e2e-pvh; do
    d=$(xl domid $g)
    if wait_guest $g "GUEST-S1-DONE domid=$d " 60; then ms "$g done"; else bad "$g finished scenario 1" "no GUEST-S1-DONE"; fi
    chk "dom0 reads $g's write" "v1-$g" "$(xenstore-read /local/domain/$d/data/s1/a 2>&1)"
    chk "$g's kernel xenbus wrote control/feature-poweroff" "1" "$(xenstore-read /local/domain/$d/control/feature-poweroff 2>&1)"
    chk "dom0 sees $g's committed transaction" "committed-$g" "$(xenstore-read /local/domain/$d/data/s1/txn 2>&1)"
    if grep -q "GUEST" /var/log/xen/console/guest-$g.log 2>/dev/null; then ok "xenconsoled logs $g's console" "$(wc -l < /var/log/xen/console/guest-$g.log) lines"; else bad "xenconsoled logs $g's console" "no log"; fi
  done
  n=$(xenstore-ls -f /local/domain 2>&1 | grep -c "data/s1/")
  [ "$n" -ge 8 ] && ok "xenstore-ls -f /local/domain lists both guests' data" "$n lines" || bad "xenstore-ls -f /local/domain lists both guests' data" "$n lines"
  l=$(xl list 2>&1)
  echo "$l" | grep -q "^e2e-pv " && echo "$l" | grep -q "^e2e-pvh " && ok "xl list shows both guests" "" || bad "xl list shows both guests" "$(echo "$l" | tr '\n' ';')"
  end

  # ---------------------------------------------------------------- scenario 2
  begin s2 "two guests: EACCES on each other's nodes, SET_PERMS grant"
  xenstore-write /local/domain/$D1/data/s2/peer "$D2" /local/domain/$D2/data/s2/peer "$D1"
  for g in e2e-pv e2e-pvh; do
    d=$(xl domid $g)
    if wait_guest $g "GUEST-S2-DONE domid=$d " 120; then ms "$g done"; else bad "$g finished scenario 2" "no GUEST-S2-DONE"; fi
  done
  chk "dom0 sees the grant on $D1's node" "n$D1 r$D2" "$(xenstore-ls -p /local/domain/$D1/data/s2 2>&1 | sed -n 's/^shared = .*(\(.*\))$/\1/p' | tr ',' ' ')"
  end

  # ---------------------------------------------------------------- scenario 3
  begin s3 "xl shutdown / xl reboot / xl destroy: release and cleanup"
  xenstore-watch @releaseDomain > /tmp/rel.all 2>&1 &
  wait_for 10 sh -c "[ -s /tmp/rel.all ]" && ok "dom0 watch on @releaseDomain registered" "$(head -1 /tmp/rel.all)" || bad "dom0 watch on @releaseDomain registered" "no registration event"
  for d in $D1 $D2; do
    watch_release $d
    xenstore-write /e2e/s3/own-$d "" && xenstore-chmod /e2e/s3/own-$d n$d
    xenstore-write /local/domain/$d/data/s3/go 1
  done
  for g in e2e-pv e2e-pvh; do
    d=$(xl domid $g)
    wait_guest $g "GUEST-S3-READY domid=$d " 60 && ms "$g holds a watch, a transaction and a node" || bad "$g set up its state" "no GUEST-S3-READY"
    q=$(quota_of $d)
    case $q in ERR*) bad "quota accounting visible while $g runs (xenstore-control quota $d)" "$q" ;; *) ok "quota accounting visible while $g runs" "$q" ;; esac
  done
  chk "the guest-owned node" "n$D2" "$(xenstore-ls -p /e2e/s3 2>&1 | sed -n "s/^own-$D2 = .*(\(n$D2\).*/\1/p")"
  # shutdown (PVH guest): the kernel's control/shutdown watch powers it off
  RELBASE=$(lines /tmp/rel.all)
  ms "xl shutdown e2e-pvh"
  if timeout 90 xl shutdown -w e2e-pvh > /tmp/xl-shutdown.log 2>&1; then ms "e2e-pvh shut down"; else bad "xl shutdown -w e2e-pvh" "$(cat /tmp/xl-shutdown.log)"; fi
  release_checks $D2 shutdown /e2e/s3/own-$D2
  # reboot (PV guest): a new domain and a new ring; the guest must work again
  xenstore-write /e2e/mode/e2e-pv reboot
  RELBASE=$(lines /tmp/rel.all)
  ms "xl reboot e2e-pv"
  xl reboot e2e-pv || bad "xl reboot e2e-pv" "exit $?"
  if wait_for 90 sh -c "d=\$(xl domid e2e-pv 2>/dev/null) && [ -n \"\$d\" ] && [ \"\$d\" != $D1 ]"; then
    D3=$(xl domid e2e-pv); ms "e2e-pv rebooted as domid $D3"
  else bad "e2e-pv came back with a new domid" "$(xl list | tr '\n' ';')"; D3=none; fi
  release_checks $D1 reboot /e2e/s3/own-$D1
  if [ "$D3" != none ]; then
    watch_release $D3
    if wait_guest e2e-pv "GUEST-LIFE2-READY domid=$D3 " 120; then
      ms "rebooted e2e-pv registered its watch"
      xenstore-write /e2e/s3/watched after-reboot
      wait_guest e2e-pv "GUEST-LIFE2-DONE domid=$D3 " 60 && ms "rebooted e2e-pv done" || bad "rebooted e2e-pv finished" "no GUEST-LIFE2-DONE"
    else bad "rebooted e2e-pv works" "no GUEST-LIFE2-READY"; fi
    # destroy: no cooperation from the guest
    xenstore-write /e2e/s3/own-$D3 "" && xenstore-chmod /e2e/s3/own-$D3 n$D3
    RELBASE=$(lines /tmp/rel.all)
    ms "xl destroy e2e-pv"
    xl destroy e2e-pv || bad "xl destroy e2e-pv" "exit $?"
    release_checks $D3 destroy /e2e/s3/own-$D3
  fi
  note "stale watches of a previous life" "a rebooted guest gets a new domid and ring; Linux's xenbus drops events of unknown tokens, so only the daemon's accounting (quota lines above) can show a leaked watch"
  end
}

# threads_snapshot / threads_report: the daemon's threads around plan B's benchmark; wait_guest_quiet
# (diagnostics.sh)
. /e2e/diagnostics.sh

plan_b() {
  # ---------------------------------------------------------------- benchmark + scenario 4
  # what a system call costs here against the pages touched between calls (docs/domains.md)
  [ -x /e2e/bin/tlb_probe ] && /e2e/bin/tlb_probe | while read -r l; do say "E2E-$l"; done
  begin s4 "SIGKILL + restart of the daemon while a guest runs"
  start_fa_watch
  sleep 0.5
  GUESTS="$GUESTS e2e-s4"
  create_checked e2e-s4 pv s4; D1=$CREATED_DOMID t=$CREATED_T
  if fa=$(first_access "$D1" "$t"); then say "E2E-BENCH xsd=$XSD guest=pv $fa"; else bad "guest kernel wrote control/feature-poweroff" "none within 60 s"; fi
  threads_snapshot before
  if wait_guest_quiet e2e-s4 "GUEST-S4-READY domid=$D1 " 400; then ms "guest ready (benchmark done)"; else bad "guest reached scenario 4" "no GUEST-S4-READY"; fi
  threads_snapshot after
  threads_report before after
  b=$(grep -a "GUEST-BENCH " /var/log/xen/console/guest-e2e-s4.log | tr -d '\r' | head -1 | sed 's/.*GUEST-BENCH //')
  case $b in BENCH*) say "E2E-BENCH xsd=$XSD ${b#BENCH }" ;; *) bad "guest READ benchmark" "$b" ;; esac
  b=$(grep -a "GUEST-BENCH2" /var/log/xen/console/guest-e2e-s4.log | tr -d '\r' | head -1 | sed 's/.*GUEST-BENCH2 //')
  case $b in BENCH*) say "E2E-BENCH xsd=$XSD window=2 ${b#BENCH }" ;; *) bad "guest READ benchmark, second window" "$b" ;; esac
  xenstore-write /local/domain/$D1/data/s4/w/x before-crash
  wait_guest e2e-s4 "GUEST-S4-EVENT data/s4/w/x" 20 && ok "guest watch event before the crash" "" || bad "guest watch event before the crash" "none"
  if [ -n "$REF" ]; then
    note "crash restart" "control run without the SIGKILL: $REF 4.17 keeps no state across a crash (cxenstored: RAM only; oxenstored: no re-attach of rings), so only the checks around it run"
  else
    p=$(xsd_pid)
    ms "SIGKILL dxenstored (pid $p)"
    kill -9 "$p"
    wait_for 10 sh -c "! kill -0 $p 2>/dev/null" || bad "daemon died on SIGKILL" "pid $p still there"
    echo "---- restart after SIGKILL at $(up) ----" >> $XSDLOG
    if start_xsd; then ms "daemon restarted, socket answers (pid $(xsd_pid))"; else bad "daemon restarted" "no answer on the socket within 60 s"; fi
    # socket clients lose their connection with the daemon, as with any xenstored: restart xenconsoled
    cp=$(cat /run/xenconsoled.pid 2>/dev/null)
    [ -n "$cp" ] && kill "$cp" 2>/dev/null && sleep 0.5
    start_consoled && ms "xenconsoled restarted" || bad "xenconsoled restarted" "failed"
  fi
  chk "dom0 reads the guest's pre-crash node" "pre-e2e-s4" "$(xenstore-read /local/domain/$D1/data/s4/before 2>&1)"
  xenstore-write /local/domain/$D1/data/s4/phase after-restart
  if wait_guest e2e-s4 "GUEST-S4-DONE domid=$D1 " 120; then ms "running guest works after the restart"; else bad "running guest works after the restart" "no GUEST-S4-DONE"; fi
  xenstore-write /local/domain/$D1/data/s4/w/x after-restart
  if wait_for 20 sh -c "[ \$(grep -c 'GUEST-S4-EVENT data/s4/w/x' /var/log/xen/console/guest-e2e-s4.log) -ge 2 ]"; then
    ok "watch registered before the crash fires after it" ""
  else bad "watch registered before the crash fires after it" "$(grep -a GUEST-S4-EVENT /var/log/xen/console/guest-e2e-s4.log | tr -d '\r' | tr '\n' ';')"; fi
  t=$(up); GUESTS="$GUESTS e2e-new"; D2=$(create e2e-new pv new) || bad "xl create after the restart" "$D2"
  ms "xl create after the restart done (domid $D2)"
  if wait_guest e2e-new "GUEST-NEW-DONE domid=$D2 " 120; then ms "new guest works"; else bad "new guest works" "no GUEST-NEW-DONE"; fi
  for g in e2e-s4 e2e-new; do
    if timeout 60 xl shutdown -w $g > /tmp/xl-shutdown.log 2>&1; then ok "xl shutdown $g (its kernel's watch still works)" ""; else bad "xl shutdown $g" "$(cat /tmp/xl-shutdown.log)"; xl destroy $g 2>/dev/null; fi
  done
  ms "guests shut down"
  end
}

# ------------------------------------------------------------------ plan P: performance
PERF_N=10 # guests
# Memory: QEMU has 2 GiB and dom0 starts with 1; the Debian kernel's segment alone is 58 MiB (xl
# refuses a 64 MiB guest), so dom0 balloons down to PERF_DOM0_MB and the guests share what is free.
PERF_DOM0_MB=560
# perf_count PATTERN: how many perf guests' console logs have PATTERN
perf_count() { grep -l "$1" /var/log/xen/console/guest-perf*.log 2>/dev/null | wc -l; }
# perf_wait PATTERN COUNT SECONDS: until COUNT perf guests printed PATTERN (polled once a second:
# under TCG every fork of this loop takes CPU from the daemon being measured)
perf_wait() {
  local i=0
  while [ "$(perf_count "$1")" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt $3 ] && { pump; return 1; }; sleep 1
  done
  pump
}
# perf_results PHASE: each guest's result of PHASE as an E2E-BENCH line
perf_results() {
  local g r
  for g in $GUESTS; do
    r=$(grep -a "GUEST-PERF $1 " /var/log/xen/console/guest-$g.log 2>/dev/null | tr -d '\r' | tail -1)
    [ -n "$r" ] || continue
    case ${r#*GUEST-PERF $1 } in
    BENCH*) r=${r#*GUEST-PERF $1 BENCH }; say "E2E-BENCH xsd=$XSD phase=$1 guest=$g $r" ;;
    *) bad "$g's $1 load" "${r#*GUEST-PERF $1 }" ;;
    esac
  done
}
# cpu_ticks: the daemon's CPU time so far in clock ticks, "MAIN_USER MAIN_SYS OTHER_USER OTHER_SYS"
# (its main thread, and its other threads: V8's compiler and GC helpers, Deno's); utime and stime
# are fields 14 and 15 of /proc/<pid>/task/<tid>/stat, i.e. 12 and 13 after the ") " that ends the
# thread's name
cpu_ticks() {
  local p t mu=0 msy=0 ou=0 osy=0
  p=$(xsd_pid)
  for t in /proc/$p/task/*; do
    set -- $(sed 's/^.*) //' $t/stat 2> /dev/null) || continue
    [ $# -ge 13 ] || continue
    if [ "${t##*/}" = "$p" ]; then mu=$((mu + ${12})) msy=$((msy + ${13})); else ou=$((ou + ${12})) osy=$((osy + ${13})); fi
  done
  echo "$mu $msy $ou $osy"
}
# perf_phase PHASE GUESTS SECONDS: dom0 starts the phase (every guest gets the watch event at once),
# sleeps through its expected length, then waits for GUESTS results. The daemon's CPU time over the
# phase (user and system, main thread and the others) as an E2E-CPU line: where a request's time goes.
perf_phase() {
  local c0
  c0=$(cpu_ticks)
  xenstore-write /e2e/perf/phase "$1"
  sleep "$3"
  if perf_wait "GUEST-PERF $1 " "$2" 600; then ms "phase $1 done"; else bad "phase $1: $2 guest(s) reported" "$(perf_count "GUEST-PERF $1 ")"; fi
  say "E2E-CPU xsd=$XSD phase=$1 hz=$(getconf CLK_TCK 2> /dev/null || echo 100) $(echo $c0 $(cpu_ticks) | awk '{ printf "main_user=%d main_sys=%d other_user=%d other_sys=%d", $5 - $1, $6 - $2, $7 - $3, $8 - $4 }')"
  perf_results "$1"
}
# strace_start NAME: strace -c -f on the daemon (every thread) into /tmp/strace-NAME.txt; sets SP, ST
strace_start() {
  local p
  p=$(xsd_pid)
  strace -c -f -p "$p" -o /tmp/strace-$1.txt 2> /tmp/strace-$1.err &
  SP=$!
  ST=$(ls /proc/$p/task | wc -l)
  # strace -p prints "Process N attached" (one thread) or "... attached with T threads"
  wait_for 60 grep -q attached /tmp/strace-$1.err || note "strace did not attach" "$(cat /tmp/strace-$1.err)"
  STT=$(up)
}
# strace_stop NAME KEY=VALUE...: stop it; its counts (and the seconds it counted) as an E2E-STRACE line
strace_stop() {
  local name=$1 secs
  shift
  secs=$(awk "BEGIN{printf \"%.1f\", $(up) - $STT}")
  kill -INT $SP; wait $SP
  # strace -c: "% time seconds usecs/call calls [errors] syscall" rows, then a "total" row
  say "E2E-STRACE xsd=$XSD phase=$name $* seconds=$secs threads=$ST $(awk '$NF != "total" && $1 ~ /^[0-9.]+$/ && NF >= 5 { printf "%s=%s%s ", $NF, $4, (NF == 6 ? "/" $5 : "") }' /tmp/strace-$name.txt)"
}
# perf_strace PHASE GUESTS REQUESTS: the phase under strace. First the same daemon idle for 10 s
# (its timers and the loop's idle wake-ups, which a slow emulated round trip multiplies): the report
# subtracts that rate over the phase's duration, so what is left is what the requests cost.
perf_strace() {
  if ! command -v strace > /dev/null; then note "system calls per request" "no strace in this image"; return; fi
  strace_start idle-$1
  sleep 10
  strace_stop idle-$1
  strace_start "$1"
  perf_phase "$1" "$2" 5
  strace_stop "$1" requests=$3
}
# perf_create FIRST LAST MEMORY_MB: xl create perfFIRST..perfLAST
perf_create() {
  local i d
  for i in $(seq $1 $2); do
    GUESTS="$GUESTS perf$i"
    if d=$(create perf$i pv perf $3); then ms "xl create perf$i done (domid $d)"; else bad "xl create perf$i" "$d"; fi
  done
}
plan_p() {
  # ---------------------------------------------------------------- scenario 5
  begin s5 "READ load: one guest alone, $PERF_N guests at once; system calls per request"
  xenstore-write /e2e/perf/phase "" && xenstore-chmod /e2e/perf/phase r0
  local i free mem
  xl mem-set 0 ${PERF_DOM0_MB}m || note "xl mem-set 0 ${PERF_DOM0_MB}m" "failed"
  sleep 3
  free=$(xl info | awk '/^free_memory/ { print $3 }')
  mem=$(((free - 48) / PERF_N))
  [ $mem -gt 128 ] && mem=128
  ms "dom0 ballooned to ${PERF_DOM0_MB} MiB; $free MiB free: $PERF_N guests of $mem MiB"
  # one guest alone first (nothing else running): round trips, then the system calls they cost
  perf_create 0 0 $mem
  if perf_wait GUEST-PERF-READY 1 300; then ms "perf0 warmed up"; else bad "perf0 ready" "$(xl list | tr '\n' ';')"; fi
  perf_phase t1 1 10
  perf_strace s1 1 500
  if [ "$PERF_N" -gt 1 ]; then # then all of them at once
    perf_create 1 $((PERF_N - 1)) $mem
    if perf_wait GUEST-PERF-READY $PERF_N 600; then ms "$PERF_N guests warmed up"; else bad "$PERF_N guests ready" "$(perf_count GUEST-PERF-READY) ready; $(xl list | tr '\n' ';')"; fi
    perf_phase t10 $PERF_N 10
    perf_strace s10 $PERF_N $((PERF_N * 50))
  fi
  xenstore-write /e2e/perf/phase end
  for i in $(seq 0 $((PERF_N - 1))); do xl destroy perf$i 2> /dev/null; done
  ms "guests destroyed"
  end
}

case $PLAN in
L | LC) . /e2e/live_update.sh && plan_l ;;
A) plan_a ;;
B) plan_b ;;
P) plan_p ;;
P1) PERF_N=1 && plan_p ;;
*) finish 1 "unknown plan $PLAN" ;;
esac
pump
say "xl list:"; xl list
if kill -0 "$(xsd_pid)" 2>/dev/null; then say "daemon still running (pid $(xsd_pid))"; else say "E2E-CHECK daemon FAIL the daemon is not running at the end :: pid $(xsd_pid)"; FAILED="$FAILED daemon"; fi
[ -z "$FAILED" ] && finish 0 || finish 1 "failed:$FAILED"
