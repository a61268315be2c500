#!/bin/sh
# PID 1 of the E2E test guests (PV or PVH domU, tests/xen/qemu). Everything goes through the guest
# kernel's xenbus driver (/dev/xen/xenbus) over the real ring to the xenstore daemon under test.
# The role comes from the kernel command line (xl cfg "extra"): role=s123 | s4 | new | perf.
# Output lines dom0 reads from the console log (xenconsoled -> /var/log/xen/console/guest-<name>.log):
#   GUEST-CHECK <scenario> ok|FAIL <what> :: <detail>
#   GUEST-<MARKER> domid=<domid> .          (progress markers dom0 waits for)
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp && mount -t tmpfs tmpfs /tmp
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "GUEST $(up) $*"; }
# "xl shutdown": the kernel's watch on control/shutdown runs /sbin/poweroff, which (busybox) signals
# PID 1 with SIGUSR2; every wait below is "wait" on a background job so the trap runs at once.
trap 'say "got shutdown request, powering off"; poweroff -f' USR2
# "xl reboot": the kernel runs /sbin/reboot, which (busybox) sends SIGTERM to PID 1
trap 'say "got reboot request, rebooting"; reboot -f' TERM
pause() { sleep "$1" & wait $!; }

ROLE=none
for a in $(cat /proc/cmdline); do case $a in role=*) ROLE=${a#role=} ;; esac; done
say "init up, role=$ROLE, kernel $(uname -r), xen type $(cat /sys/hypervisor/guest_type 2>/dev/null)"

SCN=s1
gok() { echo "GUEST-CHECK $SCN ok $1 :: $2"; }
gbad() { echo "GUEST-CHECK $SCN FAIL $1 :: $2"; }
# expect WHAT EXPECTED CMD...: the command's output (stdout+stderr, newlines as spaces) must equal EXPECTED
expect() {
  what=$1 want=$2; shift 2
  got=$("$@" 2>&1 | tr '\n' ' ' | sed 's/ *$//')
  if [ "$got" = "$want" ]; then gok "$what" "$got"; else gbad "$what" "want [$want] got [$got]"; fi
}
# wait_lines FILE N SECONDS: until FILE has N lines
wait_lines() {
  i=0
  while [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt $(($3 * 5)) ] && return 1
    sleep 0.2
  done
}
# watch_check WHAT WATCHPATH CHILD: registration event + two changes, in order, nothing else
watch_check() {
  out=/tmp/watch.$$.$(up)
  xenstore-watch -n 3 "$2" > "$out" 2>&1 &
  wpid=$!
  wait_lines "$out" 1 10 || { gbad "$1" "no registration event: $(cat "$out")"; kill $wpid; return; }
  xenstore-write "$3" one
  wait_lines "$out" 2 10
  xenstore-write "$3" two
  wait_lines "$out" 3 10
  i=0; while kill -0 $wpid 2>/dev/null && [ $i -lt 25 ]; do sleep 0.2; i=$((i + 1)); done
  kill $wpid 2>/dev/null
  got=$(tr '\n' ' ' < "$out" | sed 's/ *$//')
  want="$2 $3 $3"
  if [ "$got" = "$want" ]; then gok "$1" "$got"; else gbad "$1" "want [$want] got [$got]"; fi
}
# poll_read PATH SECONDS: until xse2e can read PATH (prints its last answer)
poll_read() {
  i=0
  while :; do
    r=$(xse2e read "$1" 2>&1)
    case $r in OK*) echo "$r"; return 0 ;; esac
    i=$((i + 1)); [ $i -gt $(($2 * 4)) ] && { echo "$r"; return 1; }
    pause 0.25
  done
}
idle() { # wait for "xl shutdown" / "xl destroy"
  say "idle, waiting for shutdown"
  n=0; while [ $n -lt 600 ]; do pause 1; n=$((n + 1)); done
  say "no shutdown request within 600s"; poweroff -f
}

# ---- first access (relative paths: /local/domain/<me>/...)
name=$(xenstore-read name)
domid=$(xenstore-read domid)
say "GUEST-FIRST-ACCESS name=$name domid=$domid uptime=$(up)"
[ -n "$name" ] && [ -n "$domid" ] || { echo "GUEST-CHECK s1 FAIL relative read of name/domid :: name=[$name] domid=[$domid]"; idle; }
D=/local/domain/$domid

basic() { # read/write/list, relative and absolute
  expect "relative write+read" "v1-$name" sh -c "xenstore-write data/$SCN/a v1-$name && xenstore-read data/$SCN/a"
  expect "absolute read of a relative write" "v1-$name" xenstore-read $D/data/$SCN/a
  expect "absolute write+relative read" "v2" sh -c "xenstore-write $D/data/$SCN/b v2 && xenstore-read data/$SCN/b"
  expect "list (relative)" "a b" xenstore-list data/$SCN
  expect "list (absolute)" "a b" xenstore-list $D/data/$SCN
  expect "xse2e read (raw protocol)" "OK v2" xse2e read data/$SCN/b
  expect "read of a missing node" "ERR ENOENT" xse2e read data/$SCN/missing
}

