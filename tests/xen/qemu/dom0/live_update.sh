# Plans L and LC of the real-Xen E2E (sourced by tests/xen/qemu/dom0/init.sh as /e2e/live_update.sh;
# its helpers and variables are init.sh's): scenario 6, the xenstored replaced with
# `xenstore-control live-update <program>` while two guests — one PV, one PVH — do xenstore round trips
# over their rings throughout (each guest runs two loops at once, each on its own xenbus handle: every
# round writes a node, reads it back, checks it; each loop counts its rounds and errors).
#   L:  dxenstored → dxenstored, twice (the packaged daemon replaces itself)
#   LC: dom0 started Debian's cxenstored (init.sh): cx → dx, dx → dx, dx → cx (the way back)
# After every switch: same pid, the program named; the new dxenstored's adoption line names the rings
# and drops nothing, and says what the rings held when it mapped them again (requests a guest had sent
# that no program had answered yet, replies not yet read: a guest caught mid-request); every loop of
# every guest goes on; each guest's watch (registered before the first switch) fires; a dom0 socket
# watcher (the same connection) gets its event; dom0's own ring answers (when it did before). After the
# last: the store, exported with xenstore-ls, equals the export taken before the first switch (but for
# the nodes the scenario itself writes). At the end every loop reports its rounds with no error (the longest
# round is the switch's stall), at least one switch must have caught a guest mid-request, and
# `xl shutdown` of both shows VIRQ_DOM_EXC (bound again by each new program) still releases domains.
LU_SWITCHES=2
LU_TARGET=/usr/sbin/dxenstored
LU_CX=/usr/lib/xen-4.17/bin/xenstored
LU_GUESTS="e2e-lu:pv e2e-lu2:pvh" # name:type
LU_LOOPS="1 2"                    # each guest's round-trip loops (data/s6/n<k>)

# lu_ring0 DEVICE: dom0's name read over dom0's own ring (libxenstore takes a character device in
# XENSTORED_PATH as the kernel's xenbus, i.e. dom0's ring, rather than the daemon's socket)
lu_ring0() { XENSTORED_PATH=$1 xenstore-read /local/domain/0/name 2>&1; }
# lu_count NAME PATTERN: lines of guest NAME's console with PATTERN
lu_count() { grep -ac "$2" /var/log/xen/console/guest-$1.log 2>/dev/null; }
# lu_rounds DOMID: "n1/n2", the loops' round counters as the guest last wrote them
lu_rounds() {
  local k out=
  for k in $LU_LOOPS; do out="$out${out:+/}$(xenstore-read /local/domain/$1/data/s6/n$k 2>&1)"; done
  echo "$out"
}
# lu_grown DOMID FROM MORE: every loop's counter is above (its value in "FROM") + MORE
lu_grown() {
  local k f
  for k in $LU_LOOPS; do
    f=$(echo "$2" | cut -d/ -f$k)
    [ "$(xenstore-read /local/domain/$1/data/s6/n$k 2> /dev/null)" -gt $((f + $3)) ] 2> /dev/null || return 1
  done
}
# lu_export FILE: the whole store as dom0 sees it (path, value, permissions), sorted (the daemons list
# children in different orders), without the nodes this scenario writes on purpose and dom0's kernel's
# /local/domain/0/control/*, which its xenbus driver writes whenever it probes (its own timing; before
# dxenstored signalled dom0's ring at its start as cxenstored's dom0_init does, that was at dom0's first
# use of /dev/xen/xenbus, between the exports: seen in plan L)
lu_export() {
  xenstore-ls -f -p / 2>&1 | grep -vE '/data/s6/(n[0-9]+|stop|w|w/x) = |^/e2e/s6(/x)? = |^/local/domain/0/control(/| = )' |
    sort > "$1"
}