if [ "$ROLE" = s123 ] && [ "$(xse2e read /e2e/mode/$name 2>&1)" = "OK reboot" ]; then
  # ---- scenario 3, second life after "xl reboot": a new domain, a new ring
  SCN=s3
  say "second life after xl reboot, domid=$domid"
  basic
  out=/tmp/life2.watch
  xenstore-watch -n 2 /e2e/s3/watched > $out 2>&1 &
  wpid=$!
  wait_lines $out 1 10
  echo "GUEST-LIFE2-READY domid=$domid ."
  wait_lines $out 2 60
  pause 2   # an event of the previous life would arrive here too
  got=$(tr '\n' ' ' < $out | sed 's/ *$//')
  want="/e2e/s3/watched /e2e/s3/watched"
  if [ "$got" = "$want" ]; then gok "rebooted guest: watch fires registration + 1 change only" "$got"; else gbad "rebooted guest: watch fires registration + 1 change only" "want [$want] got [$got]"; fi
  kill $wpid 2>/dev/null
  echo "GUEST-LIFE2-DONE domid=$domid ."
  idle
fi

case $ROLE in
s123)
  # ---- scenario 1: read, write, list, watch, transaction over the real ring
  SCN=s1
  basic
  watch_check "relative watch: registration + 2 changes" data/s1/w data/s1/w/x
  watch_check "absolute watch: registration + 2 changes" $D/data/s1/abs $D/data/s1/abs/x
  expect "transaction: isolated until commit, then visible" "OK" sh -c "xse2e txn data/s1/txn committed-$name | cut -d' ' -f1"
  expect "transaction result read back" "committed-$name" xenstore-read data/s1/txn
  out=/tmp/ack.watch
  xenstore-watch -n 2 data/s1/ack > $out 2>&1 &
  wait_lines $out 1 10
  echo "GUEST-S1-WAITACK domid=$domid ."
  if wait_lines $out 2 60; then gok "dom0's write seen through a watch" "$(tr '\n' ' ' < $out)"; else gbad "dom0's write seen through a watch" "$(cat $out)"; fi
  expect "dom0's value" "ack-from-dom0" xenstore-read data/s1/ack
  echo "GUEST-S1-DONE domid=$domid ."

  # ---- scenario 2: the other guest's nodes are refused; a SET_PERMS grant is honoured
  r=$(poll_read data/s2/peer 120)
  SCN=s2
  peer=${r#OK }
  say "peer domain: $peer"
  P=/local/domain/$peer
  expect "read the peer's data node" "ERR EACCES" xse2e read $P/data/s1/a
  expect "read the peer's name" "ERR EACCES" xse2e read $P/name
  expect "list the peer's data" "ERR EACCES" xse2e ls $P/data
  expect "write the peer's existing node" "ERR EACCES" xse2e write $P/data/s1/a evil
  expect "create a node in the peer's data" "ERR EACCES" xse2e write $P/data/intruder evil
  expect "getperms of the peer's node" "ERR EACCES" xse2e getperms $P/data/s1/a
  expect "own shared node" "OK" xse2e write data/s2/shared "from-$domid"
  expect "own private node" "OK" xse2e write data/s2/private "secret-$domid"
  expect "grant: SET_PERMS n$domid r$peer" "OK" xse2e setperms data/s2/shared n$domid r$peer
  expect "perms after the grant" "OK n$domid r$peer" xse2e getperms data/s2/shared
  echo "GUEST-S2-GRANTED domid=$domid ."
  r=$(poll_read $P/data/s2/shared 60)
  if [ "$r" = "OK from-$peer" ]; then gok "read the node the peer granted" "$r"; else gbad "read the node the peer granted" "$r"; fi
  expect "write the node granted read-only" "ERR EACCES" xse2e write $P/data/s2/shared evil
  expect "read the peer's private node" "ERR EACCES" xse2e read $P/data/s2/private
  echo "GUEST-S2-DONE domid=$domid ."

  # ---- scenario 3: state that must vanish with this domain
  poll_read data/s3/go 120 > /dev/null
  SCN=s3
  xenstore-watch /e2e/s3/watched > /dev/null 2>&1 &          # a watch of this life
  xenstore-watch data > /dev/null 2>&1 &
  xse2e txn-hold data/s3/held > /tmp/held 2>&1 &               # an open transaction
  wait_lines /tmp/held 1 10
  expect "open transaction" "HELD" cut -d' ' -f1 /tmp/held
  expect "node owned outside the home dir" "OK" xse2e write /e2e/s3/own-$domid/g "$name"
  echo "GUEST-S3-READY domid=$domid ."
  idle
  ;;
s4)
  SCN=bench
  xse2e bench 200 name > /dev/null 2>&1 # warm-up (a JIT-compiled daemon's first requests are slow)
  r=$(xse2e bench 1000 name 2>&1)
  say "GUEST-BENCH $r"
  # the next 1000: how far the first window still paid for the daemon's warm-up (JIT tiers)
  r=$(xse2e bench 1000 name 2>&1)
  say "GUEST-BENCH2 $r"
  # 2 s with no request: the machine's background rate for e2e:xen --tcg-counts (a no-op otherwise)
  xse2e idle 2000 > /dev/null 2>&1
  SCN=s4
  basic
  expect "node written before the crash" "OK" xse2e write data/s4/before "pre-$name"
  # a watch registered before the crash, reported for as long as this guest lives
  (xenstore-watch data/s4/w 2>&1 | while read -r l; do echo "GUEST-S4-EVENT $l"; done) &
  echo "GUEST-S4-READY domid=$domid ."
  r=$(poll_read data/s4/phase 300)
  say "phase: $r"
  expect "node written before the crash, read after" "OK pre-$name" xse2e read data/s4/before
  expect "write after the restart" "OK post" sh -c "xse2e write data/s4/after post >/dev/null && xse2e read data/s4/after"
  watch_check "new watch after the restart: registration + 2 changes" data/s4/w2 data/s4/w2/x
  expect "transaction after the restart" "OK" sh -c "xse2e txn data/s4/txn t | cut -d' ' -f1"
  echo "GUEST-S4-DONE domid=$domid ."
  idle
  ;;