plan_l() {
  local first=dx
  [ "$PLAN" = LC ] && first=cx && LU_SWITCHES=3
  begin s6 "live update $([ $first = cx ] && echo "cx → dx, dx → dx, dx → cx" || echo "dx → dx, dx → dx") while two guests' (PV, PVH) xenstore traffic continues"
  if [ "$first" = dx ] && [ -n "$REF" ]; then
    note "live update" "dxenstored only: this plan switches /usr/sbin/dxenstored to itself"
    end
    return
  fi
  start_fa_watch
  sleep 0.5
  local g name type d doms= p0 i out rc adopted xb r0=no r to want nadopt=0 caught=0 bl k before after
  for g in $LU_GUESTS; do
    name=${g%:*} type=${g#*:}
    GUESTS="$GUESTS $name"
    create_checked $name $type lu || { end; return; }
    doms="$doms $name:$CREATED_DOMID"
  done
  for g in $doms; do
    name=${g%:*} d=${g#*:}
    if wait_guest $name "GUEST-S6-READY domid=$d " 120; then ms "$name (domid $d) ready"; else
      bad "$name reached scenario 6" "no GUEST-S6-READY"
      end
      return
    fi
  done
  lu_export /tmp/s6.store0 # the guests idle: quicker
  ms "store exported before the switches ($(wc -l < /tmp/s6.store0) nodes)"
  for g in $doms; do xenstore-write /local/domain/${g#*:}/data/s6/stop go; done
  for g in $doms; do
    name=${g%:*} d=${g#*:}
    if wait_guest $name "GUEST-S6-BUSY domid=$d " 60; then ms "$name busy with round trips"; else
      bad "$name started its round trips" "no GUEST-S6-BUSY"
      end
      return
    fi
  done
  xenstore-watch /e2e/s6 > /tmp/s6.watch 2>&1 &
  local wpid=$!
  wait_for 10 sh -c "[ -s /tmp/s6.watch ]" || bad "dom0 watch on /e2e/s6 registered" "no registration event"
  for xb in /dev/xen/xenbus /proc/xen/xenbus; do [ -e $xb ] && break; done
  if [ -e "$xb" ] && [ "$(lu_ring0 $xb)" = Domain-0 ]; then
    r0=yes
    ok "dom0's own ring answers before the switches" "$xb"
  else note "dom0's own ring" "not checked: no answer over $xb before the switches ($(lu_ring0 $xb | head -1))"; fi
  p0=$(xsd_pid)
  if [ $first = cx ]; then
    chk "cxenstored serves before the first switch" "xenstored" "$(cat /proc/$p0/comm 2>&1)"
    touch $XSDLOG
    (tail -n +1 -f $XSDLOG | while read -r l; do echo "[xsd] $l"; done) &
  fi
  i=1
  while [ $i -le $LU_SWITCHES ]; do
    to=$LU_TARGET want=dxenstored
    [ $first = cx ] && [ $i = $LU_SWITCHES ] && to=$LU_CX want=xenstored
    before=
    for g in $doms; do before="$before ${g%:*} at $(lu_rounds ${g#*:})"; done
    ms "switch $i: xenstore-control live-update $to (rounds:$before; $(cat /proc/$p0/comm) serves)"
    if [ $i = 1 ] && [ $first = cx ]; then
      # cxenstored passes its own options unless told: add a log file (its stderr is /dev/null)
      out=$(timeout 240 $XSCONTROL live-update -c "--pid-file /run/xenstore.pid --log-file $XSDLOG" $LU_TARGET 2>&1)
    else out=$(timeout 240 $XSCONTROL live-update $to 2>&1); fi
    rc=$?
    ms "switch $i: xenstore-control returned $rc"
    if [ $rc = 0 ]; then ok "switch $i: xenstore-control live-update succeeded" "$(echo "$out" | tr '\n' ' ')"; else
      bad "switch $i: xenstore-control live-update succeeded" "exit $rc: $(echo "$out" | tr '\n' ' ')"
    fi
    chk "switch $i: the same process serves (pid file)" "$p0" "$(xsd_pid)"
    chk "switch $i: the process is $want" "$want" "$(cat /proc/$p0/comm 2>&1)"
    [ $want = dxenstored ] && nadopt=$((nadopt + 1))
    adopted=$(grep -a "live update: adopted" $XSDLOG | sed -n "${nadopt}p")
    [ $want = xenstored ] && adopted="(cxenstored) $(grep -a "cxenstored 4.17 will drop\|cxenstored does not take" $XSDLOG | tail -2 | tr '\n' ' ')"
    case $adopted in
    "(cxenstored)"*) note "switch $i: cxenstored logs to syslog (not captured); dxenstored said before the exec" "${adopted#(cxenstored) }" ;;
    *"ring(s)"*"nothing dropped"*) ok "switch $i: the new program adopted the rings, dropped nothing" "${adopted#*live update: }" ;;
    *) bad "switch $i: the new program adopted the rings, dropped nothing" "[${adopted#*live update: }]; $(grep -a "live update" $XSDLOG | tail -3 | tr '\n' ' ')" ;;
    esac
    if [ $want = dxenstored ]; then
      # what the rings held when the new program mapped them: a guest's domid there = a request it had
      # sent that no program had answered yet, or a reply it had not read, across the change of program
      bl=$(echo "$adopted" | sed -n 's/.*(in the rings: \(.*\)), [0-9]* bytes of unprocessed input.*/\1/p')
      ms "switch $i: in the rings when dxenstored mapped them again: $bl"
      r=
      for g in $doms; do
        case "$bl" in *"domain ${g#*:}:"*) r="$r ${g%:*}" ;; esac
      done
      if [ -n "$r" ]; then
        caught=$((caught + 1))
        ok "switch $i: guest(s) caught mid-request:$r" "in the rings at adoption: $bl"
      else note "switch $i: no guest caught mid-request" "in the rings at adoption: [$bl]"; fi
    fi
    for g in $doms; do
      name=${g%:*} d=${g#*:}
      after=$(lu_rounds $d)
      if wait_for 60 lu_grown $d "$after" 10; then
        ok "switch $i: $name's round trips go on over its ring (loops $(echo $LU_LOOPS | tr ' ' '/'))" "before:$before; $name just after $after, now $(lu_rounds $d)"
      else bad "switch $i: $name's round trips go on over its ring" "just after $after, 60 s later $(lu_rounds $d); $(lu_count $name GUEST-S6-ROUNDS) ROUNDS lines"; fi
      xenstore-write /local/domain/$d/data/s6/w/x "switch-$i"
    done
    for g in $doms; do
      name=${g%:*}
      if wait_for 30 sh -c "[ \"\$(grep -ac 'GUEST-S6-EVENT data/s6/w/x' /var/log/xen/console/guest-$name.log)\" -ge $i ]"; then
        ok "switch $i: $name's watch (registered before the first switch) fires" ""
      else bad "switch $i: $name's watch fires" "$(lu_count $name 'GUEST-S6-EVENT data/s6/w/x') event(s)"; fi
    done
    xenstore-write /e2e/s6/x "switch-$i"
    if wait_for 10 sh -c "[ \"\$(grep -c '^/e2e/s6/x' /tmp/s6.watch)\" -ge $i ]"; then
      ok "switch $i: dom0's socket watcher (the same connection) gets its event" ""
    else bad "switch $i: dom0's socket watcher gets its event" "$(tr '\n' ' ' < /tmp/s6.watch)"; fi
    [ $r0 = yes ] && chk "switch $i: dom0's own ring answers" "Domain-0" "$(lu_ring0 $xb)"
    i=$((i + 1))
  done
  lu_export /tmp/s6.store1
  if cmp -s /tmp/s6.store0 /tmp/s6.store1; then
    ok "the store after the switches equals the one before (xenstore-ls -f -p /, $(cat /proc/$p0/comm) serving)" "$(wc -l < /tmp/s6.store1) nodes"
  else bad "the store after the switches equals the one before" "$(diff /tmp/s6.store0 /tmp/s6.store1 | grep '^[-+][^-+]' | head -8 | tr '\n' ' ')"; fi
  if [ $caught -gt 0 ]; then
    ok "a switch caught a guest mid-request (a request in its ring no program had answered, or a reply unread)" "$caught of $nadopt switch(es) into dxenstored"
  else bad "a switch caught a guest mid-request" "none of $nadopt switch(es) into dxenstored found a guest's request or reply in its ring"; fi
  for g in $doms; do xenstore-write /local/domain/${g#*:}/data/s6/stop stop; done
  for g in $doms; do
    name=${g%:*}
    for k in $LU_LOOPS; do
      if wait_guest $name "GUEST-S6-ROUNDS $k " 60; then
        r=$(grep -a "GUEST-S6-ROUNDS $k " /var/log/xen/console/guest-$name.log | tr -d '\r' | tail -1)
        r=${r#*GUEST-S6-ROUNDS $k }
        ms "$name loop $k: $r"
        case $r in
        ROUNDS*" errors=0 "*) ok "$name loop $k: every reply right, no error" "$r (max_us: the longest round, a switch's stall)" ;;
        *) bad "$name loop $k: every reply right, no error" "$r" ;;
        esac
      else bad "$name loop $k reported its round trips" "no GUEST-S6-ROUNDS $k"; fi
    done
  done
  kill $wpid 2> /dev/null
  for g in $doms; do
    name=${g%:*} d=${g#*:}
    if timeout 90 xl shutdown -w $name > /tmp/xl-shutdown.log 2>&1; then
      ok "xl shutdown $name after the switches" ""
    else
      bad "xl shutdown $name after the switches" "$(cat /tmp/xl-shutdown.log)"
      xl destroy $name 2> /dev/null
    fi
    if wait_for 20 node_gone /local/domain/$d; then
      ok "$name's domain is released after the switches (VIRQ_DOM_EXC bound again)" ""
    else bad "$name's domain is released after the switches (VIRQ_DOM_EXC bound again)" "$(xenstore-ls /local/domain/$d 2>&1 | head -3 | tr '\n' ' ')"; fi
  done
  end
}