lu)
  # ---- plan L: busy with xenstore while dom0 live-updates the daemon (dom0's live_update.sh)
  SCN=s6
  basic
  (xenstore-watch data/s6/w 2>&1 | while read -r l; do echo "GUEST-S6-EVENT $l"; done) &
  echo "GUEST-S6-READY domid=$domid ."
  # the loops start when dom0 writes data/s6/stop = go (once every guest is up: a guest booting
  # beside busy loops under TCG took minutes)
  until [ "$(xse2e read data/s6/stop 2>&1)" = "OK go" ]; do pause 0.5; done
  # two loops at once, each on its own /dev/xen/xenbus handle: the kernel's xenbus driver puts their
  # requests in the ring independently, so one is often waiting in it while the other is answered
  rp=
  for k in 1 2; do
    (xse2e rounds data/s6/n$k data/s6/stop > /tmp/rounds$k 2>&1; echo "GUEST-S6-ROUNDS $k $(cat /tmp/rounds$k)") &
    rp="$rp $!"
  done
  echo "GUEST-S6-BUSY domid=$domid ."
  wait $rp
  idle
  ;;
new)
  SCN=s4
  basic
  watch_check "watch in a guest created after the restart" data/s4/w data/s4/w/x
  echo "GUEST-NEW-DONE domid=$domid ."
  idle
  ;;
perf)
  # ---- plan P: READ load on dom0's command. dom0 writes a phase name into /e2e/perf/phase; every
  # guest watches it and runs the phase's load (all at once: the watch event reaches them together):
  #   t1  guest perf0 alone: 10 s of sequential READs (round-trip latency, nothing else running)
  #   s1  guest perf0 alone: 500 READs while dom0 counts the daemon's system calls (strace)
  #   t10 every guest: 10 s of sequential READs (total throughput of all guests reading at once)
  #   s10 every guest: 50 READs while dom0 counts the daemon's system calls
  # and prints "GUEST-PERF <phase> <xse2e's BENCH line>".
  xse2e bench 200 name > /dev/null 2>&1 # warm-up (a JIT-compiled daemon's first requests are slow)
  echo "GUEST-PERF-READY domid=$domid ."
  xenstore-watch /e2e/perf/phase 2>/dev/null | while read -r _; do
    ph=$(xse2e read /e2e/perf/phase 2>&1)
    case "${ph#OK }" in
    t1) [ "$name" = perf0 ] && echo "GUEST-PERF t1 $(xse2e bench-time 10000 name 2>&1)" ;;
    s1) [ "$name" = perf0 ] && echo "GUEST-PERF s1 $(xse2e bench 500 name 2>&1)" ;;
    t10) echo "GUEST-PERF t10 $(xse2e bench-time 10000 name 2>&1)" ;;
    s10) echo "GUEST-PERF s10 $(xse2e bench 50 name 2>&1)" ;;
    end) break ;;
    esac
  done
  idle
  ;;
*)
  say "unknown role $ROLE"
  idle
  ;;
esac
